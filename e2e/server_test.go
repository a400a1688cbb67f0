package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// buildServer builds functions/server into a temporary folder.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "promrelay")
	cmd := exec.Command("go", "build", "-o", bin, "./functions/server")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestServerBinary runs the real server binary: configuration from the
// environment and flags, a push relayed into Prometheus, JSON log lines
// without secrets, and a graceful SIGTERM that lets an in-flight request
// finish.
func TestServerBinary(t *testing.T) {
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	// A slow upstream: each request waits 1.5 s before reaching Prometheus.
	target, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	slowUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no credentials", http.StatusUnauthorized)
			return
		}
		if strings.Contains(r.UserAgent(), "promrelay/") {
			time.Sleep(1500 * time.Millisecond)
		}
		rp.ServeHTTP(w, r)
	}))
	defer slowUp.Close()

	bin := buildServer(t)
	port := testpeer.FreePort(t)
	const secret = "s3cr3t-password-value"
	cmd := exec.Command(bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-external-labels", "relay=bin")
	cmd.Env = append(os.Environ(),
		"PROMRELAY_UPSTREAM_URL="+slowUp.URL+"/api/v1/write",
		"PROMRELAY_UPSTREAM_USERNAME=writer",
		"PROMRELAY_UPSTREAM_PASSWORD="+secret,
		"PROMRELAY_EXTERNAL_LABELS=relay=env", // the flag wins
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var logMu sync.Mutex
	var logLines []string
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Start a push, then SIGTERM while it waits on the slow upstream.
	result := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+"/metrics/job/binary", "", strings.NewReader("graceful_metric 1\n"))
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if status := <-result; status != 200 {
		t.Fatalf("in-flight push answered %d during shutdown, want 200", status)
	}
	waitErr := make(chan error, 1)
	go func() { <-logDone; waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("server exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	if _, err := http.Get(base + "/-/healthy"); err == nil {
		t.Error("server still answers after shutdown")
	}
	prom.WaitFor(t, `graceful_metric{job="binary",relay="bin"}`, 1, 5*time.Second)

	logMu.Lock()
	defer logMu.Unlock()
	all := strings.Join(logLines, "\n")
	if strings.Contains(all, secret) {
		t.Fatalf("the upstream password appears in the log:\n%s", all)
	}
	var sawRequest bool
	for _, line := range logLines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if entry["msg"] == "request" && entry["route"] == "push" {
			sawRequest = true
			for _, f := range []string{"method", "status", "samples_in", "samples_out", "bytes_in", "bytes_out", "duration_ms", "upstream_status"} {
				if _, ok := entry[f]; !ok {
					t.Errorf("request log line lacks %q: %s", f, line)
				}
			}
		}
	}
	if !sawRequest {
		t.Errorf("no request log line:\n%s", all)
	}
}

// TestServerConfigErrors checks that a missing or malformed setting stops
// the server with one line naming the variable.
func TestServerConfigErrors(t *testing.T) {
	bin := buildServer(t)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "PROMRELAY_UPSTREAM_URL (-upstream.url) is required"},
		{[]string{"PROMRELAY_UPSTREAM_URL=ftp://x"}, "is not an absolute http(s) URL"},
		{[]string{"PROMRELAY_UPSTREAM_URL=http://x/api/v1/write", "PROMRELAY_UPSTREAM_TIMEOUT=soon"}, "PROMRELAY_UPSTREAM_TIMEOUT (-upstream.timeout): invalid value \"soon\""},
		{[]string{"PROMRELAY_UPSTREAM_URL=http://x/api/v1/write", "PROMRELAY_EXTERNAL_LABELS=1bad=x"}, "PROMRELAY_EXTERNAL_LABELS"},
		{[]string{"PROMRELAY_UPSTREAM_URL=http://x/api/v1/write", "PROMRELAY_UPSTREAM_BEARER_TOKEN=hidden-token", "PROMRELAY_UPSTREAM_PASSWORD=hidden-pw"}, "exclusive"},
	} {
		cmd := exec.Command(bin)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("env %v: server started, want an error", tc.env)
			continue
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("env %v: output %q, want one line containing %q", tc.env, out, tc.want)
		}
		if strings.Contains(string(out), "hidden-") {
			t.Errorf("a secret appears in the error: %s", out)
		}
	}
}
