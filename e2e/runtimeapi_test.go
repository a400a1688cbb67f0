package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
	first   chan time.Time // time of the first posted result
	once    sync.Once
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
	rt := &fakeRuntime{prefix: prefix, headers: headers, queue: make(chan queued, 64), waiting: map[string]chan result{}, first: make(chan time.Time, 1)}
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
			rt.once.Do(func() { rt.first <- time.Now() })
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

// buildFunction builds functions/<name> into a temporary folder.
func buildFunction(t testing.TB, name string, tags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	args := []string{"build", "-trimpath", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "./functions/"+name)...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startFunction runs a function binary against a fake runtime API.
func startFunction(t testing.TB, bin string, env ...string) (*exec.Cmd, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
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
