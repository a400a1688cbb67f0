package enforce_test

import (
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/query/enforce"
	"github.com/promrelay/promrelay/shared/wire"
)

// grafanaQuery is a typical panel query of a Grafana dashboard (request
// rate by status class, from the Prometheus mixin's style).
const grafanaQuery = `sum by (code) (rate(http_requests_total{job="api",handler=~"/api/v1/.*"}[5m])) / ignoring(code) group_left sum(rate(http_requests_total{job="api"}[5m]))`

func BenchmarkQuery(b *testing.B) {
	var e enforce.Enforcer
	b.SetBytes(int64(len(grafanaQuery)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Query(grafanaQuery, tenantA); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSelector(b *testing.B) {
	var e enforce.Enforcer
	const s = `up{job="api",instance=~"10\\..*"}`
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Selector(s, tenantA); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWorkBounds reports what the worst inputs within the bounds cost the
// parser (the README quotes it); it asserts only that they are accepted,
// since timings are not tested.
func TestWorkBounds(t *testing.T) {
	tenant := []wire.Label{{Name: "tenant", Value: "a"}}
	n := enforce.MaxQueryTokens
	for name, q := range map[string]string{
		"or chain":    "a" + strings.Repeat(" or a", n/2-1),
		"unary chain": strings.Repeat("-", n-2) + "a",
		"nesting":     strings.Repeat("sum(", enforce.MaxQueryDepth) + "a" + strings.Repeat(")", enforce.MaxQueryDepth),
		"long string": `a{b="` + strings.Repeat("x", enforce.MaxQueryBytes-16) + `"}`,
	} {
		start := time.Now()
		if _, err := (enforce.Enforcer{}).Query(q, tenant); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s (%d bytes): %v", name, len(q), time.Since(start))
	}
}
