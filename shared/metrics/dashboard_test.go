package metrics_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/metrics"
)

// exportedNames returns every series name the registry of m can export:
// each collector field's metric names (from its descriptions, with
// _bucket, _sum and _count for histograms), plus what a Gather shows (the
// budget gauges, the Go and process collectors).
func exportedNames(t *testing.T, m *metrics.Metrics) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Field(i).IsNil() {
			continue
		}
		_, histogram := c.(*prometheus.HistogramVec)
		ch := make(chan *prometheus.Desc, 4)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			n := fqName.FindStringSubmatch(d.String())
			if n == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			names[n[1]] = true
			if histogram {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[n[1]+s] = true
				}
			}
		}
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			names[f.GetName()+"_sum"], names[f.GetName()+"_count"] = true, true
		}
	}
	return names
}

// grafanaVars are the dashboard's variables and Grafana's own, replaced
// by values PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$job", "promrelay", "$instance", ".*")

// TestDashboard reads infra/grafana/promrelay.json: it has the datasource
// variable every panel uses, each panel's every expression parses with
// Prometheus' PromQL parser, and uses only metrics the relay exports; and
// every promrelay_ metric is on some panel.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../infra/grafana/promrelay.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct{ Name, Type, Query any }
		}
		Panels []struct {
			Title, Type string
			Interval    string
			Datasource  struct{ UID string }
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	hasDS := false
	for _, v := range dash.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no datasource variable of type datasource over prometheus")
	}
	exported := exportedNames(t, metrics.New(func() int64 { return 0 }, func() int64 { return 1 }))
	used := map[string]bool{}
	exprs := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q, want ${datasource}", p.Title, p.Datasource.UID)
		}
		// Self-written series have a sample per interval: a rate's
		// window ($__rate_interval, at least the panel's interval)
		// must hold two.
		if iv, err := time.ParseDuration(p.Interval); err != nil || iv < 2*config.DefaultSelfMetricsInterval {
			t.Errorf("panel %q: interval %q, want at least %v", p.Title, p.Interval, 2*config.DefaultSelfMetricsInterval)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: %q does not parse: %v", p.Title, tg.Expr, err)
				continue
			}
			parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					if !exported[vs.Name] {
						t.Errorf("panel %q uses %s, which the relay does not export", p.Title, vs.Name)
					}
					used[strings.TrimSuffix(vs.Name, "_bucket")] = true
				}
				return nil
			})
		}
	}
	for name := range exported {
		if strings.HasPrefix(name, metrics.Namespace+"_") && !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") &&
			!strings.HasSuffix(name, "_bucket") && !used[name] {
			t.Errorf("%s is on no panel of the dashboard", name)
		}
	}
	t.Logf("%d panels, %d expressions", len(dash.Panels), exprs)
}

// observingSection returns the README's "Observing the relay" section.
func observingSection(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	start := strings.Index(s, "\n## Observing the relay\n")
	if start < 0 {
		t.Fatal(`README has no "Observing the relay" section`)
	}
	end := strings.Index(s[start+1:], "\n## ")
	return s[start : start+1+end]
}

// TestReadmeNamesOnlyExportedMetrics: every promrelay_ name the README's
// section mentions is exported, and every exported one is in its table.
func TestReadmeNamesOnlyExportedMetrics(t *testing.T) {
	sec := observingSection(t)
	exported := exportedNames(t, metrics.New(func() int64 { return 0 }, func() int64 { return 1 }))
	for _, name := range regexp.MustCompile(`promrelay_[a-z_]+[a-z]`).FindAllString(sec, -1) {
		if !exported[name] {
			t.Errorf("the README names %s, which the relay does not export", name)
		}
	}
	for name := range exported {
		if strings.HasPrefix(name, metrics.Namespace+"_") && !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") &&
			!strings.HasSuffix(name, "_bucket") && !strings.Contains(sec, "`"+name+"`") {
			t.Errorf("the README's table lacks %s", name)
		}
	}
}

// TestAlertRules checks the README's alert examples with promtool check
// rules, and their expressions against the exported names.
func TestAlertRules(t *testing.T) {
	sec := observingSection(t)
	start := strings.Index(sec, "```yaml\ngroups:")
	if start < 0 {
		t.Fatal("no alert rules in the README")
	}
	rules := sec[start+len("```yaml\n"):]
	rules = rules[:strings.Index(rules, "```")]
	exported := exportedNames(t, metrics.New(func() int64 { return 0 }, func() int64 { return 1 }))
	n := 0
	for _, m := range regexp.MustCompile(`(?s)expr: (\|\n(.*?)\n\s+for:|([^\n]+))`).FindAllStringSubmatch(rules, -1) {
		expr := m[2] + m[3]
		e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
		if err != nil {
			t.Errorf("%q: %v", expr, err)
			continue
		}
		n++
		parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
			if vs, ok := node.(*parser.VectorSelector); ok && !exported[vs.Name] {
				t.Errorf("alert uses %s, which the relay does not export", vs.Name)
			}
			return nil
		})
	}
	if n != 3 {
		t.Errorf("%d alert expressions parsed, want 3", n)
	}
	if testing.Short() {
		return
	}
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: make deps installs it")
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
