// Package infra holds the offline checks of promrelay's infrastructure as
// code: template.yaml (cfn-lint), infra/ (terraform fmt and an HCL parse),
// and s.yaml (Serverless Devs' own `s preview`, plus a structural check),
// and that the read path's permissions exist only when it is enabled
// (read_test.go).
package infra

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"go.yaml.in/yaml/v3"
)

// tool returns the path of a command: skipped under -short (make
// test-short needs no tool); with PROMRELAY_E2E set (make test, whose
// machine has them), a missing tool fails; otherwise it skips with a clear
// message.
func tool(t *testing.T, name string, extra ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s is a real tool: skipped under -short", name)
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("PROMRELAY_E2E") != "" {
		t.Fatalf("%s is not installed; run 'make deps'", name)
	}
	t.Skipf("%s is not installed: check skipped", name)
	return ""
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0", "CHECKPOINT_DISABLE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestTemplateCfnLint(t *testing.T) {
	run(t, "..", tool(t, "cfn-lint"), "template.yaml")
}

func TestTerraformFmt(t *testing.T) {
	run(t, ".", tool(t, "terraform"), "fmt", "-check", "-recursive", "-diff", ".")
}

// TestTerraformParses parses every .tf file with HCL and checks that each
// cloud folder declares the outputs the README's deploy steps feed into
// template.yaml and s.yaml.
func TestTerraformParses(t *testing.T) {
	want := map[string][]string{
		"aws":      {"workspace_arn", "remote_write_url", "role_arn", "state_url", "query_url", "read_role_arn"},
		"alicloud": {"role_arn", "state_url", "read_role_arn"},
	}
	for dir, outputs := range want {
		files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
		if len(files) < 3 {
			t.Fatalf("%s: %d .tf files", dir, len(files))
		}
		p := hclparse.NewParser()
		found := map[string]bool{}
		for _, f := range files {
			file, diags := p.ParseHCLFile(f)
			if diags.HasErrors() {
				t.Fatalf("%s: %v", f, diags)
			}
			content, _, diags := file.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
				{Type: "output", LabelNames: []string{"name"}},
				{Type: "resource", LabelNames: []string{"type", "name"}},
				{Type: "variable", LabelNames: []string{"name"}},
			}})
			if diags.HasErrors() {
				t.Fatalf("%s: %v", f, diags)
			}
			for _, b := range content.Blocks {
				found[b.Type+"."+strings.Join(b.Labels, ".")] = true
			}
		}
		for _, o := range outputs {
			if !found["output."+o] {
				t.Errorf("%s: no output %q", dir, o)
			}
		}
		// The optional dashboard (README "Observing the relay").
		for _, b := range []string{"resource.grafana_dashboard.promrelay", "variable.grafana_url", "variable.grafana_auth"} {
			if !found[b] {
				t.Errorf("%s: no %s", dir, b)
			}
		}
	}
}

// fcProps is the part of an fc3 resource's props the relay depends on.
type sYAML struct {
	Edition   string `yaml:"edition"`
	Resources map[string]struct {
		Component string `yaml:"component"`
		Actions   struct {
			PreDeploy []struct {
				Run string `yaml:"run"`
			} `yaml:"pre-deploy"`
		} `yaml:"actions"`
		Props struct {
			Region              string            `yaml:"region"`
			FunctionName        string            `yaml:"functionName"`
			Runtime             string            `yaml:"runtime"`
			Handler             string            `yaml:"handler"`
			Code                string            `yaml:"code"`
			Timeout             int               `yaml:"timeout"`
			Role                string            `yaml:"role"`
			InstanceConcurrency int               `yaml:"instanceConcurrency"`
			Env                 map[string]string `yaml:"environmentVariables"`
			CustomRuntimeConfig *struct {
				Command []string `yaml:"command"`
				Port    int      `yaml:"port"`
			} `yaml:"customRuntimeConfig"`
			Triggers []struct {
				Name   string         `yaml:"triggerName"`
				Type   string         `yaml:"triggerType"`
				Config map[string]any `yaml:"triggerConfig"`
			} `yaml:"triggers"`
		} `yaml:"props"`
	} `yaml:"resources"`
}

// TestServerlessDevsStructure checks s.yaml and s.custom-runtime.yaml the
// way the fc3 component reads them: s.yaml holds the write function
// (promrelay) and the read function (promrelay-read, its own binary and
// role, GET and POST only, no timer); the custom runtime serves both paths
// from one function, its read routes off by default.
func TestServerlessDevsStructure(t *testing.T) {
	want := map[string][]string{
		"../s.yaml":                {"promrelay", "promrelay-read"},
		"../s.custom-runtime.yaml": {"promrelay"},
	}
	for file, names := range want {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var s sYAML
		if err := yaml.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if s.Edition != "3.0.0" || len(s.Resources) != len(names) {
			t.Fatalf("%s: edition %q, %d resources, want %v", file, s.Edition, len(s.Resources), names)
		}
		for _, name := range names {
			r, ok := s.Resources[name]
			if !ok {
				t.Fatalf("%s: no resource %q", file, name)
			}
			read := strings.HasSuffix(name, "-read")
			roleVar, code := "PROMRELAY_FC_ROLE_ARN", "./dist/fc/main.zip"
			if read {
				roleVar, code = "PROMRELAY_FC_READ_ROLE_ARN", "./dist/fc-read/main.zip"
			}
			p := r.Props
			if r.Component != "fc3" || p.Region == "" || p.FunctionName == "" || p.Timeout <= 0 || !strings.Contains(p.Role, "${env('"+roleVar+"'") {
				t.Errorf("%s/%s: incomplete function props (role from %s) %+v", file, name, roleVar, p)
			}
			if len(r.Actions.PreDeploy) == 0 || r.Actions.PreDeploy[0].Run != "make package" {
				t.Errorf("%s/%s: no pre-deploy make package", file, name)
			}
			switch p.Runtime {
			case "go1":
				if p.Handler != "main" || p.Code != code {
					t.Errorf("%s/%s: go1 runtime needs handler main and %s, got %q %q", file, name, code, p.Handler, p.Code)
				}
			case "custom.debian10", "custom.debian11", "custom.debian12":
				if p.CustomRuntimeConfig == nil || p.CustomRuntimeConfig.Port != 9000 || p.InstanceConcurrency < 2 || p.Code != "./dist/fc-custom/main.zip" {
					t.Errorf("%s: custom runtime needs port 9000, instanceConcurrency and dist/fc-custom/main.zip", file)
				}
			default:
				t.Errorf("%s: runtime %q", file, p.Runtime)
			}
			fromEnv := func(key string) bool { return strings.Contains(p.Env[key], "${env('"+key+"'") }
			if read {
				// The read function: no write upstream, no state.
				for _, key := range []string{"PROMRELAY_UPSTREAM_URL", "PROMRELAY_STATE_URL", "PROMRELAY_GROUP_TTL", "PROMRELAY_INVOKE_SECRET"} {
					if _, ok := p.Env[key]; ok {
						t.Errorf("%s/%s: the read function sets %s", file, name, key)
					}
				}
			} else if !fromEnv("PROMRELAY_UPSTREAM_URL") {
				t.Errorf("%s/%s: PROMRELAY_UPSTREAM_URL not taken from the environment", file, name)
			}
			if read || p.CustomRuntimeConfig != nil {
				for _, key := range []string{"PROMRELAY_QUERY_URL", "PROMRELAY_REMOTE_READ_URL", "PROMRELAY_QUERY_AUTH", "PROMRELAY_INBOUND_READ_TOKENS", "PROMRELAY_INBOUND_AUTH"} {
					if !fromEnv(key) {
						t.Errorf("%s/%s: %s not taken from the environment", file, name, key)
					}
				}
			}
			if p.CustomRuntimeConfig != nil {
				// Read routes off unless asked for.
				for _, key := range []string{"PROMRELAY_QUERY_URL", "PROMRELAY_REMOTE_READ_URL"} {
					if p.Env[key] != "${env('"+key+"', '')}" {
						t.Errorf("%s/%s: %s must default to empty (read routes off), got %q", file, name, key, p.Env[key])
					}
				}
			}
			var methods []string
			var https, timers int
			for _, tr := range p.Triggers {
				switch tr.Type {
				case "http":
					https++
					ms, _ := tr.Config["methods"].([]any)
					for _, m := range ms {
						methods = append(methods, fmt.Sprint(m))
					}
				case "timer":
					if tr.Config["cronExpression"] != nil {
						timers++
					}
				}
			}
			wantMethods, wantTimers := "GET,POST,PUT,DELETE", 1
			if read {
				wantMethods, wantTimers = "GET,POST", 0
			}
			if https != 1 || strings.Join(methods, ",") != wantMethods || timers != wantTimers {
				t.Errorf("%s/%s: want one HTTP trigger with %s and %d timer trigger(s), got %d with %v and %d", file, name, wantMethods, wantTimers, https, methods, timers)
			}
		}
	}
}

// TestServerlessDevsPreview renders s.yaml with Serverless Devs' own CLI.
func TestServerlessDevsPreview(t *testing.T) {
	s := tool(t, "s", "../.tools/node_modules/.bin/s")
	for _, file := range []string{"s.yaml", "s.custom-runtime.yaml"} {
		out := run(t, "..", s, "preview", "-t", file)
		wants := []string{"fc3", "functionName", "triggerType", "timer", "http", "PROMRELAY_QUERY_URL"}
		if file == "s.yaml" {
			wants = append(wants, "promrelay-read", "./dist/fc-read/main.zip")
		}
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("s preview -t %s: output lacks %q:\n%s", file, want, out)
			}
		}
	}
}

// TestGrafanaDashboardIsOptional: the dashboard resource is created only
// when grafana_url is set, from the dashboard file the README names
// (whose expressions shared/metrics' TestDashboard checks).
func TestGrafanaDashboardIsOptional(t *testing.T) {
	for _, dir := range []string{"aws", "alicloud"} {
		b, err := os.ReadFile(filepath.Join(dir, "grafana.tf"))
		if err != nil {
			t.Fatal(err)
		}
		tf := string(b)
		for _, want := range []string{`count       = var.grafana_url != "" ? 1 : 0`, `file("${path.module}/../grafana/promrelay.json")`, `default     = ""`} {
			if !strings.Contains(tf, want) {
				t.Errorf("%s/grafana.tf lacks %s", dir, want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join("grafana", "promrelay.json")); err != nil {
		t.Fatal(err)
	}
}
