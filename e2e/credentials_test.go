package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
)

// simClock is a clock the test moves forward; the Aliyun signer's cache,
// the fake STS and the verifying upstream all read it.
type simClock struct{ offset atomic.Int64 }

func (c *simClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *simClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// issuedCreds are credentials a fake STS handed out.
type issuedCreds struct {
	secret, token string
	expires       time.Time
}

// credStore is the fake cloud's view of valid credentials.
type credStore struct {
	mu     sync.Mutex
	issued map[string]issuedCreds
	// expireNext makes the next request with cached credentials fail as
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
// HTTPS.
type fakeAliyunSTS struct {
	srv   *httptest.Server
	calls atomic.Int32
	down  atomic.Bool
	store *credStore
	clock *simClock
	ttl   time.Duration
}

func newFakeAliyunSTS(t *testing.T, store *credStore, clock *simClock, ttl time.Duration) *fakeAliyunSTS {
	f := &fakeAliyunSTS{store: store, clock: clock, ttl: ttl}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, `{"Code":"ServiceUnavailable","Message":"The request has failed due to a temporary failure of the server."}`, http.StatusServiceUnavailable)
			return
		}
		r.ParseForm()
		if r.Form.Get("Action") != "AssumeRole" || r.Form.Get("RoleArn") == "" || r.Form.Get("AccessKeyId") != "LTAIbaseKeyId" || r.Form.Get("Signature") == "" {
			http.Error(w, `{"Code":"InvalidParameter"}`, http.StatusBadRequest)
			return
		}
		n := f.calls.Add(1)
		id := fmt.Sprintf("STS.key%d", n)
		c := issuedCreds{secret: fmt.Sprintf("stsSecret%d", n), token: fmt.Sprintf("stsToken%d", n), expires: f.clock.Now().Add(f.ttl)}
		f.store.add(id, c)
		json.NewEncoder(w).Encode(map[string]any{
			"RequestId":       fmt.Sprintf("req-%d", n),
			"AssumedRoleUser": map[string]string{"Arn": r.Form.Get("RoleArn") + "/" + r.Form.Get("RoleSessionName"), "AssumedRoleId": "3456:promrelay"},
			"Credentials": map[string]string{"AccessKeyId": id, "AccessKeySecret": c.secret, "SecurityToken": c.token,
				"Expiration": c.expires.UTC().Format("2006-01-02T15:04:05Z")},
		})
	}))
	// credentials-go clones http.DefaultTransport for STS calls: trust the
	// fake's certificate there for the duration of the test.
	dt := http.DefaultTransport.(*http.Transport)
	old := dt.TLSClientConfig
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	dt.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(func() { dt.TLSClientConfig = old; f.srv.Close() })
	return f
}

// armsUpstream verifies basic auth as ARMS does (AccessKey ID, secret$token)
// before passing the request to the real Prometheus.
func armsUpstream(t *testing.T, prom *testpeer.Prometheus, store *credStore, clock *simClock) *httptest.Server {
	target, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		secret, token, _ := strings.Cut(pass, "$")
		c, known := store.get(user)
		switch {
		case !ok || !known || c.secret != secret || c.token != token:
			http.Error(w, "authentication failed", http.StatusUnauthorized)
			return
		case strings.HasPrefix(user, "STS.key") && store.expireNext.CompareAndSwap(true, false),
			!c.expires.IsZero() && clock.Now().After(c.expires):
			http.Error(w, "the security token is expired", http.StatusUnauthorized)
			return
		}
		store.accept(user)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func aliyunRelay(t *testing.T, upstreamURL string, signer auth.Signer, logs io.Writer) *httptest.Server {
	up, err := upstream.New(upstream.Config{URL: upstreamURL, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Transport: &auth.Transport{Base: upstream.NewTransport(), Signer: signer}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(relay.New(relay.Options{Upstream: up, RequestTimeout: 3 * time.Second, Logger: slog.New(slog.NewJSONHandler(logs, nil))}))
	t.Cleanup(srv.Close)
	return srv
}

// pushMany sends n concurrent pushes and returns the statuses that were
// not 200.
func pushMany(t *testing.T, relayURL, job string, n int) []string {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Post(fmt.Sprintf("%s/metrics/job/%s/instance/i%d", relayURL, job, i), "", strings.NewReader("cred_metric 1\n"))
			if err != nil {
				mu.Lock()
				bad = append(bad, err.Error())
				mu.Unlock()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%d %s", resp.StatusCode, b))
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return bad
}

// TestAliyunCredentials runs the aliyun mode against a fake Alibaba STS and
// an upstream that checks credentials as ARMS does, in front of a real
// Prometheus.
func TestAliyunCredentials(t *testing.T) {
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	clock := &simClock{}
	store := newCredStore()
	const duration = 15 * time.Minute
	sts := newFakeAliyunSTS(t, store, clock, duration)
	arms := armsUpstream(t, prom, store, clock)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIbaseKeyId")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "baseSecretValue")
	newSigner := func() *auth.Aliyun {
		s, err := auth.NewAliyun(auth.AliyunOptions{RoleARN: "acs:ram::1234567890:role/promrelay", ExternalID: "ext-1",
			Duration: duration, STSEndpoint: testpeer.Host(sts.srv.URL), Window: 5 * time.Minute, Now: clock.Now, MinForcedRefresh: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	logs := &logBuffer{}
	signer := newSigner()
	relaySrv := aliyunRelay(t, arms.URL+"/api/v1/write", signer, logs)

	t.Run("200 concurrent requests share one STS call per window", func(t *testing.T) {
		// 6 rounds of 200 concurrent pushes, 4 simulated minutes apart: 24
		// minutes with credentials refreshed 5 minutes before their 15.
		for round := 0; round < 6; round++ {
			if bad := pushMany(t, relaySrv.URL, "aliyun_load", 200); len(bad) > 0 {
				t.Fatalf("round %d: %d of 200 failed, first: %s", round, len(bad), bad[0])
			}
			if round == 0 && sts.calls.Load() != 1 {
				t.Fatalf("200 concurrent first requests made %d STS calls, want 1", sts.calls.Load())
			}
			clock.Advance(4 * time.Minute)
			time.Sleep(50 * time.Millisecond) // let a background refresh land
		}
		if n := sts.calls.Load(); n < 2 || n > 4 {
			t.Errorf("%d STS calls for 24 minutes with 10-minute refreshes, want 3±1", n)
		}
		t.Logf("1,200 requests, %d STS calls over 24 simulated minutes", sts.calls.Load())
		prom.WaitFor(t, `count(cred_metric{job="aliyun_load"}) == 200`, 1, 10*time.Second)
	})

	t.Run("expired token mid-flight is re-signed once", func(t *testing.T) {
		before := sts.calls.Load()
		store.expireNext.Store(true)
		if bad := pushMany(t, relaySrv.URL, "aliyun_expired", 1); len(bad) > 0 {
			t.Fatalf("push failed: %v", bad)
		}
		if got := sts.calls.Load() - before; got != 1 {
			t.Errorf("%d STS calls for one expired answer, want 1", got)
		}
	})

	t.Run("STS down is 503, then success once it is back", func(t *testing.T) {
		sts.down.Store(true)
		fresh := aliyunRelay(t, arms.URL+"/api/v1/write", newSigner(), logs)
		resp, err := http.Post(fresh.URL+"/metrics/job/aliyun_down", "", strings.NewReader("m 1\n"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "cannot get upstream credentials") {
			t.Fatalf("got %d %q, want 503", resp.StatusCode, body)
		}
		sts.down.Store(false)
		if bad := pushMany(t, fresh.URL, "aliyun_down", 1); len(bad) > 0 {
			t.Fatalf("after STS came back: %v", bad)
		}
	})

	t.Run("Function Compute per-invocation credentials win over the environment", func(t *testing.T) {
		store.add("STS.invocation", issuedCreds{secret: "invSecret", token: "invToken"})
		before := sts.calls.Load()
		fcSigner, err := auth.NewAliyun(auth.AliyunOptions{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		up, _ := upstream.New(upstream.Config{URL: arms.URL + "/api/v1/write", Transport: &auth.Transport{Base: upstream.NewTransport(), Signer: fcSigner}})
		h := relay.New(relay.Options{Upstream: up, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		ctx := fccontext.NewContext(context.Background(), &fccontext.FcContext{RequestID: "fc-1",
			Credentials: fccontext.Credentials{AccessKeyId: "STS.invocation", AccessKeySecret: "invSecret", SecurityToken: "invToken"}})
		req := httptest.NewRequestWithContext(ctx, "POST", "/metrics/job/aliyun_fc", strings.NewReader("fc_cred 1\n"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// Two upstream requests: the data, then the push-time gauge.
		if rec.Code != 200 || store.accepted("STS.invocation") != 2 {
			t.Fatalf("got %d %s; invocation credentials used %d times", rec.Code, rec.Body, store.accepted("STS.invocation"))
		}
		if sts.calls.Load() != before {
			t.Error("STS was called although the invocation carried credentials")
		}
		// Without them, the same signer falls back to the environment's
		// AccessKey, which this fake ARMS does not know: 401 → 400.
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/metrics/job/aliyun_fc", strings.NewReader("fc_cred 1\n")))
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "401") {
			t.Fatalf("env credentials: got %d %s", rec.Code, rec.Body)
		}
	})

	for _, secret := range []string{"baseSecretValue", "stsSecret1", "stsToken1", "invSecret", "invToken"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret (%s) appears in the relay's log", secret)
		}
	}
}
