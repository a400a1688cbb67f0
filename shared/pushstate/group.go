package pushstate

import (
	"math"
	"slices"
	"strings"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// allSeries returns every series of g, families in name order.
func allSeries(g *groupstore.Group) []groupstore.Series {
	if g == nil {
		return nil
	}
	names := make([]string, 0, len(g.Families))
	for n := range g.Families {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []groupstore.Series
	for _, n := range names {
		out = append(out, g.Families[n].Series...)
	}
	return out
}

func seriesKey(ls []wire.Label) string { return string(wire.AppendLabelsKey(nil, ls)) }

// removed returns the series of old that are not in new: those that need a
// staleness marker after new replaced old.
func removed(old, new *groupstore.Group) []groupstore.Series {
	keep := map[string]bool{}
	for _, s := range allSeries(new) {
		keep[seriesKey(s.Labels)] = true
	}
	var out []groupstore.Series
	for _, s := range allSeries(old) {
		if !keep[seriesKey(s.Labels)] {
			out = append(out, s)
		}
	}
	return out
}

// addStale adds series to g's pending staleness markers, once each.
func addStale(g *groupstore.Group, series []groupstore.Series) {
	have := map[string]bool{}
	for _, s := range g.Stale {
		have[seriesKey(s.Labels)] = true
	}
	for _, s := range series {
		if k := seriesKey(s.Labels); !have[k] {
			have[k] = true
			g.Stale = append(g.Stale, groupstore.Series{Labels: s.Labels})
		}
	}
}

// clearStale drops the pending markers of the series in sent (they reached
// the upstream, or the series is back in the group).
func clearStale(g *groupstore.Group, sent []groupstore.Series) {
	if len(g.Stale) == 0 {
		return
	}
	done := map[string]bool{}
	for _, s := range sent {
		done[seriesKey(s.Labels)] = true
	}
	kept := g.Stale[:0]
	for _, s := range g.Stale {
		if !done[seriesKey(s.Labels)] {
			kept = append(kept, s)
		}
	}
	g.Stale = kept
}

// timeLabels is name{<group key>}: the key's labels (sorted, without
// empty values, as push.Converter makes them) with __name__ in its sorted
// place.
func timeLabels(name string, key groupstore.LabelSet) []wire.Label {
	return wire.MergeLabels(nil, key, []wire.Label{{Name: wire.MetricNameLabel, Value: name}})
}

// staleSeries returns the series a deletion of g removes: every current
// series plus push_time_seconds and push_failure_time_seconds.
func staleSeries(g *groupstore.Group) []groupstore.Series {
	out := allSeries(g)
	for _, name := range []string{push.PushTimeMetric, push.PushFailureTimeMetric} {
		out = append(out, groupstore.Series{Labels: timeLabels(name, g.Key)})
	}
	return out
}

// appendGroup appends to wr what the upstream must hold for g at time now
// (Unix ms): every current series with a fresh timestamp (unless g is
// deleted), push_time_seconds and push_failure_time_seconds with the
// group's own times, and a staleness marker for each series in g.Stale.
func appendGroup(wr *wire.WriteRequest, g *groupstore.Group, now int64) {
	if !g.Deleted {
		for _, s := range allSeries(g) {
			wr.AppendSample(wr.AppendLabels(s.Labels...), wire.Sample{Value: s.Float(), Timestamp: now})
		}
		for _, m := range []struct {
			name string
			ms   int64
		}{{push.PushTimeMetric, g.PushTime}, {push.PushFailureTimeMetric, g.FailureTime}} {
			wr.AppendSample(wr.AppendLabels(timeLabels(m.name, g.Key)...), wire.Sample{Value: float64(m.ms) / 1000, Timestamp: now})
		}
	}
	appendStale(wr, g.Stale, now)
}

// appendStale appends a staleness marker at now (Unix ms) for each series.
func appendStale(wr *wire.WriteRequest, series []groupstore.Series, now int64) {
	stale := math.Float64frombits(StaleNaN)
	for _, s := range series {
		wr.AppendSample(wr.AppendLabels(s.Labels...), wire.Sample{Value: stale, Timestamp: now})
	}
}

func withoutName(ls []wire.Label) []wire.Label {
	out := make([]wire.Label, 0, len(ls))
	for _, l := range ls {
		if l.Name != wire.MetricNameLabel {
			out = append(out, l)
		}
	}
	return out
}

// cloneLabels copies ls and its strings out of a request's reused memory.
func cloneLabels(ls []wire.Label) []wire.Label {
	out := make([]wire.Label, len(ls))
	for i, l := range ls {
		out[i] = wire.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	return out
}
