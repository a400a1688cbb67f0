package enforce_test

import (
	"errors"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promrelay/promrelay/shared/query/enforce"
	"github.com/promrelay/promrelay/shared/wire"
)

// fuzzParser parses as the package does (its options are those documented
// on the package's parserOptions).
var fuzzParser = parser.NewParser(parser.Options{EnableExperimentalFunctions: true, EnableBinopFillModifiers: true})

// FuzzEnforceQuery checks, for every query the parser accepts, that Query
// succeeds, that its output parses again, that every vector selector of
// the output has, for each tenant label name, exactly one matcher and that
// it is name="value", and that enforcing the output again changes nothing.
// It checks the same of Selector for every input ParseMetricSelector
// accepts. The tenant value is fuzzed too (escaping).
func FuzzEnforceQuery(f *testing.F) {
	for _, q := range []string{
		`up`, `{__name__=~".+"}`, `up{tenant=~"a|b",tenant!="c"}`, `a / on(x) group_left(y) b or c`,
		`rate(x[5m])[30m:1m] @ end() offset -1m`, `sum by (tenant) (rate(x{job="a"}[5m]))`,
		`label_replace(up, "tenant", "b", "", "")`, `((a) + ((b)))`, `{"foo.bar"}`, `x{"tenant"="b"}`,
		`info(x, {a=~".+"})`, `x offset (1h + step())`, `limitk(1, x)`, `-x ^ 2 atan2 y`,
		`histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))`,
	} {
		f.Add(q, "a")
	}
	f.Add(`x`, `"} or {y="`)
	f.Fuzz(func(t *testing.T, q, value string) {
		if value == "" {
			value = "a"
		}
		tenant := []wire.Label{{Name: "env", Value: "prod"}, {Name: "tenant", Value: value}}
		var e enforce.Enforcer
		if _, err := fuzzParser.ParseExpr(q); err == nil && len(q) <= enforce.MaxQueryBytes {
			out, err := e.Query(q, tenant)
			if errors.Is(err, enforce.ErrTooLong) {
				return // a work bound, not a disagreement
			}
			if err != nil {
				t.Fatalf("Query(%q): %v, though the parser accepts it", q, err)
			}
			expr, err := fuzzParser.ParseExpr(out)
			if err != nil {
				t.Fatalf("output %q of %q does not parse: %v", out, q, err)
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					checkForced(t, out, vs.LabelMatchers, tenant)
				}
				return nil
			})
			if again, err := e.Query(out, tenant); err != nil || again != out {
				t.Fatalf("enforcing %q again gives %q, %v", out, again, err)
			}
		}
		if _, err := fuzzParser.ParseMetricSelector(q); err == nil && len(q) <= enforce.MaxQueryBytes {
			out, err := e.Selector(q, tenant)
			if errors.Is(err, enforce.ErrTooLong) {
				return
			}
			if err != nil {
				t.Fatalf("Selector(%q): %v, though the parser accepts it", q, err)
			}
			ms, err := fuzzParser.ParseMetricSelector(out)
			if err != nil {
				t.Fatalf("selector output %q of %q does not parse: %v", out, q, err)
			}
			checkForced(t, out, ms, tenant)
		}
	})
}

// checkForced fails unless ms has exactly one matcher per tenant label
// name, name="value".
func checkForced(t *testing.T, out string, ms []*labels.Matcher, tenant []wire.Label) {
	t.Helper()
	for _, l := range tenant {
		n := 0
		for _, m := range ms {
			if m.Name != l.Name {
				continue
			}
			n++
			if m.Type != labels.MatchEqual || m.Value != l.Value {
				t.Fatalf("%q: matcher %s, want %s=%q", out, m, l.Name, l.Value)
			}
		}
		if n != 1 {
			t.Fatalf("%q: %d matchers on %s, want 1", out, n, l.Name)
		}
	}
}
