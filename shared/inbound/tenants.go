package inbound

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/promrelay/promrelay/shared/wire"
)

// Tenant is one group of writers and readers: its labels, set last on
// every series it writes and forced onto every selector it reads, its
// scopes, and optionally its own upstream and read URLs.
type Tenant struct {
	Name     string
	Labels   []wire.Label // sorted by name
	Scopes   Scope        // scopes: in the file; ScopeWrite when the file lists none
	Upstream *TenantUpstream
	// QueryURL and RemoteReadURL are the tenant's own read endpoints
	// (query_url, remote_read_url); "" means the relay's.
	QueryURL, RemoteReadURL string
}

// TenantUpstream is a tenant's own remote-write endpoint and how to sign
// for it (the modes of PROMRELAY_UPSTREAM_AUTH; aliyun and sigv4 take the
// other settings from the global configuration, the role ARNs from here
// when set).
type TenantUpstream struct {
	URL           string `yaml:"url"`
	Auth          string `yaml:"auth"`
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	BearerToken   string `yaml:"bearer_token"`
	AliyunRoleARN string `yaml:"aliyun_role_arn"`
	SigV4RoleARN  string `yaml:"sigv4_role_arn"`
	SigV4Region   string `yaml:"sigv4_region"`
}

// Tenants is the tenants file (PROMRELAY_TENANTS_FILE):
//
//	require_tenant: true          # writers without a tenant get 403
//	tenants:
//	  - name: team-a
//	    labels: {tenant_userid: "1001"}
//	    scopes: [write, read]       # default [write]
//	    upstream: {url: https://..., auth: basic, username: a, password: ...}
//	    query_url: https://...      # optional, the tenant's own PromQL API base
//	    remote_read_url: https://...  # optional, the tenant's own remote-read URL
//	tokens:                       # static bearer tokens and their tenants
//	  "token-of-team-a": team-a
//	users:                        # basic users (hashes in the users file) and their tenants
//	  alice: team-a
type Tenants struct {
	RequireTenant bool              `yaml:"require_tenant"`
	List          []tenantSpec      `yaml:"tenants"`
	Tokens        map[string]string `yaml:"tokens"`
	Users         map[string]string `yaml:"users"`
	byName        map[string]*Tenant
}

type tenantSpec struct {
	Name          string            `yaml:"name"`
	Labels        map[string]string `yaml:"labels"`
	Scopes        []string          `yaml:"scopes"`
	Upstream      *TenantUpstream   `yaml:"upstream"`
	QueryURL      string            `yaml:"query_url"`
	RemoteReadURL string            `yaml:"remote_read_url"`
}

// ParseTenants reads a tenants file. Errors name the file and the problem.
func ParseTenants(b []byte) (*Tenants, error) {
	var t Tenants
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return nil, yamlError(err)
	}
	t.byName = map[string]*Tenant{}
	for _, s := range t.List {
		if s.Name == "" {
			return nil, fmt.Errorf("a tenant has no name")
		}
		if t.byName[s.Name] != nil {
			return nil, fmt.Errorf("tenant %q is defined twice", s.Name)
		}
		tn := &Tenant{Name: s.Name, Upstream: s.Upstream, QueryURL: s.QueryURL, RemoteReadURL: s.RemoteReadURL, Scopes: ScopeWrite}
		if s.Scopes != nil {
			sc, err := ParseScope(s.Scopes)
			if err != nil {
				return nil, fmt.Errorf("tenant %q: %w", s.Name, err)
			}
			if sc == 0 {
				return nil, fmt.Errorf("tenant %q: scopes is empty (list read, write or both)", s.Name)
			}
			tn.Scopes = sc
		}
		for k, v := range s.Labels {
			if !wire.IsValidLabelName(k) || strings.HasPrefix(k, "__") || v == "" {
				return nil, fmt.Errorf("tenant %q: invalid label %s=%q", s.Name, k, v)
			}
			tn.Labels = append(tn.Labels, wire.Label{Name: k, Value: v})
		}
		slices.SortFunc(tn.Labels, func(a, b wire.Label) int { return strings.Compare(a.Name, b.Name) })
		if u := tn.Upstream; u != nil && u.URL == "" {
			return nil, fmt.Errorf("tenant %q: upstream without url", s.Name)
		}
		t.byName[s.Name] = tn
	}
	return &t, nil
}

// yamlQuoted matches the value yaml.v3 quotes in a type error
// ("line 3: cannot unmarshal !!str `s3cr3t-...` into bool").
var yamlQuoted = regexp.MustCompile("`.*`")

// yamlError returns err without the file's values: a tenants or users file
// holds passwords, tokens and hashes, and errors end up in logs.
func yamlError(err error) error {
	return errors.New(yamlQuoted.ReplaceAllString(err.Error(), "a value"))
}

// LoadTenants reads and parses a tenants file.
func LoadTenants(path string) (*Tenants, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseTenants(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// All returns every tenant.
func (t *Tenants) All() []*Tenant {
	out := make([]*Tenant, 0, len(t.byName))
	for _, tn := range t.byName {
		out = append(out, tn)
	}
	slices.SortFunc(out, func(a, b *Tenant) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LoadBasicUsers reads the basic_auth_users of a Prometheus web.yml-style
// file: user name → bcrypt hash.
func LoadBasicUsers(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, yamlError(err))
	}
	for u, h := range f.Users {
		if !strings.HasPrefix(h, "$2") {
			return nil, fmt.Errorf("%s: the password of %q is not a bcrypt hash", path, u)
		}
	}
	return f.Users, nil
}

// LoadTokens reads one token per line; blank lines and # comments are
// skipped.
func LoadTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, nil
}
