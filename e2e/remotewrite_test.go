package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestRemoteWriteFromPrometheus points a real Prometheus server's
// remote_write at the relay and checks that its scraped series reach the
// upstream with the relay's external labels.
func TestRemoteWriteFromPrometheus(t *testing.T) {
	upstreamProm := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	relaySrv, logs := startRelay(t, upstreamProm.RemoteWriteURL(), relayOpts{
		externalLabels: []wire.Label{{Name: "relay", Value: "r1"}},
	})
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# TYPE exporter_queue_depth gauge\nexporter_queue_depth{queue=\"a\"} 17\nexporter_queue_depth{queue=\"b\"} 4\n")
	}))
	defer exporter.Close()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  external_labels:
    sender: edge
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
`, testpeer.Host(exporter.URL), relaySrv.URL)
	testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Config: cfg})

	got := values(upstreamProm.WaitFor(t, `exporter_queue_depth{relay="r1",sender="edge"}`, 2, 30*time.Second))
	inst := testpeer.Host(exporter.URL)
	for q, v := range map[string]float64{"a": 17, "b": 4} {
		k := fmt.Sprintf(`exporter_queue_depth{instance=%q,job="exporter",queue=%q,relay="r1",sender="edge"}`, inst, q)
		if got[k] != v {
			t.Errorf("%s = %v, want %v (got %v)", k, got[k], v, got)
		}
	}
	upstreamProm.WaitFor(t, `up{job="exporter",relay="r1"} == 1`, 1, 10*time.Second)
	if !strings.Contains(logs.String(), `"route":"remote_write","status":204`) {
		t.Errorf("no successful remote_write in the log:\n%s", logs.String())
	}
}

// remoteWriteBody encodes a generated batch of n series as a snappy
// remote-write body with current timestamps.
func remoteWriteBody(n int, job string) ([]byte, int) {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 1, n)
	now := time.Now().UnixMilli()
	for i := range wr.Series {
		for j := range wr.Series[i].Labels {
			if wr.Series[i].Labels[j].Name == "job" {
				wr.Series[i].Labels[j].Value = job
			}
		}
		wr.Series[i].Samples[0].Timestamp = now
	}
	return wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil)), len(wr.Series)
}

func postRemoteWrite(t *testing.T, url string, body []byte, contentType string) (int, string, http.Header) {
	t.Helper()
	return do(t, http.MethodPost, url+"/api/v1/write", contentType, body, "Content-Encoding", "snappy", "X-Prometheus-Remote-Write-Version", "0.1.0")
}

// TestUpstreamFaults puts a fault proxy between the relay and a real
// Prometheus and checks the status mapping and retries of DESIGN.md §3:
// nothing acknowledged that the upstream did not store, nothing lost.
func TestUpstreamFaults(t *testing.T) {
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	proxy := newFaultProxy(t, prom.URL)
	relaySrv, _ := startRelay(t, proxy.srv.URL+"/api/v1/write", relayOpts{requestTimeout: 3 * time.Second})

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
		if status != 429 || hdr.Get("Retry-After") != "30" || !strings.Contains(body, "quota") {
			t.Fatalf("got %d %q Retry-After=%q, want 429 with Retry-After 30", status, body, hdr.Get("Retry-After"))
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
	t.Run("unreachable upstream is 502", func(t *testing.T) {
		dead, _ := startRelay(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", testpeer.FreePort(t)), relayOpts{requestTimeout: time.Second})
		status, msg, _ := do(t, http.MethodPost, dead.URL+"/metrics/job/x", "", []byte("m 1\n"))
		if status != 502 || !strings.Contains(msg, "cannot reach upstream") {
			t.Fatalf("got %d %q", status, msg)
		}
	})
}

// TestRemoteWriteSplitAndValidate sends a 2,000-series batch through a
// relay whose upstream budget forces splitting, plus invalid series, and
// checks every valid series arrived.
func TestRemoteWriteSplitAndValidate(t *testing.T) {
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	proxy := newFaultProxy(t, prom.URL)
	relaySrv, _ := startRelay(t, proxy.srv.URL+"/api/v1/write", relayOpts{upstream: upstream.Config{MaxRequestBytes: 8 << 10}})

	body, n := remoteWriteBody(2000, "rw_split")
	status, msg, _ := postRemoteWrite(t, relaySrv.URL, body, "application/x-protobuf")
	if status != 204 {
		t.Fatalf("got %d %q", status, msg)
	}
	if r := proxy.requests.Load(); r < 4 {
		t.Errorf("the batch went up in %d requests; an 8 KiB budget needs more", r)
	}
	if max := proxy.bodies.Load(); max > 8<<10 {
		t.Errorf("largest upstream body %d bytes, over the 8 KiB budget", max)
	}
	got := prom.WaitFor(t, `count({job="rw_split"})`, 1, 5*time.Second)
	if int(got[0].Value) != n {
		t.Errorf("upstream has %v series, want %d", got[0].Value, n)
	}

	// One valid and two invalid series: the valid one is relayed, the
	// answer is 400 naming the first invalid one.
	var wr wire.WriteRequest
	now := time.Now().UnixMilli()
	wr.AppendSample(wr.AppendLabels(wire.Label{Name: "__name__", Value: "ok_series"}, wire.Label{Name: "job", Value: "rw_mixed"}), wire.Sample{Value: 1, Timestamp: now})
	wr.AppendSample(wr.AppendLabels(wire.Label{Name: "job", Value: "rw_mixed"}, wire.Label{Name: "__name__", Value: "unsorted"}), wire.Sample{Value: 1, Timestamp: now})
	wr.AppendSample(wr.AppendLabels(wire.Label{Name: "job", Value: "rw_mixed"}), wire.Sample{Value: 1, Timestamp: now})
	status, msg, _ = postRemoteWrite(t, relaySrv.URL, wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil)), "")
	if status != 400 || !strings.Contains(msg, "2 of 3 series rejected") || !strings.Contains(msg, "not sorted") {
		t.Fatalf("got %d %q", status, msg)
	}
	prom.WaitFor(t, `ok_series{job="rw_mixed"}`, 1, 5*time.Second)

	for _, tc := range []struct {
		name, ct   string
		body       []byte
		wantStatus int
		wantMsg    string
	}{
		{"remote write 2.0", "application/x-protobuf;proto=io.prometheus.write.v2.Request", body, 415, "remote write 2.0"},
		{"not snappy", "application/x-protobuf", []byte("plain bytes"), 400, "snappy"},
		{"not protobuf", "application/x-protobuf", wire.EncodeSnappy(nil, []byte{0x0a, 0xff, 0x01}), 400, "cannot decode remote-write request"},
		{"json", "application/json", body, 415, "unsupported Content-Type"},
		{"snappy bomb", "application/x-protobuf", []byte{0x80, 0x80, 0x80, 0x80, 0x04, 0x00}, 413, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg, _ := postRemoteWrite(t, relaySrv.URL, tc.body, tc.ct)
			if status != tc.wantStatus || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("got %d %q, want %d with %q", status, msg, tc.wantStatus, tc.wantMsg)
			}
		})
	}
}
