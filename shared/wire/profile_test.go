package wire_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/promrelay/promrelay/shared/wire"
)

func TestASCIIHelp(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
	}{
		{"plain help, 100% ASCII", "plain help, 100% ASCII", false},
		{"  spaces  kept  ", "  spaces  kept  ", false},
		{"", "", false},
		{"CPU 使用率 (%)", "CPU (%)", true},
		{"延迟 (毫秒)\n", "( )", true},
		{"a\t\tb  c", "a b c", true},
		{"中文", "", true},
		{"bad \xff utf-8", "bad utf-8", true},
		{"del\x7fx", "del x", true},
		{"\x00lead", "lead", true},
		{"trail é", "trail", true},
	} {
		got, changed := wire.ASCIIHelp(tc.in)
		if got != tc.want || changed != tc.changed {
			t.Errorf("ASCIIHelp(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] > 0x7e {
				t.Errorf("ASCIIHelp(%q) = %q holds byte %#x", tc.in, got, got[i])
			}
		}
	}
}

// refFloat returns the reference (model/histogram) form of a 1.0 histogram.
func refFloat(h prompb.Histogram) (*histogram.FloatHistogram, error) {
	if h.IsFloatHistogram() {
		fh := h.ToFloatHistogram()
		return fh, fh.Validate()
	}
	ih := h.ToIntHistogram()
	if err := ih.Validate(); err != nil {
		return nil, err
	}
	return ih.ToFloat(nil), nil
}

// refCum is the reference cumulative count at le: the counts of the
// buckets of fh (AllBucketIterator: negative, zero, positive) whose upper
// bound is at most le.
func refCum(fh *histogram.FloatHistogram, le float64) float64 {
	c := 0.0
	it := fh.AllBucketIterator()
	for it.Next() {
		if b := it.At(); b.Upper <= le {
			c += b.Count
		}
	}
	return c
}

// isBoundary reports whether u is a bucket boundary of exponential schema
// s by the reference: the upper bound AllBucketIterator gives a
// one-bucket histogram at the index near log2(u)·2^s.
func isBoundary(u float64, s int32) bool {
	if u < 0 {
		u = -u
	}
	if u == 0 {
		return true
	}
	guess := int32(math.Ceil(math.Log2(u) * math.Ldexp(1, int(s))))
	for idx := guess - 2; idx <= guess+2; idx++ {
		fh := &histogram.FloatHistogram{Schema: s, PositiveSpans: []histogram.Span{{Offset: idx, Length: 1}}, PositiveBuckets: []float64{1}, Count: 1}
		it := fh.PositiveBucketIterator()
		if it.Next() && it.At().Upper == u {
			return true
		}
	}
	return false
}

func name(ls []wire.Label) string {
	for _, l := range ls {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}

func labelValue(ls []wire.Label, n string) string {
	for _, l := range ls {
		if l.Name == n {
			return l.Value
		}
	}
	return ""
}

// closeTo compares counts: floats may sum in another order.
func closeTo(a, b float64) bool {
	if a == b || math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

const staleBits = 0x7ff0000000000002

// checkClassic checks wr, the conversion of ref with at most max buckets per
// series, against the reference: the series without native histograms stay,
// in order; each native histogram series becomes its buckets (le ascending,
// boundaries of its schema, +Inf last), _count and _sum, with the reference's
// cumulative counts at every timestamp. It returns the number of histogram
// samples checked against the reference (those that Validate accepts).
func checkClassic(t testing.TB, ref *prompb.WriteRequest, wr *wire.WriteRequest, max int, dropExemplars bool) int {
	t.Helper()
	checked := 0
	i := 0
	for _, ts := range ref.Timeseries {
		if len(ts.Histograms) > 0 && len(ts.Samples) == 0 {
			continue
		}
		if i >= len(wr.Series) || len(wr.Series[i].Histograms) != 0 || len(wr.Series[i].Samples) != len(ts.Samples) {
			t.Fatalf("series %d is not the float series kept in order", i)
		}
		i++
	}
	for ti, ts := range ref.Timeseries {
		if len(ts.Histograms) == 0 {
			continue
		}
		var base string
		for _, l := range ts.Labels {
			if l.Name == "__name__" {
				base = l.Value
				break
			}
		}
		refs := make([]*histogram.FloatHistogram, len(ts.Histograms))
		valid := true
		for k, h := range ts.Histograms {
			fh, err := refFloat(h)
			if err != nil || insideZeroBucket(fh) {
				// A populated bucket inside the zero bucket has no
				// classic form: the conversion merges it into the
				// zero bucket's boundary (documented on
				// classicHistograms), where the reference counts it at
				// its own upper bound (seed b16c189d36e47667). The
				// structure is still checked.
				valid = false
			}
			refs[k] = fh
		}
		// The bucket series.
		prev := math.Inf(-1)
		nb := 0
		exemplars := 0
		var vals []cumValue
		for ; i < len(wr.Series) && name(wr.Series[i].Labels) == base+"_bucket"; i++ {
			s := &wr.Series[i]
			exemplars += len(s.Exemplars)
			// Samples keep the order of the histograms: in time order
			// when those are (FuzzApplyProfile, seed 29af841c263b4730).
			if err := wire.ValidateSeries(s, wire.Limits{}); err != nil && inOrder(ts.Histograms) {
				t.Fatalf("series %d: %v", i, err)
			}
			leStr := labelValue(s.Labels, "le")
			le, err := strconv.ParseFloat(leStr, 64)
			if err != nil || labels.FormatOpenMetricsFloat(le) != leStr {
				t.Fatalf("series %d: le %q is not as Prometheus formats it", i, leStr)
			}
			if le <= prev {
				t.Fatalf("series %d: le %v after %v", i, le, prev)
			}
			prev = le
			nb++
			if valid && !math.IsInf(le, 1) && !onSomeGrid(le, refs) {
				t.Fatalf("series %d: le %v is a boundary of none of the series' histograms", i, le)
			}
			if len(s.Samples) != len(ts.Histograms) {
				t.Fatalf("series %d: %d samples for %d histograms", i, len(s.Samples), len(ts.Histograms))
			}
			for k, h := range ts.Histograms {
				smp := s.Samples[k]
				if smp.Timestamp != h.Timestamp {
					t.Fatalf("series %d sample %d: timestamp %d, want %d", i, k, smp.Timestamp, h.Timestamp)
				}
				if math.Float64bits(h.Sum) == staleBits {
					if math.Float64bits(smp.Value) != staleBits {
						t.Fatalf("series %d sample %d: %v, want a stale marker", i, k, smp.Value)
					}
					continue
				}
				if valid {
					vals = append(vals, cumValue{le: le, k: k, v: smp.Value, s: wire.FormatLabels(s.Labels, 200)})
				}
			}
		}
		if valid {
			checkCumulative(t, ti, refs, vals)
		}
		if nb == 0 || !math.IsInf(prev, 1) {
			t.Fatalf("timeseries %d: %d bucket series, the last le %v, want +Inf last", ti, nb, prev)
		}
		if nb > max {
			t.Fatalf("timeseries %d: %d buckets, more than %d", ti, nb, max)
		}
		if want := len(ts.Exemplars); len(ts.Samples) == 0 && !dropExemplars && exemplars != want {
			t.Fatalf("timeseries %d: %d exemplars on its buckets, want %d", ti, exemplars, want)
		}
		for _, suffix := range []string{"_count", "_sum"} {
			if i >= len(wr.Series) || name(wr.Series[i].Labels) != base+suffix {
				t.Fatalf("timeseries %d: no %s series after the buckets", ti, suffix)
			}
			s := &wr.Series[i]
			for k, h := range ts.Histograms {
				want := h.Sum
				if suffix == "_count" {
					want = float64(h.GetCountInt())
					if h.IsFloatHistogram() {
						want = h.GetCountFloat()
					}
					if math.Float64bits(h.Sum) == staleBits {
						want = math.Float64frombits(staleBits)
					}
				}
				if math.Float64bits(s.Samples[k].Value) != math.Float64bits(want) || s.Samples[k].Timestamp != h.Timestamp {
					t.Fatalf("timeseries %d %s sample %d: %v@%d, want %v@%d", ti, suffix, k, s.Samples[k].Value, s.Samples[k].Timestamp, want, h.Timestamp)
				}
			}
			i++
		}
		if valid {
			checked += len(ts.Histograms)
		}
	}
	if i != len(wr.Series) {
		t.Fatalf("%d series, %d checked", len(wr.Series), i)
	}
	return checked
}

// insideZeroBucket reports whether fh (nil: no) has a populated bucket
// that lies within its zero bucket, [-zero threshold, zero threshold]:
// exponential buckets a client would have merged into the zero bucket.
func insideZeroBucket(fh *histogram.FloatHistogram) bool {
	if fh == nil || fh.Schema == histogram.CustomBucketsSchema {
		return false
	}
	for it := fh.PositiveBucketIterator(); it.Next(); {
		if b := it.At(); b.Count != 0 && b.Upper <= fh.ZeroThreshold {
			return true
		}
	}
	for it := fh.NegativeBucketIterator(); it.Next(); {
		if b := it.At(); b.Count != 0 && b.Lower >= -fh.ZeroThreshold {
			return true
		}
	}
	return false
}

// cumValue is one sample of a converted bucket series: its le, the index of
// its histogram sample, its value, and the series for messages.
type cumValue struct {
	le float64
	k  int
	v  float64
	s  string
}

// checkCumulative checks the values of the bucket series of one native
// series (histograms refs) against the reference: there must be one schema
// t, at most that of every exponential histogram of the series, such that
// every value is the cumulative count at its le of its histogram reduced to
// t by FloatHistogram.ReduceResolution (custom-bucket histograms as they
// are), and the +Inf bucket the count.
func checkCumulative(t testing.TB, ti int, refs []*histogram.FloatHistogram, vals []cumValue) {
	t.Helper()
	top := int32(8)
	for _, fh := range refs {
		if fh.Schema != histogram.CustomBucketsSchema {
			top = min(top, fh.Schema)
		}
	}
	var firstErr string
	for target := top; target >= -9; target-- {
		reduced := make([]*histogram.FloatHistogram, len(refs))
		for k, fh := range refs {
			reduced[k] = fh
			if fh.Schema != histogram.CustomBucketsSchema && target < fh.Schema {
				reduced[k] = fh.Copy()
				if err := reduced[k].ReduceResolution(target); err != nil {
					t.Fatal(err)
				}
			}
		}
		ok := true
		for _, cv := range vals {
			fh := reduced[cv.k]
			want := refCum(fh, cv.le)
			if math.IsInf(cv.le, 1) {
				want = fh.Count
			}
			if !closeTo(cv.v, want) {
				if firstErr == "" {
					firstErr = fmt.Sprintf("%s sample %d: %v, reference %v at schema %d\n%s", cv.s, cv.k, cv.v, want, target, fh.String())
				}
				ok = false
				break
			}
		}
		if ok {
			return
		}
	}
	t.Fatalf("timeseries %d: the cumulative counts are those of no schema; %s", ti, firstErr)
}

// onSomeGrid reports whether le is a boundary of one of fhs: its zero
// threshold (or minus it, where a negative bucket reaches into the zero
// bucket), a bucket boundary of its exponential schema, or one of its
// custom bounds.
func onSomeGrid(le float64, fhs []*histogram.FloatHistogram) bool {
	for _, fh := range fhs {
		switch {
		case fh.Schema == histogram.CustomBucketsSchema:
			if containsFloat(fh.CustomValues, le) {
				return true
			}
		case le == fh.ZeroThreshold || le == -fh.ZeroThreshold || isBoundary(le, fh.Schema):
			return true
		}
	}
	return false
}

func containsFloat(fs []float64, f float64) bool {
	for _, v := range fs {
		if v == f {
			return true
		}
	}
	return false
}

// histogramRequest is a random request whose series are native histogram
// series (with one float series now and then).
func histogramRequest(r *rand.Rand, n int) *prompb.WriteRequest {
	req := randomV1(r, n)
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		var ls []prompb.Label
		for _, l := range ts.Labels {
			if l.Value != "" {
				ls = append(ls, l)
			}
		}
		ts.Labels = ls
		if r.IntN(4) != 0 && len(ts.Histograms) == 0 {
			ts.Samples = nil
			for j := range r.IntN(3) + 1 {
				ts.Histograms = append(ts.Histograms, randomHistogram(r, int64(1700000000000+j*15000)))
			}
		}
	}
	return req
}

func TestApplyProfileClassicMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var wr wire.WriteRequest
	checked := 0
	for round := range 400 {
		ref := histogramRequest(r, r.IntN(10)+1)
		max := []int{0, 40, 10, 5, 3, 2, 1, 200}[round%8]
		p := wire.Profile{ClassicHistograms: true, MaxClassicBuckets: max, DropExemplars: round%3 == 0}
		if max == 0 {
			max = wire.DefaultMaxClassicBuckets
		}
		if err := wr.Unmarshal(marshalV1(t, ref), wire.Limits{}); err != nil {
			t.Fatal(err)
		}
		nHist := wr.NumHistogramSamples()
		c, err := wr.ApplyProfile(p, wire.Limits{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if c.HistogramsConverted != nHist || wr.NumHistogramSamples() != 0 {
			t.Fatalf("round %d: %d histograms converted of %d, %d left", round, c.HistogramsConverted, nHist, wr.NumHistogramSamples())
		}
		checked += checkClassic(t, ref, &wr, max, p.DropExemplars)
	}
	if checked < 1000 {
		t.Fatalf("only %d histogram samples checked against the reference", checked)
	}
}

// TestApplyProfileNHCBMatchesPrometheus compares the conversion of custom
// bucket histograms with Prometheus' own, histogram.ConvertNHCBToClassic.
func TestApplyProfileNHCBMatchesPrometheus(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	n := 0
	for n < 200 {
		h := randomHistogram(r, 1000)
		if h.Schema != histogram.CustomBucketsSchema || math.Float64bits(h.Sum) == staleBits {
			continue
		}
		n++
		fh, err := refFloat(h)
		if err != nil {
			t.Fatal(err)
		}
		ls := labels.FromStrings("__name__", "rpc", "job", "x")
		var want []string
		err = histogram.ConvertNHCBToClassic(fh, ls, labels.NewBuilder(ls), func(l labels.Labels, v float64) error {
			want = append(want, fmt.Sprintf("%s %v", l.String(), v))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ref := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: prompb.FromLabels(ls, nil), Histograms: []prompb.Histogram{h}}}}
		var wr wire.WriteRequest
		if err := wr.Unmarshal(marshalV1(t, ref), wire.Limits{}); err != nil {
			t.Fatal(err)
		}
		if _, err := wr.ApplyProfile(wire.Profile{ClassicHistograms: true, MaxClassicBuckets: 1000}, wire.Limits{}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range wr.Series {
			kv := []string{}
			for _, l := range s.Labels {
				kv = append(kv, l.Name, l.Value)
			}
			got = append(got, fmt.Sprintf("%s %v", labels.FromStrings(kv...).String(), s.Samples[0].Value))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("converted\n%s\nPrometheus\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestApplyProfileStableBoundaries checks that the samples of one series
// share one set of boundaries (one schema) though their spans differ.
func TestApplyProfileStableBoundaries(t *testing.T) {
	mk := func(ts int64, off int32, n int) prompb.Histogram {
		h := &histogram.Histogram{Schema: 3, ZeroThreshold: 1e-3, PositiveSpans: []histogram.Span{{Offset: off, Length: uint32(n)}}}
		for j := range n {
			if j == 0 {
				h.PositiveBuckets = append(h.PositiveBuckets, 1)
			} else {
				h.PositiveBuckets = append(h.PositiveBuckets, 0)
			}
			h.Count++
		}
		return prompb.FromIntHistogram(ts, h)
	}
	ref := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{mk(1, 0, 20), mk(2, 10, 60), mk(3, -30, 5)}}}}
	var wr wire.WriteRequest
	if err := wr.Unmarshal(marshalV1(t, ref), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	c, err := wr.ApplyProfile(wire.Profile{ClassicHistograms: true, MaxClassicBuckets: 12}, wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClassicSeries != len(wr.Series) || len(wr.Series) > 12+2 {
		t.Fatalf("counts %+v, %d series", c, len(wr.Series))
	}
	checkClassic(t, ref, &wr, 12, false)
}

// TestApplyProfileCollision pins what happens when a converted series has
// the label set of a float series of the request: both are sent, the float
// series first.
func TestApplyProfileCollision(t *testing.T) {
	h := prompb.FromIntHistogram(5, &histogram.Histogram{Schema: 0, Count: 2, Sum: 1.5, PositiveSpans: []histogram.Span{{Offset: 1, Length: 1}}, PositiveBuckets: []int64{2}})
	ref := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{h}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "h_count"}}, Samples: []prompb.Sample{{Value: 2, Timestamp: 5}}},
	}}
	var wr wire.WriteRequest
	if err := wr.Unmarshal(marshalV1(t, ref), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := wr.ApplyProfile(wire.Profile{ClassicHistograms: true}, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range wr.Series {
		got = append(got, fmt.Sprintf("%s %v", wire.FormatLabels(s.Labels, 100), s.Samples))
	}
	want := `h_count{} [{2 5}]
h_bucket{le="0.0"} [{0 5}]
h_bucket{le="2.0"} [{2 5}]
h_bucket{le="+Inf"} [{2 5}]
h_count{} [{2 5}]
h_sum{} [{1.5 5}]`
	if g := strings.Join(got, "\n"); g != want {
		t.Fatalf("got\n%s\nwant\n%s", g, want)
	}
}

func TestApplyProfileExemplars(t *testing.T) {
	h := prompb.FromIntHistogram(5, &histogram.Histogram{Schema: 0, Count: 3, Sum: 4, PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []int64{1, 0, 0}})
	ex := func(v float64) prompb.Exemplar {
		return prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprint(v)}}, Value: v, Timestamp: 5}
	}
	ref := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{h}, Exemplars: []prompb.Exemplar{ex(0.7), ex(2), ex(3), ex(100)}}}}
	for _, drop := range []bool{false, true} {
		var wr wire.WriteRequest
		if err := wr.Unmarshal(marshalV1(t, ref), wire.Limits{}); err != nil {
			t.Fatal(err)
		}
		c, err := wr.ApplyProfile(wire.Profile{ClassicHistograms: true, DropExemplars: drop}, wire.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range wr.Series {
			if len(s.Exemplars) > 0 {
				got = append(got, fmt.Sprintf("%s:%d", labelValue(s.Labels, "le"), len(s.Exemplars)))
			}
		}
		want := `1.0:1 2.0:1 4.0:1 +Inf:1`
		if drop {
			want = ""
			if c.ExemplarsDropped != 4 {
				t.Fatalf("%d exemplars dropped, want 4", c.ExemplarsDropped)
			}
		}
		if g := strings.Join(got, " "); g != want {
			t.Fatalf("drop %v: exemplars on buckets %q, want %q", drop, g, want)
		}
	}
}

func TestApplyProfileHelpAndNeeded(t *testing.T) {
	h := prompb.FromIntHistogram(5, &histogram.Histogram{Schema: 0, Count: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}})
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "f"}}, Samples: []prompb.Sample{{Value: 1}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "e"}}, Samples: []prompb.Sample{{Value: 1}}, Exemplars: []prompb.Exemplar{{Value: 1}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{h}},
		},
		Metadata: []prompb.MetricMetadata{{MetricFamilyName: "f", Help: "plain"}, {MetricFamilyName: "h", Type: prompb.MetricMetadata_HISTOGRAM, Help: "延迟 latency"}},
	}
	raw := marshalV1(t, req)
	for _, tc := range []struct {
		p    wire.Profile
		want bool
	}{
		{wire.Profile{}, false},
		{wire.Profile{ASCIIHelp: true}, true},
		{wire.Profile{DropExemplars: true}, true},
		{wire.Profile{ClassicHistograms: true}, true},
	} {
		got, err := tc.p.Needed(raw)
		if err != nil || got != tc.want {
			t.Errorf("%+v: Needed %v, %v; want %v", tc.p, got, err, tc.want)
		}
		var wr wire.WriteRequest
		if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
			t.Fatal(err)
		}
		c, err := wr.ApplyProfile(tc.p, wire.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if (c != wire.ProfileCounts{}) != tc.want {
			t.Errorf("%+v: counts %+v, Needed %v", tc.p, c, tc.want)
		}
		if tc.p.ASCIIHelp && (wr.Metadata[1].Help != "latency" || wr.Metadata[0].Help != "plain" || c.HelpRewritten != 1) {
			t.Errorf("help %q, %q", wr.Metadata[0].Help, wr.Metadata[1].Help)
		}
		if tc.p.ClassicHistograms && wr.Metadata[1].Type != wire.MetadataHistogram {
			t.Errorf("metadata type %v, want HISTOGRAM kept", wr.Metadata[1].Type)
		}
	}
	// Without what a profile changes, Needed is false.
	plain := marshalV1(t, &prompb.WriteRequest{Timeseries: req.Timeseries[:1], Metadata: req.Metadata[:1]})
	all := wire.Profile{ASCIIHelp: true, ClassicHistograms: true, DropExemplars: true}
	if got, err := all.Needed(plain); got || err != nil {
		t.Errorf("Needed(plain) = %v, %v", got, err)
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = all.Needed(plain) }); n != 0 {
		t.Errorf("Needed allocates %v times", n)
	}
	if _, err := all.Needed([]byte{0x0a, 0x05}); err == nil {
		t.Error("Needed accepts a truncated request")
	}
}

func TestApplyProfileLimitsAndErrors(t *testing.T) {
	h := prompb.FromIntHistogram(5, &histogram.Histogram{Schema: 0, Count: 3, PositiveSpans: []histogram.Span{{Length: 3}}, PositiveBuckets: []int64{1, 0, 0}})
	ls := []prompb.Label{{Name: "__name__", Value: "h"}, {Name: "job", Value: "j"}}
	ok := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: ls, Histograms: []prompb.Histogram{h, h}}}}
	p := wire.Profile{ClassicHistograms: true}
	for _, tc := range []struct {
		name string
		lim  wire.Limits
		kind wire.LimitKind
	}{
		{"samples", wire.Limits{MaxSamples: 13}, wire.LimitSamples}, // 5 buckets + count + sum, 2 samples each: 14
		{"labels", wire.Limits{MaxLabels: 2}, wire.LimitLabels},
		{"label bytes", wire.Limits{MaxLabelBytes: 12}, wire.LimitLabelBytes}, // __name__ + h_bucket is 16
	} {
		var wr wire.WriteRequest
		_ = wr.Unmarshal(marshalV1(t, ok), wire.Limits{})
		_, err := wr.ApplyProfile(p, tc.lim)
		var le *wire.LimitError
		if !errors.As(err, &le) || le.Kind != tc.kind {
			t.Errorf("%s: error %v, want a *LimitError of kind %v", tc.name, err, tc.kind)
		}
	}
	var wr wire.WriteRequest
	_ = wr.Unmarshal(marshalV1(t, ok), wire.Limits{})
	if c, err := wr.ApplyProfile(p, wire.Limits{MaxSamples: 14, MaxLabels: 3, MaxLabelBytes: 16}); err != nil || c.ClassicSeries != 7 {
		t.Errorf("at the limits: %+v, %v", c, err)
	}
	bad := func(mut func(*prompb.Histogram)) *prompb.WriteRequest {
		b := h
		b.PositiveSpans = append([]prompb.BucketSpan{}, h.PositiveSpans...)
		mut(&b)
		return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: ls, Histograms: []prompb.Histogram{b}}}}
	}
	for _, tc := range []struct {
		name string
		req  *prompb.WriteRequest
		want string
	}{
		{"schema", bad(func(b *prompb.Histogram) { b.Schema = 9 }), "schema 9"},
		{"spans", bad(func(b *prompb.Histogram) { b.PositiveSpans[0].Length = 4 }), "spans need more"},
		{"too few spans", bad(func(b *prompb.Histogram) { b.PositiveSpans[0].Length = 2 }), "spans need 2 buckets, have 3"},
		{"custom", bad(func(b *prompb.Histogram) { b.Schema, b.CustomValues = -53, []float64{2, 1} }), "custom_values[1]"},
		{"no name", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: ls[1:], Histograms: []prompb.Histogram{h}}}}, "without a metric name"},
	} {
		var wr wire.WriteRequest
		_ = wr.Unmarshal(marshalV1(t, tc.req), wire.Limits{})
		_, err := wr.ApplyProfile(p, wire.Limits{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "timeseries 0: ") {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzApplyProfile converts arbitrary 1.0 requests and, for those prompb
// decodes, checks the result against model/histogram: a histogram
// ApplyProfile rejects must be one the reference's Validate rejects too,
// and the cumulative counts, boundaries, _count and _sum of the others must
// be the reference's.
func FuzzApplyProfile(f *testing.F) {
	r := rand.New(rand.NewPCG(25, 26))
	for range 6 {
		b, _ := histogramRequest(r, 3).Marshal()
		f.Add(b, uint8(40))
	}
	var wr wire.WriteRequest
	f.Fuzz(func(t *testing.T, raw []byte, max uint8) {
		var ref prompb.WriteRequest
		if ref.Unmarshal(raw) != nil || wr.Unmarshal(raw, wire.Limits{}) != nil {
			return
		}
		for i := range wr.Series {
			// Upstream, only validated series are converted (the
			// Rewriter and the push path drop the others first): an
			// invalid label set stays invalid (seed 860011d7a41adcd5).
			if len(wr.Series[i].Histograms) > 0 && wire.ValidateSeries(&wr.Series[i], wire.Limits{}) != nil {
				return
			}
		}
		allValid := true
		for _, ts := range ref.Timeseries {
			for _, h := range ts.Histograms {
				if _, err := refFloat(h); err != nil {
					allValid = false
				}
			}
			if len(ts.Histograms) > 0 && labelValueP(ts.Labels, "__name__") == "" {
				allValid = false
			}
		}
		_, err := wr.ApplyProfile(wire.Profile{ClassicHistograms: true, MaxClassicBuckets: int(max)}, wire.Limits{MaxSamples: 1 << 16})
		if err != nil {
			var le *wire.LimitError
			// The wire-format differences with gogo that UnmarshalV2's
			// fuzzing documents (v2Tolerated: groups, field numbers
			// gogo skips, ...) hold here too (seed c654f1f7eba55ef0).
			if allValid && !errors.As(err, &le) && !containsAny(err.Error(), v2Tolerated) {
				t.Fatalf("ApplyProfile rejects what the reference validates: %v", err)
			}
			return
		}
		for _, ts := range ref.Timeseries {
			if len(ts.Histograms) > 0 && !sortedUnique(ts.Labels) {
				return // the label sets of the conversion are MergeLabels' of an unsorted set
			}
		}
		m := int(max)
		if m == 0 {
			m = wire.DefaultMaxClassicBuckets
		}
		checkClassic(t, &ref, &wr, m, false)
	})
}

func labelValueP(ls []prompb.Label, n string) string {
	for _, l := range ls {
		if l.Name == n {
			return l.Value
		}
	}
	return ""
}

func sortedUnique(ls []prompb.Label) bool {
	for i := 1; i < len(ls); i++ {
		if ls[i-1].Name >= ls[i].Name {
			return false
		}
	}
	for _, l := range ls {
		if l.Value == "" || l.Name == "" {
			return false
		}
	}
	return true
}

func inOrder(hs []prompb.Histogram) bool {
	for i := 1; i < len(hs); i++ {
		if hs[i].Timestamp < hs[i-1].Timestamp {
			return false
		}
	}
	return true
}
