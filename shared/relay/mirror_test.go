package relay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/mirror"
	"github.com/promrelay/promrelay/shared/query"
	"github.com/promrelay/promrelay/shared/query/enforce"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
)

// mirrorHandler is a read-only relay with the mirror routes under
// /stackstate and the path token "the-path-token-0123", in front of an
// upstream that records the queries it gets; inbound nil is mode none.
func mirrorHandler(t *testing.T, in relay.Authenticator) (http.Handler, *[]url.Values, string) {
	t.Helper()
	var seen []url.Values
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Query())
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":["job","tenant"]}`)
	}))
	t.Cleanup(up.Close)
	upq, _ := query.New(query.Config{QueryURL: up.URL, Transport: upstream.NewTransport()})
	ro := &relay.ReadOptions{Upstreams: func(string) *query.Upstream { return upq }, API: true, Enforcer: enforce.Enforcer{}, CopyBufferBytes: 32 << 10, MaxQueries: 16}
	mo := &relay.MirrorOptions{Prefix: "/stackstate", PathToken: "the-path-token-0123", APIKey: "key", MaxBodyBytes: 1 << 20, MaxResponseBytes: 1 << 20,
		Upstream: func(_ context.Context, c mirror.Connection) (*query.Upstream, error) {
			if c.URL != up.URL {
				return nil, &mirror.RefusedError{Reason: "not allowed"}
			}
			return upq, nil
		}}
	h, _ := newHandlerLog(nil, func(o *relay.Options) {
		o.Upstreams, o.State, o.Read, o.Mirror = nil, nil, ro, mo
		if in != nil {
			o.Inbound = in
		}
	})
	return h, &seen, up.URL
}

// The path token, or read credentials, reach the mirror; anything else is
// 404 without the API key, even without inbound authentication (the
// token is then the only credential); a doubled slash is cleaned in place,
// not redirected; a tenant reader's mirror queries are enforced.
func TestMirrorRoutes(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      relay.Authenticator
		path    string
		auth    bool
		want    int
		reached bool
	}{
		{"token", fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}, "/stackstate/the-path-token-0123/api/field/name", false, 200, true},
		{"token, doubled slash", fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}, "/stackstate/the-path-token-0123//api/field/name", false, 200, true},
		{"wrong token", fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}, "/stackstate/the-path-token-0124/api/field/name", false, 404, false},
		{"no token, credentials", fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}, "/stackstate/api/field/name", true, 200, true},
		{"no token, no credentials", fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}, "/stackstate/api/field/name", false, 404, false},
		{"mode none, no token", nil, "/stackstate/api/field/name", false, 404, false},
		{"mode none, token", nil, "/stackstate/the-path-token-0123/api/field/name", false, 200, true},
		{"write-only credentials", fixedIdentity{inbound.Identity{Scopes: inbound.ScopeWrite}}, "/stackstate/api/field/name", true, 403, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, seen, upURL := mirrorHandler(t, c.in)
			req := httptest.NewRequest("POST", c.path, strings.NewReader(`{"connectionDetails":{"url":"`+upURL+`"},"query":{"conditions":[],"_type":"FieldNamesQuery"},"_type":"FieldNamesRequest"}`))
			if c.auth {
				req.Header.Set("Authorization", "Bearer x")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.want || (len(*seen) > 0) != c.reached {
				t.Errorf("%d %q, upstream reached %v", rec.Code, rec.Body.String(), len(*seen) > 0)
			}
			if c.want == 404 && rec.Header().Get(mirror.APIKeyHeader) != "" {
				t.Error("the API key given away")
			}
		})
	}
}

// A tenant reader's mirror queries carry the tenant's matcher.
func TestMirrorEnforcesTheTenant(t *testing.T) {
	h, seen, upURL := mirrorHandler(t, fixedIdentity{tenantA})
	req := httptest.NewRequest("POST", "/stackstate/api/field/name", strings.NewReader(`{"connectionDetails":{"url":"`+upURL+`"},"query":{"conditions":[],"_type":"FieldNamesQuery"},"_type":"FieldNamesRequest"}`))
	req.Header.Set("Authorization", "Bearer x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || len(*seen) != 1 || (*seen)[0].Get("match[]") != `{tenant="a"}` {
		t.Errorf("%d %q, upstream got %v", rec.Code, rec.Body.String(), *seen)
	}
}

// Only empty segments are cleaned in place, and only within the mirror's
// prefix: a ".." still gets the 301 every other route gets.
func TestMirrorPathCleaningStaysInside(t *testing.T) {
	h, _, _ := mirrorHandler(t, fixedIdentity{inbound.Identity{Scopes: inbound.ScopeAll}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/stackstate/../api/v1/write", strings.NewReader("x")))
	if rec.Code != 301 {
		t.Errorf("/stackstate/../api/v1/write: %d, want the 301 to the cleaned path", rec.Code)
	}
}
