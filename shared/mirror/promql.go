package mirror

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The reserved condition keys: exactly one of them names what a metric
// query reads (src/prometheus_mirror/prometheus.py,
// extract_parameters_from_conditions).
const (
	keyGauge   = "__gauge__"
	keyCounter = "__counter__"
	keyTilde   = "~"
)

// reservedKeys in the order the original lists them in its errors.
var reservedKeys = []string{keyGauge, keyCounter, keyTilde}

// The condition value types (StackState's condition values; the original
// reads any other _type as str() of the value, and a missing one as
// StringValue).
const (
	valueString  = "StringValue"
	valueDouble  = "DoubleValue"
	valueBoolean = "BooleanValue"
	valueInSet   = "InSetValue"
)

// Bounds on a metric query's PromQL.
const (
	maxConditions  = 64       // conditions in one request
	maxSetMembers  = 1024     // InSetValue members, all conditions together
	maxQueryBytes  = 64 << 10 // the PromQL sent upstream
	counterRange   = "60"     // seconds: the counter's increase() window without aggregation, and subquery resolution
	minBucketMilli = 30_000   // the smallest bucket the original uses
	maxPoints      = 11_000   // Prometheus' own limit of points per series in a range query
	maxLabelBytes  = 16 << 10 // one label value
	maxSeriesNames = 1000     // series inspected for the labels that differ
)

// aggregation is how one StackState aggregation method becomes PromQL
// around a gauge's or a counter's selector (prometheus.py,
// gauge_aggregation and counter_aggregation). A gauge aggregates across
// the selected series at each step (avg, quantile, …), except EVENT_COUNT,
// which counts samples over the bucket; a counter takes the
// <fn>_over_time of its increase over the bucket, sampled every 60 s.
type aggregation struct {
	gauge   string // the gauge's function prefix; "" for count_over_time
	counter string // the counter's <fn>_over_time prefix
}

var aggregations = map[string]aggregation{
	"mean":          {"avg(", "avg_over_time("},
	"percentile_25": {"quantile(0.25,", "quantile_over_time(0.25,"},
	"percentile_50": {"quantile(0.50,", "quantile_over_time(0.50,"},
	"percentile_75": {"quantile(0.75,", "quantile_over_time(0.75,"},
	"percentile_90": {"quantile(0.90,", "quantile_over_time(0.90,"},
	"percentile_95": {"quantile(0.95,", "quantile_over_time(0.95,"},
	"percentile_98": {"quantile(0.98,", "quantile_over_time(0.98,"},
	"percentile_99": {"quantile(0.99,", "quantile_over_time(0.99,"},
	"max":           {"max(", "max_over_time("},
	"min":           {"min(", "min_over_time("},
	"sum":           {"sum(", "sum_over_time("},
	"event_count":   {"", "count_over_time("},
}

// requiredFieldError is the original's RequiredFieldException: no reserved
// key, or more than one, among the conditions.
type requiredFieldError struct{ msg string }

func (e *requiredFieldError) Error() string { return e.msg }

// buildQuery returns the PromQL of a metric query's conditions: the
// selector of the gauge or counter with the other conditions as matchers,
// wrapped in agg's function over windowSeconds when agg is not nil, or the
// ~ condition's PromQL as is (prometheus.py, PrometheusQuery.to_prometheus).
// Errors: *requiredFieldError, or *validationError for a name or value
// that cannot be written as PromQL.
func buildQuery(conds []conditionJSON, agg *aggregation, windowSeconds int64) (string, error) {
	var (
		kind, name string
		found      int
		rest       = make([]int, 0, len(conds))
	)
	for i, c := range conds {
		if slices.Contains(reservedKeys, *c.Key) {
			found++
			if found == 1 {
				kind = *c.Key
				v, err := pyStrJSON(c.Value.Value)
				if err != nil {
					return "", invalid("invalid value: "+err.Error(), "type_error", "query", "conditions", i, "value", "value")
				}
				name = v
			}
			continue
		}
		rest = append(rest, i)
	}
	switch {
	case found > 1:
		return "", &requiredFieldError{"Multiple values for " + pyStrList(reservedKeys)}
	case found == 0:
		return "", &requiredFieldError{"One of " + pyStrList(reservedKeys) + " is required"}
	}
	if kind == keyTilde {
		if len(name) > maxQueryBytes {
			return "", invalid("query longer than "+strconv.Itoa(maxQueryBytes)+" bytes", "value_error.any_str.max_length", "query", "conditions")
		}
		return name, nil
	}
	if !validMetricName(name) {
		return "", invalid("invalid metric name "+strconv.Quote(truncate(name, 256))+" (use ~ for PromQL)", "value_error.metric_name", "query", "conditions")
	}
	var b strings.Builder
	win := strconv.FormatInt(windowSeconds, 10)
	switch {
	case agg == nil:
		if kind == keyCounter {
			b.WriteString("increase(")
		}
	case kind == keyGauge && agg.gauge == "":
		b.WriteString("count_over_time(")
	case kind == keyGauge:
		b.WriteString(agg.gauge)
	default:
		b.WriteString(agg.counter)
		b.WriteString("increase(")
	}
	b.WriteString(name)
	b.WriteByte('{')
	members := 0
	for n, i := range rest {
		c := conds[i]
		if !validLabelName(*c.Key) {
			return "", invalid("invalid label name "+strconv.Quote(truncate(*c.Key, 256)), "value_error.label_name", "query", "conditions", i, "key")
		}
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString(*c.Key)
		if err := writeMatcher(&b, c.Value, &members, i); err != nil {
			return "", err
		}
		if b.Len() > maxQueryBytes {
			return "", invalid("query longer than "+strconv.Itoa(maxQueryBytes)+" bytes", "value_error.any_str.max_length", "query", "conditions")
		}
	}
	b.WriteByte('}')
	switch {
	case agg == nil:
		if kind == keyCounter {
			b.WriteString("[" + counterRange + "s])")
		}
	case kind == keyGauge && agg.gauge == "":
		b.WriteString("[" + win + "s])")
	case kind == keyGauge:
		b.WriteString(")")
	default:
		b.WriteString("[" + win + "s])[" + win + "s:" + counterRange + "s])")
	}
	return b.String(), nil
}

// writeMatcher writes ="value" or =~"regex" for one condition value
// (prometheus.py, _value_to_prometheus): StringValue as str(), DoubleValue
// as Python prints it, BooleanValue lower-case, InSetValue as the sorted
// members, each regexp-escaped in parentheses, joined with |. Values are
// quoted with strconv.Quote, whose escapes PromQL's string literals read.
func writeMatcher(b *strings.Builder, v *conditionValue, members *int, i int) error {
	typ := valueString
	if v.Type != nil {
		typ = *v.Type
	}
	loc := []any{"query", "conditions", i, "value", "value"}
	if typ == valueInSet {
		items, err := setMembers(v.Value)
		if err != nil {
			return invalid("InSetValue: "+err.Error(), "type_error.list", loc...)
		}
		if *members += len(items); *members > maxSetMembers {
			return invalid("more than "+strconv.Itoa(maxSetMembers)+" InSetValue members", "value_error.list.max_items", loc...)
		}
		var re strings.Builder
		for k, s := range items {
			if k > 0 {
				re.WriteByte('|')
			}
			re.WriteByte('(')
			re.WriteString(regexp.QuoteMeta(s))
			re.WriteByte(')')
		}
		b.WriteString("=~")
		b.WriteString(strconv.Quote(re.String()))
		return nil
	}
	s, err := pyStrJSON(v.Value)
	if err != nil {
		return invalid("invalid value: "+err.Error(), "type_error", loc...)
	}
	if typ == valueBoolean {
		s = strings.ToLower(s)
	}
	if len(s) > maxLabelBytes {
		return invalid("label value longer than "+strconv.Itoa(maxLabelBytes)+" bytes", "value_error.any_str.max_length", loc...)
	}
	b.WriteByte('=')
	b.WriteString(strconv.Quote(s))
	return nil
}

// setMembers returns an InSetValue's members as Python sorts and prints
// them: all strings, sorted by code point, or all numbers (booleans are
// numbers in Python), sorted by value and printed as pyNumber. A mixed or
// nested set is an error (Python's sorted() raises TypeError on it).
func setMembers(raw json.RawMessage) ([]string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, errSetNotList
	}
	type num struct {
		v float64
		s string
	}
	var strs []string
	var nums []num
	for _, it := range items {
		it = bytes.TrimSpace(it)
		switch {
		case len(it) > 0 && it[0] == '"':
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, err
			}
			strs = append(strs, s)
		case string(it) == "true" || string(it) == "false":
			v, s := 0.0, "False"
			if string(it) == "true" {
				v, s = 1, "True"
			}
			nums = append(nums, num{v, s})
		case len(it) > 0 && (it[0] == '-' || (it[0] >= '0' && it[0] <= '9')):
			f, err := strconv.ParseFloat(string(it), 64)
			if err != nil && f == 0 {
				return nil, err
			}
			nums = append(nums, num{f, pyNumber(string(it))})
		default:
			return nil, errSetMember
		}
	}
	if len(strs) > 0 && len(nums) > 0 {
		return nil, errSetMixed
	}
	if len(nums) > 0 {
		slices.SortStableFunc(nums, func(a, b num) int {
			switch {
			case a.v < b.v:
				return -1
			case a.v > b.v:
				return 1
			}
			return 0
		})
		for _, n := range nums {
			strs = append(strs, n.s)
		}
		return strs, nil
	}
	slices.Sort(strs)
	if strs == nil {
		strs = []string{}
	}
	return strs, nil
}

type setError string

func (e setError) Error() string { return string(e) }

const (
	errSetNotList = setError("value must be a list")
	errSetMember  = setError("members must be strings, numbers or booleans")
	errSetMixed   = setError("members must be all strings or all numbers")
)

// validLabelName reports whether s is a Prometheus label name
// ([a-zA-Z_][a-zA-Z0-9_]*, the names PromQL writes without quotes).
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validMetricName reports whether s is a Prometheus metric name
// ([a-zA-Z_:][a-zA-Z0-9_:]*).
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
