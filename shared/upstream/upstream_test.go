package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/wire"
)

func batch(n int) *wire.WriteRequest {
	var wr wire.WriteRequest
	for i := 0; i < n; i++ {
		wr.AppendSample(wr.AppendLabels(wire.Label{Name: "__name__", Value: "m"}, wire.Label{Name: "i", Value: strings.Repeat("x", 50) + string(rune('a'+i%26))}), wire.Sample{Value: float64(i), Timestamp: int64(i)})
	}
	return &wr
}

// config returns a complete Config for url, as shared/config would.
func config(url string) Config {
	return Config{URL: url, Timeout: 5 * time.Second, MaxRequestBytes: 1 << 20,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want an *Error", err, err)
	}
	return e
}

func TestRequestHeadersAndAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signer auth.Signer
		want   string
	}{
		{"bearer", &auth.Static{BearerToken: "tok"}, "Bearer tok"},
		{"basic", &auth.Static{Username: "u", Password: "p"}, "Basic dTpw"},
		{"empty static", &auth.Static{}, ""},
		{"no signer", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Clone()
				if r.ProtoMajor != 1 {
					t.Errorf("protocol %s, want HTTP/1.1", r.Proto)
				}
				w.WriteHeader(204)
			}))
			defer srv.Close()
			cfg := config(srv.URL)
			cfg.UserAgent, cfg.Signer = "promrelay/test", tc.signer
			res, err := newClient(t, cfg).Write(context.Background(), batch(1))
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 1 || res.Batches != 1 || res.UpstreamStatus != 204 || res.BytesSent == 0 {
				t.Errorf("result %+v", res)
			}
			for k, v := range map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
				"X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "promrelay/test", "Authorization": tc.want} {
				if got.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Get(k), v)
				}
			}
		})
	}
}

// TestNewRequiresEveryOption checks that New adds no default of its own:
// each required field left zero is an error naming it.
func TestNewRequiresEveryOption(t *testing.T) {
	for _, tc := range []struct {
		field  string
		modify func(*Config)
	}{
		{"not an absolute http(s) URL", func(c *Config) { c.URL = "/relative" }},
		{"not an absolute http(s) URL", func(c *Config) { c.URL = "ftp://host/x" }},
		{"Config.Timeout", func(c *Config) { c.Timeout = 0 }},
		{"Config.MaxRequestBytes", func(c *Config) { c.MaxRequestBytes = 0 }},
		{"Config.MinBackoff", func(c *Config) { c.MinBackoff = 0 }},
		{"Config.MaxBackoff", func(c *Config) { c.MaxBackoff = 0 }},
		{"is below MinBackoff", func(c *Config) { c.MaxBackoff = time.Millisecond }},
	} {
		cfg := config("http://127.0.0.1:1/api/v1/write")
		tc.modify(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err = %v", tc.field, err)
		}
	}
	cfg := config("http://user:hunter22@127.0.0.1:1/x?api_key=s3cr3t")
	cfg.URL = "http://user:hunter22@127.0.0.1:1/x?api_key=s3cr3t\x7f"
	if _, err := New(cfg); err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "hunter22") {
		t.Errorf("invalid URL: err = %v, want one without the secrets", err)
	}
}

func TestSplitKeepsEverySeriesOnceAndUnderBudget(t *testing.T) {
	var series, maxBody, requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if int64(len(body)) > maxBody.Load() {
			maxBody.Store(int64(len(body)))
		}
		raw, err := wire.DecodeSnappy(nil, body, 1<<24)
		if err != nil {
			t.Error(err)
		}
		var wr wire.WriteRequest
		if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
			t.Error(err)
		}
		series.Add(int64(len(wr.Series)))
		w.WriteHeader(204)
	}))
	defer srv.Close()
	cfg := config(srv.URL)
	cfg.MaxRequestBytes = 2000
	wr := batch(1000)
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: "m"})
	res, err := newClient(t, cfg).Write(context.Background(), wr)
	if err != nil {
		t.Fatal(err)
	}
	if series.Load() != 1000 || maxBody.Load() > 2000 || res.Batches != int(requests.Load()) || res.Batches < 2 {
		t.Fatalf("series %d, largest body %d, batches %d, requests %d", series.Load(), maxBody.Load(), res.Batches, requests.Load())
	}
}

// TestUpstream413HalvesTheRequest checks that a 413 makes the client
// halve the request until each part is accepted, and that one series the
// upstream refuses on its own is a 400 naming it.
func TestUpstream413HalvesTheRequest(t *testing.T) {
	var series atomic.Int64
	limit := 600
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) > limit {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		raw, _ := wire.DecodeSnappy(nil, body, 1<<24)
		var wr wire.WriteRequest
		if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
			t.Error(err)
		}
		series.Add(int64(len(wr.Series)))
		w.WriteHeader(204)
	}))
	defer srv.Close()
	c := newClient(t, config(srv.URL))
	res, err := c.Write(context.Background(), batch(200))
	if err != nil || series.Load() != 200 || res.Batches < 3 {
		t.Fatalf("err %v, %d series arrived, result %+v", err, series.Load(), res)
	}
	limit = 10
	_, err = c.Write(context.Background(), batch(2))
	if e := asError(t, err); e.Status != 400 || e.UpstreamStatus != 413 || !strings.HasPrefix(e.Msg, `series m{i="`) {
		t.Fatalf("%+v", e)
	}
}

// TestWriteEncodedMetadataOnly checks that a request of metadata alone,
// split because of its size, still goes out.
func TestWriteEncodedMetadataOnly(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(204)
	}))
	defer srv.Close()
	cfg := config(srv.URL)
	cfg.MaxRequestBytes = 8
	var md []wire.Metadata
	for i := 0; i < 10; i++ {
		md = append(md, wire.Metadata{Type: wire.MetadataCounter, FamilyName: "family_" + strings.Repeat("y", i), Help: "help"})
	}
	raw := wire.AppendWriteRequest(nil, nil, md)
	if _, err := newClient(t, cfg).WriteEncoded(context.Background(), raw); err != nil || calls.Load() != 1 {
		t.Fatalf("err %v, %d calls", err, calls.Load())
	}
	if _, err := newClient(t, cfg).WriteEncoded(context.Background(), []byte(strings.Repeat("\xff", 100))); asError(t, err).Status != 400 {
		t.Fatalf("a malformed request: %v", err)
	}
}

// TestRetryPolicy checks the status mapping and that retries happen only
// within the caller's deadline: without one, exactly one attempt.
func TestRetryPolicy(t *testing.T) {
	cases := []struct {
		name       string
		answers    []int
		retryAfter string
		timeout    time.Duration // 0: a context without deadline
		wantStatus int           // 0 = success
		wantCalls  int32         // 0 = more than one
	}{
		{"5xx then ok", []int{500, 502, 204}, "", 5 * time.Second, 0, 3},
		{"400 not retried", []int{400}, "", 5 * time.Second, 400, 1},
		{"404 not retried", []int{404}, "", 5 * time.Second, 400, 1},
		{"409 not retried", []int{409}, "", 5 * time.Second, 400, 1},
		{"401 not retried, the sender retries", []int{401}, "", 5 * time.Second, 502, 1},
		{"403 not retried, the sender retries", []int{403}, "", 5 * time.Second, 502, 1},
		{"408 retried", []int{408, 204}, "", 5 * time.Second, 0, 2},
		{"408 until deadline is 504", []int{408}, "", 300 * time.Millisecond, 504, 0},
		{"429 then ok", []int{429, 204}, "0", 5 * time.Second, 0, 2},
		{"429 past deadline", []int{429}, "10", time.Second, 429, 1},
		{"5xx until deadline", []int{503}, "", 300 * time.Millisecond, 502, 0},
		{"unexpected status", []int{600}, "", 5 * time.Second, 502, 1},
		{"no deadline: 503 once", []int{503, 204}, "", 0, 502, 1},
		{"no deadline: 408 once", []int{408, 204}, "", 0, 504, 1},
		{"no deadline: 429 once", []int{429, 204}, "3", 0, 429, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				status := tc.answers[min(n, len(tc.answers)-1)]
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(status)
			}))
			defer srv.Close()
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			_, err := newClient(t, config(srv.URL)).Write(ctx, batch(3))
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				e := asError(t, err)
				if e.Status != tc.wantStatus {
					t.Fatalf("err = %v, status %d, want %d", err, e.Status, tc.wantStatus)
				}
				if tc.name == "429 past deadline" && e.RetryAfter != 10*time.Second {
					t.Errorf("RetryAfter %v, want the upstream's 10s", e.RetryAfter)
				}
			}
			if tc.wantCalls > 0 && calls.Load() != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.wantCalls)
			}
			if tc.wantCalls == 0 && calls.Load() < 2 {
				t.Errorf("%d calls, want retries until the deadline", calls.Load())
			}
		})
	}
}

// TestRetriesStopAtTheDeadline checks that the last retry leaves time to
// answer: the write returns before the caller's deadline, and a 429
// without Retry-After tells the sender the backoff it would have waited.
func TestRetriesStopAtTheDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := newClient(t, config(srv.URL)).Write(ctx, batch(1))
	if e := asError(t, err); e.Status != 429 || e.RetryAfter <= 0 || ctx.Err() != nil || time.Until(deadline) < 0 {
		t.Fatalf("%+v, ctx %v", e, ctx.Err())
	}
}

// TestAttemptTimeoutIs504 checks that an upstream that does not answer
// within Timeout is a 504 once the deadline leaves no time to retry.
func TestAttemptTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := config(srv.URL)
	cfg.Timeout = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := newClient(t, cfg).Write(ctx, batch(1))
	if e := asError(t, err); e.Status != 504 || res.Requests < 2 || !strings.Contains(e.Msg, "did not answer in time") {
		t.Fatalf("%+v after %d requests", e, res.Requests)
	}
}

// recordingPeer is a second server that records whether anything reached
// it and whether it carried credentials.
type recordingPeer struct {
	srv        *httptest.Server
	requests   atomic.Int32
	signedOnes atomic.Int32
}

func newRecordingPeer(t *testing.T) *recordingPeer {
	p := &recordingPeer{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Date") != "" {
			p.signedOnes.Add(1)
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// TestRedirectIsNotFollowed checks that a 302 or 307 from the upstream is
// a 502 naming the redirect's host, not retried, and that the redirect's
// target gets nothing: neither the samples nor the credentials. Before,
// the client followed the redirect, re-signed it, and counted the GET's
// 200 as success.
func TestRedirectIsNotFollowed(t *testing.T) {
	peer := newRecordingPeer(t)
	target, _ := url.Parse(peer.srv.URL)
	for _, tc := range []struct {
		status   int
		location string
		wantHost string
	}{
		{302, peer.srv.URL + "/api/v1/write", target.Host},
		{307, peer.srv.URL + "/api/v1/write?x=1", target.Host},
		{301, "/elsewhere", "127.0.0.1"},
		{308, "", "(no Location)"},
	} {
		var calls atomic.Int32
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if tc.location != "" {
				w.Header().Set("Location", tc.location)
			}
			w.WriteHeader(tc.status)
		}))
		cfg := config(up.URL)
		cfg.Signer = &auth.Static{BearerToken: "secret-token"}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := newClient(t, cfg).Write(ctx, batch(2))
		cancel()
		up.Close()
		e := asError(t, err)
		if e.Status != http.StatusBadGateway || e.UpstreamStatus != tc.status || !strings.HasPrefix(e.Msg, "upstream redirected to "+tc.wantHost) {
			t.Errorf("%d: %+v", tc.status, e)
		}
		if calls.Load() != 1 {
			t.Errorf("%d: %d attempts, want 1", tc.status, calls.Load())
		}
	}
	if peer.requests.Load() != 0 || peer.signedOnes.Load() != 0 {
		t.Fatalf("the redirect target got %d requests, %d signed", peer.requests.Load(), peer.signedOnes.Load())
	}
}

// TestMessagesShowNoURLSecrets checks that the upstream URL's user info
// and query string (an api_key) appear in no message the client returns,
// nor in what the upstream's error body echoes back.
func TestMessagesShowNoURLSecrets(t *testing.T) {
	const secretQuery = "api_key=k3y-s3cr3t"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := 400
		if strings.HasPrefix(r.URL.Path, "/fail") {
			status = 500
		}
		http.Error(w, "bad request to http://"+r.Host+r.URL.RequestURI()+" key "+r.URL.Query().Get("api_key"), status)
	}))
	defer echo.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, tc := range []struct {
		name, url, wantShown string
		wantStatus           int
	}{
		{"connection refused", strings.Replace(closedURL, "http://", "http://alice:pa55word@", 1) + "/api/v1/write?" + secretQuery, closedURL + "/api/v1/write", 502},
		{"data rejection echoing the URL", strings.Replace(echo.URL, "http://", "http://alice:pa55word@", 1) + "/api/v1/write?" + secretQuery, echo.URL + "/api/v1/write", 400},
		{"5xx echoing the URL", echo.URL + "/fail?" + secretQuery, "upstream failed with 500", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newClient(t, config(tc.url)).Write(context.Background(), batch(1))
			e := asError(t, err)
			if e.Status != tc.wantStatus || !strings.Contains(e.Msg, tc.wantShown) {
				t.Errorf("status %d, message %q; want %d and %q", e.Status, e.Msg, tc.wantStatus, tc.wantShown)
			}
			for _, secret := range []string{"k3y-s3cr3t", "api_key", "alice", "pa55word"} {
				if strings.Contains(e.Msg, secret) || strings.Contains(e.Detail, secret) || strings.Contains(e.Error(), secret) {
					t.Errorf("%q leaked: Msg %q, Detail %q", secret, e.Msg, e.Detail)
				}
			}
		})
	}
}

// TestErrorBodyOnlyForDataRejections checks that the upstream's body
// reaches the sender for a data rejection, cut to MaxErrorBodyBytes, and
// stays in Detail otherwise.
func TestErrorBodyOnlyForDataRejections(t *testing.T) {
	long := strings.Repeat("é", MaxErrorBodyBytes) // 2 bytes each: cut in the middle of a rune
	for _, tc := range []struct {
		status     int
		body       string
		inMsg      bool
		wantStatus int
	}{
		{400, "out of order sample " + long, true, 400},
		{422, "duplicate sample", true, 400},
		{401, "AccessKeyId LTAI123 of account 1234567890 not found", false, 502},
		{403, "account 1234567890 is suspended", false, 502},
		{503, "upstream overloaded in zone 1234567890", false, 502},
		{429, "tenant 1234567890 over quota", false, 429},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, tc.body, tc.status)
		}))
		_, err := newClient(t, config(srv.URL)).Write(context.Background(), batch(1))
		srv.Close()
		e := asError(t, err)
		start := tc.body[:16]
		if e.Status != tc.wantStatus || strings.Contains(e.Msg, start) != tc.inMsg || strings.Contains(e.Detail, start) == tc.inMsg {
			t.Errorf("%d: status %d, Msg %q, Detail %q", tc.status, e.Status, e.Msg, e.Detail)
		}
		for _, s := range []string{e.Msg, e.Detail} {
			if len(s) > MaxErrorBodyBytes+100 || strings.ContainsRune(s, '\uFFFD') {
				t.Errorf("%d: %d bytes, want the body cut to %d bytes of valid text", tc.status, len(s), MaxErrorBodyBytes)
			}
		}
	}
}

// TestCredentialFailureIs503 checks that a signer that cannot get
// credentials makes the write fail with 503 (retryable), never 400, with
// the generic message for the sender and the cause in Detail.
func TestCredentialFailureIs503(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); w.WriteHeader(204) }))
	defer srv.Close()
	cfg := config(srv.URL)
	cfg.Signer = failingSigner{}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := newClient(t, cfg).Write(ctx, batch(1))
	e := asError(t, err)
	if e.Status != http.StatusServiceUnavailable || e.Msg != "cannot obtain upstream credentials" ||
		!strings.Contains(e.Detail, "sts down for account 1234567890") || strings.Contains(e.Detail, "SIGNATURE") {
		t.Fatalf("%+v", e)
	}
	if res.Requests < 2 || calls.Load() != 0 {
		t.Errorf("%d attempts (want retries within the deadline), %d reached the upstream", res.Requests, calls.Load())
	}
}

type failingSigner struct{}

func (failingSigner) Sign(*http.Request, []byte) error {
	return errors.New(`sts down for account 1234567890: Post "https://sts.example/?Signature=SIGNATURE": refused`)
}
func (failingSigner) Expired(*http.Request, int, http.Header, []byte) bool { return false }

func TestParseRetryAfter(t *testing.T) {
	if d := parseRetryAfter("7"); d != 7*time.Second {
		t.Errorf("seconds: %v", d)
	}
	if d := parseRetryAfter(time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)); d < time.Second || d > 3*time.Second {
		t.Errorf("date: %v", d)
	}
	for _, v := range []string{"soon", "", "-3", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)} {
		if d := parseRetryAfter(v); d != 0 {
			t.Errorf("%q: %v", v, d)
		}
	}
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	c := newClient(t, config("http://127.0.0.1:1/"))
	for attempt := 0; attempt < 40; attempt++ {
		d := c.backoff(attempt)
		step := min(c.minBackoff<<min(attempt, 20), c.maxBackoff)
		if d < step/2 || d > step {
			t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, step/2, step)
		}
	}
}
