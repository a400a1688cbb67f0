package wire

import (
	"hash/maphash"
	"slices"
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
	Metrics int  // number of metrics in the family; a family without metrics is ignored
	Dropped bool // replaced by a later family of the same name (protobuf only)
}

// Metric is one io.prometheus.client.Metric. Which fields are meaningful
// depends on the family's type: Value for counters, gauges and untyped;
// Count/CountFloat, Sum and the points for summaries and histograms; Native
// for native histograms.
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

	// Quantiles (summary) or classic buckets (histogram) form a list in
	// Exposition.Points from FirstPoint, linked by Point.Next; -1 ends it.
	FirstPoint, lastPoint int32
	NumPoints             int32

	Native NativeHistogram
}

// Point is a summary quantile or a classic histogram bucket.
type Point struct {
	Bound        float64 // quantile (summary) or upper bound (histogram)
	Value        float64 // quantile value (summary)
	Count        uint64  // cumulative count (histogram)
	CountFloat   float64 // cumulative count of a float histogram
	CountIsFloat bool
	Next         int32
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
	Points   []Point

	labels  []Label
	spans   []BucketSpan
	ints    []int64
	floats  []float64
	strbuf  []byte
	byName  map[string]int32
	groups  map[uint64]int32 // signature of a summary/histogram metric → index
	seed    maphash.Seed
	scratch []Label
}

// Reset empties e and keeps its memory.
func (e *Exposition) Reset() {
	e.Families = e.Families[:0]
	clear(e.Metrics)
	e.Metrics = e.Metrics[:0]
	e.Points = e.Points[:0]
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
			n += 2 + int(m.NumPoints)
		default:
			n++
		}
	}
	return n
}

// addPoint appends p to metric m's point list.
func (e *Exposition) addPoint(m *Metric, p Point) {
	p.Next = -1
	idx := int32(len(e.Points))
	e.Points = append(e.Points, p)
	if m.FirstPoint < 0 {
		m.FirstPoint = idx
	} else {
		e.Points[m.lastPoint].Next = idx
	}
	m.lastPoint = idx
	m.NumPoints++
}

// newMetric appends an empty metric of family f and returns its index.
func (e *Exposition) newMetric(f int32) int32 {
	e.Metrics = append(e.Metrics, Metric{Family: f, FirstPoint: -1, lastPoint: -1})
	return int32(len(e.Metrics) - 1)
}

// signature hashes the family index and the label set of a metric,
// independent of label order.
func (e *Exposition) signature(f int32, ls []Label) uint64 {
	e.scratch = append(e.scratch[:0], ls...)
	slices.SortFunc(e.scratch, func(a, b Label) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteByte(byte(f))
	h.WriteByte(byte(f >> 8))
	h.WriteByte(byte(f >> 16))
	h.WriteByte(byte(f >> 24))
	for _, l := range e.scratch {
		h.WriteString(l.Name)
		h.WriteByte(0xff)
		h.WriteString(l.Value)
		h.WriteByte(0xff)
	}
	return h.Sum64()
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
