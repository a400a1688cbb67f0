package wire_test

import (
	"strings"
	"testing"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestTextMatchesExpfmt checks on generated corpora that ParseText produces
// exactly the families expfmt's text parser produces.
func TestTextMatchesExpfmt(t *testing.T) {
	var e wire.Exposition
	for seed := uint64(1); seed <= 40; seed++ {
		opts := corpus.Options{Families: 20 + int(seed)*5, Quirks: seed%2 == 0, Timestamps: seed%3 == 0}
		in := corpus.Exposition(seed, opts)
		want, err := referenceText(in)
		if err != nil {
			t.Fatalf("seed %d: reference rejects the corpus: %v", seed, err)
		}
		if err := e.ParseText(in, wire.Limits{}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if got, w := canonical(toDTO(&e)), canonical(want); got != w {
			t.Fatalf("seed %d: decoded families differ from expfmt\n%s", seed, firstDiff(got, w))
		}
	}
}

// TestTextCases covers the grammar case by case; every input is also run
// through expfmt, which must agree on acceptance and on the result.
func TestTextCases(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr string // substring; "" means accepted
	}{
		{"counter", "# TYPE c counter\nc 1\n", ""},
		{"gauge with labels", "# TYPE g gauge\ng{a=\"1\",b=\"2\"} -3.5\n", ""},
		{"untyped no type line", "u 42\n", ""},
		{"help escapes", "# HELP m a \\\\ b \\n c\nm 1\n", ""},
		{"help quote escape", "# HELP m say \\\"hi\\\"\nm 1\n", ""},
		{"label escapes", "m{a=\"x\\\\y\\\"z\\nw\"} 1\n", ""},
		{"utf8 label value", "m{a=\"日本語 ü\"} 1\n", ""},
		{"special floats", "a NaN\nb +Inf\nc -Inf\nd -0\ne 1e-7\nf 1E+3\ng .5\n", ""},
		{"comments and blank lines", "# just a comment\n\n   \n#\n# HELP\nm 1\n", ""},
		{"tabs", "m{a=\"1\"}\t2\t3\n", ""},
		{"spaces in braces", "m{ a = \"1\" , b=\"2\" , } 2\n", ""},
		{"empty braces", "m{} 2\n", ""},
		{"timestamp", "m 1 1700000000000\n", ""},
		{"negative timestamp", "m 1 -5\n", ""},
		{"histogram", "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 3\nh_sum 2.5\nh_count 3\n", ""},
		{"histogram interleaved", "# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{a=\"2\",le=\"1\"} 4\nh_bucket{le=\"2\",a=\"1\"} 2\nh_count{a=\"2\"} 4\n", ""},
		{"histogram float counts", "# TYPE h histogram\nh_bucket{le=\"1\"} 1.5\nh_bucket{le=\"+Inf\"} 3\nh_count 3\n", ""},
		{"gaugehistogram", "# TYPE h gaugehistogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", ""},
		{"summary", "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 2\ns_sum 5\ns_count 7.9\n", ""},
		{"summary NaN quantile skipped", "# TYPE s summary\ns{quantile=\"NaN\"} 1\ns_count 1\n", ""},
		{"type case-insensitive", "# TYPE m GAUGE\nm 1\n", ""},
		{"type after help", "# HELP m h\n# TYPE m counter\nm 1\n", ""},
		{"help after samples", "m 1\n# HELP m h\n", ""},
		{"families interleaved", "a 1\nb 2\na{x=\"y\"} 3\n", ""},
		{"count of non-summary is own family", "# TYPE c counter\nc 1\nc_count 2\n", ""},
		{"empty family dropped", "# TYPE e gauge\n# HELP e x\nm 1\n", ""},
		{"duplicate series kept", "m 1\nm 2\n", ""},

		{"second TYPE", "# TYPE m gauge\n# TYPE m gauge\nm 1\n", "second TYPE line"},
		{"TYPE after samples", "m 1\n# TYPE m gauge\n", "second TYPE line"},
		{"second HELP", "# HELP m a\n# HELP m b\n", "second HELP line"},
		{"unknown type", "# TYPE m bogus\nm 1\n", "unknown metric type"},
		{"type with trailing space", "# TYPE m gauge \nm 1\n", "unknown metric type"},
		{"invalid metric name", "1m 1\n", "invalid metric name"},
		{"invalid name in comment", "# TYPE m-x gauge\n", "invalid metric name in comment"},
		{"missing value", "m\n", "expected float as value"},
		{"bad value", "m abc\n", "expected float as value"},
		{"hex value", "m 0x1p3\n", "expected float as value"},
		{"underscore value", "m 1_000\n", "expected float as value"},
		{"bad timestamp", "m 1 1.5\n", "expected integer as timestamp"},
		{"trailing space after value", "m 1 \n", "expected integer as timestamp"},
		{"spurious after timestamp", "m 1 2 3\n", "spurious string after timestamp"},
		{"reserved label", "m{__name__=\"x\"} 1\n", "is reserved"},
		{"duplicate label", "m{a=\"1\",a=\"2\"} 1\n", "duplicate label names"},
		{"unquoted value", "m{a=1} 1\n", "expected '\"' at start of label value"},
		{"missing equals", "m{a} 1\n", "expected '=' after label name"},
		{"invalid escape", "m{a=\"\\t\"} 1\n", "invalid escape sequence"},
		{"newline in value", "m{a=\"x\ny\"} 1\n", "unescaped new-line"},
		{"unterminated labels", "m{a=\"1\" 1\n", "unexpected end of label value"},
		{"invalid label name", "m{1a=\"1\"} 1\n", "invalid label name"},
		{"invalid utf8 value", "m{a=\"\xff\"} 1\n", "invalid label value"},
		{"bad le", "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "expected float as value for 'le' label"},
		{"bad quantile", "# TYPE s summary\ns{quantile=\"x\"} 1\n", "expected float as value for 'quantile' label"},
		{"negative histogram count", "# TYPE h histogram\nh_count -1.5\n", "negative count"},
		{"negative bucket", "# TYPE h histogram\nh_bucket{le=\"1\"} -0.5\n", "negative bucket population"},
		{"invalid help escape", "# HELP m a \\t b\nm 1\n", "invalid escape sequence"},
	}
	var e wire.Exposition
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.ParseText([]byte(tc.in), wire.Limits{})
			want, refErr := referenceText([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseText: %v", err)
				}
				if refErr != nil {
					t.Fatalf("expfmt rejects what the case expects accepted: %v", refErr)
				}
				if got, w := canonical(toDTO(&e)), canonical(want); got != w {
					t.Fatalf("differs from expfmt\n%s", firstDiff(got, w))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseText error = %v, want one containing %q", err, tc.wantErr)
			}
			if refErr == nil {
				t.Fatalf("expfmt accepts what ParseText rejects")
			}
		})
	}
}

// TestTextLeniency documents where promrelay deliberately accepts more than
// expfmt (and so the Pushgateway): a last line without its newline.
func TestTextLeniency(t *testing.T) {
	var e wire.Exposition
	for _, in := range []string{"m 1", "m{a=\"b\"} 1 1700000000000", "# HELP m x\nm 2", "# TYPE m gauge"} {
		if err := e.ParseText([]byte(in), wire.Limits{}); err != nil {
			t.Errorf("ParseText(%q): %v", in, err)
		}
		if _, err := referenceText([]byte(in)); err == nil {
			t.Errorf("expfmt now accepts %q; the leniency note in the README can go", in)
		}
		// With the newline added both agree.
		want, err := referenceText([]byte(in + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got, w := canonical(toDTO(&e)), canonical(want); got != w {
			t.Errorf("ParseText(%q) differs from expfmt on the same input with a newline\n%s", in, firstDiff(got, w))
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(no difference)"
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
