package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/wire"
)

// upstreamLog keeps what the relay sent upstream: each request's
// Content-Type and decoded remote write 1.0 body (nil for 2.0).
type upstreamLog struct {
	mu     sync.Mutex
	types  []string
	reqs   []*wire.WriteRequest
	orgIDs int // requests with an X-Scope-OrgID header
}

func (l *upstreamLog) inspect(h http.Header, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.types = append(l.types, h.Get("Content-Type"))
	if h.Get("X-Scope-OrgID") != "" {
		l.orgIDs++
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil || strings.Contains(h.Get("Content-Type"), "v2") {
		l.reqs = append(l.reqs, nil)
		return
	}
	wr := &wire.WriteRequest{}
	if wr.Unmarshal(raw, wire.Limits{}) != nil {
		wr = nil
	}
	l.reqs = append(l.reqs, wr)
}

func (l *upstreamLog) snapshot() ([]string, []*wire.WriteRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.types...), append([]*wire.WriteRequest(nil), l.reqs...)
}

// TestARMSProfile: a push whose HELP is Chinese reaches an arms upstream
// with printable-ASCII HELP and every sample; the default profile for a
// Prometheus upstream passes HELP as it is.
func TestARMSProfile(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	fp := newFaultProxy(t, prom.URL)
	var log upstreamLog
	fp.onRequest(log.inspect)
	body := "# HELP jobs_done 已完成的任务 (jobs done)\n# TYPE jobs_done counter\njobs_done{kind=\"a\"} 3\njobs_done{kind=\"b\"} 4\n"
	for _, profile := range []string{"arms", "auto"} {
		relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": fp.URL + "/api/v1/write", "PROMRELAY_UPSTREAM_PROFILE": profile})
		if status, msg, _ := do(t, http.MethodPut, relay.URL+"/metrics/job/profile_"+profile, "text/plain", []byte(body)); status != 200 {
			t.Fatalf("%s: push: %d %s", profile, status, msg)
		}
		_, reqs := log.snapshot()
		help := ""
		for _, wr := range reqs {
			for _, m := range wr.Metadata {
				if m.FamilyName == "jobs_done" {
					help = m.Help
				}
			}
		}
		if profile == "arms" && help != "(jobs done)" {
			t.Errorf("arms: HELP upstream %q, want the printable ASCII %q", help, "(jobs done)")
		}
		if profile == "auto" && help != "已完成的任务 (jobs done)" {
			t.Errorf("auto (a Prometheus upstream): HELP upstream %q, want it unchanged", help)
		}
		got := prom.WaitFor(t, `sum(jobs_done{job="profile_`+profile+`"})`, 1, 10*time.Second)
		if got[0].Value != 7 {
			t.Errorf("%s: samples: %v", profile, got)
		}
	}
}

// nativeHistogram is a remote write 1.0 series of one native histogram
// sample (schema 0: zero bucket 1, (0.5,1] 1, (1,2] 2, (2,4] 3; count 7,
// sum 12) and one exemplar, at ts milliseconds.
func nativeHistogram(t *testing.T, name string, ts int64) wire.Series {
	t.Helper()
	h, err := (&prompb.Histogram{Count: &prompb.Histogram_CountInt{CountInt: 7}, Sum: 12, Schema: 0, ZeroThreshold: 1e-128,
		ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}, PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 3}},
		PositiveDeltas: []int64{1, 1, 1}, Timestamp: ts}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ex, err := (&prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 3, Timestamp: ts}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return wire.Series{Labels: lbls("__name__", name, "job", "amp"), Histograms: [][]byte{h}, Exemplars: [][]byte{ex}}
}

// TestAMPProfile: a remote write with a native histogram and an exemplar
// reaches an amp upstream as a classic histogram whose counts match, and
// without the exemplar; le is formatted as Prometheus formats the le of a
// converted histogram ("1.0").
func TestAMPProfile(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Args: []string{"--enable-feature=exemplar-storage"}})
	fp := newFaultProxy(t, prom.URL)
	var log upstreamLog
	fp.onRequest(log.inspect)
	relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": fp.URL + "/api/v1/write", "PROMRELAY_UPSTREAM_PROFILE": "amp"})
	now := time.Now().UnixMilli()
	if status, msg, _ := do(t, http.MethodPost, relay.URL+"/api/v1/write", "application/x-protobuf", rwBody(nativeHistogram(t, "amp_latency", now)),
		"Content-Encoding", "snappy", "X-Scope-OrgID", "tenant-a"); status != 204 {
		t.Fatalf("remote write: %d %s", status, msg)
	}
	for q, want := range map[string]float64{
		`amp_latency_count{job="amp"}`:            7,
		`amp_latency_sum{job="amp"}`:              12,
		`amp_latency_bucket{job="amp",le="1.0"}`:  2,
		`amp_latency_bucket{job="amp",le="2.0"}`:  4,
		`amp_latency_bucket{job="amp",le="4.0"}`:  7,
		`amp_latency_bucket{job="amp",le="+Inf"}`: 7,
	} {
		if got := prom.WaitFor(t, q, 1, 10*time.Second); got[0].Value != want {
			t.Errorf("%s = %v, want %v", q, got[0].Value, want)
		}
	}
	_, reqs := log.snapshot()
	for _, wr := range reqs {
		for _, s := range wr.Series {
			if len(s.Histograms) > 0 || len(s.Exemplars) > 0 {
				t.Errorf("the amp upstream got a native histogram or an exemplar: %s", wire.FormatLabels(s.Labels, 200))
			}
		}
	}
	if log.orgIDs != 0 {
		t.Errorf("%d upstream requests carried the sender's X-Scope-OrgID", log.orgIDs)
	}
	if n := len(prom.Query(t, `amp_latency`)); n != 0 {
		t.Errorf("the native histogram itself arrived (%d series)", n)
	}
}

// v2Receiver is a remote write 2.0 receiver built from client_golang's
// exp/api/remote handler: it counts what it stores and answers the
// Written headers.
type v2Receiver struct {
	mu      sync.Mutex
	samples int
	series  []string
}

func (v *v2Receiver) Store(r *http.Request, msgType remote.WriteMessageType) (*remote.WriteResponse, error) {
	resp := remote.NewWriteResponse()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return resp, err
	}
	var req writev2.Request
	if err := req.UnmarshalVT(b); err != nil {
		resp.SetStatusCode(http.StatusBadRequest)
		return resp, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ts := range req.Timeseries {
		var name string
		for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
			if req.Symbols[ts.LabelsRefs[i]] == "__name__" {
				name = req.Symbols[ts.LabelsRefs[i+1]]
			}
		}
		v.series = append(v.series, name)
		v.samples += len(ts.Samples)
		resp.Samples += len(ts.Samples)
	}
	return resp, nil
}

// TestUpstreamProtocolV2: with PROMRELAY_UPSTREAM_PROTOCOL=v2 a remote
// write 2.0 receiver gets 2.0; Prometheus 2.42 (a 1.0 receiver, which
// answers 204 without Written headers) gets the same request again as 1.0
// and 1.0 from then on; so does an upstream that answers 415.
func TestUpstreamProtocolV2(t *testing.T) {
	needsPeers(t)
	var recv v2Receiver
	srv := httptest.NewServer(remote.NewWriteHandler(&recv, remote.MessageTypes{remote.WriteV2MessageType}))
	t.Cleanup(srv.Close)
	relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": srv.URL + "/api/v1/write", "PROMRELAY_UPSTREAM_PROTOCOL": "v2"})
	body, n := remoteWriteBody(50, "v2up")
	if status, msg, _ := postRemoteWrite(t, relay.URL, body, "application/x-protobuf"); status != 204 {
		t.Fatalf("to a 2.0 receiver: %d %s", status, msg)
	}
	if recv.samples != n {
		t.Errorf("the 2.0 receiver stored %d samples, want %d", recv.samples, n)
	}

	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	for _, tc := range []struct {
		name   string
		script []fault
	}{
		{"no Written headers", nil},
		{"415", []fault{{name: "415", status: http.StatusUnsupportedMediaType, body: "unsupported proto"}}},
	} {
		fp := newFaultProxy(t, prom.URL)
		fp.set(tc.script, nil)
		var log upstreamLog
		fp.onRequest(log.inspect)
		relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": fp.URL + "/api/v1/write", "PROMRELAY_UPSTREAM_PROTOCOL": "v2"})
		job := "v2fallback" + strings.ReplaceAll(tc.name, " ", "")
		for i := range 2 {
			body, n := remoteWriteBody(20, job)
			if status, msg, _ := postRemoteWrite(t, relay.URL, body, "application/x-protobuf"); status != 204 {
				t.Fatalf("%s, write %d: %d %s", tc.name, i, status, msg)
			}
			got := prom.WaitFor(t, `count({job="`+job+`"})`, 1, 10*time.Second)
			if int(got[0].Value) != n {
				t.Errorf("%s: %v series arrived, want %d", tc.name, got[0].Value, n)
			}
		}
		types, _ := log.snapshot()
		if len(types) != 3 || !strings.Contains(types[0], "io.prometheus.write.v2.Request") ||
			strings.Contains(types[1], "v2") || strings.Contains(types[2], "v2") {
			t.Errorf("%s: upstream requests %q, want one 2.0 and then 1.0 only", tc.name, types)
		}
	}
}
