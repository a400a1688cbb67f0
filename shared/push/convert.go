package push

import (
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promrelay/promrelay/shared/wire"
)

// Names of the gauges the Pushgateway adds to every group: the Unix time in
// seconds of the last successful and of the last failed change of the group.
// Convert drops families of these names from a pushed body, as the
// Pushgateway replaces them with its own.
const (
	PushTimeMetric        = "push_time_seconds"
	PushFailureTimeMetric = "push_failure_time_seconds"
)

// InvalidError is a push the Pushgateway would reject as invalid (400).
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Converter turns pushed expositions into remote-write series. The zero value
// is ready to use; reuse one per goroutine to recycle its memory.
type Converter struct {
	// SeriesFamily holds, after Convert, the family name of each series it
	// appended, in order (PushTimeMetric for the push-time gauge).
	SeriesFamily []string

	sorted []wire.Label
	base   []wire.Label
	num    []byte
	key    []byte
	seen   map[uint64]int32
	seed   maphash.Seed
	seeded bool
	budget int // series Convert may still append; <0 for no limit
	limit  int // the limit budget started from

	// The duplicate-series proof (see mayHaveDuplicates): each metric's
	// base label set, the family names, and whether only the full check
	// can decide.
	recs     []metricRec
	bases    []wire.Label
	lastRec  []int32 // per family: index into recs of its last metric, -1 for none
	unsorted []int32 // families whose metrics' base label sets are not increasing
	suspect  bool

	// Per family, the le or quantile values formatted for its last metric.
	boundFam  int32
	boundBits []uint64
	boundStrs []string

	// The current metric's label sets with __name__ (tmpl[0]) and with
	// __name__ and an le or quantile label (tmpl[1]), which add copies and
	// fills in per series.
	tmpl [2]labelTemplate

	// The le and quantile values formatted in this Convert, by a hash of
	// their bits (strings in wr's arena; "" for an empty slot).
	formatted [64]formattedFloat
}

// formattedFloat is a float's bits and its text format string.
type formattedFloat struct {
	bits uint64
	s    string
}

// labelTemplate is a metric's base label set merged with __name__ and
// perhaps one extra label, and where those two are in it: add copies it
// and sets their values per series.
type labelTemplate struct {
	ok            bool
	extra         string // the extra label's name; "" for none
	labels        []wire.Label
	iName, iExtra int
}

// metricRec is one converted metric's family and base label set
// (Converter.bases[start:end]).
type metricRec struct {
	fam        int32
	start, end int32
}

// Convert appends to wr the series of every metric in e, as a Prometheus
// scraping a Pushgateway would store them after this push:
//
//   - the grouping key's labels replace labels of the same name in the body
//     (one with an empty value removes the label), and body labels with
//     empty values are dropped;
//   - families named push_time_seconds or push_failure_time_seconds are
//     dropped: the Pushgateway answers such a push 200 and replaces them
//     with its own (see the push_time_seconds gauge below);
//   - counters, gauges and untyped metrics become one series each;
//   - summaries become name{quantile="q"}, name_sum and name_count;
//   - histograms become name_bucket{le="b"} (with le="+Inf" added when the
//     push has no such bucket), name_sum and name_count, the le and quantile
//     values formatted as the text format 0.0.4 writes them;
//   - every sample is stamped with the push time (milliseconds);
//   - one push_time_seconds{<grouping key>} gauge holds the push time in
//     seconds;
//   - each family's type, help and unit go into wr.Metadata.
//
// It returns *InvalidError for what the Pushgateway rejects: a metric with a
// timestamp, and two metrics that end up as the same series; and a
// *wire.LimitError (Kind wire.LimitSamples) as soon as the series it
// appends, the push_time_seconds gauge included, would exceed
// lim.MaxSamples.
func (c *Converter) Convert(wr *wire.WriteRequest, e *wire.Exposition, key GroupingKey, now time.Time, lim wire.Limits) error {
	if !c.seeded {
		c.seed, c.seeded = maphash.MakeSeed(), true
		c.seen = make(map[uint64]int32)
	}
	c.recs, c.bases, c.boundFam = c.recs[:0], c.bases[:0], -1
	clear(c.formatted[:])
	c.suspect = false
	for _, l := range key {
		c.suspect = c.suspect || special(l.Name)
	}
	c.SeriesFamily = c.SeriesFamily[:0]
	c.budget, c.limit = -1, lim.MaxSamples
	if lim.MaxSamples > 0 {
		c.budget = lim.MaxSamples
	}
	ts := now.UnixMilli()
	first := len(wr.Series)

	for i := range e.Metrics {
		m := &e.Metrics[i]
		f := &e.Families[m.Family]
		if skipFamily(f) {
			continue
		}
		if m.HasTimestamp {
			return &InvalidError{Msg: fmt.Sprintf("pushed metrics must not have timestamps: metric %s has timestamp %d", wire.FormatLabels(withName(m.Labels, f.Name), 256), m.TimestampMs)}
		}
		if err := c.metric(wr, f, m, key, ts); err != nil {
			return err
		}
	}
	for i := range e.Families {
		f := &e.Families[i]
		if skipFamily(f) || f.Metrics == 0 {
			continue
		}
		wr.Metadata = append(wr.Metadata, wire.Metadata{Type: metadataType(f.Type), FamilyName: f.Name, Help: f.Help, Unit: f.Unit})
	}

	// push_time_seconds{<grouping key>}
	c.baseLabels(nil, key)
	if err := c.add(wr, PushTimeMetric, PushTimeMetric, wire.Label{}, float64(now.UnixNano())/1e9, ts, true); err != nil {
		return err
	}
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: PushTimeMetric, Help: "Last Unix time when changing this group in the Pushgateway succeeded."})

	if c.mayHaveDuplicates(e) {
		return c.checkDuplicates(wr.Series[first:])
	}
	return nil
}

// special reports whether a base label of this name could be replaced by a
// series' own __name__, le or quantile label, which the duplicate-series
// proof does not model.
func special(name string) bool {
	return name == wire.MetricNameLabel || name == "le" || name == "quantile"
}

// mayHaveDuplicates reports whether the series Convert appended might hold
// two with the same label set; false is a proof that they do not, true
// leaves the decision to checkDuplicates. Two series can only be equal when
// they have the same name, so (1) no two families may produce one series
// name (a family x makes x, or x_bucket, x_sum and x_count); (2) within a
// family, the metrics' base label sets (labels and grouping key merged,
// without __name__, le and quantile) must be distinct — proven by their
// being strictly increasing, or after sorting a family that is not; and (3)
// within a metric, the le or quantile values must be strictly increasing
// (checked as they are converted), so that their formatted strings differ.
func (c *Converter) mayHaveDuplicates(e *wire.Exposition) bool {
	if c.suspect {
		return true
	}
	// The decoders keep one family per name (a protobuf family a later
	// one replaces is skipped): FamilyIndex finds each live family at its
	// own index, and then no two share a name.
	for i := range e.Families {
		f := &e.Families[i]
		if skipFamily(f) || f.Metrics == 0 {
			continue
		}
		if j, ok := e.FamilyIndex(f.Name); !ok || j != i {
			return true
		}
		var suffixes []string
		switch f.Type {
		case wire.Summary:
			suffixes = summarySuffixes
		case wire.Histogram, wire.GaugeHistogram:
			suffixes = histogramSuffixes
		default:
			continue
		}
		for _, suf := range suffixes {
			c.num = append(append(c.num[:0], f.Name...), suf...)
			if j, ok := e.FamilyIndex(string(c.num)); ok && !skipFamily(&e.Families[j]) && e.Families[j].Metrics > 0 {
				return true
			}
		}
	}
	c.lastRec = slices.Grow(c.lastRec[:0], len(e.Families))[:len(e.Families)]
	for i := range c.lastRec {
		c.lastRec[i] = -1
	}
	c.unsorted = c.unsorted[:0]
	for i, r := range c.recs {
		switch j := c.lastRec[r.fam]; {
		case j == -2: // not increasing: sorted below
			continue
		case j >= 0 && c.cmpBases(c.recs[j], r) >= 0:
			c.unsorted = append(c.unsorted, r.fam)
			c.lastRec[r.fam] = -2
			continue
		}
		c.lastRec[r.fam] = int32(i)
	}
	if len(c.unsorted) == 0 {
		return false
	}
	// Sort the metrics of the families that are not increasing by family
	// and base label set, at the end of recs, and compare neighbours.
	n := len(c.recs)
	for _, r := range c.recs[:n] {
		if c.lastRec[r.fam] == -2 {
			c.recs = append(c.recs, r)
		}
	}
	group := c.recs[n:]
	slices.SortFunc(group, func(a, b metricRec) int {
		if a.fam != b.fam {
			return int(a.fam - b.fam)
		}
		return c.cmpBases(a, b)
	})
	for k := 1; k < len(group); k++ {
		if group[k-1].fam == group[k].fam && c.cmpBases(group[k-1], group[k]) == 0 {
			return true
		}
	}
	c.recs = c.recs[:n]
	return false
}

var (
	summarySuffixes   = []string{"_sum", "_count"}
	histogramSuffixes = []string{"_bucket", "_sum", "_count"}
)

// cmpBases compares the base label sets of two metrics, label by label
// (name, then value), a shorter prefix first.
func (c *Converter) cmpBases(a, b metricRec) int {
	x, y := c.bases[a.start:a.end], c.bases[b.start:b.end]
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i].Name != y[i].Name {
			return strings.Compare(x[i].Name, y[i].Name)
		}
		if x[i].Value != y[i].Value {
			return strings.Compare(x[i].Value, y[i].Value)
		}
	}
	return len(x) - len(y)
}

// skipFamily reports whether Convert leaves family f out: replaced by a
// later family of the same name, or one of the Pushgateway's own gauges.
func skipFamily(f *wire.Family) bool {
	return f.Replaced || f.Name == PushTimeMetric || f.Name == PushFailureTimeMetric
}

// metric appends the series of one metric m of family f, and records its
// base label set for mayHaveDuplicates.
func (c *Converter) metric(wr *wire.WriteRequest, f *wire.Family, m *wire.Metric, key GroupingKey, ts int64) error {
	c.baseLabels(m.Labels, key)
	start := len(c.bases)
	c.bases = append(c.bases, c.base...)
	c.recs = append(c.recs, metricRec{fam: m.Family, start: int32(start), end: int32(len(c.bases))})
	for _, l := range m.Labels {
		c.suspect = c.suspect || special(l.Name)
	}
	if c.boundFam != m.Family {
		c.boundFam = m.Family
		c.boundBits, c.boundStrs = c.boundBits[:0], c.boundStrs[:0]
	}
	var err error
	// A counter, gauge or untyped metric makes one series, which add
	// merges directly; the others share a template per metric.
	single := f.Type == wire.Counter || f.Type == wire.Gauge || f.Type == wire.Untyped
	add := func(name string, extra wire.Label, v float64) {
		if err == nil {
			err = c.add(wr, f.Name, name, extra, v, ts, single)
		}
	}
	switch f.Type {
	case wire.Counter, wire.Gauge, wire.Untyped:
		add(f.Name, wire.Label{}, m.Value)
	case wire.Summary:
		prev := math.Inf(-1)
		for i, q := range m.Quantiles {
			if !(q.Quantile > prev) {
				c.suspect = true
			}
			prev = q.Quantile
			add(f.Name, wire.Label{Name: "quantile", Value: c.bound(wr, i, q.Quantile)}, q.Value)
		}
		add(c.suffixed(wr, f.Name, "_sum"), wire.Label{}, m.Sum)
		add(c.suffixed(wr, f.Name, "_count"), wire.Label{}, float64(m.Count))
	case wire.Histogram, wire.GaugeHistogram:
		infSeen := false
		prev := math.Inf(-1)
		bucket := c.suffixed(wr, f.Name, "_bucket")
		for i := range m.Buckets {
			b := &m.Buckets[i]
			if !(b.UpperBound > prev) {
				c.suspect = true
			}
			prev = b.UpperBound
			infSeen = infSeen || math.IsInf(b.UpperBound, +1)
			add(bucket, wire.Label{Name: "le", Value: c.bound(wr, i, b.UpperBound)}, b.CumulativeCount())
		}
		if !infSeen {
			add(bucket, wire.Label{Name: "le", Value: "+Inf"}, m.HistogramCount())
		}
		add(c.suffixed(wr, f.Name, "_sum"), wire.Label{}, m.Sum)
		add(c.suffixed(wr, f.Name, "_count"), wire.Label{}, m.HistogramCount())
	}
	return err
}

// suffixed returns name+suffix, interned in wr.
func (c *Converter) suffixed(wr *wire.WriteRequest, name, suffix string) string {
	c.num = append(append(c.num[:0], name...), suffix...)
	return wr.Intern(c.num)
}

// bound returns the formatted le or quantile value f, the i-th of its
// metric, reusing the string of the family's previous metric when its i-th
// value was the same (the usual case: a family's metrics share buckets).
func (c *Converter) bound(wr *wire.WriteRequest, i int, f float64) string {
	bits := math.Float64bits(f)
	if i < len(c.boundBits) && c.boundBits[i] == bits {
		return c.boundStrs[i]
	}
	s := c.formatFloat(wr, f)
	if i < len(c.boundBits) {
		c.boundBits[i], c.boundStrs[i] = bits, s
	} else if i == len(c.boundBits) {
		c.boundBits, c.boundStrs = append(c.boundBits, bits), append(c.boundStrs, s)
	}
	return s
}

// FailureSeries appends the push_failure_time_seconds{<grouping key>} gauge
// for a push that was rejected at time now.
func (c *Converter) FailureSeries(wr *wire.WriteRequest, key GroupingKey, now time.Time) {
	c.baseLabels(nil, key)
	c.budget = -1
	_ = c.add(wr, PushFailureTimeMetric, PushFailureTimeMetric, wire.Label{}, float64(now.UnixNano())/1e9, now.UnixMilli(), true)
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: PushFailureTimeMetric, Help: "Last Unix time when changing this group in the Pushgateway failed."})
}

func withName(ls []wire.Label, name string) []wire.Label {
	out := make([]wire.Label, 0, len(ls)+1)
	out = append(out, wire.Label{Name: wire.MetricNameLabel, Value: name})
	return append(out, ls...)
}

// baseLabels sets c.base to the metric's labels ls (in any order) without
// empty values, with the grouping key applied by wire.MergeLabels, sorted by
// name.
func (c *Converter) baseLabels(ls []wire.Label, key GroupingKey) {
	c.sorted = c.sorted[:0]
	for _, l := range ls {
		if l.Value != "" {
			c.sorted = append(c.sorted, l)
		}
	}
	wire.SortLabels(c.sorted)
	c.base = wire.MergeLabels(c.base[:0], c.sorted, key)
	c.tmpl[0].ok, c.tmpl[1].ok = false, false
}

// add appends one series of family family: c.base with __name__=name and
// the extra label (when its name is set) applied as overrides, so that a
// body or key label named like le or quantile is replaced. single says the
// base makes only this series (merged directly, without a template). It returns a
// *wire.LimitError when the series would exceed the sample limit.
func (c *Converter) add(wr *wire.WriteRequest, family, name string, extra wire.Label, v float64, ts int64, single bool) error {
	if c.budget == 0 {
		return &wire.LimitError{Kind: wire.LimitSamples, Limit: c.limit}
	}
	c.budget--
	k := 0
	if extra.Name != "" {
		k = 1
	}
	store := wr.LabelStore()
	start := len(store)
	if single && extra.Name == "" {
		store = wire.MergeLabels(store, c.base, []wire.Label{{Name: wire.MetricNameLabel, Value: name}})
	} else {
		t := &c.tmpl[k]
		if !t.ok || t.extra != extra.Name {
			c.buildTemplate(t, name, extra)
		}
		store = append(store, t.labels...)
		store[start+t.iName].Value = name
		if k == 1 {
			store[start+t.iExtra].Value = extra.Value
		}
	}
	wr.AppendSample(wr.CommitLabels(store, start), wire.Sample{Value: v, Timestamp: ts})
	c.SeriesFamily = append(c.SeriesFamily, family)
	return nil
}

// buildTemplate sets t to c.base with __name__=name and the extra label
// (when its name is set) applied as overrides by wire.MergeLabels, and
// records where the two are. Neither value is empty, so both are in the
// result.
func (c *Converter) buildTemplate(t *labelTemplate, name string, extra wire.Label) {
	overrides := [2]wire.Label{{Name: wire.MetricNameLabel, Value: name}, extra}
	n := 1
	if extra.Name != "" {
		n = 2
		if extra.Name < overrides[0].Name {
			overrides[0], overrides[1] = overrides[1], overrides[0]
		}
	}
	t.labels = wire.MergeLabels(t.labels[:0], c.base, overrides[:n])
	for i, l := range t.labels {
		switch l.Name {
		case wire.MetricNameLabel:
			t.iName = i
		case extra.Name:
			t.iExtra = i
		}
	}
	t.ok, t.extra = true, extra.Name
}

// formatFloat formats a le or quantile value as the text format 0.0.4 does
// (expfmt's writeFloat).
func (c *Converter) formatFloat(wr *wire.WriteRequest, f float64) string {
	switch {
	case f == 1:
		return "1"
	case f == 0:
		return "0"
	case f == -1:
		return "-1"
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	bits := math.Float64bits(f)
	slot := &c.formatted[(bits*0x9e3779b97f4a7c15)>>58]
	if slot.s != "" && slot.bits == bits {
		return slot.s
	}
	c.num = strconv.AppendFloat(c.num[:0], f, 'g', -1, 64)
	slot.bits, slot.s = bits, wr.Intern(c.num)
	return slot.s
}

// checkDuplicates finds two series with the same label set, by hash.
func (c *Converter) checkDuplicates(series []wire.Series) error {
	clear(c.seen)
	for i := range series {
		c.key = wire.AppendLabelsKey(c.key[:0], series[i].Labels)
		sum := maphash.Bytes(c.seed, c.key)
		if j, ok := c.seen[sum]; ok && slices.Equal(series[j].Labels, series[i].Labels) {
			return &InvalidError{Msg: fmt.Sprintf("duplicate series %s: two pushed metrics have the same name and label values", wire.FormatLabels(series[i].Labels, 256))}
		}
		c.seen[sum] = int32(i)
	}
	return nil
}

func metadataType(t wire.MetricType) wire.MetadataType {
	switch t {
	case wire.Counter:
		return wire.MetadataCounter
	case wire.Gauge:
		return wire.MetadataGauge
	case wire.Summary:
		return wire.MetadataSummary
	case wire.Histogram:
		return wire.MetadataHistogram
	case wire.GaugeHistogram:
		return wire.MetadataGaugeHistogram
	}
	return wire.MetadataUnknown
}
