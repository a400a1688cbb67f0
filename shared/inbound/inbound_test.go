package inbound_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/promrelay/promrelay/shared/inbound"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef-shared")
	rsaKey = mustRSA()
	ecKey  = mustEC()
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func pubPEM(t testing.TB, pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(extra ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "job-1", "iss": "https://issuer.example", "aud": "promrelay", "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

const tenantsYAML = `
require_tenant: false
tenants:
  - name: team-a
    labels: {tenant_userid: "1001", team: a}
  - name: team-b
    labels: {tenant_userid: "1002"}
tokens:
  "token-of-team-a": team-a
users:
  alice: team-b
`

func newAuth(t testing.TB, modes ...string) *inbound.Authenticator {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte("alice-pass"), bcrypt.MinCost)
	tenants, err := inbound.ParseTenants([]byte(tenantsYAML))
	if err != nil {
		t.Fatal(err)
	}
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret, PublicKeyPEM: pubPEM(t, &rsaKey.PublicKey),
		Issuer: "https://issuer.example", Audience: "promrelay", TenantClaim: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := inbound.New(inbound.Options{Modes: modes, Tokens: []string{"plain-token"}, BasicUsers: map[string]string{"alice": string(hash)},
		JWT: v, Tenants: tenants, Logger: slog.New(slog.DiscardHandler), MaxConcurrentBcrypt: 4})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func request(header string) *http.Request {
	r := httptest.NewRequest("POST", "/metrics/job/x", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return r
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestModes(t *testing.T) {
	a := newAuth(t, "bearer", "basic", "jwt")
	good := sign(t, jwt.SigningMethodRS256, rsaKey, claims("tenant", "team-a"))
	cases := []struct {
		name       string
		header     string
		wantStatus int // 0: accepted
		wantTenant string
		wantLabels string
	}{
		{"bearer good", "Bearer plain-token", 0, "", ""},
		{"bearer of a tenant", "Bearer token-of-team-a", 0, "team-a", `team=a,tenant_userid=1001`},
		{"bearer wrong", "Bearer nope", 401, "", ""},
		{"bearer empty", "Bearer ", 401, "", ""},
		{"missing", "", 401, "", ""},
		{"unknown scheme", "Digest x", 401, "", ""},
		{"basic good", basic("alice", "alice-pass"), 0, "team-b", `tenant_userid=1002`},
		{"basic good again (cached)", basic("alice", "alice-pass"), 0, "team-b", `tenant_userid=1002`},
		{"basic wrong password", basic("alice", "wrong"), 401, "", ""},
		{"basic unknown user", basic("bob", "alice-pass"), 401, "", ""},
		{"basic malformed", "Basic !!!", 401, "", ""},
		{"basic with token as password", basic("any", "plain-token"), 0, "", ""},
		{"jwt rs256", "Bearer " + good, 0, "team-a", `team=a,tenant_userid=1001`},
		{"jwt in basic password (client_golang)", basic("any", good), 0, "team-a", `team=a,tenant_userid=1001`},
		{"jwt hs256", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, claims("tenant", "team-b")), 0, "team-b", `tenant_userid=1002`},
		{"jwt expired", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims("tenant", "team-a", "exp", time.Now().Add(-time.Hour).Unix())), 401, "", ""},
		{"jwt without exp", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, func() jwt.MapClaims { c := claims("tenant", "team-a"); delete(c, "exp"); return c }()), 401, "", ""},
		{"jwt not yet valid", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims("tenant", "team-a", "nbf", time.Now().Add(time.Hour).Unix())), 401, "", ""},
		{"jwt wrong issuer", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims("tenant", "team-a", "iss", "evil")), 401, "", ""},
		{"jwt wrong audience", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims("tenant", "team-a", "aud", "other")), 401, "", ""},
		{"jwt wrong key", "Bearer " + sign(t, jwt.SigningMethodRS256, mustRSA(), claims("tenant", "team-a")), 401, "", ""},
		{"jwt malformed", "Bearer a.b.c", 401, "", ""},
		{"jwt alg none", "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("tenant", "team-a")), 401, "", ""},
		{"jwt unknown tenant", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims("tenant", "team-z")), 403, "", ""},
		{"jwt without tenant claim", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims()), 403, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(request(tc.header))
			if tc.wantStatus != 0 {
				if err == nil {
					t.Fatalf("accepted, want %d", tc.wantStatus)
				}
				if got := inbound.Status(err); got != tc.wantStatus {
					t.Fatalf("status %d (%v), want %d", got, err, tc.wantStatus)
				}
				if tc.wantStatus == 401 && err.Error() != "unauthorized: missing or invalid credentials" && !strings.HasPrefix(err.Error(), "unauthorized: missing or invalid credentials: ") {
					t.Fatalf("401 message hints at the cause: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tenant := ""
			if id.Tenant != nil {
				tenant = id.Tenant.Name
			}
			var labels []string
			for _, l := range id.Labels {
				labels = append(labels, l.Name+"="+l.Value)
			}
			if tenant != tc.wantTenant || strings.Join(labels, ",") != tc.wantLabels {
				t.Fatalf("tenant %q labels %v, want %q %q", tenant, labels, tc.wantTenant, tc.wantLabels)
			}
		})
	}
	if a.Failures() < 15 {
		t.Errorf("%d failures counted", a.Failures())
	}
}

// TestAlgorithmConfusion presents an HS256 token whose "secret" is the RSA
// public key to a verifier that has only the RS256 key.
func TestAlgorithmConfusion(t *testing.T) {
	pub := pubPEM(t, &rsaKey.PublicKey)
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{PublicKeyPEM: pub})
	if err != nil {
		t.Fatal(err)
	}
	forged := sign(t, jwt.SigningMethodHS256, pub, claims())
	if _, err := v.Verify(forged); err == nil {
		t.Fatal("HS256 token signed with the public key accepted")
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims())); err != nil {
		t.Fatalf("genuine RS256 token rejected: %v", err)
	}
	// ES256 key, and an RS256 token presented to it.
	ev, err := inbound.NewJWTVerifier(inbound.JWTOptions{PublicKeyPEM: pubPEM(t, &ecKey.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Verify(sign(t, jwt.SigningMethodES256, ecKey, claims())); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	if _, err := ev.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims())); err == nil {
		t.Fatal("RS256 token accepted by an ES256 key")
	}
}

func TestJWKSFileAndTenantLabel(t *testing.T) {
	n := base64.RawURLEncoding.EncodeToString(rsaKey.PublicKey.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(rsaKey.PublicKey.E)).Bytes())
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": n, "e": e}}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(path, jwks, 0o600)
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{JWKS: path, Issuer: "https://issuer.example", Audience: "promrelay", TenantClaim: "org", TenantLabel: "tenant_userid"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := inbound.New(inbound.Options{Modes: []string{"jwt"}, JWT: v, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims("org", "4711"))
	tok.Header["kid"] = "k1"
	s, _ := tok.SignedString(rsaKey)
	id, err := a.Authenticate(request("Bearer " + s))
	if err != nil || len(id.Labels) != 1 || id.Labels[0].Name != "tenant_userid" || id.Labels[0].Value != "4711" {
		t.Fatalf("%+v %v", id, err)
	}
}

func TestRequireTenantAndConfigErrors(t *testing.T) {
	tenants, _ := inbound.ParseTenants([]byte("require_tenant: true\ntenants: [{name: a, labels: {t: x}}]\ntokens: {tok-a: a}\n"))
	a, err := inbound.New(inbound.Options{Modes: []string{"bearer"}, Tokens: []string{"loose"}, Tenants: tenants, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(request("Bearer tok-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(request("Bearer loose")); inbound.Status(err) != 403 {
		t.Fatalf("token without tenant under require_tenant: %v", err)
	}
	for _, tc := range []struct {
		o    inbound.Options
		want string
	}{
		{inbound.Options{}, "no inbound authentication mode"},
		{inbound.Options{Modes: []string{"bearer"}}, "needs tokens"},
		{inbound.Options{Modes: []string{"basic"}}, "needs users"},
		{inbound.Options{Modes: []string{"jwt"}}, "needs a secret"},
		{inbound.Options{Modes: []string{"magic"}}, "unknown inbound authentication mode"},
	} {
		if _, err := inbound.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o.Modes, err, tc.want)
		}
	}
	for _, bad := range []string{"tenants: [{labels: {a: b}}]", "tenants: [{name: a}, {name: a}]", "tenants: [{name: a, labels: {__x: b}}]", "unknown_key: 1"} {
		if _, err := inbound.ParseTenants([]byte(bad)); err == nil {
			t.Errorf("tenants file %q accepted", bad)
		}
	}
	if _, err := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: []byte("short")}); err == nil {
		t.Error("short HS256 secret accepted")
	}
}

func TestChallengeAndLogs(t *testing.T) {
	var logs bytes.Buffer
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	a, err := inbound.New(inbound.Options{Modes: []string{"bearer", "basic"}, Tokens: []string{"secret-token-value"},
		BasicUsers: map[string]string{"u": string(hash)}, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), MaxConcurrentBcrypt: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	a.Challenge(h)
	if got := strings.Join(h.Values("WWW-Authenticate"), "; "); got != `Bearer realm="promrelay"; Basic realm="promrelay"` {
		t.Fatalf("challenge %q", got)
	}
	a.Authenticate(request("Bearer secret-token-valuX"))
	a.Authenticate(request(basic("u", "guessed-password")))
	if strings.Contains(logs.String(), "secret-token-valu") || strings.Contains(logs.String(), "guessed-password") {
		t.Fatalf("credential in the log: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"failures_total":2`) {
		t.Fatalf("failures not counted: %s", logs.String())
	}
}

// TestNoneIsExclusive: "none" next to another mode let every request
// without Authorization through (and past require_tenant), making the
// other mode optional. It is a construction error naming the setting.
func TestNoneIsExclusive(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	v, _ := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret})
	requireTenant, _ := inbound.ParseTenants([]byte("require_tenant: true\ntenants: [{name: a, labels: {t: x}}]\n"))
	for _, tc := range []struct {
		name    string
		modes   []string
		tenants *inbound.Tenants
	}{
		{"none,bearer", []string{"none", "bearer"}, nil},
		{"bearer,none", []string{"bearer", "none"}, nil},
		{"none,basic", []string{"none", "basic"}, nil},
		{"none,jwt", []string{"none", "jwt"}, nil},
		{"none with require_tenant", []string{"none"}, requireTenant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inbound.New(inbound.Options{Modes: tc.modes, Tokens: []string{"tok"}, BasicUsers: map[string]string{"u": string(hash)},
				JWT: v, Tenants: tc.tenants, MaxConcurrentBcrypt: 1, Logger: slog.New(slog.DiscardHandler)})
			if err == nil || !strings.HasPrefix(err.Error(), "PROMRELAY_INBOUND_AUTH: ") || !strings.Contains(err.Error(), "none") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%v, want one line naming PROMRELAY_INBOUND_AUTH", err)
			}
		})
	}
	a, err := inbound.New(inbound.Options{Modes: []string{"none"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(request("")); err != nil {
		t.Fatalf("none alone: %v", err)
	}
}

// TestNoSecretInErrorsOrLogs presents wrong secrets of every kind and
// loads files with secrets in the wrong place, and checks that no error
// and no log line contains them.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	hash, _ := bcrypt.GenerateFromPassword([]byte("right-password"), bcrypt.MinCost)
	tenants, _ := inbound.ParseTenants([]byte(tenantsYAML))
	v, _ := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret, TenantClaim: "tenant"})
	a, err := inbound.New(inbound.Options{Modes: []string{"bearer", "basic", "jwt"}, Tokens: []string{"hunter0-token"}, Tenants: tenants,
		BasicUsers: map[string]string{"alice": string(hash)}, JWT: v, MaxConcurrentBcrypt: 1,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := []byte("hunter9-not-the-secret-but-32-bytes-long")
	var errs []string
	for _, h := range []string{
		"Bearer hunter1-token",
		basic("alice", "hunter2-password"),
		basic("hunter3-user", "hunter3-password"),
		basic("alice", "hunter4-"+strings.Repeat("x", 80)),
		"Bearer " + sign(t, jwt.SigningMethodHS256, wrongKey, claims("tenant", "team-a")),
		basic("any", sign(t, jwt.SigningMethodHS256, wrongKey, claims("tenant", "team-a"))),
		"Bearer hunter5.hunter5.hunter5",
		"Digest hunter6",
	} {
		_, err := a.Authenticate(request(h))
		if err == nil {
			t.Fatalf("%s accepted", h)
		}
		errs = append(errs, err.Error())
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"tenants.yml": "require_tenant: hunter7-secret-value\n",
		"users.yml":   "basic_auth_users: hunter8-hash-value\n",
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o600)
		var err error
		if name == "tenants.yml" {
			_, err = inbound.LoadTenants(path)
		} else {
			_, err = inbound.LoadBasicUsers(path)
		}
		if err == nil {
			t.Fatalf("%s accepted", name)
		}
		errs = append(errs, err.Error())
	}
	all := strings.Join(errs, "\n") + "\n" + logs.String()
	for _, s := range []string{"hunter", "right-password", string(secret)} {
		if strings.Contains(all, s) {
			t.Fatalf("%q in an error or the log:\n%s", s, all)
		}
	}
	if n := strings.Count(logs.String(), "authentication failed"); n != 8 {
		t.Fatalf("%d failures logged, want 8:\n%s", n, logs.String())
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htpasswd := "$2y$" + string(hash[4:]) // htpasswd -B writes $2y$
	files := map[string]string{
		"tokens":      "# comment\n tok-1 \n\ntok-2\n",
		"users.yml":   "basic_auth_users:\n  alice: " + htpasswd + "\n",
		"plain.yml":   "basic_auth_users:\n  alice: plaintext\n",
		"tenants.yml": tenantsYAML,
		"bad.yml":     "tenants: [{name: a}, {name: a}]\n",
	}
	for name, body := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600)
	}
	toks, err := inbound.LoadTokens(filepath.Join(dir, "tokens"))
	if err != nil || strings.Join(toks, ",") != "tok-1,tok-2" {
		t.Fatalf("tokens %q %v", toks, err)
	}
	users, err := inbound.LoadBasicUsers(filepath.Join(dir, "users.yml"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := inbound.New(inbound.Options{Modes: []string{"basic"}, BasicUsers: users, MaxConcurrentBcrypt: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(request(basic("alice", "pw"))); err != nil {
		t.Fatalf("$2y$ hash: %v", err)
	}
	if _, err := inbound.LoadBasicUsers(filepath.Join(dir, "plain.yml")); err == nil || strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("plain password: %v", err)
	}
	tenants, err := inbound.LoadTenants(filepath.Join(dir, "tenants.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tn := range tenants.All() {
		names = append(names, tn.Name)
	}
	if strings.Join(names, ",") != "team-a,team-b" {
		t.Fatalf("tenants %v", names)
	}
	if _, err := inbound.LoadTenants(filepath.Join(dir, "bad.yml")); err == nil || !strings.Contains(err.Error(), "bad.yml") {
		t.Fatalf("bad tenants file: %v", err)
	}
	for _, missing := range []func(string) error{
		func(p string) error { _, err := inbound.LoadTokens(p); return err },
		func(p string) error { _, err := inbound.LoadBasicUsers(p); return err },
		func(p string) error { _, err := inbound.LoadTenants(p); return err },
	} {
		if missing(filepath.Join(dir, "missing")) == nil {
			t.Fatal("missing file accepted")
		}
	}
}

// TestFailureSchemeIsClosed: whatever scheme a refused caller writes, the
// failure is reported (metrics, log) under one of a closed set, and a
// credential sent without a scheme never reaches the log.
func TestFailureSchemeIsClosed(t *testing.T) {
	var log bytes.Buffer
	var schemes []string
	a, err := inbound.New(inbound.Options{Modes: []string{inbound.ModeBearer}, Tokens: []string{"t0123456789abcdef"},
		Logger: slog.New(slog.NewJSONHandler(&log, nil)), OnFailure: func(scheme, reason string) { schemes = append(schemes, scheme+"/"+reason) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "Bearer nope", "Basic Zm9vOmJhcg==", "secretTokenWithoutScheme", "X-Custom-1 abc", "X-Custom-2 abc"} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if _, err := a.Authenticate(r); err == nil {
			t.Fatalf("%q authenticated", h)
		}
	}
	want := []string{"/missing", "bearer/invalid", "basic/invalid", "other/invalid", "other/invalid", "other/invalid"}
	if strings.Join(schemes, " ") != strings.Join(want, " ") {
		t.Errorf("failures %q, want %q", schemes, want)
	}
	if strings.Contains(strings.ToLower(log.String()), "secrettokenwithoutscheme") {
		t.Errorf("the log holds a credential sent without a scheme:\n%s", log.String())
	}
}
