// Package enforce forces a tenant's labels onto PromQL queries and series
// selectors, with the Prometheus parser
// (github.com/prometheus/prometheus/promql/parser). It is the one package
// of the read path that links the parser, so that write-only builds stay
// without it.
package enforce

import (
	_ "github.com/prometheus/prometheus/promql/parser"
)
