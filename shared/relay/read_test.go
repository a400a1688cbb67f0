package relay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/query"
	"github.com/promrelay/promrelay/shared/query/enforce"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// fixedIdentity authenticates every request as id.
type fixedIdentity struct{ id inbound.Identity }

func (f fixedIdentity) Authenticate(*http.Request) (inbound.Identity, error) { return f.id, nil }
func (fixedIdentity) Challenge(http.Header)                                  {}

// readHandler is a read-only relay in front of upstreamURL, for readers
// who are id; mod changes its read options.
func readHandler(t testing.TB, upstreamURL string, signer auth.Signer, id inbound.Identity, mod func(*relay.ReadOptions)) http.Handler {
	t.Helper()
	up, err := query.New(query.Config{QueryURL: upstreamURL + "/prom", RemoteReadURL: upstreamURL + "/prom/api/v1/read", Signer: signer, Transport: upstream.NewTransport()})
	if err != nil {
		t.Fatal(err)
	}
	ro := &relay.ReadOptions{Upstreams: func(string) *query.Upstream { return up }, API: true, RemoteRead: true,
		Enforcer: enforce.Enforcer{}, CopyBufferBytes: 32 << 10, MaxQueries: 16, Version: "2.42.0", Revision: "test"}
	if mod != nil {
		mod(ro)
	}
	h, _ := newHandlerLog(nil, func(o *relay.Options) {
		o.Upstreams, o.State, o.Read = nil, nil, ro
		o.Inbound = fixedIdentity{id}
	})
	return h
}

var tenantA = inbound.Identity{Subject: "t", Scopes: inbound.ScopeRead, Labels: []wire.Label{{Name: "tenant", Value: "a"}}}

// The read routes answer what the upstream answered, or say plainly why
// not; the upstream's URL never reaches the reader.
func TestReadAnswers(t *testing.T) {
	var lastQuery url.Values
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		lastQuery = r.Form
		switch r.URL.Path {
		case "/prom/api/v1/query":
			if r.Form.Get("query") == "redirect" {
				http.Redirect(w, r, "http://"+r.Host+"/elsewhere", http.StatusFound)
				return
			}
			if r.Form.Get("query") == "denied" {
				http.Error(w, "denied at http://"+r.Host+"/prom", http.StatusForbidden)
				return
			}
			if r.Form.Get("query") == "bad" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"parse error near http://%s/prom"}`, r.Host)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		case "/prom/api/v1/series", "/prom/api/v1/labels":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"success","data":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	host := strings.TrimPrefix(up.URL, "http://")
	everyone := inbound.Identity{Scopes: inbound.ScopeRead}
	for _, c := range []struct {
		name, method, target, body string
		id                         inbound.Identity
		want                       int
		msg                        string
	}{
		{"query passes", "GET", "/api/v1/query?query=up", "", everyone, 200, `"success"`},
		{"form POST passes", "POST", "/api/v1/query", "query=up", everyone, 200, `"success"`},
		{"POST without a form", "POST", "/api/v1/query", `{"query":"up"}`, everyone, 415, "x-www-form-urlencoded"},
		{"upstream error JSON passes, scrubbed", "GET", "/api/v1/query?query=bad", "", everyone, 400, `"bad_data"`},
		{"redirect is not followed", "GET", "/api/v1/query?query=redirect", "", everyone, 502, "redirect"},
		{"upstream 403 is the relay's fault", "GET", "/api/v1/query?query=denied", "", everyone, 502, "refused the relay's credentials"},
		{"no write scope needed, but read is", "GET", "/api/v1/query?query=up", "", inbound.Identity{Scopes: inbound.ScopeWrite}, 403, "read scope"},
		{"metadata cannot be scoped", "GET", "/api/v1/metadata", "", tenantA, 403, "cannot be limited"},
		{"metadata for everyone", "GET", "/api/v1/metadata", "", everyone, 404, ""},
		{"buildinfo", "GET", "/api/v1/status/buildinfo", "", everyone, 200, `"version":"2.42.0"`},
		{"no write routes", "POST", "/api/v1/write", "", everyone, 404, ""},
		{"bad query string", "GET", "/api/v1/query?query=%zz", "", everyone, 400, "invalid query string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := readHandler(t, up.URL, nil, c.id, nil)
			var hdr []string
			if c.method == "POST" && strings.Contains(c.body, "=") && !strings.HasPrefix(c.body, "{") {
				hdr = []string{"Content-Type", "application/x-www-form-urlencoded"}
			} else if c.method == "POST" {
				hdr = []string{"Content-Type", "application/json"}
			}
			rec := serve(h, c.method, c.target, []byte(c.body), hdr...)
			if rec.Code != c.want || !strings.Contains(rec.Body.String(), c.msg) {
				t.Errorf("%d %q, want %d %q", rec.Code, rec.Body.String(), c.want, c.msg)
			}
			if strings.Contains(rec.Body.String(), host) || strings.Contains(rec.Header().Get("Location"), host) {
				t.Errorf("the upstream's address reached the reader: %q %v", rec.Body.String(), rec.Header())
			}
		})
	}
	t.Run("a tenant reader's match[] is added when absent", func(t *testing.T) {
		h := readHandler(t, up.URL, nil, tenantA, nil)
		if rec := serve(h, "GET", "/api/v1/series", nil); rec.Code != 200 || fmt.Sprint(lastQuery["match[]"]) != `[{tenant="a"}]` {
			t.Errorf("%d, upstream got match[] %v", rec.Code, lastQuery["match[]"])
		}
	})
}

// failingSigner cannot get credentials.
type failingSigner struct{}

func (failingSigner) Sign(*http.Request, []byte) error                     { return fmt.Errorf("sts down") }
func (failingSigner) Expired(*http.Request, int, http.Header, []byte) bool { return false }

func TestReadCredentialFailureIs503(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()
	h := readHandler(t, up.URL, failingSigner{}, inbound.Identity{Scopes: inbound.ScopeRead}, nil)
	if rec := serve(h, "GET", "/api/v1/query?query=up", nil); rec.Code != 503 || !strings.Contains(rec.Body.String(), auth.CredentialsMessage) {
		t.Errorf("%d %q", rec.Code, rec.Body.String())
	}
}

// bigUpstream answers every query with n bytes of JSON.
func bigUpstream(n int) *httptest.Server {
	chunk := []byte(`{"metric":{"__name__":"m","i":"0000"},"value":[1,"1"]},`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`)
		for sent := 0; sent < n; sent += len(chunk) {
			w.Write(chunk)
		}
		io.WriteString(w, `{}]}}`)
	}))
}

// On a buffered platform an answer over its response limit is a 502 that
// names the limit, counted as the platform counts it (JSON-escaped).
func TestReadResponseLimit(t *testing.T) {
	up := bigUpstream(10 << 10)
	defer up.Close()
	for _, c := range []struct {
		limit int
		want  int
	}{{8 << 10, 502}, {12 << 10, 502}, {20 << 10, 200}} { // 10 KiB of JSON is about 13 KiB escaped
		h := readHandler(t, up.URL, nil, inbound.Identity{Scopes: inbound.ScopeRead}, func(ro *relay.ReadOptions) {
			ro.ResponseLimit, ro.Platform = c.limit, "Lambda"
		})
		rec := serve(h, "GET", "/api/v1/query?query=up", nil)
		if rec.Code != c.want || (c.want == 502 && !strings.Contains(rec.Body.String(), fmt.Sprintf("Lambda's response limit of %d bytes", c.limit))) {
			t.Errorf("limit %d: %d %q", c.limit, rec.Code, tail(rec.Body.String()))
		}
		if c.want == 502 && rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("limit %d: the 502 carries the upstream's headers", c.limit)
		}
	}
}

func tail(s string) string {
	if len(s) > 200 {
		return s[len(s)-200:]
	}
	return s
}

// BenchmarkReadPassThrough measures what the relay adds to one query
// answer of each size, streamed (the server): compare with
// BenchmarkReadDirect of the same size. Allocated bytes stay flat in the
// answer's size.
func BenchmarkReadPassThrough(b *testing.B) {
	for _, size := range []int{1 << 20, 16 << 20} {
		up := bigUpstream(size)
		h := readHandler(b, up.URL, nil, inbound.Identity{Scopes: inbound.ScopeRead}, nil)
		srv := httptest.NewServer(h)
		b.Run(fmt.Sprintf("relay_%dMiB", size>>20), func(b *testing.B) { benchGet(b, srv.URL+"/api/v1/query?query=up") })
		b.Run(fmt.Sprintf("direct_%dMiB", size>>20), func(b *testing.B) { benchGet(b, up.URL+"/prom/api/v1/query?query=up") })
		srv.Close()
		up.Close()
	}
}

func benchGet(b *testing.B, target string) {
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		resp, err := c.Get(target)
		if err != nil {
			b.Fatal(err)
		}
		io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
	}
}

// Reads are charged to the memory budget: a read that cannot fit is 413,
// one that must wait for room longer than the budget's wait is 429.
func TestReadChargedToTheBudget(t *testing.T) {
	up := bigUpstream(1 << 10)
	defer up.Close()
	upq, _ := query.New(query.Config{QueryURL: up.URL + "/prom", Transport: upstream.NewTransport()})
	ro := &relay.ReadOptions{Upstreams: func(string) *query.Upstream { return upq }, API: true,
		Enforcer: enforce.Enforcer{}, CopyBufferBytes: 32 << 10, MaxQueries: 16}
	budget := relay.NewBudget(16<<10, 10*time.Millisecond)
	h, _ := newHandlerLog(nil, func(o *relay.Options) {
		o.Upstreams, o.State, o.Read, o.Budget = nil, nil, ro, budget
		o.Inbound = fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}
	})
	if rec := serve(h, "GET", "/api/v1/query?query=up", nil); rec.Code != 413 {
		t.Errorf("a read larger than the budget: %d %s", rec.Code, rec.Body)
	}
	budget = relay.NewBudget(40<<10, 10*time.Millisecond)
	held := budget.NewReservation()
	if err := held.Grow(context.Background(), 30<<10); err != nil {
		t.Fatal(err)
	}
	h, _ = newHandlerLog(nil, func(o *relay.Options) {
		o.Upstreams, o.State, o.Read, o.Budget = nil, nil, ro, budget
		o.Inbound = fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}
	})
	if rec := serve(h, "GET", "/api/v1/query?query=up", nil); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a read while the budget is taken: %d %s", rec.Code, rec.Body)
	}
	held.Release()
	if rec := serve(h, "GET", "/api/v1/query?query=up", nil); rec.Code != 200 {
		t.Errorf("a read once the budget is free: %d", rec.Code)
	}
}

// An upstream answer cut off mid-stream reaches the reader as a broken
// response (the connection aborted), never as a short one that looks
// whole, and the request is still logged.
func TestCutOffAnswerAbortsTheConnection(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "200000")
		w.WriteHeader(200)
		w.Write([]byte(strings.Repeat(" ", 100000)))
	}))
	defer up.Close()
	upq, _ := query.New(query.Config{QueryURL: up.URL + "/prom", Transport: upstream.NewTransport()})
	ro := &relay.ReadOptions{Upstreams: func(string) *query.Upstream { return upq }, API: true,
		Enforcer: enforce.Enforcer{}, CopyBufferBytes: 32 << 10, MaxQueries: 16}
	h, log := newHandlerLog(nil, func(o *relay.Options) {
		o.Upstreams, o.State, o.Read = nil, nil, ro
		o.Inbound = fixedIdentity{inbound.Identity{Scopes: inbound.ScopeRead}}
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/query?query=up")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Error("a cut-off answer read as complete")
	}
	if !eventuallyContains(log, `"error":"upstream answer cut off`) {
		t.Errorf("no log line for the cut-off answer: %s", log)
	}
}

func eventuallyContains(log interface{ String() string }, s string) bool {
	for range 100 {
		if strings.Contains(log.String(), s) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
