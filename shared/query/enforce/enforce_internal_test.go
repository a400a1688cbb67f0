package enforce

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// TestForceAllRefusesUnwalkableNodes checks that a node parser.Inspect
// cannot walk (it panics on node types it does not know, such as a
// DurationExpr met as an expression) refuses the query instead of
// crashing or relaying it unenforced.
func TestForceAllRefusesUnwalkableNodes(t *testing.T) {
	expr := &parser.BinaryExpr{Op: parser.ADD, LHS: &parser.VectorSelector{Name: "x"}, RHS: &parser.DurationExpr{}}
	err := forceAll(expr, tenantMatchers(nil))
	if err == nil || !strings.Contains(err.Error(), "cannot enforce the tenant") {
		t.Fatalf("error %v, want one refusing the query", err)
	}
}
