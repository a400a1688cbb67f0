package relay_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/internal/proc"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/requestid"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// processRig is the relay as the server runs it, in one process: a real
// HTTP server in front of the handler, the upstream client with its own
// transport, and a null sink on loopback that reads and drops every body.
// Options are the server's defaults (shared/config) with two external
// labels and the log at warn, as bench/process starts the server.
//
// With PROMRELAY_BENCH_SERVER naming a server binary (go build
// ./functions/server), the relay is that binary instead, started as a
// child process with bench/process's environment (GOGC and GOMEMLIMIT
// passed through; PROMRELAY_BENCH_GODEBUG becomes its GODEBUG;
// PROMRELAY_BENCH_CPUPROFILE and PROMRELAY_BENCH_MEMPROFILE are passed on
// for a profiling build of the server, which the shipped one is not: it
// ignores them), and its own CPU is reported too.
type processRig struct {
	front, sink *httptest.Server
	frontURL    string
	child       *proc.Process
	client      *http.Client
	sinkBytes   atomic.Int64
}

func newProcessRig(tb testing.TB) *processRig {
	rig := &processRig{}
	rig.sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		rig.sinkBytes.Add(n)
		w.WriteHeader(http.StatusNoContent)
	}))
	rig.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}}
	tb.Cleanup(func() {
		if rig.front != nil {
			rig.front.Close()
		}
		if rig.child != nil {
			// SIGTERM first: the server shuts down cleanly (and a profiling
			// build writes its profile).
			_ = rig.child.Cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = rig.child.Cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = rig.child.Cmd.Process.Kill()
				<-done
			}
		}
		rig.sink.Close()
		rig.client.CloseIdleConnections()
	})
	if bin := os.Getenv("PROMRELAY_BENCH_SERVER"); bin != "" {
		addr, err := proc.FreeAddr()
		if err != nil {
			tb.Fatal(err)
		}
		env := []string{"PATH=" + os.Getenv("PATH"), "PROMRELAY_LISTEN=" + addr,
			"PROMRELAY_UPSTREAM_URL=" + rig.sink.URL + "/api/v1/write",
			"PROMRELAY_EXTERNAL_LABELS=bench_env=bench,bench_replica=r1",
			"PROMRELAY_INBOUND_AUTH=none", "PROMRELAY_LOG_LEVEL=warn"}
		for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "PROMRELAY_MEMORY_LIMIT", "PROMRELAY_BENCH_CPUPROFILE", "PROMRELAY_BENCH_MEMPROFILE"} {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
		if v := os.Getenv("PROMRELAY_BENCH_GODEBUG"); v != "" {
			env = append(env, "GODEBUG="+v) // the relay's alone, not this process's
		}
		if rig.child, err = proc.Start("promrelay", bin, "http://"+addr, "/-/ready", env); err != nil {
			tb.Fatal(err)
		}
		rig.frontURL = rig.child.URL
		return rig
	}
	up, err := upstream.New(upstream.Config{URL: rig.sink.URL + "/api/v1/write", Timeout: 10 * time.Second,
		MaxRequestBytes: 1 << 20, MinBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second, UserAgent: "promrelay/bench"})
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(requestid.NewLogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ups := func(string) relay.Upstream { return up }
	state, err := pushstate.New(pushstate.Options{Write: relay.Writer(ups), Now: time.Now, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	h, err := relay.New(relay.Options{Upstreams: ups, State: state, Logger: logger, Now: time.Now,
		ExternalLabels: []wire.Label{{Name: "bench_env", Value: "bench"}, {Name: "bench_replica", Value: "r1"}},
		MaxBodyBytes:   16 << 20, MaxDecodedBytes: 32 << 20, MaxPushDecodedBytes: 8 << 20,
		Limits:         wire.Limits{MaxSamples: 100000, MaxLabels: 256, MaxLabelBytes: 8192},
		RequestTimeout: 30 * time.Second, Budget: relay.NewBudget(512<<20*6/10, time.Second)})
	if err != nil {
		tb.Fatal(err)
	}
	rig.front = httptest.NewUnstartedServer(h)
	rig.front.Config.ReadHeaderTimeout = 10 * time.Second
	rig.front.Config.IdleTimeout = 2 * time.Minute
	rig.front.Start()
	rig.frontURL = rig.front.URL
	return rig
}

// do sends one body and fails tb unless the relay answers want.
func (rig *processRig) do(tb testing.TB, method, path, contentType, encoding string, body []byte, want int) {
	req, err := http.NewRequest(method, rig.frontURL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := rig.client.Do(req)
	if err != nil {
		tb.Error(err)
		return
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		tb.Errorf("%s %s: %d %s, want %d", method, path, resp.StatusCode, msg, want)
	}
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childCPU is the child relay's CPU time so far (10 ms resolution), 0
// without one.
func (rig *processRig) childCPU(tb testing.TB) time.Duration {
	if rig.child == nil {
		return 0
	}
	d, err := rig.child.CPU()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// benchmarkProcess sends bodies (of samples samples each) to the rig from
// four senders, as bench/process does, and reports CPU per input sample
// (cpu-ns/sample: the whole process, senders and sink included, which
// are the same for every relay change) and wall time per sample.
func benchmarkProcess(b *testing.B, method, path, contentType, encoding string, bodies [][]byte, samples, want int) {
	rig := newProcessRig(b)
	for _, body := range bodies { // warm the pools and connections
		rig.do(b, method, path, contentType, encoding, body, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	child0 := rig.childCPU(b)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				rig.do(b, method, path, contentType, encoding, bodies[i%int64(len(bodies))], want)
			}
		})
	}
	wg.Wait()
	cpu := cpuTime(b) - cpu0
	child := rig.childCPU(b) - child0
	b.StopTimer()
	if rig.child != nil {
		b.ReportMetric(float64(child.Nanoseconds())/float64(b.N*samples), "relay-cpu-ns/sample")
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*samples), "cpu-ns/sample")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*samples), "ns/sample")
}

// BenchmarkProcessRemoteWrite relays remote write 1.0 batches of 2,000
// node_exporter-like series (as bench/process sends them) through the
// whole relay: HTTP server, handler, upstream client, null sink.
func BenchmarkProcessRemoteWrite(b *testing.B) {
	const series = 2000
	var bodies [][]byte
	now := time.Now().UnixMilli()
	for seed := uint64(1); seed <= 4; seed++ {
		var wr wire.WriteRequest
		corpus.WriteRequest(&wr, seed, series)
		for i := range wr.Series {
			wr.Series[i].Samples[0].Timestamp = now
		}
		bodies = append(bodies, wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil)))
	}
	benchmarkProcess(b, http.MethodPost, "/api/v1/write", "application/x-protobuf", "snappy", bodies, series, http.StatusNoContent)
}

// BenchmarkProcessTextPush relays text-format pushes of about 2,000
// samples (node_exporter-like, as bench/process sends them) through the
// whole relay, push_time_seconds included.
func BenchmarkProcessTextPush(b *testing.B) {
	count := func(text []byte) int {
		var e wire.Exposition
		if err := e.ParseText(text, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
		return e.NumSamples()
	}
	families := max(1, 2000*100/count(corpus.Exposition(1, corpus.Options{Families: 100})))
	var bodies [][]byte
	samples := 0
	for seed := uint64(1); seed <= 200 && len(bodies) < 4; seed++ {
		t := corpus.Exposition(seed, corpus.Options{Families: families})
		if n := count(t); samples == 0 || n == samples {
			samples = n
			bodies = append(bodies, t)
		}
	}
	benchmarkProcess(b, http.MethodPut, "/metrics/job/bench/instance/host1", "text/plain; version=0.0.4; charset=utf-8", "", bodies, samples, http.StatusOK)
}
