// Command promrelay-load is promrelay's bounded load generator (make load):
// it runs the real server binary on loopback in front of a null upstream
// (drains each body, answers 204) and then a real Prometheus, sends a
// fixed number of 500-series remote-write batches at concurrency 1, 16
// and 64 (each run also bounded in time), and prints sustained samples/s,
// p50/p99 latency and the server's peak RSS (VmHWM) as a Markdown table.
// With -soak it also runs concurrency 16 against the null upstream for
// that long and prints RSS once a minute. It exits 1 when a request
// failed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"github.com/promrelay/promrelay/internal/proc"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

func main() {
	server := flag.String("server", "", "server binary (functions/server); default: go build ./functions/server")
	prometheus := flag.String("prometheus", "prometheus", "Prometheus binary, the second upstream")
	soak := flag.Duration("soak", 0, "also run concurrency 16 against the null upstream for this long, e.g. 10m")
	series := flag.Int("series", 500, "series per remote-write batch")
	flag.Parse()
	if err := run(*server, *prometheus, *soak, *series); err != nil {
		fmt.Fprintln(os.Stderr, "promrelay-load:", err)
		os.Exit(1)
	}
}

func run(server, prometheus string, soak time.Duration, series int) error {
	dir, err := os.MkdirTemp("", "promrelay-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if server == "" {
		server = filepath.Join(dir, "promrelay")
		if out, err := exec.Command("go", "build", "-o", server, "./functions/server").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./functions/server: %v\n%s", err, out)
		}
	}
	null, err := nullUpstream()
	if err != nil {
		return err
	}
	defer null.Close()
	prom, err := startPrometheus(prometheus, dir)
	if err != nil {
		return err
	}
	defer prom.Stop()

	body := remoteWriteBody(series)
	failed := 0
	fmt.Printf("| upstream | concurrency | requests | samples/s | p50 | p99 | server peak RSS |\n|---|---|---|---|---|---|---|\n")
	for _, up := range []struct{ name, url string }{
		{"null", "http://" + null.Addr().String() + "/api/v1/write"},
		{"prometheus", prom.URL + "/api/v1/write"},
	} {
		srv, err := startServer(server, up.url)
		if err != nil {
			return err
		}
		for _, c := range []int{1, 16, 64} {
			n := map[int]int{1: 1000, 16: 4000, 64: 8000}[c]
			r := load(srv.URL+"/api/v1/write", body, c, n, time.Minute)
			fmt.Printf("| %s | %d | %d | %.0f | %v | %v | %d MiB |\n", up.name, c, r.done, float64(r.done*series)/r.elapsed.Seconds(),
				r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), srv.Status("VmHWM")>>20)
			failed += r.failed
		}
		if soak > 0 && up.name == "null" {
			fmt.Printf("\nsoak, concurrency 16, %v:\n", soak)
			for end := time.Now().Add(soak); time.Now().Before(end); {
				r := load(srv.URL+"/api/v1/write", body, 16, 1<<30, min(time.Minute, time.Until(end)))
				failed += r.failed
				fmt.Printf("  %s  %d requests  rss %d MiB  peak %d MiB\n", time.Now().Format("15:04:05"), r.done, srv.Status("VmRSS")>>20, srv.Status("VmHWM")>>20)
			}
			fmt.Println()
		}
		srv.Stop()
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

// remoteWriteBody is a snappy remote-write batch of n generated series.
func remoteWriteBody(n int) []byte {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 1, n)
	now := time.Now().UnixMilli()
	for i := range wr.Series {
		wr.Series[i].Samples[0].Timestamp = now
	}
	return wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil))
}

type result struct {
	done, failed int
	elapsed      time.Duration
	p50, p99     time.Duration
}

// load sends up to requests copies of body at concurrency, for at most
// limit.
func load(url string, body []byte, concurrency, requests int, limit time.Duration) result {
	var next, failed atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, min(requests, 1<<20))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	start := time.Now()
	deadline := start.Add(limit)
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(requests) && time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Encoding", "snappy")
				req.Header.Set("Content-Type", "application/x-protobuf")
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusNoContent {
					failed.Add(1)
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	r := result{done: len(lat), failed: int(failed.Load()), elapsed: time.Since(start)}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// nullUpstream drains each request body and answers 204, on loopback.
func nullUpstream() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	return ln, nil
}

// start runs bin with args and env (over this process's environment) and
// waits until url+"/-/ready" is 200.
func start(bin, url string, env []string, args ...string) (*proc.Process, error) {
	return proc.Start(filepath.Base(bin), bin, url, "/-/ready", append(os.Environ(), env...), args...)
}

func startServer(bin, upstreamURL string) (*proc.Process, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	return start(bin, "http://"+addr, []string{"PROMRELAY_UPSTREAM_URL=" + upstreamURL}, "-listen", addr, "-log.level", "error")
}

func startPrometheus(bin, dir string) (*proc.Process, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 15s\n"), 0o644); err != nil {
		return nil, err
	}
	return start(bin, "http://"+addr, nil, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver", "--log.level=warn")
}
