package e2e

// Every fake of the suite, once: the fault proxy (the one stand-in for a
// misbehaving upstream, in front of a real Prometheus or as a null
// upstream), the fake Alibaba Cloud and AWS STS servers with the upstreams
// that check their credentials as ARMS and AMP do, and the fake Function
// Compute and Lambda runtime APIs. Fakes exist only for what a test
// machine cannot reach.

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// fault is one scripted answer of the fault proxy. The zero fault passes
// the request on (to the target, or answers 204 without one).
type fault struct {
	name       string // for counts; "" for a pass
	status     int    // answer this status with body
	retryAfter string
	body       string
	location   string        // with a 3xx status: the Location header
	reset      bool          // close the connection without an answer
	stall      time.Duration // hold the request this long (or until the client gives up), then drop it
	delay      time.Duration // pass the request on after this long
	// hold, when set, is closed by the test to let the request go on;
	// arrived gets one value when the request is being held.
	hold    <-chan struct{}
	arrived chan<- struct{}
}

// faultProxy stands between the relay and its upstream. Each request gets
// the next fault of the script, else the next of the cycle (round robin),
// else always, else passes. It records what it saw.
type faultProxy struct {
	srv    *httptest.Server
	URL    string // the proxy's base URL
	target *httputil.ReverseProxy

	mu     sync.Mutex
	script []fault
	cycle  []fault
	next   int
	always *fault
	// onFault, when set, sees each faulted request's body.
	onFault func(f fault, body []byte)
	auths   []string // Authorization of each request
	// inspect, when set, sees every request's headers and body.
	inspect func(h http.Header, body []byte)

	requests atomic.Int32 // all requests
	passed   atomic.Int32 // requests passed on
	bodies   atomic.Int64 // largest body seen
	counts   sync.Map     // fault name → *atomic.Int64
}

// newFaultProxy starts a fault proxy in front of target (a base URL such
// as a Prometheus'); with target "" it is a null upstream that drains each
// body and answers 204.
func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	fp := &faultProxy{}
	if target != "" {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		fp.target = httputil.NewSingleHostReverseProxy(u)
	}
	fp.srv = httptest.NewServer(http.HandlerFunc(fp.serve))
	fp.URL = fp.srv.URL
	t.Cleanup(fp.srv.Close)
	return fp
}

func (fp *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	fp.requests.Add(1)
	body, _ := io.ReadAll(r.Body)
	if n := int64(len(body)); n > fp.bodies.Load() {
		fp.bodies.Store(n)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	fp.mu.Lock()
	fp.auths = append(fp.auths, r.Header.Get("Authorization"))
	var f fault
	switch {
	case len(fp.script) > 0:
		f, fp.script = fp.script[0], fp.script[1:]
	case len(fp.cycle) > 0:
		f = fp.cycle[fp.next%len(fp.cycle)]
		fp.next++
	case fp.always != nil:
		f = *fp.always
	}
	onFault, inspect := fp.onFault, fp.inspect
	fp.mu.Unlock()
	if inspect != nil {
		inspect(r.Header, body)
	}
	c, _ := fp.counts.LoadOrStore(f.name, &atomic.Int64{})
	c.(*atomic.Int64).Add(1)
	if onFault != nil && f.name != "" {
		onFault(f, body)
	}
	if f.hold != nil {
		if f.arrived != nil {
			f.arrived <- struct{}{}
		}
		select {
		case <-f.hold:
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case f.reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	case f.stall > 0:
		select {
		case <-time.After(f.stall):
		case <-r.Context().Done():
		}
		return
	case f.status != 0:
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		if f.location != "" {
			w.Header().Set("Location", f.location)
		}
		http.Error(w, f.body, f.status)
		return
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	fp.passed.Add(1)
	if fp.target == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	fp.target.ServeHTTP(w, r)
}

// set replaces the script and the fault for every later request, and
// resets the counters.
func (fp *faultProxy) set(script []fault, always *fault) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.script, fp.always = script, always
	fp.requests.Store(0)
	fp.passed.Store(0)
}

// setCycle makes the proxy answer request n with cycle[n % len(cycle)].
func (fp *faultProxy) setCycle(cycle []fault, onFault func(fault, []byte)) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.cycle, fp.next, fp.onFault = cycle, 0, onFault
}

// onRequest makes inspect see every later request's headers and body.
func (fp *faultProxy) onRequest(inspect func(h http.Header, body []byte)) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.inspect = inspect
}

// count is how many requests got the fault named name ("" for passes).
func (fp *faultProxy) count(name string) int64 {
	c, ok := fp.counts.Load(name)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

// authorizations returns the Authorization header of every request seen.
func (fp *faultProxy) authorizations() []string {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]string(nil), fp.auths...)
}

// issuedCreds are credentials a fake STS handed out (or a fake runtime
// hands a function).
type issuedCreds struct {
	secret, token string
	expires       time.Time
}

// credStore is the fake cloud's view of valid credentials.
type credStore struct {
	mu     sync.Mutex
	issued map[string]issuedCreds
	// expireNext makes the next request with STS credentials fail as
	// expired, as when a token lapses between signing and arrival.
	expireNext atomic.Bool
	seen       sync.Map // access key id → count of accepted requests
}

func newCredStore() *credStore { return &credStore{issued: map[string]issuedCreds{}} }

func (s *credStore) add(id string, c issuedCreds) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[id] = c
}

func (s *credStore) get(id string) (issuedCreds, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.issued[id]
	return c, ok
}

func (s *credStore) accepted(id string) int {
	v, _ := s.seen.Load(id)
	if v == nil {
		return 0
	}
	return int(v.(*atomic.Int32).Load())
}

func (s *credStore) accept(id string) {
	v, _ := s.seen.LoadOrStore(id, &atomic.Int32{})
	v.(*atomic.Int32).Add(1)
}

// fakeAliyunSTS speaks Alibaba Cloud STS AssumeRole (RPC style, JSON) over
// HTTPS. It accepts calls signed with one of its source AccessKeys (and
// their security token, for STS sources such as Function Compute's
// invocation credentials), and issues credentials of ttl into store.
type fakeAliyunSTS struct {
	srv      *httptest.Server
	calls    atomic.Int32
	down     atomic.Bool
	store    *credStore
	ttl      time.Duration
	sources  map[string]string // AccessKey ID → security token ("" for none)
	mu       sync.Mutex
	bySource map[string]int // calls per source AccessKey ID
	CertFile string         // the server's certificate, PEM, for SSL_CERT_FILE
}

func newFakeAliyunSTS(t *testing.T, store *credStore, ttl time.Duration, sources map[string]string) *fakeAliyunSTS {
	f := &fakeAliyunSTS{store: store, ttl: ttl, sources: sources, bySource: map[string]int{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, `{"Code":"ServiceUnavailable","Message":"The request has failed due to a temporary failure of the server.","RequestId":"req-down","HostId":"sts.aliyuncs.com","Recommend":"account 1234567890123456"}`, http.StatusServiceUnavailable)
			return
		}
		r.ParseForm()
		src := r.Form.Get("AccessKeyId")
		token, known := f.sources[src]
		if r.Form.Get("Action") != "AssumeRole" || r.Form.Get("RoleArn") == "" || !known || r.Form.Get("SecurityToken") != token || r.Form.Get("Signature") == "" {
			http.Error(w, `{"Code":"InvalidParameter"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.bySource[src]++
		f.mu.Unlock()
		n := f.calls.Add(1)
		id := fmt.Sprintf("STS.key%d", n)
		c := issuedCreds{secret: fmt.Sprintf("stsSecret%d", n), token: fmt.Sprintf("stsToken%d", n), expires: time.Now().Add(f.ttl)}
		f.store.add(id, c)
		json.NewEncoder(w).Encode(map[string]any{
			"RequestId":       fmt.Sprintf("req-%d", n),
			"AssumedRoleUser": map[string]string{"Arn": r.Form.Get("RoleArn") + "/" + r.Form.Get("RoleSessionName"), "AssumedRoleId": "3456:promrelay"},
			"Credentials": map[string]string{"AccessKeyId": id, "AccessKeySecret": c.secret, "SecurityToken": c.token,
				"Expiration": c.expires.UTC().Format("2006-01-02T15:04:05Z")},
		})
	}))
	f.CertFile = filepath.Join(t.TempDir(), "sts.pem")
	if err := os.WriteFile(f.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	return f
}

// trustInProcess makes this process's http.DefaultTransport (which
// credentials-go clones for its STS calls) trust the fake until the test
// ends. Binaries get SSL_CERT_FILE=f.CertFile instead.
func (f *fakeAliyunSTS) trustInProcess(t *testing.T) {
	dt := http.DefaultTransport.(*http.Transport)
	old := dt.TLSClientConfig
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	dt.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(func() { dt.TLSClientConfig = old })
}

// callsFrom is how many AssumeRole calls were signed with source id.
func (f *fakeAliyunSTS) callsFrom(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bySource[id]
}

// armsUpstream verifies basic auth as ARMS does (AccessKey ID,
// secret$token) before passing the request to target (a base URL: a real
// Prometheus, or a null fault proxy).
func armsUpstream(t *testing.T, target string, store *credStore) *httptest.Server {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		secret, token, _ := strings.Cut(pass, "$")
		c, known := store.get(user)
		switch {
		case !ok || !known || c.secret != secret || c.token != token:
			http.Error(w, "authentication failed", http.StatusUnauthorized)
			return
		case strings.HasPrefix(user, "STS.key") && store.expireNext.CompareAndSwap(true, false),
			!c.expires.IsZero() && time.Now().After(c.expires):
			http.Error(w, "the security token is expired", http.StatusUnauthorized)
			return
		}
		store.accept(user)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fakeAWSSTS speaks AWS STS AssumeRole (query protocol, XML answers) for
// calls signed with the access key AKIDBASE.
type fakeAWSSTS struct {
	srv      *httptest.Server
	calls    atomic.Int32
	duration atomic.Value // DurationSeconds of the last call, "" for none
	store    *credStore
	ttl      time.Duration
}

func newFakeAWSSTS(t *testing.T, store *credStore, ttl time.Duration) *fakeAWSSTS {
	f := &fakeAWSSTS{store: store, ttl: ttl}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("Action") != "AssumeRole" || !strings.Contains(r.Header.Get("Authorization"), "Credential=AKIDBASE/") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>bad request</Message></Error></ErrorResponse>`)
			return
		}
		n := f.calls.Add(1)
		f.duration.Store(r.Form.Get("DurationSeconds"))
		id := fmt.Sprintf("ASIAFAKE%08d", n)
		c := issuedCreds{secret: fmt.Sprintf("awsSecret%d", n), token: fmt.Sprintf("awsSessionToken%d", n), expires: time.Now().Add(f.ttl)}
		f.store.add(id, c)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><AssumedRoleId>AROAFAKE:%s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/promrelay/%s</Arn></AssumedRoleUser>
    <Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, r.Form.Get("RoleSessionName"), r.Form.Get("RoleSessionName"), id, c.secret, c.token, c.expires.UTC().Format(time.RFC3339), n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// ampUpstream verifies SigV4 as AMP does — it recomputes the signature with
// the SDK's signer over the exact received request (method, path, raw
// query, body) — refuses a query string that is not in SigV4's canonical
// form (AMP rejects an unescaped { } " and the like), and answers expired
// or unknown credentials as AMP does, before passing the request to the
// real Prometheus: /workspaces/<id>/api/v1/remote_write to its
// /api/v1/write, /workspaces/<id>/api/v1/<endpoint> to its own. It returns
// the server and the counts of verified and expired-token requests.
func ampUpstream(t *testing.T, prom *testpeer.Prometheus, store *credStore, region string) (*httptest.Server, *atomic.Int32, *atomic.Int32) {
	target, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var verified, expired atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		authz := r.Header.Get("Authorization")
		cred := between(authz, "Credential=", "/")
		c, ok := store.get(cred)
		if !ok || r.Header.Get("X-Amz-Security-Token") != c.token {
			w.Header().Set("X-Amzn-Errortype", "UnrecognizedClientException")
			http.Error(w, `{"message":"The security token included in the request is invalid."}`, http.StatusForbidden)
			return
		}
		if time.Now().After(c.expires) || store.expireNext.CompareAndSwap(true, false) {
			expired.Add(1)
			w.Header().Set("X-Amzn-Errortype", "ExpiredTokenException")
			http.Error(w, `{"message":"The security token included in the request is expired"}`, http.StatusForbidden)
			return
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil || r.Header.Get("X-Amz-Content-Sha256") != hash || r.Header.Get("X-Scope-Orgid") != "" {
			http.Error(w, `{"message":"bad signing headers"}`, http.StatusForbidden)
			return
		}
		rawQuery := r.URL.RawQuery
		check, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		check.ContentLength = int64(len(body))
		for _, h := range strings.Split(between(authz, "SignedHeaders=", ","), ";") {
			if h != "host" && h != "content-length" {
				check.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		check.Header.Del("Authorization")
		if err := v4.NewSigner().SignHTTP(r.Context(), aws.Credentials{AccessKeyID: cred, SecretAccessKey: c.secret, SessionToken: c.token},
			check, hash, "aps", region, signedAt); err != nil || check.Header.Get("Authorization") != authz {
			http.Error(w, `{"message":"The request signature we calculated does not match the signature you provided."}`, http.StatusForbidden)
			return
		}
		if check.URL.RawQuery != rawQuery {
			// The signer put the canonical query string on check: what was
			// sent must be exactly that.
			http.Error(w, `{"message":"The request signature we calculated does not match the signature you provided (query string not canonical)."}`, http.StatusForbidden)
			return
		}
		verified.Add(1)
		store.accept(cred)
		r.Body = io.NopCloser(bytes.NewReader(body))
		_, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/workspaces/"), "/")
		switch rest = "/" + rest; rest {
		case "/api/v1/remote_write":
			r.URL.Path = "/api/v1/write"
		default:
			r.URL.Path = rest
		}
		r.URL.RawPath = ""
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &verified, &expired
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// fakeRuntime is a loopback fake of a serverless runtime API (Function
// Compute's /2020-11-11 or Lambda's /2018-06-01): it hands queued events to
// the real function binary on .../invocation/next, with the platform's
// headers, and collects what the binary posts back.
type fakeRuntime struct {
	srv     *httptest.Server
	prefix  string
	headers func(id string, deadline time.Time) http.Header
	queue   chan queued
	mu      sync.Mutex
	waiting map[string]chan result
	seq     atomic.Int64
}

type queued struct {
	id       string
	payload  []byte
	deadline time.Time
}

type result struct {
	kind string // "response" or "error"
	body []byte
}

func newFakeRuntime(t testing.TB, prefix string, headers func(id string, deadline time.Time) http.Header) *fakeRuntime {
	rt := &fakeRuntime{prefix: prefix, headers: headers, queue: make(chan queued, 64), waiting: map[string]chan result{}}
	done := make(chan struct{})
	rt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, rt.prefix)
		switch {
		case r.Method == http.MethodGet && path == "/runtime/invocation/next":
			select {
			case q := <-rt.queue:
				for k, v := range rt.headers(q.id, q.deadline) {
					w.Header()[k] = v
				}
				w.WriteHeader(http.StatusOK)
				w.Write(q.payload)
			case <-done:
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
			}
		case r.Method == http.MethodPost && strings.HasPrefix(path, "/runtime/invocation/"):
			rest := strings.TrimPrefix(path, "/runtime/invocation/")
			id, kind, _ := strings.Cut(rest, "/")
			body, _ := io.ReadAll(r.Body)
			rt.mu.Lock()
			ch := rt.waiting[id]
			rt.mu.Unlock()
			if ch != nil {
				ch <- result{kind: kind, body: body}
			}
			if rt.prefix == "/2020-11-11" {
				w.WriteHeader(http.StatusOK) // Function Compute's client wants 200
			} else {
				w.WriteHeader(http.StatusAccepted)
			}
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		}
	}))
	t.Cleanup(func() { close(done); rt.srv.Close() })
	return rt
}

// enqueue queues an event and returns a channel for its result.
func (rt *fakeRuntime) enqueue(payload []byte, timeout time.Duration) (string, chan result) {
	id := fmt.Sprintf("req-%d", rt.seq.Add(1))
	ch := make(chan result, 1)
	rt.mu.Lock()
	rt.waiting[id] = ch
	rt.mu.Unlock()
	rt.queue <- queued{id: id, payload: payload, deadline: time.Now().Add(timeout)}
	return id, ch
}

// invoke queues an event and waits for the binary's result.
func (rt *fakeRuntime) invoke(t *testing.T, payload any) result {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	_, ch := rt.enqueue(b, 20*time.Second)
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no result from the function")
		return result{}
	}
}

// fcRuntime is Function Compute's runtime API; every invocation carries
// the per-invocation credentials STS.fake-id / fake-secret / fake-token.
func fcRuntime(t testing.TB) *fakeRuntime {
	return newFakeRuntime(t, "/2020-11-11", func(id string, deadline time.Time) http.Header {
		h := http.Header{}
		h.Set("x-fc-request-id", id)
		h.Set("x-fc-function-deadline", strconv.FormatInt(deadline.UnixMilli(), 10))
		h.Set("x-fc-function-timeout", "60")
		h.Set("x-fc-function-name", "promrelay")
		h.Set("x-fc-function-handler", "main")
		h.Set("x-fc-function-memory", "128")
		h.Set("x-fc-region", "cn-hangzhou")
		h.Set("x-fc-account-id", "1234567890")
		h.Set("x-fc-access-key-id", "STS.fake-id")
		h.Set("x-fc-access-key-secret", "fake-secret")
		h.Set("x-fc-security-token", "fake-token")
		return h
	})
}

func lambdaRuntime(t testing.TB) *fakeRuntime {
	return newFakeRuntime(t, "/2018-06-01", func(id string, deadline time.Time) http.Header {
		h := http.Header{}
		h.Set("Lambda-Runtime-Aws-Request-Id", id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:promrelay")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
		return h
	})
}

// startFunction runs a function binary (against a fake runtime API named
// in env), its output collected.
func startFunction(t testing.TB, bin string, env ...string) (*exec.Cmd, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = baseEnv()
	for k, v := range testDefaults {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, env...) // the last of a name wins
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, logs
}
