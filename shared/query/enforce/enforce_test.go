package enforce_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promrelay/promrelay/shared/query/enforce"
	"github.com/promrelay/promrelay/shared/wire"
)

var tenantA = []wire.Label{{Name: "tenant", Value: "a"}}

var tenantTwo = []wire.Label{{Name: "env", Value: "prod"}, {Name: "tenant", Value: "a"}}

func TestQuery(t *testing.T) {
	tests := []struct {
		name   string
		q      string
		labels []wire.Label
		want   string
	}{
		{"bare metric", `up`, tenantA, `up{tenant="a"}`},
		{"matchers kept", `up{job="api",instance!~"x.*"}`, tenantA, `up{instance!~"x.*",job="api",tenant="a"}`},
		{"name matcher only", `{__name__=~".+"}`, tenantA, `{__name__=~".+",tenant="a"}`},
		{"equal override", `up{tenant="b"}`, tenantA, `up{tenant="a"}`},
		{"not equal removed", `up{tenant!="a"}`, tenantA, `up{tenant="a"}`},
		{"regexp removed", `up{tenant=~".*"}`, tenantA, `up{tenant="a"}`},
		{"not regexp removed", `up{tenant!~"a"}`, tenantA, `up{tenant="a"}`},
		{"alternation escape", `up{tenant=~"a|b"}`, tenantA, `up{tenant="a"}`},
		{"duplicate escape", `up{tenant="a",tenant="b"}`, tenantA, `up{tenant="a"}`},
		{"only tenant regexp", `{tenant=~".+"}`, tenantA, `{tenant="a"}`},
		{"two labels", `up{env="dev",tenant=~".*",job="x"}`, tenantTwo, `up{env="prod",job="x",tenant="a"}`},
		{"binary", `a / on(job) group_left b`, tenantA, `a{tenant="a"} / on (job) group_left () b{tenant="a"}`},
		{"or", `a or b{x="y"}`, tenantA, `a{tenant="a"} or b{tenant="a",x="y"}`},
		{"and unless", `a and b unless c`, tenantA, `a{tenant="a"} and b{tenant="a"} unless c{tenant="a"}`},
		{"matrix", `rate(http_requests_total{code="500"}[5m])`, tenantA, `rate(http_requests_total{code="500",tenant="a"}[5m])`},
		{"subquery", `rate(x[5m])[30m:1m]`, tenantA, `rate(x{tenant="a"}[5m])[30m:1m]`},
		{"nested subquery", `max_over_time(deriv(rate(x[1m])[5m:])[10m:1m])`, tenantA, `max_over_time(deriv(rate(x{tenant="a"}[1m])[5m:])[10m:1m])`},
		{"aggregation by tenant", `sum by (tenant) (rate(x[5m]))`, tenantA, `sum by (tenant) (rate(x{tenant="a"}[5m]))`},
		{"aggregation param", `topk(scalar(count(y)), x)`, tenantA, `topk(scalar(count(y{tenant="a"})), x{tenant="a"})`},
		{"count_values", `count_values("v", x)`, tenantA, `count_values("v", x{tenant="a"})`},
		{"quantile", `histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))`, tenantA, `histogram_quantile(0.9, sum by (le) (rate(h_bucket{tenant="a"}[5m])))`},
		{"offset", `x offset 5m`, tenantA, `x{tenant="a"} offset 5m`},
		{"negative offset", `x offset -1h`, tenantA, `x{tenant="a"} offset -1h`},
		{"at", `x @ 1700000000`, tenantA, `x{tenant="a"} @ 1700000000.000`},
		{"at start matrix", `rate(x[5m] @ start() offset 1m)`, tenantA, `rate(x{tenant="a"}[5m] @ start() offset 1m)`},
		{"subquery at", `max_over_time(x[10m:] @ end())`, tenantA, `max_over_time(x{tenant="a"}[10m:] @ end())`},
		{"label_replace", `label_replace(up, "tenant", "b", "", "")`, tenantA, `label_replace(up{tenant="a"}, "tenant", "b", "", "")`},
		{"nested parentheses", `((a) + ((b)))`, tenantA, `((a{tenant="a"}) + ((b{tenant="a"})))`},
		{"unary", `-x`, tenantA, `-x{tenant="a"}`},
		{"scalar only", `1 + 2`, tenantA, `1 + 2`},
		{"vector function", `vector(1) + time()`, tenantA, `vector(1) + time()`},
		{"absent", `absent(nonexistent{job="x"})`, tenantA, `absent(nonexistent{job="x",tenant="a"})`},
		{"quoted UTF-8 name", `{"foo.bar"}`, tenantA, `{__name__="foo.bar",tenant="a"}`},
		{"quoted UTF-8 label", `x{"a.b"="c"}`, tenantA, `x{"a.b"="c",tenant="a"}`},
		{"UTF-8 tenant name", `x`, []wire.Label{{Name: "tenant.id", Value: "a"}}, `x{"tenant.id"="a"}`},
		{"UTF-8 tenant name overrides", `x{"tenant.id"=~".*"}`, []wire.Label{{Name: "tenant.id", Value: "a"}}, `x{"tenant.id"="a"}`},
		{"value escaped", `x`, []wire.Label{{Name: "tenant", Value: `a"} or {x="`}}, `x{tenant="a\"} or {x=\""}`},
		{"experimental function", `limitk(2, x)`, tenantA, `limitk(2, x{tenant="a"})`},
		{"info second argument", `info(rate(x[5m]), {k8s_cluster=~".+"})`, tenantA, `info(rate(x{tenant="a"}[5m]), {k8s_cluster=~".+",tenant="a"})`},
		{"duration expression", `x offset (1h + 5m)`, tenantA, `x{tenant="a"} offset (1h + 5m)`},
		{"step range", `rate(x[step()])`, tenantA, `rate(x{tenant="a"}[step()])`},
		{"no labels unparsed", `this is (not promql`, nil, `this is (not promql`},
		{"no labels unchanged", `up{tenant="b"}`, nil, `up{tenant="b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := enforce.Enforcer{}.Query(tt.q, tt.labels)
			if err != nil {
				t.Fatalf("Query(%q): %v", tt.q, err)
			}
			if got != tt.want {
				t.Errorf("Query(%q)\n got %s\nwant %s", tt.q, got, tt.want)
			}
		})
	}
}

func TestSelector(t *testing.T) {
	tests := []struct {
		name, s, want string
	}{
		{"metric", `up`, `up{tenant="a"}`},
		{"matchers", `up{job=~"a.*"}`, `up{job=~"a.*",tenant="a"}`},
		{"name matcher", `{__name__="up",job="x"}`, `up{job="x",tenant="a"}`},
		{"name regexp", `{__name__=~".+"}`, `{__name__=~".+",tenant="a"}`},
		{"empty", `{}`, `{tenant="a"}`},
		{"override", `{tenant=~"a|b",tenant!="c"}`, `{tenant="a"}`},
		{"UTF-8 name", `{"foo.bar",x="y"}`, `{__name__="foo.bar",tenant="a",x="y"}`},
		{"two names", `foo{__name__="bar"}`, `{__name__="bar",__name__="foo",tenant="a"}`},
		{"keyword name", `{"on"}`, `{__name__="on",tenant="a"}`},
		{"keyword name, other case", `{__name__="SUM"}`, `{__name__="SUM",tenant="a"}`},
		{"name that is a number word", `{"Inf"}`, `{__name__="Inf",tenant="a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := enforce.Enforcer{}.Selector(tt.s, tenantA)
			if err != nil {
				t.Fatalf("Selector(%q): %v", tt.s, err)
			}
			if got != tt.want {
				t.Errorf("Selector(%q)\n got %s\nwant %s", tt.s, got, tt.want)
			}
		})
	}
	if got, err := (enforce.Enforcer{}).Selector(`not { a selector`, nil); err != nil || got != `not { a selector` {
		t.Errorf("Selector with no labels = %q, %v; want the input unchanged", got, err)
	}
}

func TestErrors(t *testing.T) {
	long := strings.Repeat("a", enforce.MaxQueryBytes+1)
	tests := []struct {
		name     string
		selector bool
		q        string
		labels   []wire.Label
		is       error
		msg      string
	}{
		{"malformed", false, `sum(rate(x[5m])`, tenantA, nil, `1:16: parse error: unclosed left parenthesis`},
		{"unknown function", false, `nope(x)`, tenantA, nil, `1:1: parse error: unknown function with name "nope"`},
		{"empty selector", false, `{}`, tenantA, nil, `1:1: parse error: vector selector must contain at least one non-empty matcher`},
		{"too long", false, long, tenantA, enforce.ErrTooLong, `65537 bytes, more than the limit of 65536 bytes`},
		{"selector too long", true, long, tenantA, enforce.ErrTooLong, `more than the limit of 65536 bytes`},
		{"too many tokens", false, "a" + strings.Repeat(" or a", enforce.MaxQueryTokens/2), tenantA, enforce.ErrTooLong, `more than 2048 tokens`},
		{"unary chain", false, strings.Repeat("-", enforce.MaxQueryTokens) + "a", tenantA, enforce.ErrTooLong, `more than 2048 tokens`},
		{"too deep", false, strings.Repeat("sum(", enforce.MaxQueryDepth+1) + "a" + strings.Repeat(")", enforce.MaxQueryDepth+1), tenantA, enforce.ErrTooLong, `nested more than 64 deep`},
		{"selector with too many matchers", true, "{" + strings.Repeat(`a="b",`, 600) + "}", tenantA, enforce.ErrTooLong, `more than 2048 tokens`},
		{"selector with offset", true, `up offset 5m`, tenantA, nil, `1:4: parse error: unexpected <offset>`},
		{"selector expression", true, `rate(up[5m])`, tenantA, nil, `parse error`},
		{"empty tenant value", false, `up`, []wire.Label{{Name: "tenant"}}, enforce.ErrInvalidTenant, `empty name or value`},
		{"tenant __name__", false, `up`, []wire.Label{{Name: "__name__", Value: "x"}}, enforce.ErrInvalidTenant, `__name__`},
		{"tenant unsorted", true, `up`, []wire.Label{{Name: "z", Value: "1"}, {Name: "a", Value: "2"}}, enforce.ErrInvalidTenant, `not sorted`},
		{"tenant duplicate", false, `up`, []wire.Label{{Name: "a", Value: "1"}, {Name: "a", Value: "2"}}, enforce.ErrInvalidTenant, `not sorted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.selector {
				_, err = enforce.Enforcer{}.Selector(tt.q, tt.labels)
			} else {
				_, err = enforce.Enforcer{}.Query(tt.q, tt.labels)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			var pe parser.ParseErrors
			if tt.is == nil && !errors.As(err, &pe) {
				t.Errorf("error %v (%T) is not the parser's", err, err)
			}
		})
	}
}

// TestConcurrentUse checks under -race that one Enforcer serves
// goroutines at once.
func TestConcurrentUse(t *testing.T) {
	var e enforce.Enforcer
	done := make(chan string)
	for range 4 {
		go func() {
			out := ""
			for range 50 {
				out, _ = e.Query(`sum by (job) (rate(x{tenant="b"}[5m])) / on(job) y`, tenantA)
			}
			done <- out
		}()
	}
	for range 4 {
		if got, want := <-done, `sum by (job) (rate(x{tenant="a"}[5m])) / on (job) y{tenant="a"}`; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
