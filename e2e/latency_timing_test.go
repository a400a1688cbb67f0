package e2e

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// BenchmarkRelayToPrometheus measures the relay's end-to-end latency for a
// 2,000-series remote-write batch: HTTP in, decode, validate, re-encode,
// HTTP out to a real local Prometheus, and its 204 back.
func BenchmarkRelayToPrometheus(b *testing.B) {
	prom := testpeer.StartPrometheus(b, testpeer.PrometheusOptions{})
	relayURL := startBenchRelay(b, prom.RemoteWriteURL())
	ts := time.Now().UnixMilli()
	// The same batch straight to Prometheus is the baseline: the difference
	// is the relay's cost.
	b.Run("direct", func(b *testing.B) { benchBatches(b, prom.URL, &ts) })
	b.Run("via-relay", func(b *testing.B) { benchBatches(b, relayURL, &ts) })
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

func startBenchRelay(b *testing.B, upstreamURL string) string {
	up, err := upstream.New(upstream.Config{URL: upstreamURL})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(relay.New(relay.Options{Upstream: up, Logger: slog.New(slog.DiscardHandler)}))
	b.Cleanup(srv.Close)
	return srv.URL
}
