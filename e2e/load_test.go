package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// TestLoad is the bounded load generator behind `make load`: it runs the
// real server binary on loopback in front of a null upstream and a real
// Prometheus, sends a fixed number of 500-series remote-write batches at
// concurrency 1, 16 and 64 (each run also bounded in time), and reports
// sustained samples/s, p50/p99 latency and the server's peak RSS. With
// PROMRELAY_LOAD_SOAK=10m it also runs a soak at concurrency 16 and reports
// RSS over time. It only runs when PROMRELAY_LOAD is set.
func TestLoad(t *testing.T) {
	if os.Getenv("PROMRELAY_LOAD") == "" {
		t.Skip("load generator: run with make load (PROMRELAY_LOAD=1)")
	}
	null := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf [32 << 10]byte
		for {
			if _, err := r.Body.Read(buf[:]); err != nil {
				break
			}
		}
		w.WriteHeader(204)
	}))
	defer null.Close()
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	bin := buildServer(t)
	body, series := remoteWriteBody(500, "load")
	fmt.Printf("\n| upstream | concurrency | requests | samples/s | p50 | p99 | server peak RSS |\n|---|---|---|---|---|---|---|\n")
	for _, up := range []struct{ name, url string }{{"null", null.URL + "/api/v1/write"}, {"prometheus", prom.RemoteWriteURL()}} {
		addr, pid, stop := startServerBinary(t, bin, up.url)
		for _, c := range []int{1, 16, 64} {
			n := map[int]int{1: 1000, 16: 4000, 64: 8000}[c]
			r := runLoad(t, "http://"+addr+"/api/v1/write", body, c, n, 60*time.Second)
			fmt.Printf("| %s | %d | %d | %.0f | %v | %v | %d MiB |\n", up.name, c, r.done, float64(r.done*series)/r.elapsed.Seconds(),
				r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), peakRSS(pid)>>10)
			if r.failed > 0 {
				t.Errorf("%s c=%d: %d requests failed", up.name, c, r.failed)
			}
		}
		if soak := os.Getenv("PROMRELAY_LOAD_SOAK"); soak != "" && up.name == "null" {
			d, err := time.ParseDuration(soak)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("\nsoak, concurrency 16, %v:\n", d)
			for end := time.Now().Add(d); time.Now().Before(end); {
				r := runLoad(t, "http://"+addr+"/api/v1/write", body, 16, 1<<30, time.Minute)
				fmt.Printf("  %s  %d requests  rss %d MiB  peak %d MiB\n", time.Now().Format("15:04:05"), r.done, rss(pid)>>10, peakRSS(pid)>>10)
			}
		}
		stop()
	}
}

type loadResult struct {
	done, failed int
	elapsed      time.Duration
	p50, p99     time.Duration
}

func runLoad(t *testing.T, url string, body []byte, concurrency, requests int, limit time.Duration) loadResult {
	var next atomic.Int64
	var failed atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, min(requests, 1<<20))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
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
				if err != nil || resp.StatusCode != 204 {
					failed.Add(1)
				}
				if resp != nil {
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
	r := loadResult{done: len(lat), failed: int(failed.Load()), elapsed: time.Since(start)}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// startServerBinary runs the server binary on a free loopback port.
func startServerBinary(t *testing.T, bin, upstreamURL string) (addr string, pid int, stop func()) {
	addr = fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	cmd := exec.Command(bin, "-listen", addr, "-log.level", "error")
	cmd.Env = append(os.Environ(), "PROMRELAY_UPSTREAM_URL="+upstreamURL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }
}

func procStatus(pid int, field string) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n // KiB
		}
	}
	return 0
}

func peakRSS(pid int) int { return procStatus(pid, "VmHWM") }
func rss(pid int) int     { return procStatus(pid, "VmRSS") }
