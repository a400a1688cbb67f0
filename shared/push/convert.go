package push

import (
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"time"

	"github.com/promrelay/promrelay/shared/wire"
)

// Names of the series the Pushgateway adds to every group.
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

	base   []wire.Label
	num    []byte
	seen   map[uint64]int32
	seed   maphash.Seed
	seeded bool
}

// Convert appends to wr the series of every metric in e, as a Prometheus
// scraping a Pushgateway would store them after this push:
//
//   - the grouping key's labels replace labels of the same name in the body;
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
// timestamp, and two metrics that end up as the same series.
func (c *Converter) Convert(wr *wire.WriteRequest, e *wire.Exposition, key GroupingKey, now time.Time) error {
	if !c.seeded {
		c.seed, c.seeded = maphash.MakeSeed(), true
		c.seen = make(map[uint64]int32)
	}
	clear(c.seen)
	c.SeriesFamily = c.SeriesFamily[:0]
	ts := now.UnixMilli()
	first := len(wr.Series)

	for i := range e.Metrics {
		m := &e.Metrics[i]
		f := &e.Families[m.Family]
		if f.Dropped {
			continue
		}
		if m.HasTimestamp {
			return &InvalidError{Msg: fmt.Sprintf("pushed metrics must not have timestamps: metric %s has timestamp %d", wire.FormatLabels(withName(m.Labels, f.Name), 256), m.TimestampMs)}
		}
		c.baseLabels(m.Labels, key)
		switch f.Type {
		case wire.Counter, wire.Gauge, wire.Untyped:
			c.add(wr, f.Name, "", wire.Label{}, m.Value, ts)
		case wire.Summary:
			for p := m.FirstPoint; p >= 0; p = e.Points[p].Next {
				pt := &e.Points[p]
				c.add(wr, f.Name, "", wire.Label{Name: "quantile", Value: c.formatFloat(wr, pt.Bound)}, pt.Value, ts)
			}
			c.add(wr, f.Name, "_sum", wire.Label{}, m.Sum, ts)
			c.add(wr, f.Name, "_count", wire.Label{}, float64(m.Count), ts)
		case wire.Histogram, wire.GaugeHistogram:
			infSeen := false
			for p := m.FirstPoint; p >= 0; p = e.Points[p].Next {
				pt := &e.Points[p]
				infSeen = infSeen || math.IsInf(pt.Bound, +1)
				c.add(wr, f.Name, "_bucket", wire.Label{Name: "le", Value: c.formatFloat(wr, pt.Bound)}, pt.CumulativeCount(), ts)
			}
			if !infSeen {
				c.add(wr, f.Name, "_bucket", wire.Label{Name: "le", Value: "+Inf"}, m.HistogramCount(), ts)
			}
			c.add(wr, f.Name, "_sum", wire.Label{}, m.Sum, ts)
			c.add(wr, f.Name, "_count", wire.Label{}, m.HistogramCount(), ts)
		}
	}
	for i := range e.Families {
		f := &e.Families[i]
		if f.Dropped || f.Metrics == 0 {
			continue
		}
		wr.Metadata = append(wr.Metadata, wire.Metadata{Type: metadataType(f.Type), FamilyName: f.Name, Help: f.Help, Unit: f.Unit})
	}

	// push_time_seconds{<grouping key>}
	c.baseLabels(nil, key)
	c.add(wr, PushTimeMetric, "", wire.Label{}, float64(now.UnixNano())/1e9, ts)
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: PushTimeMetric, Help: "Last Unix time when changing this group in the Pushgateway succeeded."})

	return c.checkDuplicates(wr.Series[first:])
}

// FailureSeries appends the push_failure_time_seconds{<grouping key>} gauge
// for a push that was rejected at time now.
func (c *Converter) FailureSeries(wr *wire.WriteRequest, key GroupingKey, now time.Time) {
	c.baseLabels(nil, key)
	c.add(wr, PushFailureTimeMetric, "", wire.Label{}, float64(now.UnixNano())/1e9, now.UnixMilli())
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: PushFailureTimeMetric, Help: "Last Unix time when changing this group in the Pushgateway failed."})
}

func withName(ls []wire.Label, name string) []wire.Label {
	out := make([]wire.Label, 0, len(ls)+1)
	out = append(out, wire.Label{Name: wire.MetricNameLabel, Value: name})
	return append(out, ls...)
}

// baseLabels sets c.base to the metric's labels with the grouping key
// applied, sorted by name, without empty values.
func (c *Converter) baseLabels(ls []wire.Label, key GroupingKey) {
	c.base = c.base[:0]
outer:
	for _, l := range ls {
		if l.Value == "" {
			continue
		}
		for _, k := range key {
			if k.Name == l.Name {
				continue outer
			}
		}
		c.base = append(c.base, l)
	}
	for _, k := range key {
		if k.Value != "" {
			c.base = append(c.base, k)
		}
	}
	// Insertion sort: label sets are small and often nearly sorted.
	for i := 1; i < len(c.base); i++ {
		for j := i; j > 0 && c.base[j].Name < c.base[j-1].Name; j-- {
			c.base[j], c.base[j-1] = c.base[j-1], c.base[j]
		}
	}
}

// add appends one series: c.base plus __name__=name+suffix plus the extra
// label (when its name is set), sorted.
func (c *Converter) add(wr *wire.WriteRequest, name, suffix string, extra wire.Label, v float64, ts int64) {
	fullName := name
	if suffix != "" {
		c.num = append(append(c.num[:0], name...), suffix...)
		fullName = wr.Intern(c.num)
	}
	insert := [2]wire.Label{{Name: wire.MetricNameLabel, Value: fullName}, extra}
	n := 1
	if extra.Name != "" {
		n = 2
		if extra.Name < insert[0].Name {
			insert[0], insert[1] = insert[1], insert[0]
		}
	}
	store := wr.LabelStore()
	start := len(store)
	j := 0
	for _, l := range c.base {
		for j < n && insert[j].Name < l.Name {
			store = append(store, insert[j])
			j++
		}
		if j < n && insert[j].Name == l.Name {
			// A body or key label named like le/quantile is replaced.
			continue
		}
		store = append(store, l)
	}
	store = append(store, insert[j:n]...)
	wr.AppendSample(wr.CommitLabels(store, start), wire.Sample{Value: v, Timestamp: ts})
	c.SeriesFamily = append(c.SeriesFamily, name)
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
		var h maphash.Hash
		h.SetSeed(c.seed)
		for _, l := range series[i].Labels {
			h.WriteString(l.Name)
			h.WriteByte(0xff)
			h.WriteString(l.Value)
			h.WriteByte(0xff)
		}
		sum := h.Sum64()
		if j, ok := c.seen[sum]; ok && equalLabels(series[j].Labels, series[i].Labels) {
			return &InvalidError{Msg: fmt.Sprintf("duplicate series %s: two pushed metrics have the same name and label values", wire.FormatLabels(series[i].Labels, 256))}
		}
		c.seen[sum] = int32(i)
	}
	return nil
}

func equalLabels(a, b []wire.Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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
