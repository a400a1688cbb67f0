package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// TestRemoteWrite2 sends remote write 2.0 with the real client_golang
// sender (exp/api/remote) through the relay to a real Prometheus 2.42,
// which speaks only 1.0: every sample arrives, the Written headers count
// what the upstream took, and the sender sees the spec's answers.
func TestRemoteWrite2(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Args: []string{"--enable-feature=exemplar-storage"}})
	relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL(), "PROMRELAY_EXTERNAL_LABELS": "via=promrelay"})
	api, err := remote.NewAPI(relay.URL, remote.WithAPIHTTPClient(client), remote.WithAPIBackoff(remote.BackoffConfig{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxRetries: 2}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	const n = 300
	for i := range n {
		ts := &writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels([]string{"__name__", "rw2_metric", "job", "rw2", "series", fmt.Sprint(i)}, nil),
			Samples:    []*writev2.Sample{{Value: float64(i), Timestamp: now - 1000}, {Value: float64(i + 1), Timestamp: now}},
			Metadata:   &writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("a gauge sent as remote write 2.0")},
		}
		if i == 0 {
			ts.Exemplars = []*writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels([]string{"trace_id", "abc"}, nil), Value: 1, Timestamp: now}}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	stats, err := api.Write(context.Background(), remote.WriteV2MessageType, req)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Samples != 2*n || stats.Histograms != 0 || stats.Exemplars != 1 {
		t.Errorf("written: %+v, want %d samples, 1 exemplar", stats, 2*n)
	}
	got := prom.WaitFor(t, `count(rw2_metric{job="rw2",via="promrelay"})`, 1, 10*time.Second)
	if int(got[0].Value) != n {
		t.Errorf("%v series arrived, want %d", got[0].Value, n)
	}
	if v := prom.Query(t, `count_over_time(rw2_metric{series="7"}[1m])`); len(v) != 1 || v[0].Value != 2 {
		t.Errorf("series 7 holds %v, want 2 samples", v)
	}

	// Invalid input: the spec's 400, and 0 written; the sender does not retry.
	bad := &writev2.Request{Symbols: []string{"x"}, Timeseries: []*writev2.TimeSeries{{LabelsRefs: []uint32{0, 0}, Samples: []*writev2.Sample{{Value: 1, Timestamp: now}}}}}
	stats, err = api.Write(context.Background(), remote.WriteV2MessageType, bad)
	if err == nil || stats.Samples != 0 {
		t.Errorf("a request whose first symbol is not empty: %+v, %v", stats, err)
	}
	// An unknown proto= is 415.
	status, msg, _ := do(t, http.MethodPost, relay.URL+"/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v3.Request", []byte{0}, "Content-Encoding", "snappy")
	if status != 415 {
		t.Errorf("unknown proto: %d %s", status, msg)
	}
}
