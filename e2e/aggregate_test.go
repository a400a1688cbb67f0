package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// storeProxy stands between the relay and moto_server. While lose is set,
// the first PUT of an aggregated group's object is passed on and then
// answered 500 (the write happened, its answer was lost), requests before
// it pass, and every request after it is answered 500 without being passed
// on: a store that fails mid-push and stays down for a while.
type storeProxy struct {
	URL    string
	target *httputil.ReverseProxy
	lose   atomic.Bool
	lost   atomic.Int32 // PUTs passed on and answered 500
	failed atomic.Int32 // requests answered 500 without passing them on
}

func newStoreProxy(t *testing.T, target string) *storeProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &storeProxy{target: httputil.NewSingleHostReverseProxy(u)}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.lose.Load() {
			p.target.ServeHTTP(w, r) // concurrently, as the store is used
			return
		}
		mu.Lock()
		defer mu.Unlock() // one request at a time while losing one
		switch {
		case p.lost.Load() > 0:
			p.failed.Add(1)
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/a") && strings.HasSuffix(r.URL.Path, ".json"):
			rec := httptest.NewRecorder()
			p.target.ServeHTTP(rec, r)
			if rec.Code/100 != 2 {
				t.Errorf("moto refused the PUT to lose: %d %s", rec.Code, rec.Body)
			}
			p.lost.Add(1)
		default:
			p.target.ServeHTTP(w, r)
			return
		}
		http.Error(w, "InternalError", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// invocationPusher is the client_golang pusher of one short-lived
// invocation with a fresh registry: a counter of 1, one observation, a
// gauge; with key set, sent as its Idempotency-Key.
func invocationPusher(base, job, key string, gauge float64) *push.Pusher {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "agg_jobs_total", Help: "Jobs done."})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agg_latency_seconds", Help: "Job latency.", Buckets: []float64{0.1, 1}})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "agg_last_value", Help: "Last value seen."})
	reg.MustRegister(c, h, g)
	c.Inc()
	h.Observe(gauge / 100)
	g.Set(gauge)
	p := push.New(base+"/aggregate", job).Grouping("fleet", "f1").Gatherer(reg)
	if key != "" {
		p = p.Header(http.Header{"Idempotency-Key": []string{`"` + key + `"`}})
	}
	return p
}

// invocation pushes one invocation (invocationPusher) and retries (as a
// function's caller retries a failed invocation, with the same key) until
// the push succeeds or the deadline; it returns how many attempts failed.
func invocation(base, job, key string, gauge float64, deadline time.Time) (int, error) {
	p := invocationPusher(base, job, key, gauge)
	failed := 0
	for {
		err := p.Add()
		if err == nil {
			return failed, nil
		}
		failed++
		if time.Now().After(deadline) {
			return failed, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAggregate drives the aggregation route with the real client_golang
// push client, 50 concurrent invocations then 10 more, on the file store
// and on S3 (moto_server), and checks the totals with PromQL on the real
// upstream Prometheus (lookback 5 s): the counter and histogram count add
// up exactly, the gauge is one of the pushed values, re-emission keeps the
// totals past the lookback without ever changing them, a retry after an
// upstream or store failure counts once, and DELETE makes the series stale.
// It logs the pushes per second one group took on each store.
func TestAggregate(t *testing.T) {
	needsPeers(t)
	for _, store := range []string{"file", "s3"} {
		t.Run(store, func(t *testing.T) {
			prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Args: []string{"--query.lookback-delta=5s"}})
			up := newFaultProxy(t, prom.URL)
			env := map[string]string{
				"PROMRELAY_UPSTREAM_URL":    up.URL + "/api/v1/write",
				"PROMRELAY_REEMIT_INTERVAL": "1s",
				"PROMRELAY_REQUEST_TIMEOUT": "10s",
			}
			var sp *storeProxy
			if store == "file" {
				env["PROMRELAY_STATE_URL"] = "file://" + t.TempDir()
			} else {
				moto := testpeer.StartMoto(t)
				sp = newStoreProxy(t, moto.URL)
				env["PROMRELAY_STATE_URL"] = "s3://" + moto.Bucket + "/promrelay"
				env["PROMRELAY_STATE_ENDPOINT"] = sp.URL
				env["PROMRELAY_STATE_REGION"] = "us-east-1"
				for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/nonexistent",
					"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"} {
					t.Setenv(k, v)
				}
			}
			srv := startRelay(t, env)
			job := "agg_" + store
			sel := fmt.Sprintf(`{job=%q,fleet="f1"}`, job)
			// q is the selector of name (with more matchers, "{…}") in
			// the aggregated group.
			q := func(name string) string {
				name, more, _ := strings.Cut(name, "{")
				if more == "" {
					return name + sel
				}
				return name + sel[:len(sel)-1] + "," + more
			}
			value := func(name string) (float64, bool) {
				v := prom.Query(t, q(name))
				if len(v) != 1 {
					return 0, false
				}
				return v[0].Value, true
			}
			expect := func(step, name string, want float64) {
				t.Helper()
				var got float64
				var ok bool
				if !eventually(15*time.Second, func() bool { got, ok = value(name); return ok && got == want }) {
					t.Fatalf("%s: %s = %v (present %v), want %v", step, name, got, ok, want)
				}
			}
			burst := func(n, from int) (time.Duration, int) {
				var wg sync.WaitGroup
				var retries atomic.Int32
				start := time.Now()
				deadline := start.Add(60 * time.Second)
				for i := from; i < from+n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						failed, err := invocation(srv.URL, job, fmt.Sprintf("%s-inv-%d", store, i), float64(i), deadline)
						retries.Add(int32(failed))
						if err != nil {
							t.Errorf("invocation %d: %v", i, err)
						}
					}()
				}
				wg.Wait()
				return time.Since(start), int(retries.Load())
			}

			took, retries := burst(50, 0)
			t.Logf("%s store: 50 concurrent invocations to one group in %v (%.0f pushes/s), %d attempts retried", store, took, 50/took.Seconds(), retries)
			expect("after 50 invocations", "agg_jobs_total", 50)
			expect("after 50 invocations", "agg_latency_seconds_count", 50)
			expect("after 50 invocations", `agg_latency_seconds_bucket{le="+Inf"}`, 50)
			if g, ok := value("agg_last_value"); !ok || g < 0 || g >= 50 || g != float64(int(g)) {
				t.Fatalf("gauge %v (present %v), want one of the pushed 0…49", g, ok)
			}
			took, retries = burst(10, 50)
			t.Logf("%s store: 10 more in %v, %d attempts retried", store, took, retries)
			expect("after 10 more", "agg_jobs_total", 60)
			expect("after 10 more", "agg_latency_seconds_count", 60)

			// One sender at a time: the latency-bound rate.
			start := time.Now()
			for i := 0; i < 20; i++ {
				if _, err := invocation(srv.URL, job, fmt.Sprintf("%s-seq-%d", store, i), 1, time.Now().Add(30*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			took = time.Since(start)
			t.Logf("%s store: 20 sequential pushes in %v (%.0f pushes/s from one sender)", store, took, 20/took.Seconds())
			expect("after 20 sequential", "agg_jobs_total", 80)

			// The upstream fails: the push is answered an error (after
			// the relay's own retries for the request's deadline), and
			// the client's retry with the same key counts once.
			up.set(nil, &fault{name: "down", status: http.StatusServiceUnavailable, body: "upstream down"})
			p := invocationPusher(srv.URL, job, store+"-upstream-retry", 1)
			if err := p.Add(); err == nil {
				t.Fatal("a push was acknowledged while the upstream failed")
			}
			up.set(nil, nil)
			if err := p.Add(); err != nil {
				t.Fatalf("the retry once the upstream is back: %v", err)
			}
			expect("after the upstream failure and the retry", "agg_jobs_total", 81)
			expect("after the upstream failure and the retry", "agg_latency_seconds_count", 81)

			if sp != nil {
				// The store takes the write but its answer is lost, and
				// it keeps failing for a while: 503; the retry with the
				// same key counts once.
				sp.lose.Store(true)
				p := invocationPusher(srv.URL, job, "s3-store-retry", 1)
				if err := p.Add(); err == nil || sp.lost.Load() != 1 {
					t.Fatalf("push across a lost store write: %v (%d writes lost), want an error", err, sp.lost.Load())
				}
				sp.lose.Store(false)
				if err := p.Add(); err != nil {
					t.Fatalf("the retry once the store is back: %v", err)
				}
				expect("after the store failure and the retry", "agg_jobs_total", 82)
			}
			final, _ := value("agg_jobs_total")

			// Past the lookback only re-emission keeps the totals visible,
			// and it never changes them.
			time.Sleep(8 * time.Second)
			expect("8 s later, past the 5 s lookback", "agg_jobs_total", final)
			expect("8 s later, past the 5 s lookback", "agg_latency_seconds_count", final)
			for q, want := range map[string]float64{
				"changes(agg_jobs_total" + sel + "[7s])":           0,
				"resets(agg_jobs_total" + sel + "[2m])":            0,
				"resets(agg_latency_seconds_count" + sel + "[2m])": 0,
			} {
				if v := prom.Query(t, q); len(v) != 1 || v[0].Value != want {
					t.Errorf("%s = %v, want %v", q, v, want)
				}
			}
			if v := prom.Query(t, `push_time_seconds`+sel); len(v) != 1 {
				t.Errorf("push_time_seconds of the aggregated group: %v", v)
			}

			// DELETE: the series go stale at once.
			if err := push.New(srv.URL+"/aggregate", job).Grouping("fleet", "f1").Delete(); err != nil {
				t.Fatal(err)
			}
			// Within 2 s, well inside the 5 s lookback: only staleness
			// markers hide them that soon.
			if !eventually(2*time.Second, func() bool { return len(prom.Query(t, sel)) == 0 }) {
				t.Fatalf("2 s after DELETE still visible (no staleness markers?): %v", prom.Query(t, sel))
			}
		})
	}
}

// TestAggregateWithoutStore: the route needs PROMRELAY_STATE_URL and says so.
func TestAggregateWithoutStore(t *testing.T) {
	needsPeers(t)
	srv := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": newFaultProxy(t, "").URL + "/api/v1/write"})
	resp, err := http.Post(srv.URL+"/aggregate/metrics/job/x", "text/plain", bytes.NewReader([]byte("a_total 1\n")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 501 || !strings.Contains(string(body), "PROMRELAY_STATE_URL") {
		t.Fatalf("%d %s, want 501 naming PROMRELAY_STATE_URL", resp.StatusCode, body)
	}
}
