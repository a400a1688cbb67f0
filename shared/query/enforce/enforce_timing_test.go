package enforce_test

import (
	"testing"

	"github.com/promrelay/promrelay/shared/query/enforce"
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
