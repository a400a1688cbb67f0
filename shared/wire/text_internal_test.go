package wire

import (
	"math"
	"strconv"
	"testing"
)

// FuzzParseDecimal checks that parseDecimal's fast path is bit-identical to
// strconv.ParseFloat wherever it accepts its input.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "-0", "-0.000", "1.5", "846.738", "9007199254740992", "9007199254740993",
		"0.1", "123456789012345.6", ".5", "5.", ".", "-", "1e5", "0.0000000000000000000001", "00000000000000000001.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseDecimal(s)
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("parseDecimal(%q) = %v, strconv error %v", s, v, err)
		}
		if math.Float64bits(v) != math.Float64bits(want) {
			t.Fatalf("parseDecimal(%q) = %v (%#x), strconv %v (%#x)", s, v, math.Float64bits(v), want, math.Float64bits(want))
		}
	})
}

// TestParseDecimal checks which inputs take the fast path.
func TestParseDecimal(t *testing.T) {
	for s, want := range map[string]bool{"1": true, "-1.25": true, "846.738": true, "9007199254740992": true,
		"9007199254740993": false, "63896.904914717335": false, ".": false, "": false, "1e3": false, "+1": false,
		"1.2.3": false, "NaN": false, "1_0": false} {
		if _, ok := parseDecimal(s); ok != want {
			t.Errorf("parseDecimal(%q) ok = %v, want %v", s, ok, want)
		}
	}
}

// TestCharClass checks the byte class table against the grammar's
// definitions.
func TestCharClass(t *testing.T) {
	for i := 0; i < 256; i++ {
		c := byte(i)
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		want := map[byte]bool{
			classNameStart:  alpha || c == '_',
			classLabelName:  alpha || digit || c == '_',
			classMetricName: alpha || digit || c == '_' || c == ':',
			classTokenEnd:   c == ' ' || c == '\t' || c == '\n',
			classValueStop:  c == '"' || c == '\\' || c == '\n' || c >= 0x80,
		}
		for class, w := range want {
			if got := charClass[c]&class != 0; got != w {
				t.Errorf("byte %#x class %#x: %v, want %v", c, class, got, w)
			}
		}
	}
}
