package inbound_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/promrelay/promrelay/shared/inbound"
)

const scopedTenantsYAML = `
tenants:
  - name: writers
    labels: {tenant_userid: "1001"}
  - name: readers
    labels: {tenant_userid: "1002"}
    scopes: [read]
  - name: both
    labels: {tenant_userid: "1003"}
    scopes: [write, read]
    query_url: http://127.0.0.1:9/q
tokens:
  "tok-writers": writers
  "tok-readers": readers
  "tok-both": both
users:
  rita: readers
`

func scopedAuth(t *testing.T, tenantClaim string) *inbound.Authenticator {
	t.Helper()
	tenants, err := inbound.ParseTenants([]byte(scopedTenantsYAML))
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret, Issuer: "https://issuer.example", Audience: "promrelay", TenantClaim: tenantClaim})
	if err != nil {
		t.Fatal(err)
	}
	a, err := inbound.New(inbound.Options{Modes: []string{"bearer", "basic", "jwt"}, Tokens: []string{"tok-write"}, ReadTokens: []string{"tok-read"},
		BasicUsers: map[string]string{"rita": string(hash), "wanda": string(hash)}, JWT: v, Tenants: tenants,
		Logger: slog.New(slog.DiscardHandler), MaxConcurrentBcrypt: 2})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Each kind of credential grants the scopes the README gives it.
func TestScopes(t *testing.T) {
	a, tenantJWT := scopedAuth(t, ""), scopedAuth(t, "tenant")
	jwtWith := func(extra ...any) string {
		return "Bearer " + sign(t, jwt.SigningMethodHS256, secret, claims(extra...))
	}
	for _, c := range []struct {
		name, header string
		want         inbound.Scope
		tenant       string
		byTenant     bool
	}{
		{"global token: write only", "Bearer tok-write", inbound.ScopeWrite, "", false},
		{"read token: read, every series", "Bearer tok-read", inbound.ScopeRead, "", false},
		{"tenant without scopes: write", "Bearer tok-writers", inbound.ScopeWrite, "writers", false},
		{"tenant scopes [read]", "Bearer tok-readers", inbound.ScopeRead, "readers", false},
		{"tenant scopes [write, read]", "Bearer tok-both", inbound.ScopeAll, "both", false},
		{"basic user of a read tenant", basic("rita", "pw"), inbound.ScopeRead, "readers", false},
		{"basic user without a tenant: write", basic("wanda", "pw"), inbound.ScopeWrite, "", false},
		{"jwt without scope claim: write", jwtWith(), inbound.ScopeWrite, "", false},
		{"jwt scope read", jwtWith("scope", "openid read"), inbound.ScopeRead, "", false},
		{"jwt scope read write", jwtWith("scope", "write read"), inbound.ScopeAll, "", false},
		{"jwt read, tenant allows both", jwtWith("scope", "read", "tenant", "both"), inbound.ScopeRead, "both", true},
		{"jwt read write, tenant allows write only", jwtWith("scope", "read write", "tenant", "writers"), inbound.ScopeWrite, "writers", true},
		{"jwt read, tenant allows write only: nothing", jwtWith("scope", "read", "tenant", "writers"), 0, "writers", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			auth := a
			if c.byTenant {
				auth = tenantJWT
			}
			id, err := auth.Authenticate(request(c.header))
			if err != nil {
				t.Fatal(err)
			}
			if id.Scopes != c.want {
				t.Errorf("scopes %q, want %q", id.Scopes, c.want)
			}
			got := ""
			if id.Tenant != nil {
				got = id.Tenant.Name
			}
			if got != c.tenant {
				t.Errorf("tenant %q, want %q", got, c.tenant)
			}
		})
	}
	// A scope claim that names neither read nor write (an identity
	// provider's own scopes), or is not a string, writes, as before scopes.
	for _, other := range []any{"openid profile", []string{"read"}} {
		if id, err := a.Authenticate(request(jwtWith("scope", other))); err != nil || id.Scopes != inbound.ScopeWrite {
			t.Errorf("scope %v: %v %q, want write", other, err, id.Scopes)
		}
	}
	// Mode none grants everything it serves.
	none, err := inbound.New(inbound.Options{Modes: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := none.Authenticate(request("")); id.Scopes != inbound.ScopeAll {
		t.Errorf("none: scopes %q", id.Scopes)
	}
}

func TestScopeErrors(t *testing.T) {
	for yaml, want := range map[string]string{
		"tenants:\n  - name: a\n    scopes: [admin]\n": `unknown scope "admin"`,
		"tenants:\n  - name: a\n    scopes: []\n":      "scopes is empty",
	} {
		if _, err := inbound.ParseTenants([]byte(yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
	if _, err := inbound.New(inbound.Options{Modes: []string{"bearer"}, Tokens: []string{"same"}, ReadTokens: []string{"same"}}); err == nil {
		t.Error("a token that is both a read and a write token was accepted")
	}
	tenants, _ := inbound.ParseTenants([]byte(scopedTenantsYAML))
	if _, err := inbound.New(inbound.Options{Modes: []string{"bearer"}, ReadTokens: []string{"tok-readers"}, Tenants: tenants}); err == nil {
		t.Error("a tenant's token that is also a read token was accepted")
	}
	// A tenant's token that is also a write token without a tenant: the
	// tenant wins, as before scopes.
	a, err := inbound.New(inbound.Options{Modes: []string{"bearer"}, Tokens: []string{"tok-writers"}, Tenants: tenants})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Authenticate(request("Bearer tok-writers")); err != nil || id.Tenant == nil || id.Tenant.Name != "writers" {
		t.Errorf("tenant token also a write token: %v %+v", err, id)
	}
	tn, _ := inbound.ParseTenants([]byte(scopedTenantsYAML))
	for _, x := range tn.All() {
		if x.Name == "both" && x.QueryURL != "http://127.0.0.1:9/q" {
			t.Errorf("query_url %q", x.QueryURL)
		}
	}
}
