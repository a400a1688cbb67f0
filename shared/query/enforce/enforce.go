// Package enforce forces a tenant's labels onto PromQL queries and series
// selectors, with the Prometheus parser
// (github.com/prometheus/prometheus/promql/parser). It is the one package
// of the read path that links the parser, so that write-only builds stay
// without it.
//
// A tenant is a label set (sorted by name, unique, every name and value
// non-empty). Forcing it onto a vector selector removes every matcher the
// selector has on one of the tenant's label names, whatever its type (=, !=,
// =~, !~), and appends one equality matcher name="value" per tenant label:
// `{tenant=~".*"}`, `{tenant!="a"}` and `{tenant="b"}` all become
// `{tenant="a"}` for the tenant {tenant="a"}. This is prom-label-proxy's rule
// for an enforced equality matcher (injectproxy/enforce.go, with
// -error-on-replace off), applied to every vector selector the parser
// produces: bare ones and those inside matrix selectors, subqueries, function
// arguments, aggregations and binary operations alike.
package enforce

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/model"
	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promrelay/promrelay/shared/wire"
)

// Bounds on one query or series selector, checked before it is parsed, so
// that the parser's work and its AST's memory are bounded per request: the
// parser's time grows faster than linearly with long operator chains and
// deep nesting (a 256 KiB chain of unary minus took 149 s and 34 GB of
// allocations), while its lexer is linear. MaxQueryBytes is the longest
// input in bytes; MaxQueryTokens the most lexer items (names, numbers,
// strings, operators, brackets; a string literal, however long, is one);
// MaxQueryDepth the deepest nesting of ( [ {. Grafana's longest dashboard
// queries are a few KiB and a few hundred items; at these bounds the
// worst input parses in tens of milliseconds (TestWorkBounds).
const (
	MaxQueryBytes  = 64 << 10
	MaxQueryTokens = 2048
	MaxQueryDepth  = 64
)

// ErrTooLong is the error (wrapped) for a query or selector over
// MaxQueryBytes, MaxQueryTokens or MaxQueryDepth; the message names the
// limit.
var ErrTooLong = errors.New("query too long")

// ErrInvalidTenant is the error (wrapped) for a tenant label set that cannot
// be forced: an empty name or value (a matcher name="" selects series
// without the label, not a tenant), the name __name__, or names not sorted
// and unique. It is a configuration fault, not the reader's.
var ErrInvalidTenant = errors.New("invalid tenant label set")

// parserOptions are the parser features enabled, so that any query the
// upstream's newer parser accepts is not refused here: experimental
// functions and aggregations (limitk, info, ...) and the fill modifiers of
// binary operations. Duration expressions are always on in this parser.
// Unquoted UTF-8 names stay off: with them on, the parser prints names such
// as foo.bar unquoted, which only a Prometheus with the same experimental
// flag parses; with them off it prints {"foo.bar"}, the standard syntax of
// Prometheus 3.
var parserOptions = parser.Options{
	EnableExperimentalFunctions: true,
	EnableBinopFillModifiers:    true,
}

var promqlParser = parser.NewParser(parserOptions)

// Enforcer forces label sets onto PromQL. The zero value is ready; it is
// safe for concurrent use.
type Enforcer struct{}

// Query parses q as a PromQL expression and returns it, printed by the
// parser (parser.Expr's String), with labels forced onto every vector
// selector (see the package doc), including those inside matrix selectors,
// subqueries, function arguments, binary operations, `or`/`and`/`unless`,
// aggregations, and selectors with @ and offset modifiers.
//
// labels is the tenant: sorted by name, unique, names and values non-empty,
// else an error wrapping ErrInvalidTenant. With no labels, q is returned as
// it is, unparsed: such a reader sees everything and the upstream judges the
// query. A q longer than MaxQueryBytes is an error wrapping ErrTooLong. A q
// the parser rejects returns the parser's own error (parser.ParseErrors,
// printed as "1:5: parse error: ..."), for a 400 answer.
func (Enforcer) Query(q string, labels []wire.Label) (string, error) {
	if len(labels) == 0 {
		return q, nil
	}
	if err := check(q, labels); err != nil {
		return "", err
	}
	expr, err := promqlParser.ParseExpr(q)
	if err != nil {
		return "", err
	}
	if err := forceAll(expr, tenantMatchers(labels)); err != nil {
		return "", err
	}
	return expr.String(), nil
}

// Selector does for one series selector (a match[] of /api/v1/series,
// /api/v1/labels or /api/v1/label/<name>/values) what Query does for a
// query: s must parse as Prometheus parses match[] (ParseMetricSelector: a
// vector selector without modifiers), else the parser's error. The result
// is printed as a selector, the metric name in front when it is a classic
// name (`up{job="x",tenant="a"}`), else as a __name__ matcher. Empty labels,
// the limit and the tenant's errors are as for Query.
func (Enforcer) Selector(s string, labels []wire.Label) (string, error) {
	if len(labels) == 0 {
		return s, nil
	}
	if err := check(s, labels); err != nil {
		return "", err
	}
	ms, err := promqlParser.ParseMetricSelector(s)
	if err != nil {
		return "", err
	}
	vs := &parser.VectorSelector{LabelMatchers: force(ms, tenantMatchers(labels))}
	names, name := 0, ""
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			names++
			if m.Type == promlabels.MatchEqual {
				name = m.Value
			}
		}
	}
	if names == 1 && model.LegacyValidation.IsValidMetricName(name) && lexesAsName(name) {
		vs.Name = name
	}
	return vs.String(), nil
}

// lexesAsName reports whether name, a classic metric name, is one
// identifier to the parser's lexer and not a keyword (on, by, sum, offset,
// inf, nan, in any case): printed in front of braces, a keyword does not
// parse again (FuzzEnforceQuery seed 6b63772b29189866, `{"on"}`).
func lexesAsName(name string) bool {
	l := parser.Lex(name)
	var it parser.Item
	l.NextItem(&it)
	if (it.Typ != parser.IDENTIFIER && it.Typ != parser.METRIC_IDENTIFIER) || it.Val != name {
		return false
	}
	l.NextItem(&it)
	return it.Typ == parser.EOF
}

// checkTokens runs the parser's own lexer over q (linear in its length)
// and refuses more than MaxQueryTokens items or nesting deeper than
// MaxQueryDepth. A lexing error is left for the parser to report.
func checkTokens(q string) error {
	l := parser.Lex(q)
	var it parser.Item
	depth := 0
	for n := 1; ; n++ {
		l.NextItem(&it)
		switch it.Typ {
		case parser.EOF, parser.ERROR:
			return nil
		case parser.LEFT_PAREN, parser.LEFT_BRACKET, parser.LEFT_BRACE:
			if depth++; depth > MaxQueryDepth {
				return fmt.Errorf("%w: nested more than %d deep", ErrTooLong, MaxQueryDepth)
			}
		case parser.RIGHT_PAREN, parser.RIGHT_BRACKET, parser.RIGHT_BRACE:
			depth--
		}
		if n > MaxQueryTokens {
			return fmt.Errorf("%w: more than %d tokens", ErrTooLong, MaxQueryTokens)
		}
	}
}

// check applies the work bounds to q and validates the tenant.
func check(q string, ls []wire.Label) error {
	if len(q) > MaxQueryBytes {
		return fmt.Errorf("%w: %d bytes, more than the limit of %d bytes", ErrTooLong, len(q), MaxQueryBytes)
	}
	if err := checkTokens(q); err != nil {
		return err
	}
	for i, l := range ls {
		switch {
		case l.Name == "" || l.Value == "":
			return fmt.Errorf("%w: label %q=%q has an empty name or value", ErrInvalidTenant, l.Name, l.Value)
		case l.Name == model.MetricNameLabel:
			return fmt.Errorf("%w: label %s cannot be forced", ErrInvalidTenant, l.Name)
		case i > 0 && ls[i-1].Name >= l.Name:
			return fmt.Errorf("%w: labels not sorted by name and unique (%q before %q)", ErrInvalidTenant, ls[i-1].Name, l.Name)
		}
	}
	return nil
}

// tenantMatchers returns one equality matcher per label. The matchers are
// shared by every selector of one query; nothing modifies them.
func tenantMatchers(ls []wire.Label) []*promlabels.Matcher {
	ms := make([]*promlabels.Matcher, len(ls))
	for i, l := range ls {
		ms[i] = &promlabels.Matcher{Type: promlabels.MatchEqual, Name: l.Name, Value: l.Value}
	}
	return ms
}

// forceAll forces tenant onto every vector selector of expr. parser.Inspect
// walks every child the parser produces; should a newer parser produce a
// node it cannot walk (it panics on those), the query is refused rather than
// relayed with a selector left unenforced.
func forceAll(expr parser.Expr, tenant []*promlabels.Matcher) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot enforce the tenant on this query: %v", r)
		}
	}()
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			vs.LabelMatchers = force(vs.LabelMatchers, tenant)
		}
		return nil
	})
	return nil
}

// force returns ms without its matchers on tenant's names, and with tenant
// appended. It reuses ms' array.
func force(ms, tenant []*promlabels.Matcher) []*promlabels.Matcher {
	out := ms[:0]
	for _, m := range ms {
		if !hasName(tenant, m.Name) {
			out = append(out, m)
		}
	}
	return append(out, tenant...)
}

// hasName reports whether one of ms has the label name n.
func hasName(ms []*promlabels.Matcher, n string) bool {
	for _, m := range ms {
		if m.Name == n {
			return true
		}
	}
	return false
}
