package wire

import (
	"encoding/binary"
	"hash/maphash"
)

// MetricType is the type of a metric family, numbered as
// io.prometheus.client.MetricType.
type MetricType int32

// MetricType values (client_model metrics.proto).
const (
	Counter        MetricType = 0
	Gauge          MetricType = 1
	Summary        MetricType = 2
	Untyped        MetricType = 3
	Histogram      MetricType = 4
	GaugeHistogram MetricType = 5
)

// String returns the type as the text format writes it.
func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Summary:
		return "summary"
	case Untyped:
		return "untyped"
	case Histogram:
		return "histogram"
	case GaugeHistogram:
		return "gaugehistogram"
	}
	return "unknown"
}

// Family is one decoded metric family: the shape of
// io.prometheus.client.MetricFamily without its metrics, which are in
// Exposition.Metrics and point back to the family by index.
type Family struct {
	Name    string
	Help    string
	HasHelp bool
	Type    MetricType
	HasType bool // set by a TYPE line or by the first sample (untyped)
	Unit    string
	Metrics int // number of metrics in the family; a family without metrics is ignored
	// Replaced is set on a family that a later family of the same name
	// replaces (protobuf only): the Pushgateway decodes a push into a map
	// by name, so the last family of a name wins.
	Replaced bool
}

// Metric is one io.prometheus.client.Metric. Which fields are meaningful
// depends on the family's type: Value for counters, gauges and untyped;
// Count/CountFloat, Sum and Quantiles for summaries; Count/CountFloat, Sum,
// Buckets and Exposition.Native for histograms.
type Metric struct {
	Family       int32   // index into Exposition.Families
	Labels       []Label // in input order, without le or quantile
	Value        float64
	TimestampMs  int64
	HasTimestamp bool
	HasValue     bool // the metric carried a value of its family's type

	Count        uint64  // sample count (summary, histogram)
	CountFloat   float64 // sample count of a float histogram; used when CountIsFloat
	CountIsFloat bool
	Sum          float64

	Quantiles []Quantile // a summary's quantiles, in input order
	Buckets   []Bucket   // a histogram's classic buckets, in input order

	native      int32 // 1 + index into Exposition.natives; 0 for none
	first, last int32 // the text parser's list of points in Exposition.points
}

// Quantile is one quantile of a summary (io.prometheus.client.Quantile).
type Quantile struct {
	Quantile float64 // the φ-quantile, 0 ≤ φ ≤ 1
	Value    float64
}

// Bucket is one classic histogram bucket (io.prometheus.client.Bucket):
// the count of observations less than or equal to UpperBound.
type Bucket struct {
	UpperBound   float64
	Count        uint64  // cumulative count
	CountFloat   float64 // cumulative count of a float histogram; used when CountIsFloat
	CountIsFloat bool
}

// CumulativeCount returns the bucket's cumulative count as a float.
func (b *Bucket) CumulativeCount() float64 {
	if b.CountIsFloat {
		return b.CountFloat
	}
	return float64(b.Count)
}

// BucketSpan is a run of native histogram buckets (io.prometheus.client.BucketSpan).
type BucketSpan struct {
	Offset int32
	Length uint32
}

// NativeHistogram holds the native (sparse) part of a protobuf histogram.
type NativeHistogram struct {
	Present        bool // schema, spans or zero bucket were present
	Schema         int32
	ZeroThreshold  float64
	ZeroCount      uint64
	ZeroCountFloat float64
	NegativeSpans  []BucketSpan
	NegativeDeltas []int64
	NegativeCounts []float64
	PositiveSpans  []BucketSpan
	PositiveDeltas []int64
	PositiveCounts []float64
}

// Exposition is a decoded exposition: the metric families of one push. The
// zero value is ready to use; reuse it across calls to recycle its memory.
// Results reference the input buffer and are valid until the next decode.
type Exposition struct {
	Families []Family
	Metrics  []Metric

	quantiles []Quantile
	natives   []NativeHistogram
	buckets   []Bucket
	points    []textPoint // the text parser's per-metric lists, before finish
	labels    []Label
	spans     []BucketSpan
	ints      []int64
	floats    []float64
	strbuf    []byte
	byName    map[string]int32
	groups    map[uint64]int32 // signature of a summary/histogram metric → index
	seed      maphash.Seed
	scratch   []Label
	keybuf    []byte
}

// Reset empties e and keeps its memory.
func (e *Exposition) Reset() {
	e.Families = e.Families[:0]
	clear(e.Metrics)
	e.Metrics = e.Metrics[:0]
	e.quantiles = e.quantiles[:0]
	clear(e.natives)
	e.natives = e.natives[:0]
	e.buckets = e.buckets[:0]
	e.points = e.points[:0]
	clear(e.labels)
	e.labels = e.labels[:0]
	e.spans = e.spans[:0]
	e.ints = e.ints[:0]
	e.floats = e.floats[:0]
	e.strbuf = e.strbuf[:0]
	if e.byName == nil {
		e.byName = make(map[string]int32)
		e.groups = make(map[uint64]int32)
		e.seed = maphash.MakeSeed()
	}
	clear(e.byName)
	clear(e.groups)
}

// NumSamples returns the number of flat samples (series values) the
// exposition holds, as a Prometheus scrape of it would count them.
func (e *Exposition) NumSamples() int {
	n := 0
	for i := range e.Metrics {
		m := &e.Metrics[i]
		switch e.Families[m.Family].Type {
		case Summary, Histogram, GaugeHistogram:
			n += 2 + len(m.Quantiles) + len(m.Buckets)
		default:
			n++
		}
	}
	return n
}

// Native returns the native (sparse) part of histogram metric m, or nil
// when m has none (text format, or a protobuf histogram without schema,
// zero bucket or spans). It is valid until the next decode.
func (e *Exposition) Native(m *Metric) *NativeHistogram {
	if m.native <= 0 {
		return nil
	}
	return &e.natives[m.native-1]
}

// FamilyIndex returns the index in e.Families of the family named name
// that the last decode kept — for protobuf, the last family of that name,
// which replaces the others — and whether there is one. In an exposition
// that ParseText or ParseDelimited decoded, each family not Replaced is at
// the index FamilyIndex returns for its name; e's map makes it one lookup.
func (e *Exposition) FamilyIndex(name string) (int, bool) {
	i, ok := e.byName[name]
	return int(i), ok
}

// newMetric appends an empty metric of family f and returns its index.
func (e *Exposition) newMetric(f int32) int32 {
	e.Metrics = append(e.Metrics, Metric{Family: f, first: -1, last: -1})
	return int32(len(e.Metrics) - 1)
}

// signature hashes the family index and the label set of a metric,
// independent of label order.
func (e *Exposition) signature(f int32, ls []Label) uint64 {
	e.scratch = append(e.scratch[:0], ls...)
	SortLabels(e.scratch)
	e.keybuf = binary.AppendUvarint(e.keybuf[:0], uint64(f))
	e.keybuf = AppendLabelsKey(e.keybuf, e.scratch)
	return maphash.Bytes(e.seed, e.keybuf)
}

// sameLabelSet reports whether a and b hold the same pairs in any order.
func sameLabelSet(a, b []Label) bool {
	if len(a) != len(b) {
		return false
	}
outer:
	for _, x := range a {
		for _, y := range b {
			if x == y {
				continue outer
			}
		}
		return false
	}
	return true
}

// findGroup returns the existing metric of family f with label set ls, or -1.
func (e *Exposition) findGroup(f int32, ls []Label) (int32, uint64) {
	sig := e.signature(f, ls)
	if idx, ok := e.groups[sig]; ok && sameLabelSet(e.Metrics[idx].Labels, ls) {
		return idx, sig
	} else if ok {
		// Hash collision: fall back to a scan.
		for i := range e.Metrics {
			if e.Metrics[i].Family == f && sameLabelSet(e.Metrics[i].Labels, ls) {
				return int32(i), sig
			}
		}
	}
	return -1, sig
}

// Retained returns the number of entries e keeps for reuse after Reset —
// families, metrics, quantiles, buckets, labels and the like, and string
// bytes counted 16 to an entry — so that a pool of Expositions can drop
// one that an outsized input grew.
func (e *Exposition) Retained() int {
	return cap(e.Families) + cap(e.Metrics) + cap(e.quantiles) + cap(e.natives) + cap(e.buckets) + cap(e.points) +
		cap(e.labels) + cap(e.spans) + cap(e.ints) + cap(e.floats) + cap(e.strbuf)/16 + len(e.byName) + len(e.groups)
}
