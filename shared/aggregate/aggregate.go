// Package aggregate adds the increments of one push to the totals of an
// aggregated group: what a fleet of short-lived invocations, each pushing
// what it counted with a fresh registry, adds up to. It is pure: no store,
// no clock, no upstream; shared/pushstate applies it inside a group store
// update.
//
// The rules (the Pushgateway itself never adds, see
// https://github.com/prometheus/pushgateway#about-the-job-and-instance-labels):
//
//	family type       series                          rule
//	counter           every series                    added; increment ≥ 0
//	histogram         name_bucket, name_count         added; increment ≥ 0
//	histogram         name_sum                        added; any finite increment
//	summary           name_count                      added; increment ≥ 0
//	summary           name_sum                        added; any finite increment
//	summary           name{quantile="q"}              last pushed value
//	gauge, untyped,   every series                    last pushed value
//	gauge histogram,
//	info, stateset
//
// A series seen for the first time starts at its first increment. What
// totals cannot continue through is a *ConflictError: a family pushed with
// another type than its totals have, a histogram whose bucket boundaries
// changed (new and old buckets would no longer be cumulative, and
// histogram_quantile would be wrong), and a series two families of the
// group would both own (a counter foo_count beside a summary foo).
package aggregate

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/wire"
)

// Rule is how one series of a push combines with its total.
type Rule int

// The rules of RuleOf.
const (
	// Last: the pushed value replaces the total (gauges, untyped samples,
	// summary quantiles).
	Last Rule = iota
	// Add: the pushed value is added; it may be negative but must be
	// finite (histogram and summary _sum).
	Add
	// AddNonNegative: the pushed value is added and must be finite and
	// ≥ 0, so the total never decreases (counters, histogram buckets and
	// _count, summary _count).
	AddNonNegative
)

// String names the rule as the package doc's table does.
func (r Rule) String() string {
	switch r {
	case Add:
		return "added"
	case AddNonNegative:
		return "added (never negative)"
	}
	return "last value"
}

// RuleOf returns the rule of the series called name (its __name__) of the
// metric family family of type typ, as shared/push.Converter names the
// series of a family: name for counters, gauges, untyped metrics and
// summary quantiles; name_bucket, name_sum and name_count for histograms;
// name_sum and name_count for summaries.
func RuleOf(typ wire.MetadataType, family, name string) Rule {
	suffix, ok := strings.CutPrefix(name, family)
	switch typ {
	case wire.MetadataCounter:
		return AddNonNegative
	case wire.MetadataHistogram:
		switch {
		case ok && suffix == "_sum":
			return Add
		case ok && (suffix == "_bucket" || suffix == "_count"):
			return AddNonNegative
		}
	case wire.MetadataSummary:
		switch {
		case ok && suffix == "_sum":
			return Add
		case ok && suffix == "_count":
			return AddNonNegative
		}
	}
	return Last
}

// IncrementError is a pushed increment that cannot be added: negative for
// a total that never decreases, or not finite (NaN or ±Inf would stick in
// the total forever). Nothing of the push is applied.
type IncrementError struct {
	Series string  // the series, formatted as name{labels}
	Value  float64 // the pushed increment
	Rule   Rule
	// Overflow is set when the increment is finite but the total it
	// makes is not (beyond ±1.8e308).
	Overflow bool
}

func (e *IncrementError) Error() string {
	what := "negative, and its total never decreases"
	switch {
	case e.Overflow:
		what = "too large: the total would overflow to infinity and stay there"
	case math.IsNaN(e.Value) || math.IsInf(e.Value, 0):
		what = "not finite, and would stay in its total"
	}
	return fmt.Sprintf("series %s: increment %v is %s; an aggregated push carries what one invocation counted (push from a fresh registry), not a running total",
		e.Series, e.Value, what)
}

// ConflictError is a push that the group's totals cannot take without
// becoming wrong: a family pushed with another type, a histogram pushed
// with other bucket boundaries for a label set, or a series that another
// family of the group already owns. Nothing of the push is applied; the
// relay answers 409 (DELETE the group to start it again with the new
// layout).
type ConflictError struct {
	Family string // the pushed family
	Msg    string // what conflicts, for the answer
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("metric family %s: %s; an aggregated group's totals cannot continue through that (DELETE the group to start it again)", e.Family, e.Msg)
}

// maxFormatted bounds the series name in an IncrementError, in bytes.
const maxFormatted = 512

// Merge returns the totals of a group after a push of increments onto
// totals (nil for a new group), by the rules of RuleOf. Both maps are keyed
// by family name, as groupstore.Group.Families; a series is identified by
// its whole label set (__name__ included). Families and series the push
// does not carry keep their totals. HELP and UNIT come from the push.
//
// Neither input is modified: the result shares the families of totals
// that the push does not touch and copies the others. The work and the
// memory are linear in the series of both.
//
// Errors: *IncrementError for the first increment that cannot be added;
// *ConflictError for a family whose type or bucket boundaries changed, or a
// series two families would own.
func Merge(totals, increments map[string]*groupstore.Family) (map[string]*groupstore.Family, error) {
	out := make(map[string]*groupstore.Family, len(totals)+len(increments))
	for name, f := range totals {
		out[name] = f
	}
	var key []byte
	for name, inc := range increments {
		old := totals[name]
		if old != nil && old.Type != inc.Type {
			return nil, &ConflictError{Family: name, Msg: fmt.Sprintf("pushed as %s, its totals are %s", typeName(inc.Type), typeName(old.Type))}
		}
		if old != nil && (inc.Type == wire.MetadataHistogram || inc.Type == wire.MetadataGaugeHistogram) {
			if err := sameBuckets(name, old, inc); err != nil {
				return nil, err
			}
		}
		f := &groupstore.Family{Type: inc.Type, Help: inc.Help, Unit: inc.Unit}
		index := map[string]int{}
		if old != nil {
			f.Series = make([]groupstore.Series, len(old.Series), len(old.Series)+len(inc.Series))
			copy(f.Series, old.Series)
			for i, s := range old.Series {
				key = wire.AppendLabelsKey(key[:0], s.Labels)
				index[string(key)] = i
			}
		} else {
			f.Series = make([]groupstore.Series, 0, len(inc.Series))
		}
		for _, s := range inc.Series {
			v := s.Float()
			rule := RuleOf(inc.Type, name, metricName(s.Labels))
			if rule != Last && (math.IsNaN(v) || math.IsInf(v, 0) || (rule == AddNonNegative && v < 0)) {
				return nil, &IncrementError{Series: wire.FormatLabels(s.Labels, maxFormatted), Value: v, Rule: rule}
			}
			key = wire.AppendLabelsKey(key[:0], s.Labels)
			i, seen := index[string(key)]
			if !seen {
				index[string(key)] = len(f.Series)
				f.Series = append(f.Series, s)
				continue
			}
			if rule != Last {
				inc := v
				v += f.Series[i].Float()
				if math.IsInf(v, 0) {
					return nil, &IncrementError{Series: wire.FormatLabels(s.Labels, maxFormatted), Value: inc, Rule: rule, Overflow: true}
				}
			}
			f.Series[i].Value = math.Float64bits(v)
		}
		out[name] = f
	}
	if err := ownedOnce(out, increments); err != nil {
		return nil, err
	}
	return out, nil
}

// typeName is typ as the text format's TYPE line spells it.
func typeName(typ wire.MetadataType) string {
	switch typ {
	case wire.MetadataCounter:
		return "counter"
	case wire.MetadataGauge:
		return "gauge"
	case wire.MetadataHistogram:
		return "histogram"
	case wire.MetadataGaugeHistogram:
		return "gaugehistogram"
	case wire.MetadataSummary:
		return "summary"
	case wire.MetadataInfo:
		return "info"
	case wire.MetadataStateset:
		return "stateset"
	}
	return "untyped"
}

// sameBuckets returns a *ConflictError when the histogram family name is
// pushed (inc) with another set of le boundaries than its totals (old)
// hold, for a label set both have.
func sameBuckets(name string, old, inc *groupstore.Family) error {
	bucket := name + "_bucket"
	layouts := func(f *groupstore.Family) map[string]string {
		m := map[string]string{}
		var key []byte
		for _, s := range f.Series {
			if metricName(s.Labels) != bucket {
				continue
			}
			key = key[:0]
			le := ""
			for _, l := range s.Labels {
				if l.Name == "le" {
					le = l.Value
					continue
				}
				key = wire.AppendLabelsKey(key, []wire.Label{l})
			}
			m[string(key)] += le + ","
		}
		return m
	}
	was := layouts(old)
	for base, les := range layouts(inc) {
		if prev, ok := was[base]; ok && !sameSet(prev, les) {
			return &ConflictError{Family: name, Msg: fmt.Sprintf("pushed with buckets le=%s, its totals have le=%s", strings.TrimSuffix(les, ","), strings.TrimSuffix(prev, ","))}
		}
	}
	return nil
}

// sameSet reports whether two comma-terminated lists hold the same items.
func sameSet(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := strings.Split(a, ","), strings.Split(b, ",")
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// seriesSuffixes are what shared/push.Converter appends to a family's
// name for its series: a family x has series named x, x_bucket, x_sum or
// x_count.
var seriesSuffixes = []string{"_bucket", "_sum", "_count"}

// ownedOnce returns a *ConflictError when a series of a pushed family is
// also a series of another family of the group (the upstream would get
// two samples of one series at one timestamp, and refuse the group's
// every write). Only the families that can have a series of a pushed
// family's names are read (a series named n belongs to family n, or to n
// less one of seriesSuffixes): the work is that of the families the push
// touches, not of the whole group.
func ownedOnce(group, pushed map[string]*groupstore.Family) error {
	owner := map[string]string{}
	candidates := map[string]bool{}
	var key []byte
	for name := range pushed {
		for _, s := range group[name].Series {
			key = wire.AppendLabelsKey(key[:0], s.Labels)
			owner[string(key)] = name
			n := metricName(s.Labels)
			candidates[n] = true
			for _, suffix := range seriesSuffixes {
				if base, ok := strings.CutSuffix(n, suffix); ok {
					candidates[base] = true
				}
			}
		}
	}
	for name := range candidates {
		f := group[name]
		if f == nil {
			continue
		}
		for _, s := range f.Series {
			key = wire.AppendLabelsKey(key[:0], s.Labels)
			if o, ok := owner[string(key)]; ok && o != name {
				return &ConflictError{Family: o, Msg: fmt.Sprintf("its series %s is also a series of family %s in the group", wire.FormatLabels(s.Labels, maxFormatted), name)}
			}
		}
	}
	return nil
}

func metricName(ls []wire.Label) string {
	for _, l := range ls {
		if l.Name == wire.MetricNameLabel {
			return l.Value
		}
	}
	return ""
}
