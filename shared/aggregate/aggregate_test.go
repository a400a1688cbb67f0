package aggregate

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/wire"
)

func series(name string, v float64, kv ...string) groupstore.Series {
	ls := []wire.Label{{Name: wire.MetricNameLabel, Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, wire.Label{Name: kv[i], Value: kv[i+1]})
	}
	return groupstore.Series{Labels: ls, Value: math.Float64bits(v)}
}

// push is what one invocation pushes: a counter, a histogram with two
// buckets, a summary with one quantile and a gauge.
func push(obs float64, gauge float64) map[string]*groupstore.Family {
	le1 := 0.0
	if obs <= 1 {
		le1 = 1
	}
	return map[string]*groupstore.Family{
		"jobs_total": {Type: wire.MetadataCounter, Help: "jobs", Series: []groupstore.Series{series("jobs_total", 1)}},
		"latency_seconds": {Type: wire.MetadataHistogram, Series: []groupstore.Series{
			series("latency_seconds_bucket", le1, "le", "1"), series("latency_seconds_bucket", 1, "le", "+Inf"),
			series("latency_seconds_sum", obs), series("latency_seconds_count", 1)}},
		"size_bytes": {Type: wire.MetadataSummary, Series: []groupstore.Series{
			series("size_bytes", obs, "quantile", "0.5"), series("size_bytes_sum", obs), series("size_bytes_count", 1)}},
		"last_run": {Type: wire.MetadataGauge, Series: []groupstore.Series{series("last_run", gauge)}},
	}
}

func value(t *testing.T, fams map[string]*groupstore.Family, fam, name string, kv ...string) float64 {
	t.Helper()
	want := series(name, 0, kv...)
	f := fams[fam]
	if f == nil {
		t.Fatalf("no family %s", fam)
	}
	for _, s := range f.Series {
		if string(wire.AppendLabelsKey(nil, s.Labels)) == string(wire.AppendLabelsKey(nil, want.Labels)) {
			return s.Float()
		}
	}
	t.Fatalf("no series %s %v in %s", name, kv, fam)
	return 0
}

func TestMergeRules(t *testing.T) {
	var totals map[string]*groupstore.Family
	obs := []float64{0.5, 2, 0.25}
	for i, o := range obs {
		next, err := Merge(totals, push(o, float64(i+10)))
		if err != nil {
			t.Fatal(err)
		}
		totals = next
	}
	for _, c := range []struct {
		fam, name string
		kv        []string
		want      float64
	}{
		{"jobs_total", "jobs_total", nil, 3},
		{"latency_seconds", "latency_seconds_bucket", []string{"le", "1"}, 2},
		{"latency_seconds", "latency_seconds_bucket", []string{"le", "+Inf"}, 3},
		{"latency_seconds", "latency_seconds_sum", nil, 2.75},
		{"latency_seconds", "latency_seconds_count", nil, 3},
		{"size_bytes", "size_bytes", []string{"quantile", "0.5"}, 0.25}, // last
		{"size_bytes", "size_bytes_sum", nil, 2.75},
		{"size_bytes", "size_bytes_count", nil, 3},
		{"last_run", "last_run", nil, 12}, // last
	} {
		if got := value(t, totals, c.fam, c.name, c.kv...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.kv, got, c.want)
		}
	}
}

func TestMergeKeepsAndStarts(t *testing.T) {
	totals, err := Merge(nil, map[string]*groupstore.Family{
		"a_total": {Type: wire.MetadataCounter, Series: []groupstore.Series{series("a_total", 5, "w", "1")}},
		"b":       {Type: wire.MetadataGauge, Series: []groupstore.Series{series("b", 7)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := totals["a_total"].Series[0].Value
	next, err := Merge(totals, map[string]*groupstore.Family{
		"a_total": {Type: wire.MetadataCounter, Help: "new help", Series: []groupstore.Series{series("a_total", 2, "w", "2")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if totals["a_total"].Series[0].Value != before || len(totals["a_total"].Series) != 1 {
		t.Fatal("Merge modified its input")
	}
	if got := value(t, next, "a_total", "a_total", "w", "1"); got != 5 {
		t.Errorf("series the push does not carry: %v, want 5 kept", got)
	}
	if got := value(t, next, "a_total", "a_total", "w", "2"); got != 2 {
		t.Errorf("new series: %v, want its first increment 2", got)
	}
	if got := value(t, next, "b", "b"); got != 7 {
		t.Errorf("family the push does not carry: %v, want 7 kept", got)
	}
	if next["a_total"].Help != "new help" {
		t.Errorf("HELP %q, want the push's", next["a_total"].Help)
	}
}

// TestMergeConflicts: what the totals cannot continue through is a
// *ConflictError naming the family, and nothing changes — a family pushed
// with another type, a histogram with other buckets for a label set both
// have, and a series two families would own (review findings: a type
// change silently reset a fleet's counter; new buckets beside old ones
// were not cumulative; a counter foo_count beside a summary foo made every
// write of the group a duplicate sample).
func TestMergeConflicts(t *testing.T) {
	hist := func(les ...string) *groupstore.Family {
		f := &groupstore.Family{Type: wire.MetadataHistogram}
		for _, le := range les {
			f.Series = append(f.Series, series("h_bucket", 1, "w", "1", "le", le))
		}
		f.Series = append(f.Series, series("h_count", 1, "w", "1"), series("h_sum", 0.5, "w", "1"))
		return f
	}
	totals, err := Merge(nil, map[string]*groupstore.Family{
		"a_total":   {Type: wire.MetadataCounter, Series: []groupstore.Series{series("a_total", 5)}},
		"h":         hist("1", "+Inf"),
		"foo_count": {Type: wire.MetadataCounter, Series: []groupstore.Series{series("foo_count", 5)}},
		"gh":        {Type: wire.MetadataGaugeHistogram, Series: []groupstore.Series{series("gh_bucket", 1, "le", "1"), series("gh_bucket", 1, "le", "+Inf")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fam  *groupstore.Family
		want string
	}{
		{"a_total", &groupstore.Family{Type: wire.MetadataGauge, Series: []groupstore.Series{series("a_total", 1)}}, "pushed as gauge, its totals are counter"},
		{"a_total", &groupstore.Family{Type: wire.MetadataUnknown, Series: []groupstore.Series{series("a_total", 1)}}, "pushed as untyped, its totals are counter"},
		{"h", hist("0.5", "2", "+Inf"), "pushed with buckets le=0.5,2,+Inf, its totals have le=1,+Inf"},
		{"gh", &groupstore.Family{Type: wire.MetadataGaugeHistogram, Series: []groupstore.Series{series("gh_bucket", 1, "le", "3"), series("gh_bucket", 1, "le", "+Inf")}}, "pushed with buckets le=3,+Inf, its totals have le=1,+Inf"},
		{"foo", &groupstore.Family{Type: wire.MetadataSummary, Series: []groupstore.Series{series("foo_count", 1), series("foo_sum", 1)}}, `its series foo_count{} is also a series of family foo_count`},
		{"h_sum", &groupstore.Family{Type: wire.MetadataCounter, Series: []groupstore.Series{series("h_sum", 1, "w", "1")}}, `is also a series of family h`},
	} {
		_, err := Merge(totals, map[string]*groupstore.Family{c.name: c.fam})
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Family != c.name || !strings.Contains(err.Error(), c.want) {
			t.Errorf("push of %s: %v, want a ConflictError of %s saying %q", c.name, err, c.name, c.want)
		}
	}
	// The same buckets in another order, and a new label set with other
	// buckets, are fine.
	same := hist("+Inf", "1")
	other := &groupstore.Family{Type: wire.MetadataHistogram, Series: []groupstore.Series{
		series("h_bucket", 1, "w", "2", "le", "5"), series("h_bucket", 1, "w", "2", "le", "+Inf")}}
	for _, f := range []*groupstore.Family{same, other} {
		if _, err := Merge(totals, map[string]*groupstore.Family{"h": f}); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
}

func TestMergeRefuses(t *testing.T) {
	totals, _ := Merge(nil, push(1, 1))
	for _, c := range []struct {
		fam  *groupstore.Family
		name string
	}{
		{&groupstore.Family{Type: wire.MetadataCounter, Series: []groupstore.Series{series("jobs_total", -1)}}, "jobs_total"},
		{&groupstore.Family{Type: wire.MetadataCounter, Series: []groupstore.Series{series("jobs_total", math.NaN())}}, "jobs_total"},
		{&groupstore.Family{Type: wire.MetadataHistogram, Series: []groupstore.Series{series("latency_seconds_bucket", -1, "le", "1"), series("latency_seconds_bucket", 1, "le", "+Inf")}}, "latency_seconds"},
		{&groupstore.Family{Type: wire.MetadataHistogram, Series: []groupstore.Series{series("latency_seconds_count", -2)}}, "latency_seconds"},
		{&groupstore.Family{Type: wire.MetadataHistogram, Series: []groupstore.Series{series("latency_seconds_sum", math.Inf(1))}}, "latency_seconds"},
		{&groupstore.Family{Type: wire.MetadataSummary, Series: []groupstore.Series{series("size_bytes_count", -1)}}, "size_bytes"},
	} {
		_, err := Merge(totals, map[string]*groupstore.Family{c.name: c.fam})
		var ie *IncrementError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), metricName(c.fam.Series[0].Labels)) {
			t.Errorf("%s %v: %v, want an IncrementError naming the series", c.name, c.fam.Series[0].Float(), err)
		}
	}
	// Finite increments whose total is not: refused, naming the series.
	big := map[string]*groupstore.Family{"jobs_total": {Type: wire.MetadataCounter, Series: []groupstore.Series{series("jobs_total", 1e308)}}}
	once, err := Merge(nil, big)
	if err != nil {
		t.Fatal(err)
	}
	var ie *IncrementError
	if _, err := Merge(once, big); !errors.As(err, &ie) || !ie.Overflow || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("1e308 + 1e308: %v, want an overflow IncrementError", err)
	}
	// Negative is fine where the rule allows it.
	for name, f := range map[string]*groupstore.Family{
		"latency_seconds": {Type: wire.MetadataHistogram, Series: []groupstore.Series{series("latency_seconds_sum", -3)}},
		"gauge_seconds":   {Type: wire.MetadataGauge, Series: []groupstore.Series{series("gauge_seconds", -3)}},
		"summary_seconds": {Type: wire.MetadataSummary, Series: []groupstore.Series{series("summary_seconds", math.NaN(), "quantile", "0.9")}},
	} {
		if _, err := Merge(totals, map[string]*groupstore.Family{name: f}); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
}

func TestRuleOf(t *testing.T) {
	for _, c := range []struct {
		typ       wire.MetadataType
		fam, name string
		want      Rule
	}{
		{wire.MetadataCounter, "x_total", "x_total", AddNonNegative},
		{wire.MetadataGauge, "x", "x", Last},
		{wire.MetadataUnknown, "x", "x", Last},
		{wire.MetadataHistogram, "x", "x_bucket", AddNonNegative},
		{wire.MetadataHistogram, "x", "x_count", AddNonNegative},
		{wire.MetadataHistogram, "x", "x_sum", Add},
		{wire.MetadataGaugeHistogram, "x", "x_bucket", Last},
		{wire.MetadataSummary, "x", "x", Last},
		{wire.MetadataSummary, "x", "x_sum", Add},
		{wire.MetadataSummary, "x", "x_count", AddNonNegative},
		{wire.MetadataSummary, "x", "y_count", Last},
	} {
		if got := RuleOf(c.typ, c.fam, c.name); got != c.want {
			t.Errorf("RuleOf(%v, %s, %s) = %v, want %v", c.typ, c.fam, c.name, got, c.want)
		}
	}
}

// FuzzMerge pushes a sequence of increments decoded from the input and
// checks the totals against a plain sum kept beside: added series equal
// the sum of their increments, last-value series the last increment, a
// refused push (a negative increment, a total that would overflow)
// changes nothing, and a never-negative total never decreases.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{1, 255, 2, 128, 3, 3, 0, 0, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		type want struct {
			rule Rule
			v    float64
		}
		names := []struct {
			typ       wire.MetadataType
			fam, name string
			kv        []string
		}{
			{wire.MetadataCounter, "c_total", "c_total", nil},
			{wire.MetadataCounter, "c_total", "c_total", []string{"w", "1"}},
			{wire.MetadataHistogram, "h", "h_bucket", []string{"le", "1"}},
			{wire.MetadataHistogram, "h", "h_sum", nil},
			{wire.MetadataGauge, "g", "g", nil},
			{wire.MetadataSummary, "s", "s", []string{"quantile", "0.5"}},
		}
		expect := map[int]want{}
		var totals map[string]*groupstore.Family
		for len(data) >= 2 {
			n := int(data[0]) % 3
			data = data[1:]
			inc := map[string]*groupstore.Family{}
			pushed := map[int]float64{}
			for j := 0; j < n && len(data) >= 2; j++ {
				which, raw := int(data[0])%len(names), int8(data[1])
				data = data[2:]
				if _, dup := pushed[which]; dup {
					continue
				}
				nm := names[which]
				v := float64(raw) / 4
				if raw%8 == 7 || raw%8 == -7 {
					v *= 1e307 // near the end of float64: totals that overflow
				}
				pushed[which] = v
				fam := inc[nm.fam]
				if fam == nil {
					fam = &groupstore.Family{Type: nm.typ}
					inc[nm.fam] = fam
				}
				fam.Series = append(fam.Series, series(nm.name, v, nm.kv...))
			}
			next, err := Merge(totals, inc)
			refused := false
			for w, v := range pushed {
				rule := RuleOf(names[w].typ, names[w].fam, names[w].name)
				if rule == AddNonNegative && v < 0 || rule != Last && math.IsInf(expect[w].v+v, 0) {
					refused = true
				}
			}
			if refused != (err != nil) {
				t.Fatalf("push %v: error %v, want refused=%v", pushed, err, refused)
			}
			if err != nil {
				continue
			}
			for w, v := range pushed {
				e := expect[w]
				e.rule = RuleOf(names[w].typ, names[w].fam, names[w].name)
				if e.rule == Last {
					e.v = v
				} else {
					e.v += v
				}
				expect[w] = e
			}
			for w, e := range expect {
				got := value(t, next, names[w].fam, names[w].name, names[w].kv...)
				if got != e.v {
					t.Fatalf("%s%v = %v, want %v", names[w].name, names[w].kv, got, e.v)
				}
				if e.rule == AddNonNegative && totals != nil {
					if f := totals[names[w].fam]; f != nil {
						for _, s := range f.Series {
							if string(wire.AppendLabelsKey(nil, s.Labels)) == string(wire.AppendLabelsKey(nil, series(names[w].name, 0, names[w].kv...).Labels)) && s.Float() > got {
								t.Fatalf("%s decreased from %v to %v", names[w].name, s.Float(), got)
							}
						}
					}
				}
			}
			totals = next
		}
	})
}

// BenchmarkMergeSmallPushBigGroup is a push of one series into a group of
// 100 families of 100 series: Merge's work follows the families the push
// touches (and the ones whose series could share its names), not the
// group's size.
func BenchmarkMergeSmallPushBigGroup(b *testing.B) {
	totals := map[string]*groupstore.Family{}
	for f := range 100 {
		name := fmt.Sprintf("fam_%d_total", f)
		fam := &groupstore.Family{Type: wire.MetadataCounter}
		for i := range 100 {
			fam.Series = append(fam.Series, series(name, 1, "instance", fmt.Sprintf("host-%04d", i), "job", "batch"))
		}
		totals[name] = fam
	}
	inc := map[string]*groupstore.Family{"fam_0_total": {Type: wire.MetadataCounter, Series: []groupstore.Series{series("fam_0_total", 1, "instance", "host-0001", "job", "batch")}}}
	for b.Loop() {
		if _, err := Merge(totals, inc); err != nil {
			b.Fatal(err)
		}
	}
}
