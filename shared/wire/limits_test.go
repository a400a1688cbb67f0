package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// hostileText is the push of issue 11: one-line series a{b="N"} 1 up to
// size bytes (a 327 KB gzip body of 2 MiB decoded).
func hostileText(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "a{b=\"%d\"} 1\n", i)
	}
	return b.Bytes()
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func asLimit(t *testing.T, err error, kind wire.LimitKind, limit int) *wire.LimitError {
	t.Helper()
	var le *wire.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("error %v, want a *wire.LimitError", err)
	}
	if le.Kind != kind || le.Limit != limit {
		t.Fatalf("LimitError %+v, want kind %v limit %d", le, kind, limit)
	}
	return le
}

// TestParseTextStopsAtSampleLimit is the 2 MiB push of issue 11: with
// MaxSamples=1000 the parser stops after 1001 lines, so it allocates a small
// fraction of what parsing the whole body costs.
func TestParseTextStopsAtSampleLimit(t *testing.T) {
	in := hostileText(2 << 20)
	var err error
	limited := allocated(func() {
		var e wire.Exposition
		err = e.ParseText(in, wire.Limits{MaxSamples: 1000})
	})
	le := asLimit(t, err, wire.LimitSamples, 1000)
	if !strings.Contains(le.Error(), "more than 1000 samples per request") {
		t.Fatalf("message %q", le.Error())
	}
	unlimited := allocated(func() {
		var e wire.Exposition
		if err := e.ParseText(in, wire.Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("2 MiB of one-line series: %d bytes allocated with MaxSamples=1000, %d without", limited, unlimited)
	if limited*20 > unlimited || limited > 4<<20 {
		t.Fatalf("allocated %d bytes with the limit, %d without: the parse did not stop at the limit", limited, unlimited)
	}
}

func TestParseTextLimits(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		lim   wire.Limits
		kind  wire.LimitKind
		limit int
	}{
		{"samples", "a 1\na{x=\"1\"} 2\na{x=\"2\"} 3\n", wire.Limits{MaxSamples: 3}, wire.LimitSamples, 3},
		// A family costs one without a sample (issue 11's review: 8 MiB of
		// TYPE lines were 400,000 families under a sample limit).
		{"families without samples", "# TYPE a gauge\n# TYPE b gauge\n# TYPE c gauge\n", wire.Limits{MaxSamples: 2}, wire.LimitSamples, 2},
		{"labels with the name", "a{x=\"1\",y=\"2\"} 1\n", wire.Limits{MaxLabels: 2}, wire.LimitLabels, 2},
		{"le counts", "# TYPE h histogram\nh_bucket{x=\"1\",le=\"1\"} 1\n", wire.Limits{MaxLabels: 2}, wire.LimitLabels, 2},
		{"label bytes", "a{x=\"12345\"} 1\n", wire.Limits{MaxLabelBytes: 5}, wire.LimitLabelBytes, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e wire.Exposition
			asLimit(t, e.ParseText([]byte(tc.in), tc.lim), tc.kind, tc.limit)
		})
	}
	var e wire.Exposition
	// Two families of one sample each: four of the sample limit.
	if err := e.ParseText([]byte("a{x=\"1234\"} 1\nb 2\n"), wire.Limits{MaxSamples: 4, MaxLabels: 2, MaxLabelBytes: 5}); err != nil {
		t.Fatalf("input at the limits rejected: %v", err)
	}
}

func TestParseDelimitedLimits(t *testing.T) {
	gauge := func(name string, labels ...string) *dto.MetricFamily {
		m := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(1)}}
		for i := 0; i < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(labels[i]), Value: proto.String(labels[i+1])})
		}
		return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{m, m}}
	}
	summary := &dto.MetricFamily{Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum(), Metric: []*dto.Metric{{Summary: &dto.Summary{
		Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(1)}, {Quantile: proto.Float64(0.9), Value: proto.Float64(1)}}}}}}
	histogram := &dto.MetricFamily{Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{{Histogram: &dto.Histogram{
		Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1)}, {UpperBound: proto.Float64(2), CumulativeCount: proto.Uint64(1)}}}}}}
	cases := []struct {
		name  string
		fams  map[string]*dto.MetricFamily
		lim   wire.Limits
		kind  wire.LimitKind
		limit int
	}{
		// a family and its two metrics count three
		{"samples", map[string]*dto.MetricFamily{"g": gauge("g")}, wire.Limits{MaxSamples: 2}, wire.LimitSamples, 2},
		// family 1, metric 1, sum and count 2, quantiles 2
		{"quantiles", map[string]*dto.MetricFamily{"s": summary}, wire.Limits{MaxSamples: 5}, wire.LimitSamples, 5},
		{"buckets", map[string]*dto.MetricFamily{"h": histogram}, wire.Limits{MaxSamples: 5}, wire.LimitSamples, 5},
		{"labels", map[string]*dto.MetricFamily{"g": gauge("g", "a", "1", "b", "2")}, wire.Limits{MaxLabels: 2}, wire.LimitLabels, 2},
		{"label bytes", map[string]*dto.MetricFamily{"g": gauge("g", "a", "12345")}, wire.Limits{MaxLabelBytes: 5}, wire.LimitLabelBytes, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e wire.Exposition
			asLimit(t, e.ParseDelimited(encodeDelimited(t, tc.fams), tc.lim), tc.kind, tc.limit)
		})
	}
	var e wire.Exposition
	if err := e.ParseDelimited(encodeDelimited(t, map[string]*dto.MetricFamily{"s": summary}), wire.Limits{MaxSamples: 6}); err != nil {
		t.Fatalf("input at the limit rejected: %v", err)
	}
}

// TestParseDelimitedRepeatedFamiliesCount checks that families replaced by
// a later family of the same name still count: a body of one tiny family
// repeated would otherwise cost a Family per four input bytes for free.
func TestParseDelimitedRepeatedFamiliesCount(t *testing.T) {
	fam := []byte{0x03, 0x0a, 0x01, 'a'}
	in := bytes.Repeat(fam, 10000)
	var e wire.Exposition
	asLimit(t, e.ParseDelimited(in, wire.Limits{MaxSamples: 100}), wire.LimitSamples, 100)
	if len(e.Families) > 100 {
		t.Fatalf("%d families decoded past the limit", len(e.Families))
	}
}

func TestWriteRequestLimits(t *testing.T) {
	var src wire.WriteRequest
	corpus.WriteRequest(&src, 1, 10)
	in := wire.AppendWriteRequest(nil, src.Series, nil)
	var wr wire.WriteRequest
	asLimit(t, wr.Unmarshal(in, wire.Limits{MaxSamples: 9}), wire.LimitSamples, 9)
	if len(wr.Series) > 9 {
		t.Fatalf("%d series decoded past the limit", len(wr.Series))
	}
	if err := wr.Unmarshal(in, wire.Limits{MaxSamples: 10}); err != nil {
		t.Fatalf("input at the limit rejected: %v", err)
	}
	asLimit(t, wr.Unmarshal(in, wire.Limits{MaxLabels: 10}), wire.LimitLabels, 10)
	asLimit(t, wr.Unmarshal(in, wire.Limits{MaxLabelBytes: 8}), wire.LimitLabelBytes, 8)

	// Series without samples and histograms count too.
	empty := wire.AppendWriteRequest(nil, []wire.Series{{Labels: []wire.Label{{Name: "__name__", Value: "x"}}}, {Exemplars: [][]byte{{}}}}, nil)
	asLimit(t, wr.Unmarshal(empty, wire.Limits{MaxSamples: 1}), wire.LimitSamples, 1)
	// Histograms count as samples, and separately from float samples.
	hist := wire.AppendWriteRequest(nil, []wire.Series{{Labels: []wire.Label{{Name: "__name__", Value: "x"}}, Samples: []wire.Sample{{Value: 1}}, Histograms: [][]byte{{0x08, 0x01}, {}}}}, nil)
	asLimit(t, wr.Unmarshal(hist, wire.Limits{MaxSamples: 2}), wire.LimitSamples, 2)
	if err := wr.Unmarshal(hist, wire.Limits{MaxSamples: 3}); err != nil {
		t.Fatal(err)
	}
	if wr.NumFloatSamples() != 1 || wr.NumHistogramSamples() != 2 {
		t.Fatalf("%d float and %d histogram samples, want 1 and 2", wr.NumFloatSamples(), wr.NumHistogramSamples())
	}
}

func TestRewriteSampleLimit(t *testing.T) {
	var src wire.WriteRequest
	corpus.WriteRequest(&src, 1, 10)
	in := wire.AppendWriteRequest(nil, src.Series, nil)
	var rw wire.Rewriter
	_, err := rw.Rewrite(nil, in, nil, wire.Limits{MaxSamples: 9})
	asLimit(t, err, wire.LimitSamples, 9)
	if _, err := rw.Rewrite(nil, in, nil, wire.Limits{MaxSamples: 10}); err != nil || rw.FloatSamples != 10 || rw.HistogramSamples != 0 {
		t.Fatalf("at the limit: error %v, %d float samples", err, rw.FloatSamples)
	}
}

// TestRewriteStopsKeepingLabelsAtLimit checks that a series with far more
// labels than MaxLabels is dropped as invalid without its labels being kept.
func TestRewriteStopsKeepingLabelsAtLimit(t *testing.T) {
	ls := []wire.Label{{Name: "__name__", Value: "x"}}
	for i := 0; i < 5000; i++ {
		ls = append(ls, wire.Label{Name: fmt.Sprintf("l%05d", i), Value: "v"})
	}
	in := wire.AppendWriteRequest(nil, []wire.Series{{Labels: ls, Samples: []wire.Sample{{Value: 1}}}}, nil)
	lim := wire.Limits{MaxLabels: 8}
	checkRewrite(t, in, nil, lim)
	var rw wire.Rewriter
	if _, err := rw.Rewrite(nil, in, nil, lim); err != nil || rw.Invalid != 1 {
		t.Fatalf("error %v, %d invalid", err, rw.Invalid)
	}
	if !strings.Contains(rw.FirstInvalid.Error(), "5001 labels, more than the limit of 8") {
		t.Fatalf("reason %v", rw.FirstInvalid)
	}
}

func TestLimitKindString(t *testing.T) {
	for k, want := range map[wire.LimitKind]string{wire.LimitSamples: "samples per request", wire.LimitLabels: "labels per series", wire.LimitLabelBytes: "bytes per label", 9: "LimitKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q, want %q", int(k), got, want)
		}
	}
	e := &wire.LimitError{Kind: wire.LimitLabels, Limit: 3, Where: `metric "m"`}
	if got := e.Error(); got != `metric "m": more than 3 labels per series` {
		t.Errorf("message %q", got)
	}
}
