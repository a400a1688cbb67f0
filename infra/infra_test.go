// Package infra holds the offline checks of promrelay's infrastructure as
// code: template.yaml (cfn-lint), infra/ (terraform fmt and an HCL parse),
// and s.yaml (Serverless Devs' own `s preview`, plus a structural check).
package infra

import (
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
		"aws":      {"workspace_arn", "remote_write_url", "role_arn", "state_url"},
		"alicloud": {"role_arn", "state_url"},
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
// way the fc3 component reads them.
func TestServerlessDevsStructure(t *testing.T) {
	for _, file := range []string{"../s.yaml", "../s.custom-runtime.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var s sYAML
		if err := yaml.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if s.Edition != "3.0.0" || len(s.Resources) != 1 {
			t.Fatalf("%s: edition %q, %d resources", file, s.Edition, len(s.Resources))
		}
		for name, r := range s.Resources {
			p := r.Props
			if r.Component != "fc3" || p.Region == "" || p.FunctionName == "" || p.Timeout <= 0 || !strings.Contains(p.Role, "PROMRELAY_FC_ROLE_ARN") {
				t.Errorf("%s/%s: incomplete function props %+v", file, name, p)
			}
			if len(r.Actions.PreDeploy) == 0 || r.Actions.PreDeploy[0].Run != "make package" {
				t.Errorf("%s/%s: no pre-deploy make package", file, name)
			}
			switch p.Runtime {
			case "go1":
				if p.Handler != "main" || p.Code != "./dist/fc/main.zip" {
					t.Errorf("%s: go1 runtime needs handler main and dist/fc/main.zip, got %q %q", file, p.Handler, p.Code)
				}
			case "custom.debian10", "custom.debian11", "custom.debian12":
				if p.CustomRuntimeConfig == nil || p.CustomRuntimeConfig.Port != 9000 || p.InstanceConcurrency < 2 || p.Code != "./dist/fc-custom/main.zip" {
					t.Errorf("%s: custom runtime needs port 9000, instanceConcurrency and dist/fc-custom/main.zip", file)
				}
			default:
				t.Errorf("%s: runtime %q", file, p.Runtime)
			}
			if !strings.Contains(p.Env["PROMRELAY_UPSTREAM_URL"], "${env('PROMRELAY_UPSTREAM_URL'") {
				t.Errorf("%s: PROMRELAY_UPSTREAM_URL not taken from the environment", file)
			}
			var http, timer bool
			for _, tr := range p.Triggers {
				switch tr.Type {
				case "http":
					methods, _ := tr.Config["methods"].([]any)
					http = len(methods) == 4
				case "timer":
					timer = tr.Config["cronExpression"] != nil
				}
			}
			if !http || !timer {
				t.Errorf("%s: want an HTTP trigger with GET/POST/PUT/DELETE and a timer trigger", file)
			}
		}
	}
}

// TestServerlessDevsPreview renders s.yaml with Serverless Devs' own CLI.
func TestServerlessDevsPreview(t *testing.T) {
	s := tool(t, "s", "../.tools/node_modules/.bin/s")
	for _, file := range []string{"s.yaml", "s.custom-runtime.yaml"} {
		out := run(t, "..", s, "preview", "-t", file)
		for _, want := range []string{"fc3", "functionName", "triggerType", "timer", "http"} {
			if !strings.Contains(out, want) {
				t.Errorf("s preview -t %s: output lacks %q:\n%s", file, want, out)
			}
		}
	}
}
