package relay_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// discard is an upstream that takes every request without keeping it, so
// only the relay's own memory is measured.
type discard struct{}

func (discard) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

// TestChargeCoversHeap measures the peak heap of each route's request
// above the heap before it, and checks that the memory budget charges the
// request at least that much: the expansion factors in body.go, which the
// README quotes, are measured here. The relay has the default limits.
func TestChargeCoversHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation sizes under -race are not the release binary's")
	}
	up, err := upstream.New(upstream.Config{URL: "http://upstream.invalid/api/v1/write", Timeout: time.Second,
		MaxRequestBytes: 1 << 20, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Transport: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	budget := relay.NewBudget(1<<40, time.Second)
	h := newHandler(nil, func(o *relay.Options) {
		ups := func(string) relay.Upstream { return up }
		o.Upstreams = ups
		state, err := pushstate.New(pushstate.Options{Write: relay.Writer(ups), Now: time.Now, Logger: o.Logger})
		if err != nil {
			t.Fatal(err)
		}
		o.State = state
		o.MaxBodyBytes, o.MaxDecodedBytes, o.MaxPushDecodedBytes = 16<<20, 32<<20, 8<<20
		o.Limits = wire.Limits{MaxSamples: 100000, MaxLabels: 256, MaxLabelBytes: 8192}
		o.Budget = budget
		o.ExternalLabels = []wire.Label{{Name: "region", Value: "eu"}}
	})

	var lines bytes.Buffer
	for i := 0; lines.Len() < 2<<20; i++ {
		fmt.Fprintf(&lines, "a{b=\"%d\"} 1\n", i)
	}
	var few bytes.Buffer
	for i := 0; i < 90000; i++ {
		fmt.Fprintf(&few, "a{b=\"%d\"} 1\n", i)
	}
	var names bytes.Buffer
	for i := 0; names.Len() < 2<<20; i++ {
		fmt.Fprintf(&names, "a%d 1\n", i)
	}
	var types bytes.Buffer
	for i := 0; types.Len() < 7<<20; i++ {
		fmt.Fprintf(&types, "# TYPE a%d gauge\n", i)
	}
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 1, 20000)
	rw := wire.AppendWriteRequest(nil, wr.Series, wr.Metadata)
	cases := []struct {
		name, path string
		body       []byte
		hdr        []string
		status     int
		decoded    int
		cost       func(decoded, samples int) int64
	}{
		{"text push, node_exporter-like", "/metrics/job/j", corpus.Exposition(1, corpus.Options{Families: 2000}), nil, 200, 0, relay.PushCost},
		{"text push, 90,000 one-line series", "/metrics/job/j", few.Bytes(), nil, 200, 0, relay.PushCost},
		{"text push, 2 MiB of one-line series (413)", "/metrics/job/j", lines.Bytes(), nil, 413, 0, relay.PushCost},
		{"text push, 2 MiB of distinct names (413)", "/metrics/job/j", names.Bytes(), nil, 413, 0, relay.PushCost},
		{"text push, 7 MiB of TYPE lines alone (413)", "/metrics/job/j", types.Bytes(), nil, 413, 0, relay.PushCost},
		{"gzip push, 2 MiB of one-line series (413)", "/metrics/job/j", gzipped(lines.Bytes()), []string{"Content-Encoding", "gzip"}, 413, lines.Len(), relay.PushCost},
		{"remote write, 20,000 series", "/api/v1/write", wire.EncodeSnappy(nil, rw), []string{"Content-Encoding", "snappy"}, 204, len(rw), relay.RemoteWriteCost},
	}
	for _, c := range cases {
		decoded := c.decoded
		if decoded == 0 {
			decoded = len(c.body)
			if c.path == "/api/v1/write" {
				decoded = len(rw)
			}
		}
		serveOnce := func() int {
			req := httptest.NewRequest("PUT", c.path, bytes.NewReader(c.body))
			if c.path == "/api/v1/write" {
				req.Method = "POST"
			}
			for i := 0; i+1 < len(c.hdr); i += 2 {
				req.Header.Set(c.hdr[i], c.hdr[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		if code := serveOnce(); code != c.status { // warm the pools
			t.Fatalf("%s: %d, want %d", c.name, code, c.status)
		}
		perRequest := peakHeap(func() { serveOnce() })
		// The samples a push's parse finds (or stops at).
		var e wire.Exposition
		plain := c.body
		if c.decoded != 0 {
			plain = lines.Bytes()
		}
		samples := 0
		if e.ParseText(plain, wire.Limits{MaxSamples: 100000}) == nil {
			samples = e.NumSamples()
		}
		charge := int64(len(c.body)) + c.cost(decoded, samples)
		t.Logf("%-45s decoded %8d B, peak heap %9d B (%.1f B per decoded byte), charged %9d B", c.name, decoded, perRequest,
			float64(perRequest)/float64(decoded), charge)
		if perRequest > charge {
			t.Errorf("%s: peaks at %d bytes, more than the %d the budget charges", c.name, perRequest, charge)
		}
	}
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// peakHeap runs f with the collector at GOGC=5, so that the heap tracks
// what is live, and returns the largest heap seen while f ran (sampled
// every 100 µs through runtime/metrics) less the heap before it.
func peakHeap(f func()) int64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() int64 { metrics.Read(sample); return int64(sample[0].Value.Uint64()) }
	runtime.GC()
	base := read()
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		max := base
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			if v := read(); v > max {
				max = v
			}
			select {
			case <-done:
				peak <- max
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	return <-peak - base
}
