package app_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/query/enforce"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func env(vars map[string]string, log io.Writer) app.Env {
	return app.Env{Getenv: func(k string) string { return vars[k] }, Log: log}
}

// sink is an upstream that counts the series it accepts.
func sink(t *testing.T) (*httptest.Server, *atomic.Int64) {
	u := newFaultyUpstream(t)
	return u.srv, &u.series
}

func TestStartUpErrorsNameTheSetting(t *testing.T) {
	up, _ := sink(t)
	cases := []struct {
		kind app.Kind
		vars map[string]string
		want string
	}{
		{app.Server, map[string]string{}, "PROMRELAY_UPSTREAM_URL"},
		{app.FunctionCompute, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL}, "PROMRELAY_INBOUND_AUTH is required"},
		{app.Lambda, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL}, "PROMRELAY_INBOUND_AUTH is required"},
		{app.Server, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_INBOUND_AUTH": "none,bearer", "PROMRELAY_INBOUND_TOKENS": "t0123456789"}, "PROMRELAY_INBOUND_AUTH"},
		{app.Server, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "FC_SERVER_PORT": "9000", "PROMRELAY_STATE_URL": "file://" + t.TempDir()}, "PROMRELAY_INVOKE_SECRET"},
		{app.Server, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_STATE_URL": "ftp://x"}, "PROMRELAY_STATE_URL"},
		{app.Server, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_TENANTS_FILE": "/nonexistent"}, "PROMRELAY_TENANTS_FILE"},
	}
	for _, c := range cases {
		_, err := app.FromEnv(c.kind, env(c.vars, io.Discard))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.vars, err, c.want)
		}
	}
}

// startServer runs the server on a loopback port until the test ends.
func startServer(t *testing.T, vars map[string]string) (string, *syncBuffer, func() error) {
	t.Helper()
	log := &syncBuffer{}
	a, err := app.FromEnv(app.Server, env(vars, log))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	stop := func() error { cancel(); return <-done }
	t.Cleanup(func() { cancel() })
	return "http://" + ln.Addr().String(), log, stop
}

func TestServerRelaysAndShutsDown(t *testing.T) {
	up, samples := sink(t)
	base, log, stop := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_INBOUND_AUTH": "bearer", "PROMRELAY_INBOUND_TOKENS": "tok-0123456789abcdef"})
	req, _ := http.NewRequest("PUT", base+"/metrics/job/j", strings.NewReader("m 1\n"))
	req.Header.Set("Authorization", "Bearer tok-0123456789abcdef")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || samples.Load() != 2 {
		t.Fatalf("push: %d, upstream got %d samples", resp.StatusCode, samples.Load())
	}
	// Without credentials: 401, and the connection is not kept for the
	// unauthenticated body.
	resp, err = http.Post(base+"/metrics/job/j", "text/plain", strings.NewReader("m 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("anonymous push: %d, close=%v", resp.StatusCode, resp.Close)
	}
	// /invoke is not a route outside Function Compute's custom runtime.
	resp, err = http.Post(base+"/invoke", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/invoke: %d, want 404", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `"msg":"shutting down"`) {
		t.Errorf("log: %s", log.String())
	}
}

// TestServerCutsTrickledBodies: a body sent slower than
// PROMRELAY_SERVER_READ_TIMEOUT allows loses its connection.
func TestServerCutsTrickledBodies(t *testing.T) {
	up, _ := sink(t)
	base, _, _ := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_SERVER_READ_TIMEOUT": "300ms"})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("PUT /metrics/job/j HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nm")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang detector
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	// The server answers 400 for the cut body, or just closes.
	if n > 0 && !strings.Contains(string(buf[:n]), " 400 ") {
		t.Fatalf("answer to a trickled body: %q", buf[:n])
	}
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("the connection stays open")
	}
}

func TestFunctionComputeCustomRuntimeInvoke(t *testing.T) {
	up, samples := sink(t)
	const secret = "0123456789abcdef"
	base, _, _ := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "FC_SERVER_PORT": "9000",
		"PROMRELAY_STATE_URL": "file://" + t.TempDir(), "PROMRELAY_INVOKE_SECRET": secret})
	resp, err := http.Post(base+"/metrics/job/j", "text/plain", strings.NewReader("m 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	before := samples.Load()
	for _, c := range []struct {
		body string
		want int
	}{{`{"payload":"wrong"}`, 403}, {`{"payload":"` + secret + `"}`, 200}} {
		resp, err := http.Post(base+"/invoke", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("invoke %s: %d, want %d", c.body, resp.StatusCode, c.want)
		}
	}
	// One run re-emitted the group: m, push_time_seconds and
	// push_failure_time_seconds.
	if got := samples.Load() - before; got != 3 {
		t.Fatalf("the scheduled job wrote %d samples, want 3", got)
	}
}

// TestScheduledRunsCoalesce: triggers that arrive while a run is going
// share it.
func TestScheduledRunsCoalesce(t *testing.T) {
	var writes atomic.Int64
	var block atomic.Bool
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if block.Load() && writes.Add(1) == 1 {
			<-release
		}
		w.WriteHeader(204)
	}))
	defer up.Close()
	a, err := app.FromEnv(app.Server, env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_STATE_URL": "file://" + t.TempDir()}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, httptest.NewRequest("PUT", "/metrics/job/j", strings.NewReader("m 1\n")))
	if rec.Code != 200 {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	block.Store(true)
	var wg sync.WaitGroup
	run := func() { defer wg.Done(); _ = a.Scheduled(context.Background()) }
	wg.Add(1)
	go run()
	for writes.Load() == 0 { // the first run is in its upstream write
		time.Sleep(time.Millisecond)
	}
	wg.Add(4)
	for i := 0; i < 4; i++ {
		go run()
	}
	time.Sleep(200 * time.Millisecond) // the four join the run in flight
	close(release)
	wg.Wait()
	if n := writes.Load(); n != 1 {
		t.Fatalf("%d scheduled writes for 5 concurrent triggers, want 1", n)
	}
}

func TestGroupStoreFileIsPrivate(t *testing.T) {
	up, _ := sink(t)
	dir := filepath.Join(t.TempDir(), "groups")
	a, err := app.FromEnv(app.Server, env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_STATE_URL": "file://" + dir}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, httptest.NewRequest("PUT", "/metrics/job/j", strings.NewReader("m 1\n")))
	if rec.Code != 200 {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("store dir: %v %v", info.Mode(), err)
	}
}

// TestTenantsGoToTheirUpstream: a tenant that names its own upstream in the
// tenants file gets its series there, with its labels; others go to the
// default upstream.
func TestTenantsGoToTheirUpstream(t *testing.T) {
	def, defSamples := sink(t)
	own, ownSamples := sink(t)
	dir := t.TempDir()
	tenants := filepath.Join(dir, "tenants.yaml")
	os.WriteFile(tenants, []byte(`tenants:
  - name: team-a
    labels: {tenant_userid: "1001"}
    upstream: {url: `+own.URL+`}
  - name: team-b
tokens:
  "token-a-0123456789": team-a
  "token-b-0123456789": team-b
`), 0o600)
	a, err := app.FromEnv(app.Lambda, env(map[string]string{"PROMRELAY_UPSTREAM_URL": def.URL, "PROMRELAY_INBOUND_AUTH": "bearer",
		"PROMRELAY_TENANTS_FILE": tenants}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"token-a-0123456789", "token-b-0123456789"} {
		req := httptest.NewRequest("PUT", "/metrics/job/j", strings.NewReader("m 1\n"))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", tok, rec.Code, rec.Body)
		}
	}
	if ownSamples.Load() != 2 || defSamples.Load() != 2 {
		t.Fatalf("team-a's upstream got %d samples, the default %d; want 2 each", ownSamples.Load(), defSamples.Load())
	}
}

// TestEveryModeBuilds: each upstream and inbound mode starts from its
// settings alone (no network at start-up).
func TestEveryModeBuilds(t *testing.T) {
	up, _ := sink(t)
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	// bcrypt of "secret-password", cost 4
	os.WriteFile(users, []byte("basic_auth_users:\n  alice: $2a$04$0FJhcOrOQCzLLsh3Gu0zd.o/UQr6JpX0kU0gnyBpxvbG0y8eB1Ku.\n"), 0o600)
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("file-token-0123456789\n"), 0o600)
	base := map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x",
		"ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret"}
	for _, extra := range []map[string]string{
		{"PROMRELAY_UPSTREAM_AUTH": "aliyun"},
		{"PROMRELAY_UPSTREAM_AUTH": "sigv4", "PROMRELAY_SIGV4_REGION": "eu-west-1"},
		{"PROMRELAY_UPSTREAM_AUTH": "basic", "PROMRELAY_UPSTREAM_USERNAME": "u", "PROMRELAY_UPSTREAM_PASSWORD": "p"},
		{"PROMRELAY_UPSTREAM_BEARER_TOKEN": "t"},
		{"PROMRELAY_INBOUND_AUTH": "bearer,basic,jwt", "PROMRELAY_INBOUND_TOKENS_FILE": tokens, "PROMRELAY_INBOUND_BASIC_USERS_FILE": users,
			"PROMRELAY_JWT_SECRET": "0123456789abcdef0123456789abcdef", "PROMRELAY_JWT_MAX_LIFETIME": "1h"},
		{"PROMRELAY_INBOUND_AUTH": "none"},
		{"PROMRELAY_STATE_URL": "oss://bucket/groups", "PROMRELAY_STATE_REGION": "cn-hangzhou"},
	} {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range extra {
			vars[k] = v
		}
		if _, err := app.FromEnv(app.Server, env(vars, io.Discard)); err != nil {
			t.Errorf("%v: %v", extra, err)
		}
	}
}

// TestWarnsWhenTheLimitsExceedTheBudget: on a small instance the default
// limits allow requests that can never fit; start-up says so, naming the
// settings.
func TestWarnsWhenTheLimitsExceedTheBudget(t *testing.T) {
	up, _ := sink(t)
	for _, c := range []struct {
		memory string
		warn   bool
	}{{"268435456", true}, {"4294967296", false}} {
		log := &syncBuffer{}
		if _, err := app.FromEnv(app.Server, env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_MEMORY_LIMIT": c.memory}, log)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(log.String(), "PROMRELAY_MAX_SAMPLES_PER_REQUEST"); got != c.warn {
			t.Errorf("memory %s: warned %v, want %v: %s", c.memory, got, c.warn, log.String())
		}
	}
}

// The read settings are checked at start-up: a write-only build refuses
// them (it links no PromQL parser), the read entry points need one, and
// AMP is refused as a remote-read upstream.
func TestReadSettingsAtStartUp(t *testing.T) {
	up, _ := sink(t)
	readEnv := func(vars map[string]string, readOnly bool) app.Env {
		e := env(vars, io.Discard)
		e.Enforcer, e.ReadOnly = enforce.Enforcer{}, readOnly
		return e
	}
	dir := t.TempDir()
	tenants := filepath.Join(dir, "tenants.yml")
	os.WriteFile(tenants, []byte("tenants:\n  - name: a\n    labels: {t: a}\n    query_url: http://127.0.0.1:1/q\n"), 0o600)
	for _, c := range []struct {
		name string
		env  app.Env
		want string
	}{
		{"write-only build, query URL", env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_QUERY_URL": up.URL}, io.Discard), "serves writes only"},
		{"write-only build, a tenant's query_url", env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_TENANTS_FILE": tenants}, io.Discard), "serves writes only"},
		{"read build without a read URL", readEnv(map[string]string{}, true), "PROMRELAY_QUERY_URL or PROMRELAY_REMOTE_READ_URL is required"},
		{"AMP has no remote read", readEnv(map[string]string{"PROMRELAY_REMOTE_READ_URL": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/read"}, true), "AMP has no remote read"},
		{"query URL not a URL", readEnv(map[string]string{"PROMRELAY_QUERY_URL": "aps-workspaces"}, true), "PROMRELAY_QUERY_URL"},
		{"unknown query auth", readEnv(map[string]string{"PROMRELAY_QUERY_URL": up.URL, "PROMRELAY_QUERY_AUTH": "magic"}, true), "PROMRELAY_QUERY_AUTH"},
	} {
		if _, err := app.FromEnv(app.Server, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A read entry point needs no upstream URL and serves no write route.
	a, err := app.FromEnv(app.Lambda, readEnv(map[string]string{"PROMRELAY_QUERY_URL": up.URL, "PROMRELAY_INBOUND_AUTH": "bearer", "PROMRELAY_INBOUND_READ_TOKENS": "r0123456789"}, true))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/write", nil))
	if rec.Code != 404 {
		t.Errorf("read entry point: POST /api/v1/write answered %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/status/buildinfo", nil)
	req.Header.Set("Authorization", "Bearer r0123456789")
	a.Handler.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("read entry point: buildinfo answered %d %s", rec.Code, rec.Body)
	}
}

// The read path's own refusals: a tenant that may read but has no labels
// (nothing would hold it to its series), the read path without inbound
// authentication, and PROMRELAY_QUERY_AUTH=none sends no credentials even
// when writes are signed with static ones.
func TestReadPathRefusalsAndQueryAuthNone(t *testing.T) {
	up, _ := sink(t)
	var authz atomic.Value
	authz.Store("unset")
	q := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":[]}`)
	}))
	t.Cleanup(q.Close)
	readEnv := func(vars map[string]string) app.Env {
		e := env(vars, io.Discard)
		e.Enforcer = enforce.Enforcer{}
		return e
	}
	tenants := filepath.Join(t.TempDir(), "tenants.yml")
	os.WriteFile(tenants, []byte("tenants:\n  - name: open\n    scopes: [read]\ntokens:\n  tok-open-0123: open\n"), 0o600)
	for _, c := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"read tenant without labels", map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_QUERY_URL": q.URL, "PROMRELAY_INBOUND_AUTH": "bearer", "PROMRELAY_TENANTS_FILE": tenants}, `tenant "open" may read but has no labels`},
		{"read path without inbound auth", map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_QUERY_URL": q.URL}, "PROMRELAY_INBOUND_AUTH is required with the read path"},
		{"query auth bearer without a token", map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_QUERY_URL": q.URL, "PROMRELAY_INBOUND_AUTH": "none", "PROMRELAY_QUERY_AUTH": "bearer"}, "PROMRELAY_QUERY_AUTH=bearer needs"},
	} {
		if _, err := app.FromEnv(app.Server, readEnv(c.vars)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	a, err := app.FromEnv(app.Server, readEnv(map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_UPSTREAM_AUTH": "basic",
		"PROMRELAY_UPSTREAM_USERNAME": "writer", "PROMRELAY_UPSTREAM_PASSWORD": "write-secret", "PROMRELAY_QUERY_URL": q.URL,
		"PROMRELAY_QUERY_AUTH": "none", "PROMRELAY_INBOUND_AUTH": "none"}))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/labels", nil))
	if rec.Code != 200 || authz.Load() != "" {
		t.Errorf("QUERY_AUTH=none: %d, the upstream got Authorization %q", rec.Code, authz.Load())
	}
}

// A tenant's own query_url gets its reads, enforced; other readers go to
// PROMRELAY_QUERY_URL.
func TestTenantQueryURL(t *testing.T) {
	up, _ := sink(t)
	var got [2]atomic.Value
	upstreamN := func(i int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			got[i].Store(r.URL.Path + " " + r.Form.Get("query"))
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	shared, own := upstreamN(0), upstreamN(1)
	tenants := filepath.Join(t.TempDir(), "tenants.yml")
	os.WriteFile(tenants, []byte("tenants:\n  - name: x\n    labels: {team: x}\n    scopes: [read]\n    query_url: "+own.URL+"/ws-x\ntokens:\n  tok-x-0123: x\n"), 0o600)
	e := env(map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL, "PROMRELAY_QUERY_URL": shared.URL + "/ws-shared", "PROMRELAY_INBOUND_AUTH": "bearer",
		"PROMRELAY_INBOUND_READ_TOKENS": "tok-all-0123", "PROMRELAY_TENANTS_FILE": tenants}, io.Discard)
	e.Enforcer = enforce.Enforcer{}
	a, err := app.FromEnv(app.Server, e)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string
		i     int
		want  string
	}{{"tok-x-0123", 1, `/ws-x/api/v1/query up{team="x"}`}, {"tok-all-0123", 0, `/ws-shared/api/v1/query up`}} {
		req := httptest.NewRequest("GET", "/api/v1/query?query=up", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, req)
		if v, _ := got[c.i].Load().(string); rec.Code != 200 || v != c.want {
			t.Errorf("%s: %d, upstream %d got %q, want %q", c.token, rec.Code, c.i, v, c.want)
		}
	}
}
