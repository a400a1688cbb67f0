package inbound_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/promrelay/promrelay/shared/inbound"
)

func jwksJSON(t *testing.T) []byte {
	t.Helper()
	n := base64.RawURLEncoding.EncodeToString(rsaKey.PublicKey.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(rsaKey.PublicKey.E)).Bytes())
	b, err := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": n, "e": e}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signKID(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWKSNeedsIssuerAndAudience: with a JWKS (usually a shared identity
// provider's), a token issued for another service must not get in, so
// issuer and audience are required at construction.
func TestJWKSNeedsIssuerAndAudience(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, o := range []inbound.JWTOptions{
		{JWKS: path},
		{JWKS: path, Issuer: "https://issuer.example"},
		{JWKS: path, Audience: "promrelay"},
	} {
		_, err := inbound.NewJWTVerifier(o)
		if err == nil || !strings.Contains(err.Error(), "PROMRELAY_JWT_ISSUER") || !strings.Contains(err.Error(), "PROMRELAY_JWT_AUDIENCE") || strings.Contains(err.Error(), "\n") {
			t.Errorf("issuer %q audience %q: %v", o.Issuer, o.Audience, err)
		}
	}
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{JWKS: path, Issuer: "https://issuer.example", Audience: "promrelay"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(signKID(t, claims())); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if _, err := v.Verify(signKID(t, claims("aud", "another-service"))); !errors.Is(err, jwt.ErrTokenInvalidAudience) {
		t.Fatalf("another service's token: %v", err)
	}
	if _, err := inbound.NewJWTVerifier(inbound.JWTOptions{JWKS: filepath.Join(t.TempDir(), "missing.json"), Issuer: "i", Audience: "a"}); err == nil {
		t.Fatal("missing JWKS file accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if _, err := inbound.NewJWTVerifier(inbound.JWTOptions{JWKS: bad, Issuer: "i", Audience: "a"}); err == nil {
		t.Fatal("malformed JWKS file accepted")
	}
}

// TestJWKSOverHTTPSOnly: a JWKS fetched over plain HTTP can be replaced in
// transit, so only https:// is accepted, and http:// to a loopback host.
// Errors never show a URL's credentials or query.
func TestJWKSOverHTTPSOnly(t *testing.T) {
	for _, raw := range []string{
		"http://idp.example/jwks.json",
		"http://user:hunter2@idp.example/jwks.json?api_key=hunter3",
		"ftp://idp.example/jwks.json",
		"http://10.0.0.1/jwks.json",
		"http://127.0.0.1.idp.example/jwks.json",
		"https:///jwks.json",
		"http://%zz",
	} {
		_, err := inbound.NewJWTVerifier(inbound.JWTOptions{JWKS: raw, Issuer: "i", Audience: "a"})
		if err == nil || !strings.Contains(err.Error(), "PROMRELAY_JWT_JWKS") || strings.Contains(err.Error(), "hunter") {
			t.Errorf("%s: %v", raw, err)
		}
	}
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"https://idp.example/jwks", true},
		{"http://127.0.0.1:8080/jwks", true},
		{"http://127.1.2.3/jwks", true},
		{"http://[::1]:8080/jwks", true},
		{"http://localhost:8080/jwks", true},
		{"http://localhost.idp.example/jwks", false},
		{"http://[::ffff:10.0.0.1]/jwks", false},
		{"http://idp.example/jwks", false},
	} {
		u, _ := url.Parse(tc.url)
		if got := inbound.SecureURL(u); got != tc.want {
			t.Errorf("%s: secure %v, want %v", tc.url, got, tc.want)
		}
	}
}

// TestJWKSURL fetches the JWKS from a loopback server, and refuses a
// redirect from it to a plain-HTTP host.
func TestJWKSURL(t *testing.T) {
	keys := jwksJSON(t)
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", 500)
			return
		}
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://idp.example/jwks.json", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(keys)
	}))
	defer srv.Close()
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{JWKS: srv.URL + "/jwks.json?key=hunter2", Issuer: "https://issuer.example", Audience: "promrelay"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(signKID(t, claims())); err != nil {
		t.Fatalf("token signed with a key of the fetched JWKS: %v", err)
	}
	down.Store(true)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims())
	tok.Header["kid"] = "k2" // unknown: keyfunc refreshes, and fails
	s, _ := tok.SignedString(rsaKey)
	if _, err := v.Verify(s); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unknown kid after a failed refresh: %v", err)
	}
	down.Store(false)

	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	v, err = inbound.NewJWTVerifier(inbound.JWTOptions{JWKS: srv.URL + "/redirect?key=hunter2", Issuer: "https://issuer.example", Audience: "promrelay"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "refusing the JWKS redirect to http://idp.example/jwks.json") || strings.Contains(logs.String(), "hunter2") {
		t.Fatalf("log: %s", logs.String())
	}
	if _, err := v.Verify(signKID(t, claims())); err == nil {
		t.Fatal("token accepted without keys")
	}
}

// TestJWTMaxLifetime: a long-lived token (stolen once, usable for a year)
// is refused when MaxLifetime is set; exp − iat is its lifetime, or
// exp − now without iat.
func TestJWTMaxLifetime(t *testing.T) {
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret, MaxLifetime: time.Hour, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		c    jwt.MapClaims
		want error
	}{
		{"iat, short", jwt.MapClaims{"iat": now.Add(-50 * time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix()}, nil},
		{"iat, a year", jwt.MapClaims{"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(365 * 24 * time.Hour).Unix()}, inbound.ErrLifetime},
		{"iat, over by an hour", jwt.MapClaims{"iat": now.Add(-90 * time.Minute).Unix(), "exp": now.Add(30 * time.Minute).Unix()}, inbound.ErrLifetime},
		{"no iat, short", jwt.MapClaims{"exp": now.Add(30 * time.Minute).Unix()}, nil},
		{"no iat, two hours", jwt.MapClaims{"exp": now.Add(2 * time.Hour).Unix()}, inbound.ErrLifetime},
		{"iat in the future", jwt.MapClaims{"iat": now.Add(time.Hour).Unix(), "exp": now.Add(90 * time.Minute).Unix()}, jwt.ErrTokenUsedBeforeIssued},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, tc.c))
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
	unlimited, _ := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret})
	if _, err := unlimited.Verify(sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": now.Add(365 * 24 * time.Hour).Unix()})); err != nil {
		t.Fatalf("MaxLifetime 0 is unlimited: %v", err)
	}
	if _, err := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret, MaxLifetime: -time.Second}); err == nil || !strings.Contains(err.Error(), "PROMRELAY_JWT_MAX_LIFETIME") {
		t.Fatalf("negative lifetime: %v", err)
	}
}
