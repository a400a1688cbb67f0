package mirror

import (
	"math"
	"testing"
)

// pyFloat prints floats as Python's repr() does (values checked with
// CPython 3.11's repr).
func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{2, "2.0"}, {0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {0.1, "0.1"}, {1.5, "1.5"}, {-3.25, "-3.25"},
		{1e15, "1000000000000000.0"}, {9999999999999998, "9999999999999998.0"}, {1e16, "1e+16"}, {1.5e300, "1.5e+300"},
		{0.0001, "0.0001"}, {0.00001, "1e-05"}, {1.5e-7, "1.5e-07"}, {123456789.125, "123456789.125"},
		{math.NaN(), "nan"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {5e-324, "5e-324"},
	} {
		if got := pyFloat(tc.f); got != tc.want {
			t.Errorf("pyFloat(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// pyNumber is str() of what json.loads makes of a number literal.
func TestPyNumber(t *testing.T) {
	for lit, want := range map[string]string{
		"2": "2", "-0": "0", "2.0": "2.0", "1E3": "1000.0", "1e400": "inf", "100000000000000000000": "100000000000000000000", "-1.0e-5": "-1e-05",
	} {
		if got := pyNumber(lit); got != want {
			t.Errorf("pyNumber(%s) = %q, want %q", lit, got, want)
		}
	}
}

// pyReprJSON is Python's repr() of decoded JSON, in the JSON's key order.
func TestPyReprJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{}`: "{}",
		`{"b": 1, "a": [true, false, null, 1.0, "x"]}`: "{'b': 1, 'a': [True, False, None, 1.0, 'x']}",
		`"it's"`:                         `"it's"`,
		`"both ' and \""`:                `'both \' and "'`,
		`"tab\t nl\n bs\\ bell\u0007 é"`: `'tab\t nl\n bs\\ bell\x07 é'`,
		`"\u2028"`:                       `'\u2028'`,
	} {
		got, err := pyReprJSON([]byte(in), 4096)
		if err != nil || got != want {
			t.Errorf("pyReprJSON(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`{`, `{"a":1} x`, `[1,]`} {
		if _, err := pyReprJSON([]byte(bad), 4096); err == nil {
			t.Errorf("pyReprJSON(%s): no error", bad)
		}
	}
	long, err := pyReprJSON([]byte(`["`+string(make([]byte, 0))+`aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"]`), 12)
	if err != nil || len(long) > 12+len("…")+16 {
		t.Errorf("cut: %q %v", long, err)
	}
}

// Label and metric names are checked before they are written into PromQL.
func TestNames(t *testing.T) {
	for s, want := range map[string]bool{"job": true, "_a1": true, "__name__": true, "1a": false, "": false, "a-b": false, "a:b": false, "é": false} {
		if validLabelName(s) != want {
			t.Errorf("validLabelName(%q) != %v", s, want)
		}
	}
	for s, want := range map[string]bool{"up": true, "a:b_c": true, ":x": true, "1up": false, "up{}": false, "": false} {
		if validMetricName(s) != want {
			t.Errorf("validMetricName(%q) != %v", s, want)
		}
	}
}
