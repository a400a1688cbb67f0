package push

import (
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
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
	clear(c.seen)
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
	if err := c.add(wr, PushTimeMetric, "", wire.Label{}, float64(now.UnixNano())/1e9, ts); err != nil {
		return err
	}
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: PushTimeMetric, Help: "Last Unix time when changing this group in the Pushgateway succeeded."})

	return c.checkDuplicates(wr.Series[first:])
}

// skipFamily reports whether Convert leaves family f out: replaced by a
// later family of the same name, or one of the Pushgateway's own gauges.
func skipFamily(f *wire.Family) bool {
	return f.Replaced || f.Name == PushTimeMetric || f.Name == PushFailureTimeMetric
}

// metric appends the series of one metric m of family f.
func (c *Converter) metric(wr *wire.WriteRequest, f *wire.Family, m *wire.Metric, key GroupingKey, ts int64) error {
	c.baseLabels(m.Labels, key)
	var err error
	add := func(suffix string, extra wire.Label, v float64) {
		if err == nil {
			err = c.add(wr, f.Name, suffix, extra, v, ts)
		}
	}
	switch f.Type {
	case wire.Counter, wire.Gauge, wire.Untyped:
		add("", wire.Label{}, m.Value)
	case wire.Summary:
		for _, q := range m.Quantiles {
			add("", wire.Label{Name: "quantile", Value: c.formatFloat(wr, q.Quantile)}, q.Value)
		}
		add("_sum", wire.Label{}, m.Sum)
		add("_count", wire.Label{}, float64(m.Count))
	case wire.Histogram, wire.GaugeHistogram:
		infSeen := false
		for i := range m.Buckets {
			b := &m.Buckets[i]
			infSeen = infSeen || math.IsInf(b.UpperBound, +1)
			add("_bucket", wire.Label{Name: "le", Value: c.formatFloat(wr, b.UpperBound)}, b.CumulativeCount())
		}
		if !infSeen {
			add("_bucket", wire.Label{Name: "le", Value: "+Inf"}, m.HistogramCount())
		}
		add("_sum", wire.Label{}, m.Sum)
		add("_count", wire.Label{}, m.HistogramCount())
	}
	return err
}

// FailureSeries appends the push_failure_time_seconds{<grouping key>} gauge
// for a push that was rejected at time now.
func (c *Converter) FailureSeries(wr *wire.WriteRequest, key GroupingKey, now time.Time) {
	c.baseLabels(nil, key)
	c.budget = -1
	_ = c.add(wr, PushFailureTimeMetric, "", wire.Label{}, float64(now.UnixNano())/1e9, now.UnixMilli())
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
}

// add appends one series: c.base with __name__=name+suffix and the extra
// label (when its name is set) applied as overrides, so that a body or key
// label named like le or quantile is replaced. It returns a
// *wire.LimitError when the series would exceed the sample limit.
func (c *Converter) add(wr *wire.WriteRequest, name, suffix string, extra wire.Label, v float64, ts int64) error {
	if c.budget == 0 {
		return &wire.LimitError{Kind: wire.LimitSamples, Limit: c.limit}
	}
	c.budget--
	fullName := name
	if suffix != "" {
		c.num = append(append(c.num[:0], name...), suffix...)
		fullName = wr.Intern(c.num)
	}
	overrides := [2]wire.Label{{Name: wire.MetricNameLabel, Value: fullName}, extra}
	n := 1
	if extra.Name != "" {
		n = 2
		if extra.Name < overrides[0].Name {
			overrides[0], overrides[1] = overrides[1], overrides[0]
		}
	}
	store := wr.LabelStore()
	start := len(store)
	store = wire.MergeLabels(store, c.base, overrides[:n])
	wr.AppendSample(wr.CommitLabels(store, start), wire.Sample{Value: v, Timestamp: ts})
	c.SeriesFamily = append(c.SeriesFamily, name)
	return nil
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
	c.num = strconv.AppendFloat(c.num[:0], f, 'g', -1, 64)
	return wr.Intern(c.num)
}

func (c *Converter) checkDuplicates(series []wire.Series) error {
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
