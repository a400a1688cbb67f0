package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// TestServerBinary runs the real server binary: configuration from the
// environment and flags (the flag wins), a push relayed into Prometheus,
// JSON log lines without secrets, and a graceful SIGTERM that lets an
// in-flight request finish: the upstream holds the relay's request, the
// test sends SIGTERM, waits for the server to say it is shutting down,
// then releases the upstream; the push must be answered 200.
func TestServerBinary(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	up := newFaultProxy(t, prom.URL)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	up.set([]fault{{name: "held", hold: release, arrived: arrived}}, nil)
	const secret = "s3cr3t-password-value"
	srv := startServer(t, map[string]string{
		"PROMRELAY_UPSTREAM_URL":      up.URL + "/api/v1/write",
		"PROMRELAY_UPSTREAM_USERNAME": "writer",
		"PROMRELAY_UPSTREAM_PASSWORD": secret,
		"PROMRELAY_EXTERNAL_LABELS":   "relay=env", // the flag wins
	}, "-external-labels", "relay=bin")

	result := make(chan int, 1)
	go func() {
		resp, err := client.Post(srv.URL+"/metrics/job/binary", "", strings.NewReader("graceful_metric 1\n"))
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	select {
	case <-arrived:
	case <-time.After(15 * time.Second):
		t.Fatal("the push never reached the upstream")
	}
	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool { return strings.Contains(srv.Logs.String(), `"msg":"shutting down"`) }) {
		close(release)
		t.Fatalf("no shutdown logged after SIGTERM:\n%s", srv.Logs.String())
	}
	close(release)
	if status := <-result; status != 200 {
		t.Fatalf("in-flight push answered %d during shutdown, want 200", status)
	}
	if err := srv.wait(t, 15*time.Second); err != nil {
		t.Fatalf("server exited with %v", err)
	}
	if _, err := readyClient.Get(srv.URL + "/-/healthy"); err == nil {
		t.Error("server still answers after shutdown")
	}
	prom.WaitFor(t, `graceful_metric{job="binary",relay="bin"}`, 1, 5*time.Second)
	for i, a := range up.authorizations() {
		if !strings.HasPrefix(a, "Basic ") {
			t.Errorf("upstream request %d carried Authorization %q, want basic auth", i, a)
		}
	}

	all := srv.Logs.String()
	if strings.Contains(all, secret) {
		t.Fatalf("the upstream password appears in the log:\n%s", all)
	}
	var sawRequest bool
	for _, line := range strings.Split(strings.TrimSpace(all), "\n") {
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
// the server with one line naming the variable, and no secret.
func TestServerConfigErrors(t *testing.T) {
	bin := binary(t, "server")
	const up = "PROMRELAY_UPSTREAM_URL=http://127.0.0.1:1/api/v1/write"
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no upstream", nil, "PROMRELAY_UPSTREAM_URL (-upstream.url) is required"},
		{"not http", []string{"PROMRELAY_UPSTREAM_URL=ftp://x"}, "is not an absolute http(s) URL"},
		{"bad duration", []string{up, "PROMRELAY_UPSTREAM_TIMEOUT=soon"}, "PROMRELAY_UPSTREAM_TIMEOUT (-upstream.timeout): invalid value \"soon\""},
		{"bad label", []string{up, "PROMRELAY_EXTERNAL_LABELS=1bad=x"}, "PROMRELAY_EXTERNAL_LABELS"},
		{"two credentials", []string{up, "PROMRELAY_UPSTREAM_BEARER_TOKEN=hidden-token", "PROMRELAY_UPSTREAM_PASSWORD=hidden-pw"}, "exclusive"},
		// none next to another mode once let any request without
		// Authorization through, skipping require_tenant.
		{"none with another inbound mode", []string{up, "PROMRELAY_INBOUND_AUTH=none,bearer", "PROMRELAY_INBOUND_TOKENS=hidden-inbound"}, "PROMRELAY_INBOUND_AUTH"},
		{"FC custom runtime without inbound auth", []string{up, "FC_SERVER_PORT=9000"}, "PROMRELAY_INBOUND_AUTH is required"},
		{"short invoke secret", []string{up, "PROMRELAY_INVOKE_SECRET=hidden-short"}, "PROMRELAY_INVOKE_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, tc.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("server started, want an error")
			}
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("output %q, want one line containing %q", out, tc.want)
			}
			if strings.Contains(string(out), "hidden-") {
				t.Errorf("a secret appears in the error: %s", out)
			}
		})
	}
}
