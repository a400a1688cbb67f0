// Package e2e holds promrelay's end-to-end tests: real Prometheus servers as
// upstream, sender and scraper, the real client_golang push client, and the
// real Pushgateway as the reference for push behaviour.
package e2e

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// logBuffer collects the relay's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type relayOpts struct {
	upstream        upstream.Config
	externalLabels  []wire.Label
	requestTimeout  time.Duration
	maxBodyBytes    int
	maxDecodedBytes int
}

// startRelay runs the relay handler in-process in front of upstreamURL.
func startRelay(t *testing.T, upstreamURL string, o relayOpts) (*httptest.Server, *logBuffer) {
	t.Helper()
	o.upstream.URL = upstreamURL
	if o.upstream.MinBackoff == 0 {
		o.upstream.MinBackoff = 20 * time.Millisecond
		o.upstream.MaxBackoff = 200 * time.Millisecond
	}
	up, err := upstream.New(o.upstream)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	h := relay.New(relay.Options{
		Upstream:        up,
		ExternalLabels:  o.externalLabels,
		RequestTimeout:  o.requestTimeout,
		MaxBodyBytes:    o.maxBodyBytes,
		MaxDecodedBytes: o.maxDecodedBytes,
		Limits:          wire.Limits{MaxLabels: 64, MaxLabelBytes: 4096},
		Logger:          slog.New(slog.NewJSONHandler(logs, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, logs
}

// fault is one scripted answer of the fault proxy.
type fault struct {
	status     int
	retryAfter string
	body       string
}

// faultProxy sits between the relay and the real Prometheus: it answers the
// scripted faults first, then passes requests through.
type faultProxy struct {
	srv      *httptest.Server
	mu       sync.Mutex
	script   []fault
	always   *fault
	requests atomic.Int32
	passed   atomic.Int32
	bodies   atomic.Int64 // largest body seen
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	fp := &faultProxy{}
	fp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fp.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if n := int64(len(body)); n > fp.bodies.Load() {
			fp.bodies.Store(n)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		fp.mu.Lock()
		var f *fault
		if len(fp.script) > 0 {
			f = &fp.script[0]
			fp.script = fp.script[1:]
		} else if fp.always != nil {
			f = fp.always
		}
		fp.mu.Unlock()
		if f != nil {
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			http.Error(w, f.body, f.status)
			return
		}
		fp.passed.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(fp.srv.Close)
	return fp
}

func (fp *faultProxy) set(script []fault, always *fault) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.script, fp.always = script, always
	fp.requests.Store(0)
	fp.passed.Store(0)
}

// do sends a request and returns status, body and headers.
func do(t *testing.T, method, url, contentType string, body []byte, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// values maps each sample's key to its value.
func values(v []testpeer.Sample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v {
		out[s.Key()] = s.Value
	}
	return out
}

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// relayFromEnv configures the relay as a user does, from PROMRELAY_*
// variables (env), and serves it in-process.
func relayFromEnv(t *testing.T, env map[string]string) (*httptest.Server, *logBuffer) {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	h, err := relay.FromConfig(cfg, slogJSON(logs))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, logs
}
