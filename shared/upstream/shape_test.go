package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/promrelay/promrelay/shared/wire"
)

// sink is an upstream that decodes what it is sent (1.0, or 2.0 by its
// Content-Type) and counts samples per series; answer, when set, answers.
type sink struct {
	mu       sync.Mutex
	types    []string
	samples  map[string]int // samples per series
	hists    int            // native histogram samples
	metadata int            // 1.0 metadata entries
	largest  int            // largest compressed body
	answer   func(w http.ResponseWriter, v2 bool, samples int)
}

func (s *sink) start(t *testing.T) string {
	s.samples = map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, b)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		v2 := strings.Contains(r.Header.Get("Content-Type"), "io.prometheus.write.v2.Request")
		var wr wire.WriteRequest
		if v2 {
			_, err = wr.UnmarshalV2(raw, wire.Limits{})
		} else {
			err = wr.Unmarshal(raw, wire.Limits{})
		}
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.mu.Lock()
		s.types = append(s.types, r.Header.Get("Content-Type"))
		s.largest = max(s.largest, len(b))
		n := 0
		if !v2 {
			s.metadata += len(wr.Metadata)
		}
		for _, sr := range wr.Series {
			s.samples[wire.FormatLabels(sr.Labels, 200)] += len(sr.Samples)
			s.hists += len(sr.Histograms)
			n += len(sr.Samples)
		}
		answer := s.answer
		s.mu.Unlock()
		if answer != nil {
			answer(w, v2, n)
			return
		}
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// histogramSeries is one series of n native histogram samples of schema
// (count 6, sum 12, 3 buckets from an index that moves with the sample).
func histogramSeries(t *testing.T, name string, n int, schema int32) wire.Series {
	t.Helper()
	s := wire.Series{Labels: []wire.Label{{Name: "__name__", Value: name}, {Name: "job", Value: "j"}}}
	for i := range n {
		b, err := (&prompb.Histogram{Count: &prompb.Histogram_CountInt{CountInt: 6}, Sum: 12, Schema: schema, ZeroThreshold: 1e-128,
			PositiveSpans: []prompb.BucketSpan{{Offset: int32(i % 7), Length: 3}}, PositiveDeltas: []int64{1, 1, 1}, Timestamp: int64(i)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s.Histograms = append(s.Histograms, b)
	}
	return s
}

var amp = wire.Profile{ClassicHistograms: true, MaxClassicBuckets: 40, DropExemplars: true}

// TestProfileConvertsLargeSeriesInBatches: a series of more native
// histogram samples than one conversion may make is converted in batches:
// every sample arrives as classic samples, none as a native histogram, and
// no upstream request is over the budget.
func TestProfileConvertsLargeSeriesInBatches(t *testing.T) {
	var s sink
	cfg := config(s.start(t))
	cfg.MaxRequestBytes = 64 << 10
	cfg.Profile = amp
	const n = 3000 // × up to 42 classic samples: several batches
	raw := wire.AppendWriteRequest(nil, []wire.Series{histogramSeries(t, "h", n, 0)}, nil)
	res, err := newClient(t, cfg).WriteEncoded(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile.HistogramsConverted != n || s.hists != 0 {
		t.Errorf("converted %d of %d; %d native histogram samples reached the upstream", res.Profile.HistogramsConverted, n, s.hists)
	}
	if got := s.samples[`h_count{job="j"}`]; got != n {
		t.Errorf("h_count has %d samples, want %d", got, n)
	}
	if got := s.samples[`h_bucket{job="j",le="+Inf"}`]; got != n {
		t.Errorf("the +Inf bucket has %d samples, want %d (series: %d)", got, n, len(s.samples))
	}
	if s.largest > cfg.MaxRequestBytes || res.Batches < 2 {
		t.Errorf("%d requests, the largest %d bytes, budget %d", res.Batches, s.largest, cfg.MaxRequestBytes)
	}
}

// TestProfileDropsOnlyWhatItCannotConvert: a native histogram the profile
// cannot convert (schema 20) is dropped and named in a 400 marked Partial;
// every other series of the request arrives.
func TestProfileDropsOnlyWhatItCannotConvert(t *testing.T) {
	var s sink
	cfg := config(s.start(t))
	cfg.Profile = amp
	wr := batch(2000)
	series := append(wr.Series, histogramSeries(t, "bad", 1, 20), histogramSeries(t, "good", 1, 0))
	_, err := newClient(t, cfg).WriteEncoded(context.Background(), wire.AppendWriteRequest(nil, series, nil))
	e := asError(t, err)
	if e.Status != 400 || !e.Partial || !strings.Contains(e.Msg, `bad{job="j"}`) || !strings.Contains(e.Msg, "1 series") {
		t.Errorf("%+v", e)
	}
	floats := 0
	for k, n := range s.samples {
		if strings.HasPrefix(k, "m{") {
			floats += n
		}
	}
	if floats != 2000 || s.samples[`good_count{job="j"}`] != 1 {
		t.Errorf("%d of 2000 float samples and %d good_count samples arrived", floats, s.samples[`good_count{job="j"}`])
	}
}

// TestV2Upstream: a V2 client sends 2.0 with the family's metadata on every
// part, sends a metadata-only request as 1.0, reports the upstream's
// Written counts, and falls back to 1.0 on a 2xx without them.
func TestV2Upstream(t *testing.T) {
	var s sink
	s.answer = func(w http.ResponseWriter, v2 bool, n int) {
		if v2 {
			w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", "1") // less than sent
			w.Header().Set("X-Prometheus-Remote-Write-Histograms-Written", "0")
			w.Header().Set("X-Prometheus-Remote-Write-Exemplars-Written", "0")
		}
		w.WriteHeader(204)
	}
	cfg := config(s.start(t))
	cfg.V2 = true
	c := newClient(t, cfg)
	md := []wire.Metadata{{Type: wire.MetadataGauge, FamilyName: "m", Help: "a gauge"}}
	res, err := c.WriteEncoded(context.Background(), wire.AppendWriteRequest(nil, batch(10).Series, md))
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := res.UpstreamWritten(); !ok || w.Samples != 1 || len(s.types) != 1 || !strings.Contains(s.types[0], "v2") {
		t.Errorf("written %+v %v; requests %q", w, ok, s.types)
	}
	if _, err := c.WriteEncoded(context.Background(), wire.AppendWriteRequest(nil, nil, md)); err != nil {
		t.Fatal(err)
	}
	if len(s.types) != 2 || s.types[1] != ContentType || s.metadata != 1 {
		t.Errorf("a metadata-only request went as %q (metadata %d)", s.types, s.metadata)
	}

	// Split into parts: every 2.0 part carries the family's metadata.
	var parts sink
	var mu sync.Mutex
	withHelp := 0
	cfg = config(parts.start(t))
	cfg.V2, cfg.MaxRequestBytes = true, 8<<10
	parts.answer = func(w http.ResponseWriter, v2 bool, n int) {
		w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", "1")
		w.WriteHeader(204)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		raw, _ := snappy.Decode(nil, b)
		var wr wire.WriteRequest
		if _, err := wr.UnmarshalV2(raw, wire.Limits{}); err == nil && len(wr.Metadata) == 1 && wr.Metadata[0].Help == "a gauge" {
			mu.Lock()
			withHelp++
			mu.Unlock()
		}
		w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", "1")
		w.WriteHeader(204)
	}))
	defer srv.Close()
	cfg.URL = srv.URL
	res, err = newClient(t, cfg).WriteEncoded(context.Background(), wire.AppendWriteRequest(nil, batch(2000).Series, md))
	if err != nil || res.Batches < 2 || withHelp != res.Batches {
		t.Errorf("%d parts, %d with the metadata: %v", res.Batches, withHelp, err)
	}

	// A 1.0 receiver: 204 without Written headers; the same request again
	// as 1.0, and 1.0 from then on.
	var old sink
	cfg = config(old.start(t))
	cfg.V2 = true
	c = newClient(t, cfg)
	for range 2 {
		res, err := c.WriteEncoded(context.Background(), wire.AppendWriteRequest(nil, batch(5).Series, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := res.UpstreamWritten(); ok {
			t.Errorf("a 1.0 upstream's counts are not known")
		}
	}
	if len(old.types) != 3 || !strings.Contains(old.types[0], "v2") || old.types[1] != ContentType || old.types[2] != ContentType {
		t.Errorf("requests %q, want one 2.0 then 1.0", old.types)
	}
	if n := old.samples[wire.FormatLabels(batch(1).Series[0].Labels, 200)]; n != 3 {
		t.Errorf("the first series arrived %d times, want 3 (as 2.0, then as 1.0 again, then the second write)", n)
	}
}
