package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/requestid"
	"github.com/promrelay/promrelay/shared/wire"
)

// faultyUpstream answers every write with the status it holds (204 by
// default) and counts the series it took.
type faultyUpstream struct {
	status atomic.Int64
	series atomic.Int64
	srv    *httptest.Server
}

func newFaultyUpstream(t *testing.T) *faultyUpstream {
	u := &faultyUpstream{}
	u.status.Store(http.StatusNoContent)
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s := int(u.status.Load()); s != http.StatusNoContent {
			http.Error(w, "out of order sample", s)
			return
		}
		raw, err := wire.DecodeSnappy(nil, body, 64<<20)
		var wr wire.WriteRequest
		if err == nil {
			err = wr.Unmarshal(raw, wire.Limits{})
		}
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		u.series.Add(int64(len(wr.Series)))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// delta returns what c gained while fn ran.
func delta(c prometheus.Collector, fn func()) float64 {
	before := testutil.ToFloat64(c)
	fn()
	return testutil.ToFloat64(c) - before
}

func remoteWriteBody(t *testing.T, n int) []byte {
	t.Helper()
	var wr wire.WriteRequest
	for i := 0; i < n; i++ {
		wr.Series = append(wr.Series, wire.Series{
			Labels:  []wire.Label{{Name: "__name__", Value: "rw_metric"}, {Name: "i", Value: string(rune('a' + i))}},
			Samples: []wire.Sample{{Value: float64(i), Timestamp: time.Now().UnixMilli()}},
		})
	}
	return wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil))
}

const (
	writeToken = "w0123456789abcdef"
	readToken  = "r0123456789abcdef"
)

func do(h http.Handler, method, path, token string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(string(body)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestMetricsMoveAsDocumented drives the relay as its users do — a push,
// a remote write, upstream faults, auth failures, the scheduled job — with
// the real upstream client and file store, and checks that each metric of
// the README moves by what it documents.
func TestMetricsMoveAsDocumented(t *testing.T) {
	up := newFaultyUpstream(t)
	dir := t.TempDir()
	log := &syncBuffer{}
	vars := map[string]string{
		"PROMRELAY_UPSTREAM_URL":            up.srv.URL,
		"PROMRELAY_STATE_URL":               "file://" + dir,
		"PROMRELAY_INBOUND_AUTH":            "bearer",
		"PROMRELAY_INBOUND_TOKENS":          writeToken,
		"PROMRELAY_INBOUND_READ_TOKENS":     readToken,
		"PROMRELAY_UPSTREAM_MIN_BACKOFF":    "1ms",
		"PROMRELAY_UPSTREAM_MAX_BACKOFF":    "2ms",
		"PROMRELAY_REQUEST_TIMEOUT":         "2s",
		"PROMRELAY_MAX_SAMPLES_PER_REQUEST": "10",
	}
	a, err := app.FromEnv(app.Server, env(vars, log))
	if err != nil {
		t.Fatal(err)
	}
	m, h := a.Metrics, a.Handler
	want := func(what string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s moved by %v, want %v", what, got, want)
		}
	}
	atLeast := func(what string, got, min float64) {
		t.Helper()
		if got < min {
			t.Errorf("%s moved by %v, want at least %v", what, got, min)
		}
	}

	// A push: two samples received and relayed (push_time_seconds, the
	// relay's own, does not count); two upstream requests; store updates.
	var code int
	relayed := delta(m.Relayed.WithLabelValues("sample"), func() {
		want("received_total{kind=sample}", delta(m.Received.WithLabelValues("sample"), func() {
			want("upstream_requests_total{status_class=2xx}", delta(m.UpstreamRequests.WithLabelValues("2xx"), func() {
				atLeast("store_operations_total{op=update,result=ok}", delta(m.StoreOperations.WithLabelValues("update", "ok"), func() {
					want("requests_total{route=push,code=200}", delta(m.Requests.WithLabelValues("push", "200"), func() {
						code = do(h, "PUT", "/metrics/job/batch", writeToken, []byte("a 1\nb 2\n")).Code
					}), 1)
				}), 1)
			}), 2)
		}), 2)
	})
	if code != 200 {
		t.Fatalf("push: %d", code)
	}
	want("relayed_total{kind=sample} for a push", relayed, 2)

	// A remote write of three series.
	want("relayed_total{kind=sample} for a remote write", delta(m.Relayed.WithLabelValues("sample"), func() {
		want("received_total{kind=sample}", delta(m.Received.WithLabelValues("sample"), func() {
			code = do(h, "POST", "/api/v1/write", writeToken, remoteWriteBody(t, 3), "Content-Encoding", "snappy").Code
		}), 3)
	}), 3)
	if code != 204 {
		t.Fatalf("remote write: %d", code)
	}

	// The upstream rejects: the three values are rejected for upstream_4xx.
	up.status.Store(400)
	want("rejected_total{kind=sample,reason=upstream_4xx}", delta(m.Rejected.WithLabelValues("sample", "upstream_4xx"), func() {
		want("rejected_requests_total{route=remote_write,reason=upstream_4xx}", delta(m.RejectedRequests.WithLabelValues("remote_write", "upstream_4xx"), func() {
			want("upstream_requests_total{status_class=4xx}", delta(m.UpstreamRequests.WithLabelValues("4xx"), func() {
				code = do(h, "POST", "/api/v1/write", writeToken, remoteWriteBody(t, 3)).Code
			}), 1)
		}), 1)
	}), 3)
	if code != 400 {
		t.Fatalf("remote write to a rejecting upstream: %d", code)
	}

	// The upstream is down: retries until the deadline, a 503 for the
	// sender, and no rejection (the sender retries).
	up.status.Store(503)
	atLeast("upstream_retries_total", delta(m.UpstreamRetries, func() {
		atLeast("upstream_requests_total{status_class=5xx}", delta(m.UpstreamRequests.WithLabelValues("5xx"), func() {
			want("rejected_total{kind=sample,reason=upstream_4xx}", delta(m.Rejected.WithLabelValues("sample", "upstream_4xx"), func() {
				code = do(h, "POST", "/api/v1/write", writeToken, remoteWriteBody(t, 3)).Code
			}), 0)
		}), 2)
	}), 1)
	if code/100 != 5 {
		t.Fatalf("remote write to a failing upstream: %d, want 5xx", code)
	}
	if n := testutil.CollectAndCount(m.UpstreamDuration); n < 3 {
		t.Errorf("upstream_request_duration_seconds has %d series, want 2xx, 4xx and 5xx", n)
	}
	up.status.Store(204)

	// Auth failures, by scheme and reason; requests refused before their
	// body is read count in rejected_requests_total.
	want("inbound_auth_failures_total{scheme=\"\",reason=missing}", delta(m.InboundAuthFailures.WithLabelValues("", "missing"), func() {
		want("rejected_requests_total{route=push,reason=auth}", delta(m.RejectedRequests.WithLabelValues("push", "auth"), func() {
			code = do(h, "PUT", "/metrics/job/batch", "", []byte("a 1\n")).Code
		}), 1)
	}), 1)
	want("inbound_auth_failures_total{scheme=bearer,reason=invalid}", delta(m.InboundAuthFailures.WithLabelValues("bearer", "invalid"), func() {
		do(h, "PUT", "/metrics/job/batch", "not-a-token-of-ours", []byte("a 1\n"))
	}), 1)
	want("inbound_auth_failures_total{scheme=bearer,reason=forbidden}", delta(m.InboundAuthFailures.WithLabelValues("bearer", "forbidden"), func() {
		code = do(h, "PUT", "/metrics/job/batch", readToken, []byte("a 1\n")).Code
	}), 1)
	if code != 403 {
		t.Fatalf("push with a read token: %d", code)
	}

	// Invalid input and limits. An invalid push's value is rejected,
	// though its push_failure_time_seconds goes upstream.
	want("rejected_total{kind=sample,reason=invalid}", delta(m.Rejected.WithLabelValues("sample", "invalid"), func() {
		want("relayed_total{kind=sample}", delta(m.Relayed.WithLabelValues("sample"), func() {
			code = do(h, "PUT", "/metrics/job/batch", writeToken, []byte("a 1 1000\n")).Code
		}), 0)
	}), 1)
	if code != 400 {
		t.Fatalf("push with a timestamp: %d", code)
	}
	want("rejected_requests_total{route=push,reason=invalid}", delta(m.RejectedRequests.WithLabelValues("push", "invalid"), func() {
		code = do(h, "PUT", "/metrics/job/batch", writeToken, []byte("a{ 1\n")).Code
	}), 1)
	want("rejected_requests_total{route=remote_write,reason=limit}", delta(m.RejectedRequests.WithLabelValues("remote_write", "limit"), func() {
		code = do(h, "POST", "/api/v1/write", writeToken, remoteWriteBody(t, 11)).Code
	}), 1)
	if code != 413 {
		t.Fatalf("remote write over the sample limit: %d", code)
	}

	// The scheduled job re-emits the one stored group: a, b,
	// push_time_seconds and push_failure_time_seconds (of the invalid
	// push).
	want("reemit_runs_total", delta(m.ReemitRuns, func() {
		want("reemitted_groups_total", delta(m.ReemitGroups, func() {
			want("reemitted_samples_total", delta(m.ReemitSamples, func() {
				atLeast("store_operations_total{op=list,result=ok}", delta(m.StoreOperations.WithLabelValues("list", "ok"), func() {
					if err := a.Scheduled(context.Background()); err != nil {
						t.Fatal(err)
					}
				}), 1)
			}), 4)
		}), 1)
	}), 1)

	// GET /metrics needs the read scope.
	if c := do(h, "GET", "/metrics", "", nil).Code; c != 401 {
		t.Errorf("GET /metrics without credentials: %d, want 401", c)
	}
	if c := do(h, "GET", "/metrics", writeToken, nil).Code; c != 403 {
		t.Errorf("GET /metrics with a write token: %d, want 403", c)
	}
	rec := do(h, "GET", "/metrics", readToken, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `promrelay_requests_total{code="200",route="push"} 1`) {
		t.Fatalf("GET /metrics with a read token: %d\n%.2000s", rec.Code, rec.Body.String())
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "promrelay_memory_budget_bytes", "promrelay_memory_budget_in_use_bytes"} {
		if !strings.Contains(rec.Body.String(), "\n"+name+" ") {
			t.Errorf("GET /metrics lacks %s", name)
		}
	}
	if !testing.Short() {
		promtool(t, rec.Body.String())
	}

	// Every line a request logs carries its request id: the auth
	// failure's own line and the request line.
	assertRequestIDs(t, log.String())
}

// promtool runs promtool check metrics, Prometheus' linter of metric
// names, units and help, on an exposition.
func promtool(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: make deps installs it")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// assertRequestIDs checks that every JSON log line but start-up ones has a
// request_id, and that the "authentication failed" lines share theirs
// with a request line.
func assertRequestIDs(t *testing.T, log string) {
	t.Helper()
	byID := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		msg, _ := line["msg"].(string)
		id, _ := line[requestid.LogAttr].(string)
		switch msg {
		case "re-emitted", "the largest requests the limits allow do not fit this instance's memory budget and will get 413: lower PROMRELAY_MAX_SAMPLES_PER_REQUEST, PROMRELAY_MAX_PUSH_DECODED_BYTES or PROMRELAY_MAX_DECODED_BYTES, or raise PROMRELAY_MEMORY_LIMIT":
			continue // the scheduled job and start-up: no request
		}
		if id == "" {
			t.Errorf("log line without %s: %s", requestid.LogAttr, sc.Text())
			continue
		}
		byID[id] = append(byID[id], msg)
	}
	shared := 0
	for _, msgs := range byID {
		if len(msgs) > 1 {
			shared++
			if msgs[len(msgs)-1] != "request" {
				t.Errorf("lines of one request end with %q, not the request line: %q", msgs[len(msgs)-1], msgs)
			}
		}
	}
	if shared < 3 {
		t.Errorf("%d requests logged more than one line under one id, want the 3 auth failures at least", shared)
	}
}

// TestSelfWriteIsNotUserTraffic: the self-write's own upstream request
// counts in promrelay_self_writes_total, not in the upstream metrics.
func TestSelfWriteIsNotUserTraffic(t *testing.T) {
	up := newFaultyUpstream(t)
	a, err := app.FromEnv(app.Server, env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.srv.URL, "PROMRELAY_SELF_METRICS_INTERVAL": "1m"}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	m := a.Metrics
	if d := delta(m.UpstreamRequests.WithLabelValues("2xx"), func() {
		if d := delta(m.SelfWrites.WithLabelValues("ok"), func() { a.WriteSelf(context.Background()) }); d != 1 {
			t.Errorf("self_writes_total{result=ok} moved by %v, want 1", d)
		}
	}); d != 0 {
		t.Errorf("upstream_requests_total{status_class=2xx} moved by %v for a self-write, want 0", d)
	}
	if up.series.Load() == 0 {
		t.Error("the self-write reached no upstream")
	}
}

// TestMetricsOpen: PROMRELAY_METRICS_AUTH=none serves GET /metrics to
// anyone, like the health endpoints, while writes still need a token.
func TestMetricsOpen(t *testing.T) {
	up := newFaultyUpstream(t)
	a, err := app.FromEnv(app.Server, env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.srv.URL, "PROMRELAY_INBOUND_AUTH": "bearer",
		"PROMRELAY_INBOUND_TOKENS": writeToken, "PROMRELAY_METRICS_AUTH": "none"}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if c := do(a.Handler, "GET", "/metrics", "", nil).Code; c != 200 {
		t.Errorf("GET /metrics with PROMRELAY_METRICS_AUTH=none: %d, want 200", c)
	}
	if c := do(a.Handler, "PUT", "/metrics/job/j", "", []byte("a 1\n")).Code; c != 401 {
		t.Errorf("push without a token: %d, want 401", c)
	}
}

// TestCredentialFetchesAreCounted: the SigV4 signer's fetches of the
// default chain's credentials count by mode and result.
func TestCredentialFetchesAreCounted(t *testing.T) {
	up := newFaultyUpstream(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	_ = os.Unsetenv("AWS_PROFILE")
	a, err := app.FromEnv(app.Server, env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.srv.URL, "PROMRELAY_UPSTREAM_AUTH": "sigv4",
		"PROMRELAY_SIGV4_REGION": "us-east-1"}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ok := a.Metrics.CredentialFetches.WithLabelValues("sigv4", "ok")
	if d := delta(ok, func() {
		for i := 0; i < 3; i++ {
			if c := do(a.Handler, "POST", "/api/v1/write", "", remoteWriteBody(t, 1)).Code; c != 204 {
				t.Fatalf("remote write: %d", c)
			}
		}
	}); d != 1 {
		t.Errorf("credential_fetches_total{mode=sigv4,result=ok} moved by %v for three writes, want 1 (cached)", d)
	}
}
