// Package testpeer starts the real peers promrelay's end-to-end tests talk
// to: Prometheus (as the remote-write upstream, as a remote-write sender, or
// as a scraper) and the Pushgateway (the reference for push behaviour), as
// processes on 127.0.0.1 with their data in temporary folders.
package testpeer

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Require returns the path of the peer binary (prometheus,
// prometheus-pushgateway, moto_server, terraform, cfn-lint, ...). It skips
// t under -short (make test-short needs no peer), and when binary is not
// installed; with PROMRELAY_E2E set (make test) a missing peer fails t
// instead.
func Require(t testing.TB, binary string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s is a real peer: skipped under -short", binary)
	}
	path, err := exec.LookPath(binary)
	if err == nil {
		return path
	}
	if os.Getenv("PROMRELAY_E2E") != "" {
		t.Fatalf("%s is not installed; run 'make deps'", binary)
	}
	t.Skipf("%s is not installed (run 'make deps', or 'make test' which does it)", binary)
	return ""
}

// client bounds each request to a peer: a peer that accepts and never
// answers fails the test instead of hanging it.
var client = &http.Client{Timeout: 10 * time.Second}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Process is a started peer.
type Process struct {
	URL string // http://127.0.0.1:port
	Dir string // its temporary folder
	cmd *exec.Cmd
	log string
}

// Logs returns what the process has written so far.
func (p *Process) Logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// start runs name with args, its output in a log file, and waits until a
// GET of ready answers 200.
func start(t testing.TB, name string, port int, ready string, args ...string) *Process {
	t.Helper()
	dir := t.TempDir()
	p := &Process{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir, log: filepath.Join(dir, "log")}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		logf.Close()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(p.Logs(), 3000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(p.URL + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready on %s:\n%s", name, p.URL, tail(p.Logs(), 3000))
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// Config is the prometheus.yml body; empty means a global section only.
	Config string
	// Args are extra flags.
	Args []string
}

// Prometheus is a running Prometheus server.
type Prometheus struct{ *Process }

// StartPrometheus starts Prometheus with the remote-write receiver enabled,
// listening on a free loopback port.
func StartPrometheus(t testing.TB, o PrometheusOptions) *Prometheus {
	t.Helper()
	bin := Require(t, "prometheus")
	port := FreePort(t)
	dir := t.TempDir()
	cfg := o.Config
	if cfg == "" {
		cfg = "global:\n  scrape_interval: 15s\n"
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	}, o.Args...)
	return &Prometheus{start(t, bin, port, "/-/ready", args...)}
}

// RemoteWriteURL is the server's remote-write receiver endpoint.
func (p *Prometheus) RemoteWriteURL() string { return p.URL + "/api/v1/write" }

// Sample is one element of an instant-query vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Key renders the sample's label set as name{k="v",...} with sorted labels.
func (s Sample) Key() string {
	var names []string
	for k := range s.Metric {
		if k != "__name__" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(s.Metric["__name__"])
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, s.Metric[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Query runs an instant PromQL query and returns the vector.
func (p *Prometheus) Query(t testing.TB, q string) []Sample {
	t.Helper()
	v, err := p.query(q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (p *Prometheus) query(q string) ([]Sample, error) {
	resp, err := client.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %v: %s", q, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, e := range r.Data.Result {
		s, _ := e.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %v", q, s, err)
		}
		out = append(out, Sample{Metric: e.Metric, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// WaitFor polls q until it returns at least n samples, or fails t after
// timeout.
func (p *Prometheus) WaitFor(t testing.TB, q string, n int, timeout time.Duration) []Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := p.query(q)
		if err == nil && len(v) >= n {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %q: got %d samples (err %v), want at least %d within %v", q, len(v), err, n, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Pushgateway is a running Pushgateway.
type Pushgateway struct{ *Process }

// StartPushgateway starts the Pushgateway on a free loopback port.
func StartPushgateway(t testing.TB) *Pushgateway {
	t.Helper()
	bin := Require(t, "prometheus-pushgateway")
	port := FreePort(t)
	return &Pushgateway{start(t, bin, port, "/-/ready", fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")}
}

// Moto is a running moto_server, a real S3-protocol server (it checks no
// signatures), with an empty bucket.
type Moto struct {
	*Process
	Bucket string // "groups"
}

// StartMoto starts moto_server on a free loopback port and creates its
// bucket.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin := Require(t, "moto_server")
	port := FreePort(t)
	m := &Moto{Process: start(t, bin, port, "/", "-H", "127.0.0.1", "-p", fmt.Sprint(port)), Bucket: "groups"}
	req, _ := http.NewRequest(http.MethodPut, m.URL+"/"+m.Bucket, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto_server: create bucket %s: %d", m.Bucket, resp.StatusCode)
	}
	return m
}

// Host returns host:port of a URL.
func Host(rawURL string) string {
	u, _ := url.Parse(rawURL)
	return u.Host
}
