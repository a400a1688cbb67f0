package enforce_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/query/enforce"
)

// TestOutputParsesInPrometheus2 checks that what Query prints for common
// queries, classic names only, parses with the parser of Prometheus 2.42
// (Debian's promtool, through `promtool check rules`), the oldest upstream
// the read path is used with. Queries with quoted UTF-8 names are excluded:
// Prometheus 2 has no syntax for them at all.
func TestOutputParsesInPrometheus2(t *testing.T) {
	if testing.Short() {
		t.Skip("runs promtool")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	queries := []string{
		`up`, `{__name__=~".+"}`, `{tenant=~".+"}`, `up{tenant!="a",job="x"}`,
		`a / on(job) group_left b`, `a or b unless c and d`, `rate(x[5m])[30m:1m]`,
		`max_over_time(x[10m:] @ end())`, `x @ 1700000000 offset -1h`, `rate(x[5m] @ start() offset 1m)`,
		`sum by (tenant) (rate(x[5m]))`, `topk(3, sum without (pod) (x))`, `count_values("v", x)`,
		`quantile(0.9, x)`, `histogram_quantile(0.9, sum by (le) (rate(h_bucket[1h30m])))`,
		`label_replace(up, "tenant", "b", "", "")`, `((a) + ((b)))`, `-x ^ 2 atan2 y`, `x > bool 1`,
		`absent_over_time(x[1d])`, `predict_linear(x[1w], 3600)`, `x offset 90s`,
	}
	var rules strings.Builder
	rules.WriteString("groups:\n- name: enforced\n  rules:\n")
	for i, q := range queries {
		out, err := enforce.Enforcer{}.Query(q, tenantA)
		if err != nil {
			t.Fatalf("Query(%q): %v", q, err)
		}
		rules.WriteString("  - record: r" + strconv.Itoa(i) + "\n    expr: " + strconv.Quote(out) + "\n")
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, rules.String())
	}
}
