package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestUpstreamFaults puts a fault proxy between the relay and a real
// Prometheus and checks the status mapping and retries the README documents:
// nothing acknowledged that the upstream did not store, nothing lost.
func TestUpstreamFaults(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	proxy := newFaultProxy(t, prom.URL)
	relaySrv := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": proxy.URL + "/api/v1/write", "PROMRELAY_REQUEST_TIMEOUT": "3s"})

	t.Run("500 then 204 is retried, nothing lost", func(t *testing.T) {
		proxy.set([]fault{{status: 500, body: "boom"}, {status: 503, body: "busy"}}, nil)
		status, body, _ := do(t, http.MethodPost, relaySrv.URL+"/metrics/job/fault500", "", []byte("retried_metric 5\n"))
		if status != 200 {
			t.Fatalf("push: %d %s", status, body)
		}
		// 500, 503, then the data accepted; then the push-time gauge.
		if n := proxy.requests.Load(); n != 4 {
			t.Errorf("upstream saw %d requests, want 4", n)
		}
		prom.WaitFor(t, `retried_metric{job="fault500"} == 5`, 1, 5*time.Second)
	})
	t.Run("400 is passed back and not retried", func(t *testing.T) {
		proxy.set([]fault{{status: 400, body: "out of order sample"}}, nil)
		status, body, _ := do(t, http.MethodPost, relaySrv.URL+"/metrics/job/fault400", "", []byte("m 1\n"))
		if status != 400 || !strings.Contains(body, "out of order sample") {
			t.Fatalf("got %d %q, want 400 with the upstream's reason", status, body)
		}
		if n := proxy.requests.Load(); n != 1 {
			t.Errorf("upstream saw %d requests, want 1", n)
		}
	})
	t.Run("429 with Retry-After is absorbed", func(t *testing.T) {
		proxy.set([]fault{{status: 429, retryAfter: "1", body: "slow down"}}, nil)
		start := time.Now()
		status, body, _ := do(t, http.MethodPost, relaySrv.URL+"/metrics/job/fault429", "", []byte("after_429 1\n"))
		if status != 200 {
			t.Fatalf("push: %d %s", status, body)
		}
		// 429, then the data after Retry-After; then the push-time gauge.
		if n := proxy.requests.Load(); n != 3 {
			t.Errorf("upstream saw %d requests, want 3", n)
		}
		if waited := time.Since(start); waited < 900*time.Millisecond {
			t.Errorf("retried after %v, before the upstream's Retry-After of 1s", waited)
		}
		prom.WaitFor(t, `after_429{job="fault429"}`, 1, 5*time.Second)
	})
	t.Run("persistent 429 is passed back with Retry-After", func(t *testing.T) {
		proxy.set(nil, &fault{status: 429, retryAfter: "30", body: "quota"})
		status, body, hdr := do(t, http.MethodPost, relaySrv.URL+"/metrics/job/fault429b", "", []byte("m 1\n"))
		// The upstream's own body is passed back only for data rejections.
		if status != 429 || hdr.Get("Retry-After") != "30" || !strings.Contains(body, "rate limiting") {
			t.Fatalf("got %d %q Retry-After=%q, want 429 naming the rate limit with Retry-After 30", status, body, hdr.Get("Retry-After"))
		}
	})
	t.Run("persistent 503 becomes 502 within the deadline", func(t *testing.T) {
		proxy.set(nil, &fault{status: 503, body: "down"})
		start := time.Now()
		body, _ := remoteWriteBody(10, "rw503")
		status, msg, _ := postRemoteWrite(t, relaySrv.URL, body, "application/x-protobuf")
		if status != 502 || !strings.Contains(msg, "503") {
			t.Fatalf("got %d %q, want 502 naming the upstream's 503", status, msg)
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("answered after %v, past the 3s request timeout", took)
		}
		if n := proxy.requests.Load(); n < 3 {
			t.Errorf("only %d attempts within the deadline", n)
		}
	})
	t.Run("remote write 503 then 204", func(t *testing.T) {
		proxy.set([]fault{{status: 503}}, nil)
		body, n := remoteWriteBody(500, "rw_retry")
		status, msg, _ := postRemoteWrite(t, relaySrv.URL, body, "application/x-protobuf")
		if status != 204 {
			t.Fatalf("got %d %q", status, msg)
		}
		got := prom.WaitFor(t, `count({job="rw_retry"})`, 1, 5*time.Second)
		if int(got[0].Value) != n {
			t.Errorf("upstream has %v series, want %d", got[0].Value, n)
		}
	})
	t.Run("upstream 413 splits the batch", func(t *testing.T) {
		proxy.set([]fault{{status: 413, body: "too big"}}, nil)
		body, n := remoteWriteBody(300, "rw_413")
		status, msg, _ := postRemoteWrite(t, relaySrv.URL, body, "application/x-protobuf")
		if status != 204 {
			t.Fatalf("got %d %q", status, msg)
		}
		if p := proxy.passed.Load(); p != 2 {
			t.Errorf("%d requests passed after the 413, want the two halves", p)
		}
		got := prom.WaitFor(t, `count({job="rw_413"})`, 1, 5*time.Second)
		if int(got[0].Value) != n {
			t.Errorf("upstream has %v series, want %d", got[0].Value, n)
		}
	})
	t.Run("408 is retried within the deadline, then 504", func(t *testing.T) {
		proxy.set(nil, &fault{name: "408", status: 408, body: "request timeout"})
		status, msg, _ := do(t, http.MethodPost, relaySrv.URL+"/metrics/job/fault408", "", []byte("m 1\n"))
		if status != 504 {
			t.Fatalf("got %d %q, want 504", status, msg)
		}
		if n := proxy.requests.Load(); n < 2 {
			t.Errorf("upstream saw %d requests, want retries of the 408 within the deadline", n)
		}
	})
	for _, code := range []int{401, 403} {
		t.Run(fmt.Sprintf("%d from the upstream is 502 naming the relay's credentials", code), func(t *testing.T) {
			proxy.set(nil, &fault{name: "auth", status: code, body: "denied"})
			status, msg, _ := do(t, http.MethodPost, relaySrv.URL+"/metrics/job/fault_auth", "", []byte("m 1\n"))
			if status != 502 || !strings.Contains(msg, "upstream refused the relay's credentials") {
				t.Fatalf("got %d %q, want 502 naming the relay's credentials (the sender keeps its data)", status, msg)
			}
		})
	}
	proxy.set(nil, nil)
	t.Run("unreachable upstream is 502", func(t *testing.T) {
		dead := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", testpeer.FreePort(t)), "PROMRELAY_REQUEST_TIMEOUT": "1s"})
		status, msg, _ := do(t, http.MethodPost, dead.URL+"/metrics/job/x", "", []byte("m 1\n"))
		if status != 502 || !strings.Contains(msg, "cannot reach upstream") {
			t.Fatalf("got %d %q", status, msg)
		}
	})
}

// chaosCycle is the sequence of answers the fault proxy cycles through in
// TestFaultScenarios, one per upstream request; unnamed faults pass the
// request on to Prometheus. Faults are transient by construction, so a
// correct relay and sender lose nothing, except the deliberate 400, whose
// batch the sender must drop (and the relay must not acknowledge).
func chaosCycle(stall time.Duration) []fault {
	return []fault{
		{}, {name: "500", status: 500, body: "injected 500"}, {}, {name: "502", status: 502, body: "injected 502"},
		{name: "503", status: 503, body: "injected 503"}, {},
		{name: "429-retry-after", status: 429, retryAfter: "1", body: "injected 429"}, {},
		{name: "429", status: 429, body: "injected 429"}, {}, {name: "413", status: 413, body: "injected 413"}, {},
		{name: "reset", reset: true}, {}, {name: "stall", stall: stall}, {}, {name: "slow", delay: 300 * time.Millisecond}, {},
		{name: "400", status: 400, body: "injected 400: bad data"},
	}
}

// TestFaultScenarios runs a real Prometheus remote_write sender and a
// pusher loop through the relay while the fault proxy cycles through its
// faults, then compares, series by series, what the senders produced with
// what the upstream stored.
func TestFaultScenarios(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	chaos := newFaultProxy(t, prom.URL)
	var rejectedSamples atomic.Int64 // chaos_seq samples in batches answered 400
	chaos.setCycle(chaosCycle(2*time.Second), func(f fault, body []byte) {
		if f.status != 400 {
			return
		}
		raw, err := wire.DecodeSnappy(nil, body, 64<<20)
		if err != nil {
			return
		}
		var wr wire.WriteRequest
		if wr.Unmarshal(raw, wire.Limits{}) != nil {
			return
		}
		for _, s := range wr.Series {
			for _, l := range s.Labels {
				if l.Name == "__name__" && l.Value == "chaos_seq" {
					rejectedSamples.Add(int64(len(s.Samples)))
				}
			}
		}
	})
	relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": chaos.URL + "/api/v1/write",
		"PROMRELAY_UPSTREAM_TIMEOUT": "1s", "PROMRELAY_REQUEST_TIMEOUT": "4s"})

	// The remote_write sender: scrapes a counter 5 times a second.
	var seq atomic.Int64
	var stopped atomic.Bool
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stopped.Load() {
			http.Error(w, "stopped", 503)
			return
		}
		fmt.Fprintf(w, "chaos_seq %d\n", seq.Add(1))
	}))
	defer exporter.Close()
	sender := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Config: fmt.Sprintf(`global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
scrape_configs:
  - job_name: chaos
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s/api/v1/write
    remote_timeout: 10s
    queue_config: {batch_send_deadline: 200ms, max_samples_per_send: 20, min_backoff: 50ms, max_backoff: 500ms, retry_on_http_429: true}
`, testpeer.Host(exporter.URL), relay.URL)})

	// The pusher loop: 60 pushes, each its own group, retried while the
	// answer is not 200 (as a batch job's wrapper would).
	var acked []int
	gaveUp := 0
	for i := 0; i < 60; i++ {
		ok := false
		for attempt := 0; attempt < 20 && !ok; attempt++ {
			resp, err := client.Post(fmt.Sprintf("%s/metrics/job/chaos_pusher/instance/p%d", relay.URL, i), "", strings.NewReader(fmt.Sprintf("chaos_pushed %d\n", i)))
			if err == nil {
				ok = resp.StatusCode == 200
				resp.Body.Close()
				if resp.StatusCode == 400 {
					break // bad data as far as the sender can tell: a real client gives up too
				}
			}
			if !ok {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if ok {
			acked = append(acked, i)
		} else {
			gaveUp++
		}
	}
	// Stop the sender's source, then let its queue drain: from here on the
	// sender's own count no longer moves.
	stopped.Store(true)

	// Every acknowledged push is stored, with its value.
	stored := values(prom.WaitFor(t, `chaos_pushed{job="chaos_pusher"}`, len(acked), 30*time.Second))
	for _, i := range acked {
		k := fmt.Sprintf(`chaos_pushed{instance="p%d",job="chaos_pusher"}`, i)
		if v, ok := stored[k]; !ok || v != float64(i) {
			t.Errorf("acknowledged push %d not stored (got %v, %v)", i, v, ok)
		}
	}

	// The sender's samples: every sample the sender stored and that was not
	// in a batch the upstream rejected with 400 must be upstream, exactly.
	var sent, got float64
	eventually(40*time.Second, func() bool {
		s := sender.Query(t, `count_over_time(chaos_seq{job="chaos"}[10m])`)
		g := prom.Query(t, `count_over_time(chaos_seq{job="chaos"}[10m])`)
		if len(s) != 1 || len(g) != 1 {
			return false
		}
		sent, got = s[0].Value, g[0].Value
		return sent-got <= float64(rejectedSamples.Load()) && got > 0
	})
	lost := sent - got
	var faultCounts []string
	for _, f := range chaosCycle(0) {
		if f.name != "" {
			faultCounts = append(faultCounts, fmt.Sprintf("%s=%d", f.name, chaos.count(f.name)))
		}
	}
	t.Logf("faults injected: %s; passed %d", strings.Join(faultCounts, " "), chaos.count(""))
	t.Logf("remote_write sender: %.0f samples stored locally, %.0f upstream, %d in batches the upstream rejected with 400 (the sender drops those), %.0f otherwise lost",
		sent, got, rejectedSamples.Load(), max(0, lost-float64(rejectedSamples.Load())))
	t.Logf("pusher: %d pushes acknowledged and all %d stored; %d given up after a 400", len(acked), len(acked), gaveUp)
	// ≤ rather than ==: when the relay splits a batch (after a 413) and
	// only one half meets the 400, the other half is legitimately stored.
	if sent == 0 || lost < 0 || lost > float64(rejectedSamples.Load()) {
		t.Errorf("sender: %v samples sent, %v stored, %d in rejected batches: lost samples the faults do not explain", sent, got, rejectedSamples.Load())
	}
	if chaos.count("reset") == 0 {
		t.Error("the cycle never reached the connection reset")
	}
}

// TestRelayKilledMidStream runs a real Prometheus remote_write sender
// through the relay binary, kills the relay with SIGKILL while batches are
// in flight, restarts it on the same address, stops the sender's source,
// and checks that every sample the sender stored locally also reached the
// upstream: the sender retries what was never acknowledged, and the relay
// acknowledged nothing the upstream had not taken.
func TestRelayKilledMidStream(t *testing.T) {
	needsPeers(t)
	upstreamProm := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	env := map[string]string{"PROMRELAY_UPSTREAM_URL": upstreamProm.RemoteWriteURL(), "PROMRELAY_LOG_LEVEL": "error"}
	relay := startServer(t, env)
	env["PROMRELAY_LISTEN"] = relay.Addr

	var seq atomic.Int64
	var stopped atomic.Bool
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stopped.Load() {
			http.Error(w, "stopped", http.StatusServiceUnavailable)
			return
		}
		n := seq.Add(1)
		fmt.Fprintf(w, "kill_seq %d\nkill_other{a=\"b\"} %d\n", n, n*2)
	}))
	defer exporter.Close()
	sender := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Config: fmt.Sprintf(`global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
scrape_configs:
  - job_name: killtest
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s/api/v1/write
    remote_timeout: 5s
    queue_config: {batch_send_deadline: 200ms, max_samples_per_send: 50, min_backoff: 100ms, max_backoff: 500ms}
`, testpeer.Host(exporter.URL), relay.URL)})

	upstreamProm.WaitFor(t, `kill_seq`, 1, 20*time.Second)
	// Kill once more samples are flowing (not a wait for something to
	// happen: the kill may land at any point of a batch).
	at := seq.Load() + 5
	if !eventually(10*time.Second, func() bool { return seq.Load() >= at }) {
		t.Fatal("the sender stopped scraping")
	}
	relay.Cmd.Process.Kill()
	relay.wait(t, 10*time.Second)
	// The sender keeps scraping and queues while the relay is down.
	at = seq.Load() + 5
	if !eventually(10*time.Second, func() bool { return seq.Load() >= at }) {
		t.Fatal("the sender stopped scraping")
	}
	startServer(t, env)
	at = seq.Load() + 5
	if !eventually(10*time.Second, func() bool { return seq.Load() >= at }) {
		t.Fatal("the sender stopped scraping")
	}
	// Stop the source: from here on the sender's counts are final, and the
	// upstream's must reach them.
	stopped.Store(true)
	const q = `count_over_time({job="killtest",__name__=~"kill_.*"}[10m])`
	var sent, got map[string]float64
	final := eventually(15*time.Second, func() bool {
		before := values(sender.Query(t, q))
		time.Sleep(time.Second) // more than 4 scrape intervals: a scrape would show
		sent = values(sender.Query(t, q))
		return len(sent) == 2 && fmt.Sprint(before) == fmt.Sprint(sent)
	})
	if !final {
		t.Fatalf("the sender's counts kept moving after its source stopped: %v", sent)
	}
	equal := eventually(30*time.Second, func() bool {
		got = values(upstreamProm.Query(t, q))
		for k, v := range sent {
			if got[k] != v {
				return false
			}
		}
		return true
	})
	if !equal {
		t.Fatalf("samples lost: sender stored %v, upstream has %v", sent, got)
	}
	t.Logf("after SIGKILL and restart: %v samples per series sent and stored, 0 lost", sent)
	// Values agree too (the counter is strictly increasing).
	sentMax := values(sender.Query(t, `max_over_time(kill_seq[10m])`))
	gotMax := values(upstreamProm.Query(t, `max_over_time(kill_seq[10m])`))
	for k, v := range sentMax {
		if gotMax[k] != v {
			t.Errorf("%s: upstream max %v, sender %v", k, gotMax[k], v)
		}
	}
}

// TestAnswersBeforePlatformDeadline gives a request a platform deadline of
// 1.5 s in front of an upstream that never answers: the relay stops
// retrying and answers 504 before the deadline, so the sender sees the
// relay's reason rather than a killed invocation.
func TestAnswersBeforePlatformDeadline(t *testing.T) {
	hang := make(chan struct{})
	up := newFaultProxy(t, "")
	up.set(nil, &fault{name: "hang", hold: hang})
	defer close(hang)
	r, err := newRelay(t, app.Server, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write", "PROMRELAY_REQUEST_TIMEOUT": "1m"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	req := httptest.NewRequestWithContext(ctx, "POST", "/metrics/job/deadline", strings.NewReader("m 1\n"))
	rec := httptest.NewRecorder()
	r.App.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusGatewayTimeout {
		t.Fatalf("got %d %q, want 504", rec.Code, rec.Body.String())
	}
	if now := time.Now(); now.After(deadline) {
		t.Fatalf("answered %v after the platform deadline", now.Sub(deadline))
	}
}
