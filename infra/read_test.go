package infra

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"go.yaml.in/yaml/v3"
)

// ampQueryActions are the actions of AMP's Prometheus-compatible query API
// (those of AWS's AmazonPrometheusQueryAccess managed policy): the read
// function needs exactly these, and only when the read path is enabled.
var ampQueryActions = []string{"aps:GetLabels", "aps:GetMetricMetadata", "aps:GetSeries", "aps:QueryMetrics"}

// scalars returns every scalar value under n.
func scalars(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, scalars(c)...)
	}
	return out
}

// mapping returns the value of key in the mapping node n, or nil.
func mapping(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// TestTemplateReadPermissionsOnlyWithQueryUrl checks template.yaml: the AMP
// query actions appear only in ReadFunction, which (and whose outputs) exist
// only under HasRead, true exactly when QueryUrl is set; it gets exactly the
// four query actions, no schedule and no S3; RelayFunction gains nothing.
func TestTemplateReadPermissionsOnlyWithQueryUrl(t *testing.T) {
	b, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]

	if q := mapping(mapping(mapping(root, "Parameters"), "QueryUrl"), "Default"); q == nil || q.Value != "" {
		t.Errorf("parameter QueryUrl must default to '' (no read function)")
	}
	hasRead := mapping(mapping(root, "Conditions"), "HasRead")
	if hasRead == nil || hasRead.Tag != "!Not" || strings.Join(scalars(hasRead), ",") != "QueryUrl," {
		t.Errorf("condition HasRead must be !Not [!Equals [!Ref QueryUrl, '']], got %v", scalars(hasRead))
	} else if eq := hasRead.Content[0]; eq.Tag != "!Equals" || eq.Content[0].Tag != "!Ref" {
		t.Errorf("condition HasRead must be !Not [!Equals [!Ref QueryUrl, '']]")
	}

	resources := mapping(root, "Resources")
	for i := 0; i+1 < len(resources.Content); i += 2 {
		name, r := resources.Content[i].Value, resources.Content[i+1]
		var query []string
		for _, v := range scalars(r) {
			if strings.HasPrefix(v, "aps:") && v != "aps:RemoteWrite" {
				query = append(query, v)
			}
		}
		if len(query) == 0 {
			continue
		}
		if name != "ReadFunction" {
			t.Errorf("resource %s is granted AMP query actions %v; only ReadFunction may be", name, query)
			continue
		}
		if c := mapping(r, "Condition"); c == nil || c.Value != "HasRead" {
			t.Errorf("ReadFunction must have Condition: HasRead")
		}
		sort.Strings(query)
		if !slices.Equal(query, ampQueryActions) {
			t.Errorf("ReadFunction's AMP actions = %v, want exactly %v", query, ampQueryActions)
		}
	}
	read := mapping(resources, "ReadFunction")
	if read == nil {
		t.Fatal("no ReadFunction")
	}
	props := mapping(read, "Properties")
	if mapping(props, "Events") != nil {
		t.Error("ReadFunction has events (no schedule for the read path)")
	}
	if mapping(props, "Role") != nil {
		t.Error("ReadFunction must have its own SAM-created role (Policies), not a shared Role")
	}
	for _, v := range scalars(mapping(props, "Policies")) {
		if strings.HasPrefix(v, "s3:") || v == "aps:RemoteWrite" || strings.Contains(v, "*") {
			t.Errorf("ReadFunction is granted %q", v)
		}
	}
	env := mapping(mapping(props, "Environment"), "Variables")
	for _, key := range []string{"PROMRELAY_UPSTREAM_URL", "PROMRELAY_STATE_URL"} {
		if mapping(env, key) != nil {
			t.Errorf("ReadFunction sets %s", key)
		}
	}
	if v := mapping(mapping(read, "Metadata"), "BuildMethod"); v == nil || v.Value != "makefile" {
		t.Error("ReadFunction must be built with BuildMethod: makefile (make build-ReadFunction)")
	}
	for _, v := range scalars(mapping(mapping(resources, "RelayFunction"), "Properties")) {
		if strings.Contains(v, "QueryUrl") || strings.Contains(v, "ReadTokens") {
			t.Errorf("RelayFunction refers to the read path's %q", v)
		}
	}
	outputs := mapping(root, "Outputs")
	for i := 0; i+1 < len(outputs.Content); i += 2 {
		name, o := outputs.Content[i].Value, outputs.Content[i+1]
		if refersTo(o, "ReadFunction") {
			if c := mapping(o, "Condition"); c == nil || c.Value != "HasRead" {
				t.Errorf("output %s refers to the read function without Condition: HasRead", name)
			}
		}
	}
	if mapping(outputs, "ReadFunctionUrl") == nil {
		t.Error("no output ReadFunctionUrl")
	}
}

func refersTo(n *yaml.Node, prefix string) bool {
	for _, v := range scalars(n) {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}

// tfModule is one infra/<cloud> folder, parsed.
type tfModule struct {
	blocks []*hclsyntax.Block
	src    map[*hclsyntax.Block][]byte
	vars   map[string]cty.Value // defaults
}

func parseModule(t *testing.T, dir string) tfModule {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	m := tfModule{src: map[*hclsyntax.Block][]byte{}, vars: map[string]cty.Value{}}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			m.blocks = append(m.blocks, b)
			r := b.Range()
			m.src[b] = file.Bytes[r.Start.Byte:r.End.Byte]
			if b.Type == "variable" {
				if d, ok := b.Body.Attributes["default"]; ok {
					v, diags := d.Expr.Value(nil)
					if diags.HasErrors() {
						t.Fatalf("%s: variable %s: %v", f, b.Labels[0], diags)
					}
					m.vars[b.Labels[0]] = v
				} else {
					m.vars[b.Labels[0]] = cty.StringVal("c1")
				}
			}
		}
	}
	return m
}

// eval evaluates expr with var.* from vars and every other reference
// (resources, data sources, locals) unknown, as Terraform's plan sees them.
func eval(t *testing.T, expr hclsyntax.Expression, vars map[string]cty.Value) cty.Value {
	t.Helper()
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}}
	for _, tr := range expr.Variables() {
		if root := tr.RootName(); root != "var" {
			ctx.Variables[root] = cty.DynamicVal
		}
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%v: %v", expr.Range(), diags)
	}
	return v
}

func with(vars map[string]cty.Value, kv ...any) map[string]cty.Value {
	out := map[string]cty.Value{}
	for k, v := range vars {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1].(cty.Value)
	}
	return out
}

// TestTerraformReadOnlyWhenEnabled checks infra/aws and infra/alicloud: every
// resource or data source that carries a read permission (or the read role)
// has count = 0 when enable_read is false, whatever the other switches say,
// and 1 when it is true; the read outputs are null when it is false; the
// write policies carry no read permission; the read actions are exactly
// AMP's four query actions, and on Alibaba Cloud only read-only actions.
func TestTerraformReadOnlyWhenEnabled(t *testing.T) {
	markers := map[string][]string{
		"aws":      append(slices.Clone(ampQueryActions), "aws_iam_role.read", "aws_iam_policy_document.query"),
		"alicloud": {"local.read_statements", "var.arms_read_actions", "alicloud_ram_role.read", "alicloud_ram_policy.read", "log:Query", "cms:"},
	}
	readOutputs := map[string][]string{"aws": {"read_role_arn", "query_url"}, "alicloud": {"read_role_arn"}}
	for dir, marks := range markers {
		m := parseModule(t, dir)
		if m.vars["enable_read"] != cty.False {
			t.Fatalf("%s: variable enable_read must be a bool defaulting to false, got %#v", dir, m.vars["enable_read"])
		}
		// Every other bool switch on, to catch a read grant behind the wrong one.
		off, on := with(m.vars, "enable_read", cty.False), with(m.vars, "enable_read", cty.True)
		for name, v := range m.vars {
			if v.Type() == cty.Bool && name != "enable_read" {
				off[name], on[name] = cty.True, cty.True
			}
		}
		gated := 0
		for _, b := range m.blocks {
			if b.Type != "resource" && b.Type != "data" {
				continue
			}
			src := string(m.src[b])
			// A read role or policy, or a block that refers to one.
			isRead := strings.Contains(b.Labels[1], "read") || b.Labels[1] == "query"
			for _, mk := range marks {
				isRead = isRead || strings.Contains(src, mk)
			}
			if !isRead {
				continue
			}
			id := dir + ": " + b.Type + "." + strings.Join(b.Labels, ".")
			count, ok := b.Body.Attributes["count"]
			if !ok {
				t.Errorf("%s carries read permissions without count = var.enable_read ? 1 : 0", id)
				continue
			}
			if v := eval(t, count.Expr, off); !v.RawEquals(cty.NumberIntVal(0)) {
				t.Errorf("%s: count = %#v with enable_read = false, want 0", id, v)
			}
			if v := eval(t, count.Expr, on); !v.RawEquals(cty.NumberIntVal(1)) {
				t.Errorf("%s: count = %#v with enable_read = true (and every switch on), want 1", id, v)
			}
			gated++
		}
		if gated < 2 {
			t.Errorf("%s: %d read blocks; want at least a role and a policy", dir, gated)
		}
		for _, b := range m.blocks {
			if b.Type == "output" && slices.Contains(readOutputs[dir], b.Labels[0]) {
				if v := eval(t, b.Body.Attributes["value"].Expr, off); !v.IsNull() {
					t.Errorf("%s: output %s = %#v with enable_read = false, want null", dir, b.Labels[0], v)
				}
				readOutputs[dir] = slices.DeleteFunc(readOutputs[dir], func(s string) bool { return s == b.Labels[0] })
			}
		}
		if len(readOutputs[dir]) > 0 {
			t.Errorf("%s: missing outputs %v", dir, readOutputs[dir])
		}
	}

	// AWS: exactly the four query actions, in one statement, on the workspace.
	for _, b := range parseModule(t, "aws").blocks {
		if b.Type == "data" && b.Labels[1] == "query" {
			var actions []string
			for _, st := range b.Body.Blocks {
				for _, a := range eval(t, st.Body.Attributes["actions"].Expr, nil).AsValueSlice() {
					actions = append(actions, a.AsString())
				}
				res, ok := st.Body.Attributes["resources"]
				var refs []string
				if ok {
					for _, tr := range res.Expr.Variables() {
						refs = append(refs, tr.RootName()+"."+tr[1].(hcl.TraverseAttr).Name)
					}
				}
				if !slices.Equal(refs, []string{"local.workspace_arn"}) {
					t.Errorf("aws: the query policy must be on local.workspace_arn only, got %v", refs)
				}
			}
			sort.Strings(actions)
			if !slices.Equal(actions, ampQueryActions) {
				t.Errorf("aws: query actions %v, want %v", actions, ampQueryActions)
			}
		}
	}

	// Alibaba Cloud: the read policy grants only read-only actions (Get,
	// List, Query, Describe, Search, Check), never a wildcard service.
	m := parseModule(t, "alicloud")
	for _, b := range m.blocks {
		if b.Type != "locals" {
			continue
		}
		attr, ok := b.Body.Attributes["read_statements"]
		if !ok {
			continue
		}
		ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
			"var":   cty.ObjectVal(m.vars),
			"local": cty.ObjectVal(map[string]cty.Value{"arms_resource": cty.UnknownVal(cty.String)}),
			"data":  cty.DynamicVal,
		}}
		v, diags := attr.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		n := 0
		for _, st := range v.AsValueSlice() {
			for _, a := range st.GetAttr("Action").AsValueSlice() {
				action := a.AsString()
				svc, op, _ := strings.Cut(action, ":")
				readOnly := false
				for _, p := range []string{"Get", "List", "Query", "Describe", "Search", "Check"} {
					readOnly = readOnly || strings.HasPrefix(op, p)
				}
				if !readOnly || (svc != "arms" && svc != "log" && svc != "cms") {
					t.Errorf("alicloud: read policy grants %q, not a read-only ARMS/SLS/CloudMonitor action", action)
				}
				n++
			}
		}
		if n == 0 {
			t.Error("alicloud: read policy grants nothing")
		}
	}
}
