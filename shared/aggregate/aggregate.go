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
// A series seen for the first time starts at its first increment. A family
// whose type changed starts again from the pushed family (its old series
// leave the group).
package aggregate

import (
	"fmt"
	"math"
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
// Errors: *IncrementError for the first increment that cannot be added.
func Merge(totals, increments map[string]*groupstore.Family) (map[string]*groupstore.Family, error) {
	out := make(map[string]*groupstore.Family, len(totals)+len(increments))
	for name, f := range totals {
		out[name] = f
	}
	var key []byte
	for name, inc := range increments {
		old := totals[name]
		if old != nil && old.Type != inc.Type {
			old = nil // the family changed type: it starts again
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
	return out, nil
}

func metricName(ls []wire.Label) string {
	for _, l := range ls {
		if l.Name == wire.MetricNameLabel {
			return l.Value
		}
	}
	return ""
}
