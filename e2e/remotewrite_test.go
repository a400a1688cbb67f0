package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestRemoteWriteFromPrometheus points a real Prometheus server's
// remote_write at the relay and checks that its scraped series reach the
// upstream with the relay's external labels.
func TestRemoteWriteFromPrometheus(t *testing.T) {
	needsPeers(t)
	upstreamProm := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	relaySrv := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": upstreamProm.RemoteWriteURL(), "PROMRELAY_EXTERNAL_LABELS": "relay=r1"})
	logs := relaySrv.Logs
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

// TestRemoteWriteSplitAndValidate sends a 2,000-series batch through a
// relay whose upstream budget forces splitting, plus invalid series, and
// checks every valid series arrived.
func TestRemoteWriteSplitAndValidate(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	proxy := newFaultProxy(t, prom.URL)
	relaySrv := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": proxy.URL + "/api/v1/write", "PROMRELAY_MAX_REQUEST_BYTES": "8192"})

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
		{"a 1.0 body sent as 2.0", "application/x-protobuf;proto=io.prometheus.write.v2.Request", body, 400, "no time series"},
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

// BenchmarkRelayToPrometheus measures the relay's end-to-end latency for a
// 2,000-series remote-write batch: HTTP in, decode, validate, re-encode,
// HTTP out to a real local Prometheus, and its 204 back.
func BenchmarkRelayToPrometheus(b *testing.B) {
	needsPeers(b)
	prom := testpeer.StartPrometheus(b, testpeer.PrometheusOptions{})
	relay := startRelay(b, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL(), "PROMRELAY_LOG_LEVEL": "error"})
	ts := time.Now().UnixMilli()
	// The same batch straight to Prometheus is the baseline: the difference
	// is the relay's cost.
	b.Run("direct", func(b *testing.B) { benchBatches(b, prom.URL, &ts) })
	b.Run("via-relay", func(b *testing.B) { benchBatches(b, relay.URL, &ts) })
}

func benchBatches(b *testing.B, baseURL string, tsp *int64) {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 7, 2000)
	client := &http.Client{}
	ts := *tsp
	defer func() { *tsp = ts }()
	var raw, body []byte
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ts += 1000
		for i := range wr.Series {
			wr.Series[i].Samples[0].Timestamp = ts
		}
		raw = wire.AppendWriteRequest(raw[:0], wr.Series, nil)
		body = wire.EncodeSnappy(body, raw)
		req, _ := http.NewRequest(http.MethodPost, baseURL+"/api/v1/write", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		b.StartTimer()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/batch")
}
