// Package e2e holds promrelay's end-to-end tests: real Prometheus servers as
// upstream, sender and scraper, the real client_golang push client, the
// real Pushgateway as the reference for push behaviour, and the real
// binaries of functions/ in front of loopback fakes of what cannot be
// reached from a test machine (cloud STS, the runtime APIs).
//
// Every test that needs a peer, a built binary or anything beyond an
// in-process relay skips under -short; with PROMRELAY_E2E set (make test)
// a missing peer is a failure.
//
// Files hold one feature each; fakes_test.go holds every fake (the fault
// proxy, the STS servers, the runtime APIs) and this file the two ways to
// run a relay: in-process from PROMRELAY_* settings (startRelay) and the
// real server binary (startServer).
package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/query/enforce"
	"github.com/promrelay/promrelay/shared/wire"
)

// binDir holds the binaries built for this test run (see binary).
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// needsPeers skips t under -short: it starts a peer process, builds a
// binary, or runs for seconds.
func needsPeers(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (peers, binaries): skipped under -short")
	}
}

// logBuffer collects a relay's JSON log lines.
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

// testDefaults are the settings every in-process relay, server and function
// binary gets unless the test names them: short backoffs so retries fit a
// test, and no self-write of the relay's own metrics, whose upstream
// requests would mix with the ones a test counts (the self-metrics tests
// name it; an empty value is the platform's default).
var testDefaults = map[string]string{
	"PROMRELAY_UPSTREAM_MIN_BACKOFF":  "20ms",
	"PROMRELAY_UPSTREAM_MAX_BACKOFF":  "200ms",
	"PROMRELAY_SELF_METRICS_INTERVAL": "0",
}

// relayProc is an in-process relay.
type relayProc struct {
	URL  string // http://127.0.0.1:port
	App  *app.App
	Logs *logBuffer
}

// startRelay builds the relay as a user configures it, from PROMRELAY_*
// settings (env, over testDefaults), with app.New, and serves it with
// (*App).Serve on a loopback listener until the test ends. The process
// environment is not read for PROMRELAY_* settings; GOMEMLIMIT reads as
// "off" so the test process keeps its own memory limit.
func startRelay(t testing.TB, env map[string]string) *relayProc {
	t.Helper()
	r, err := newRelay(t, app.Server, env)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.App.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("relay did not shut down")
		}
	})
	r.URL = "http://" + ln.Addr().String()
	return r
}

// newRelay builds the App of kind from env (over testDefaults) with its
// log captured, without serving it.
func newRelay(t testing.TB, kind app.Kind, env map[string]string) (*relayProc, error) {
	t.Helper()
	logs := &logBuffer{}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "GOMEMLIMIT" {
			return "off"
		}
		return testDefaults[k]
	}
	// As the server binary: the read path's enforcement linked.
	a, err := app.FromEnv(kind, app.Env{Getenv: getenv, Log: logs, Enforcer: enforce.Enforcer{}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay log:\n%s", tail(logs.String(), 4000))
		}
	})
	return &relayProc{App: a, Logs: logs}, nil
}

// binary returns the path of ./functions/<name> built with tags, built
// once per test run.
func binary(t testing.TB, name string, tags ...string) string {
	t.Helper()
	needsPeers(t)
	key := name + "/" + strings.Join(tags, ",")
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if p, ok := builds.done[key]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "promrelay-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	bin := filepath.Join(binDir, strings.NewReplacer("/", "_", ",", "_").Replace(key))
	args := []string{"build", "-trimpath", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "./functions/"+name)...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functions/%s: %v\n%s", name, err, out)
	}
	builds.done[key] = bin
	return bin
}

var builds = struct {
	mu   sync.Mutex
	done map[string]string
}{done: map[string]string{}}

// baseEnv is the process environment without PROMRELAY_* settings, for
// the binaries: a test names every setting it means.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROMRELAY_") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			out = append(out, kv)
		}
	}
	return out
}

// envList renders env over testDefaults as KEY=value pairs.
func envList(env map[string]string) []string {
	var out []string
	for k, v := range testDefaults {
		if _, ok := env[k]; !ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// serverProc is a running server binary (functions/server).
type serverProc struct {
	URL  string // http://127.0.0.1:port
	Addr string
	Cmd  *exec.Cmd
	Logs *logBuffer
	done chan error // the process's exit
}

// startServer runs the server binary on a free loopback port with env
// (over testDefaults) and args, and waits until /-/ready answers 200.
// PROMRELAY_LISTEN is set unless env names it. The process is killed when
// the test ends.
func startServer(t testing.TB, env map[string]string, args ...string) *serverProc {
	t.Helper()
	s := launchServer(t, env, args...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := readyClient.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err // for the cleanup
			t.Fatalf("server exited before it was ready: %v\n%s", err, s.Logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready on %s: %v\n%s", s.URL, err, s.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launchServer starts the server binary without waiting for it.
func launchServer(t testing.TB, env map[string]string, args ...string) *serverProc {
	t.Helper()
	bin := binary(t, "server")
	addr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	if env["PROMRELAY_LISTEN"] != "" {
		addr = env["PROMRELAY_LISTEN"]
	} else {
		env = withEnv(env, "PROMRELAY_LISTEN", addr)
	}
	s := &serverProc{URL: "http://" + addr, Addr: addr, Logs: &logBuffer{}, done: make(chan error, 1)}
	s.Cmd = exec.Command(bin, args...)
	s.Cmd.Env = append(baseEnv(), envList(env)...)
	s.Cmd.Stdout, s.Cmd.Stderr = s.Logs, s.Logs
	if err := s.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.Cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.Cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.Logs.String(), 4000))
		}
	})
	return s
}

// wait returns the process's exit error, or fails t after timeout.
func (s *serverProc) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatalf("server did not exit within %v", timeout)
		return nil
	}
}

// peakRSS is the process's peak resident set size in bytes (VmHWM).
func (s *serverProc) peakRSS(t testing.TB) int64 {
	t.Helper()
	return procStatusBytes(t, s.Cmd.Process.Pid, "VmHWM")
}

// procStatusBytes reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatusBytes(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

func withEnv(env map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(env)+len(kv)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// client never follows redirects: a test sees each answer as sent. Its
// timeout is a hang detector, not a speed check.
var client = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// readyClient polls readiness: each attempt bounded.
var readyClient = &http.Client{Timeout: 2 * time.Second}

// do sends a request and returns status, body and headers.
func do(t testing.TB, method, url, contentType string, body []byte, header ...string) (int, string, http.Header) {
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
	resp, err := client.Do(req)
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

// eventually polls cond every 100 ms until it is true or timeout passes,
// and reports whether it became true.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// remoteWriteBody encodes a generated batch of n series as a snappy
// remote-write body with current timestamps.
func remoteWriteBody(n int, job string) ([]byte, int) {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 1, n)
	now := time.Now().UnixMilli()
	for i := range wr.Series {
		for j := range wr.Series[i].Labels {
			if wr.Series[i].Labels[j].Name == "job" {
				wr.Series[i].Labels[j].Value = job
			}
		}
		wr.Series[i].Samples[0].Timestamp = now
	}
	return wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil)), len(wr.Series)
}

func postRemoteWrite(t testing.TB, url string, body []byte, contentType string) (int, string, http.Header) {
	t.Helper()
	return do(t, http.MethodPost, url+"/api/v1/write", contentType, body, "Content-Encoding", "snappy", "X-Prometheus-Remote-Write-Version", "0.1.0")
}

// rwBody is a snappy remote-write 1.0 body of series.
func rwBody(series ...wire.Series) []byte {
	return wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, series, nil))
}

func lbls(kv ...string) []wire.Label {
	var ls []wire.Label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, wire.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
