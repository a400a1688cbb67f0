// Command process compares promrelay's server with vmagent as whole
// processes (make bench-process): both relays run as child processes on
// 127.0.0.1 in front of one null sink (a third child process, this binary
// with -sink-mode, that snappy-decodes each remote-write body and counts its
// samples with a protobuf walk), take the same bounded load in alternating
// rounds (ABBA: promrelay first in even rounds, vmagent first in odd ones),
// and are charged the CPU time (utime+stime of /proc/<pid>/stat) they spent
// per input sample. A round's CPU is read only once the sink has received
// every sample the relay acknowledged: vmagent acknowledges before it
// forwards, so the round waits (bounded by -timeout) for the sink's count.
//
// Paths: remote write 1.0 relayed (POST /api/v1/write, -series series per
// batch, node_exporter-like label sets), a text-format push relayed as
// remote write (promrelay's PUT /metrics/job/<job>/instance/<i>, vmagent's
// /api/v1/import/prometheus/metrics/job/<job>/instance/<i>), and, for
// promrelay alone, the same push as delimited protobuf MetricFamily
// messages. Both relays add the same two external labels and forward
// remote write 1.0 (vmagent: -remoteWrite.forcePromProto, in-memory queue
// only: -remoteWrite.disableOnDiskQueue).
//
// It prints a Markdown table of per-sample CPU medians (ns/sample) and
// their ratio, the sink's and the load generator's own CPU per sample
// (part of neither relay), and each process's peak RSS (VmHWM); -out gets
// the rounds in benchstat's input format.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"github.com/promrelay/promrelay/internal/proc"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// 100 on every Linux architecture Go supports (proc(5)).
const userHZ = 100

// External labels both relays add to every series.
const (
	externalLabels = "bench_env=bench,bench_replica=r1"
)

// Content types of the bodies sent.
const (
	contentRemoteWrite = "application/x-protobuf"
	contentText        = "text/plain; version=0.0.4; charset=utf-8"
	contentDelimited   = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)

type options struct {
	rounds, requests, series, concurrency int
	out, promrelay, vmagent, root         string
	timeout                               time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 6, "measured rounds per relay and path (ABBA order; an even number keeps it balanced)")
	flag.IntVar(&o.requests, "requests", 500, "requests per relay, path and round")
	flag.IntVar(&o.series, "series", 2000, "series per remote-write batch; the text push is sized to about as many samples")
	flag.IntVar(&o.concurrency, "concurrency", 4, "concurrent senders")
	flag.StringVar(&o.out, "out", "bench-process.txt", "file for the rounds in benchstat's input format (empty: none)")
	flag.StringVar(&o.promrelay, "promrelay", "", "promrelay server binary; default: go build ./functions/server in -root")
	flag.StringVar(&o.vmagent, "vmagent", "", "vmagent binary; default: CGO_ENABLED=0 go build github.com/VictoriaMetrics/VictoriaMetrics/app/vmagent in this module")
	flag.StringVar(&o.root, "root", "../..", "promrelay's repository root, where the server is built")
	flag.DurationVar(&o.timeout, "timeout", time.Minute, "bound of one round: its load, then the wait for the sink")
	sinkMode := flag.Bool("sink-mode", false, "internal: run as the null sink (prints its address, exits when stdin closes)")
	flag.Parse()
	if *sinkMode {
		if err := runSink(); err != nil {
			fmt.Fprintln(os.Stderr, "sink:", err)
			os.Exit(1)
		}
		return
	}
	if o.rounds < 1 || o.requests < 1 || o.series < 1 || o.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "process: -rounds, -requests, -series and -concurrency must be positive")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "process:", err)
		os.Exit(1)
	}
}

// ---- the null sink (its own process) ----

// sink counts the samples of the remote-write bodies posted to
// /w/<relay>, per relay name.
type sink struct {
	mu     sync.Mutex
	counts map[string]*counter
	pool   sync.Pool // *sinkBuf
}

type counter struct{ samples, requests, errors atomic.Int64 }

type sinkBuf struct{ raw, dec []byte }

func (s *sink) counter(name string) *counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts[name]
	if c == nil {
		c = &counter{}
		s.counts[name] = c
	}
	return c
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, isWrite := strings.CutPrefix(r.URL.Path, "/w/")
	if !isWrite {
		name, _ = strings.CutPrefix(r.URL.Path, "/count/")
		c := s.counter(name)
		fmt.Fprintf(w, "%d %d %d\n", c.samples.Load(), c.requests.Load(), c.errors.Load())
		return
	}
	c := s.counter(name)
	b, _ := s.pool.Get().(*sinkBuf)
	if b == nil {
		b = &sinkBuf{}
	}
	defer s.pool.Put(b)
	buf := bytes.NewBuffer(b.raw[:0])
	_, err := buf.ReadFrom(io.LimitReader(r.Body, 64<<20))
	b.raw = buf.Bytes()
	if err == nil {
		var n int
		// A snappy copy element of at most 3 bytes stands for at most 64
		// bytes: a claimed length beyond 22 times the body is a lie.
		if n, err = snappy.DecodedLen(b.raw); err == nil && n <= 22*len(b.raw)+64 && n <= 256<<20 {
			if cap(b.dec) < n {
				b.dec = make([]byte, n)
			}
			b.dec, err = snappy.Decode(b.dec[:cap(b.dec)], b.raw)
		} else if err == nil {
			err = errors.New("decoded body too large")
		}
	}
	var samples int
	if err == nil {
		samples, err = countSamples(b.dec)
	}
	if err != nil {
		c.errors.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.samples.Add(int64(samples))
	c.requests.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// countSamples walks a remote-write 1.0 WriteRequest (prompb) and counts
// its samples (TimeSeries field 2) and native histograms (field 4),
// without decoding labels or values: inside a series, a field with a
// one-byte tag and a one-byte length is skipped inline.
func countSamples(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		field, wt, body, rest, err := nextField(b)
		if err != nil {
			return 0, err
		}
		b = rest
		if field != 1 || wt != 2 {
			continue
		}
		for i := 0; i < len(body); {
			tag := body[i]
			if tag&7 == 2 && tag < 0x80 && i+1 < len(body) && body[i+1] < 0x80 {
				end := i + 2 + int(body[i+1])
				if end > len(body) {
					return 0, errors.New("bad length")
				}
				if tag == 2<<3|2 || tag == 4<<3|2 {
					n++
				}
				i = end
				continue
			}
			f, t, _, r, err := nextField(body[i:])
			if err != nil {
				return 0, err
			}
			if t == 2 && (f == 2 || f == 4) {
				n++
			}
			i = len(body) - len(r)
		}
	}
	return n, nil
}

// nextField splits one protobuf field off b: its number, wire type, the
// payload of a length-delimited field, and the rest.
func nextField(b []byte) (field uint64, wt byte, body, rest []byte, err error) {
	tag, k := uvarint(b)
	if k <= 0 {
		return 0, 0, nil, nil, errors.New("bad tag")
	}
	b = b[k:]
	field, wt = tag>>3, byte(tag&7)
	switch wt {
	case 0:
		_, k = uvarint(b)
		if k <= 0 {
			return 0, 0, nil, nil, errors.New("bad varint")
		}
		return field, wt, nil, b[k:], nil
	case 1:
		if len(b) < 8 {
			return 0, 0, nil, nil, errors.New("short fixed64")
		}
		return field, wt, nil, b[8:], nil
	case 5:
		if len(b) < 4 {
			return 0, 0, nil, nil, errors.New("short fixed32")
		}
		return field, wt, nil, b[4:], nil
	case 2:
		l, k := uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return 0, 0, nil, nil, errors.New("bad length")
		}
		b = b[k:]
		return field, wt, b[:l], b[l:], nil
	}
	return 0, 0, nil, nil, fmt.Errorf("wire type %d", wt)
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// runSink serves the sink on a loopback port, prints the address on
// stdout, and returns when stdin reaches EOF (the parent went away).
func runSink() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &sink{counts: map[string]*counter{}}, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

// ---- processes ----

type process = proc.Process

// environ is os.Environ without PROMRELAY_* settings, plus env.
func environ(env ...string) []string {
	var out []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PROMRELAY_") && !strings.HasPrefix(e, "GOMEMLIMIT=") && !strings.HasPrefix(e, "GOGC=") {
			out = append(out, e)
		}
	}
	return append(out, env...)
}

func build(dir, out string, env []string, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = environ(env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// startSink runs this binary with -sink-mode; the sink exits when the
// returned process's stdin closes (stop kills it anyway).
func startSink() (*process, io.Closer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self, "-sink-mode")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("sink: %v", err)
	}
	return &process{Name: "sink", URL: "http://" + strings.TrimSpace(line), Cmd: cmd}, in, nil
}

// sinkCount is the samples the sink has received from relay so far.
func sinkCount(client *http.Client, sinkURL, relay string) (samples, errs int64, err error) {
	resp, err := client.Get(sinkURL + "/count/" + relay)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var reqs int64
	_, err = fmt.Fscan(resp.Body, &samples, &reqs, &errs)
	return samples, errs, err
}

// ---- load ----

// body is one request to send.
type body struct {
	data        []byte
	contentType string
	encoding    string // Content-Encoding, "" for none
}

// target is one relay's endpoint for one path.
type target struct {
	relay  *process
	method string
	path   string
}

// path is one workload: its bodies (rotated over the requests), the input
// samples of each, and the endpoint of each relay that takes it.
type workload struct {
	name    string
	bodies  []body
	samples int // input samples per body
	targets []target
}

// send issues requests copies of the bodies at concurrency, until done or
// deadline; it returns the requests answered 2xx and the first failure.
func send(client *http.Client, url, method string, bodies []body, requests, concurrency int, deadline time.Time) (int, error) {
	var next, ok atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(requests) || time.Now().After(deadline) {
					return
				}
				b := bodies[int(i)%len(bodies)]
				req, _ := http.NewRequest(method, url, bytes.NewReader(b.data))
				req.Header.Set("Content-Type", b.contentType)
				if b.encoding != "" {
					req.Header.Set("Content-Encoding", b.encoding)
					req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
				}
				resp, err := client.Do(req)
				if err == nil {
					msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(msg))
					}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(requests)) // stop the other senders
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(ok.Load()), first
}

// waitSink polls the sink (every 20 ms, until deadline) until relay's count
// reaches want; it returns the count last seen.
func waitSink(client *http.Client, sinkURL, relay string, want int64, deadline time.Time) (int64, error) {
	for {
		n, errs, err := sinkCount(client, sinkURL, relay)
		if err != nil {
			return n, err
		}
		if errs > 0 {
			return n, fmt.Errorf("the sink rejected %d bodies from %s", errs, relay)
		}
		if n >= want {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("%s: the sink has %d of %d samples at the deadline", relay, n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle polls the sink until relay's count has not changed for quiet
// (or until deadline) and returns it.
func settle(client *http.Client, sinkURL, relay string, quiet time.Duration, deadline time.Time) (int64, error) {
	last, _, err := sinkCount(client, sinkURL, relay)
	since := time.Now()
	for err == nil && time.Since(since) < quiet && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		var n int64
		if n, _, err = sinkCount(client, sinkURL, relay); n != last {
			last, since = n, time.Now()
		}
	}
	return last, err
}

// ---- bodies ----

func remoteWriteBodies(series int) []body {
	var out []body
	now := time.Now().UnixMilli()
	for seed := uint64(1); seed <= 4; seed++ {
		var wr wire.WriteRequest
		corpus.WriteRequest(&wr, seed, series)
		for i := range wr.Series {
			wr.Series[i].Samples[0].Timestamp = now
		}
		out = append(out, body{data: wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil)), contentType: contentRemoteWrite, encoding: "snappy"})
	}
	return out
}

// textSamples is the samples of a text exposition, as promrelay's parser
// counts them.
func textSamples(text []byte) (int, error) {
	var e wire.Exposition
	if err := e.ParseText(text, wire.Limits{}); err != nil {
		return 0, err
	}
	return e.NumSamples(), nil
}

// pushBodies are up to four node_exporter-like expositions of about target
// samples each, as text and as delimited protobuf. The generator's seeds
// vary the sample count, so only seeds giving the first one's count are
// kept (the first 200 seeds are tried).
func pushBodies(target int) (text, delimited []body, samples int, err error) {
	n0, err := textSamples(corpus.Exposition(1, corpus.Options{Families: 100}))
	if err != nil {
		return nil, nil, 0, err
	}
	families := max(1, target*100/n0)
	for seed := uint64(1); seed <= 200 && len(text) < 4; seed++ {
		t := corpus.Exposition(seed, corpus.Options{Families: families})
		n, err := textSamples(t)
		if err != nil {
			return nil, nil, 0, err
		}
		if samples != 0 && n != samples {
			continue
		}
		samples = n
		tp := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := tp.TextToMetricFamilies(bytes.NewReader(t))
		if err != nil {
			return nil, nil, 0, err
		}
		var d bytes.Buffer
		enc := expfmt.NewEncoder(&d, expfmt.NewFormat(expfmt.TypeProtoDelim))
		for _, name := range slices.Sorted(maps.Keys(fams)) {
			if err := enc.Encode(fams[name]); err != nil {
				return nil, nil, 0, err
			}
		}
		text = append(text, body{data: t, contentType: contentText})
		delimited = append(delimited, body{data: d.Bytes(), contentType: contentDelimited})
	}
	return text, delimited, samples, nil
}

// ---- the run ----

// measurement is one relay's round on one path.
type measurement struct {
	path, relay string
	round       int
	nsPerSample float64 // relay CPU per input sample
	sinkNs      float64 // sink CPU per input sample
	loadNs      float64 // load generator CPU per input sample
	wall        time.Duration
}

func run(o options) error {
	load0 := loadAvg()
	fmt.Fprintf(os.Stderr, "load average %s: CPU time is charged per process, but other load still shifts caches and scheduling\n", load0)
	dir, err := os.MkdirTemp("", "bench-process-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Interrupted: remove the binaries too; the children die with this
	// process (Pdeathsig).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			os.RemoveAll(dir)
			os.Exit(130)
		}
	}()
	if o.promrelay == "" {
		o.promrelay = filepath.Join(dir, "promrelay")
		fmt.Fprintln(os.Stderr, "building promrelay's server")
		if err := build(o.root, o.promrelay, nil, "./functions/server"); err != nil {
			return err
		}
	}
	if o.vmagent == "" {
		o.vmagent = filepath.Join(dir, "vmagent")
		fmt.Fprintln(os.Stderr, "building vmagent")
		if err := build(".", o.vmagent, []string{"CGO_ENABLED=0"}, "github.com/VictoriaMetrics/VictoriaMetrics/app/vmagent"); err != nil {
			return err
		}
	}

	sk, sinkIn, err := startSink()
	if err != nil {
		return err
	}
	defer sk.Stop()
	defer sinkIn.Close()

	addr, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	pr, err := proc.Start("promrelay", o.promrelay, "http://"+addr, "/-/ready", environ(
		"PROMRELAY_LISTEN="+addr,
		"PROMRELAY_UPSTREAM_URL="+sk.URL+"/w/promrelay",
		"PROMRELAY_EXTERNAL_LABELS="+externalLabels,
		"PROMRELAY_INBOUND_AUTH=none",
		"PROMRELAY_LOG_LEVEL=warn",
	))
	if err != nil {
		return err
	}
	defer pr.Stop()

	if addr, err = proc.FreeAddr(); err != nil {
		return err
	}
	vmArgs := []string{
		"-httpListenAddr=" + addr,
		"-remoteWrite.url=" + sk.URL + "/w/vmagent",
		"-remoteWrite.forcePromProto",
		"-remoteWrite.disableOnDiskQueue",
		"-remoteWrite.tmpDataPath=" + filepath.Join(dir, "vmagent-data"),
		"-loggerLevel=WARN",
	}
	for _, l := range strings.Split(externalLabels, ",") {
		vmArgs = append(vmArgs, "-remoteWrite.label="+l)
	}
	vm, err := proc.Start("vmagent", o.vmagent, "http://"+addr, "/health", environ(), vmArgs...)
	if err != nil {
		return err
	}
	defer vm.Stop()

	text, delimited, pushSamples, err := pushBodies(o.series)
	if err != nil {
		return err
	}
	const group = "/job/bench/instance/host1"
	paths := []workload{
		{name: "remote_write", bodies: remoteWriteBodies(o.series), samples: o.series, targets: []target{
			{pr, http.MethodPost, "/api/v1/write"}, {vm, http.MethodPost, "/api/v1/write"}}},
		{name: "push_text", bodies: text, samples: pushSamples, targets: []target{
			{pr, http.MethodPut, "/metrics" + group}, {vm, http.MethodPost, "/api/v1/import/prometheus/metrics" + group}}},
		{name: "push_delimited", bodies: delimited, samples: pushSamples, targets: []target{
			{pr, http.MethodPut, "/metrics" + group}}},
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: o.concurrency + 2, DisableCompression: true}}
	control := &http.Client{Timeout: 5 * time.Second}

	// Warm-up and calibration: what each relay delivers per request (promrelay
	// adds push_time_seconds to a push; vmagent forwards as it parsed).
	delivered := map[string]int64{} // path/relay -> samples at the sink per request
	warm := max(20, 2*o.concurrency)
	for _, p := range paths {
		for _, t := range p.targets {
			before, err := settle(control, sk.URL, t.relay.Name, 1500*time.Millisecond, time.Now().Add(o.timeout))
			if err != nil {
				return err
			}
			n, err := send(client, t.relay.URL+t.path, t.method, p.bodies, warm, o.concurrency, time.Now().Add(o.timeout))
			if err != nil {
				return fmt.Errorf("warm-up %s on %s: %w", p.name, t.relay.Name, err)
			}
			// At least every input sample arrives (vmagent forwards them
			// after its flush interval), then perhaps a few more.
			deadline := time.Now().Add(o.timeout)
			if _, err := waitSink(control, sk.URL, t.relay.Name, before+int64(n*p.samples), deadline); err != nil {
				return fmt.Errorf("warm-up %s on %s: %w%s", p.name, t.relay.Name, err, vmagentStats(control, t.relay))
			}
			after, err := settle(control, sk.URL, t.relay.Name, 1500*time.Millisecond, deadline)
			if err != nil {
				return err
			}
			got := after - before
			if got%int64(n) != 0 {
				return fmt.Errorf("warm-up %s on %s: the sink got %d samples for %d requests", p.name, t.relay.Name, got, n)
			}
			delivered[p.name+"/"+t.relay.Name] = got / int64(n)
			fmt.Fprintf(os.Stderr, "%s via %s: %d input samples per request, %d at the sink\n", p.name, t.relay.Name, p.samples, got/int64(n))
		}
	}

	idle, err := idleCPU([]*process{pr, vm, sk}, 3*time.Second)
	if err != nil {
		return err
	}

	var ms []measurement
	for r := 0; r < o.rounds; r++ {
		for _, p := range paths {
			order := slices.Clone(p.targets)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, t := range order {
				m, err := measure(client, control, sk, t, p, r, o, delivered[p.name+"/"+t.relay.Name])
				if err != nil {
					return err
				}
				ms = append(ms, m)
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, o.rounds)
	}
	fmt.Fprintln(os.Stderr, strings.TrimPrefix(vmagentStats(control, vm), "\n"))
	report(os.Stdout, o, paths, ms, map[string]int64{
		"promrelay": pr.Status("VmHWM"), "vmagent": vm.Status("VmHWM"), "sink": sk.Status("VmHWM"),
	}, idle, load0)
	if o.out != "" {
		if err := writeBenchstat(o.out, o, ms); err != nil {
			return err
		}
		fmt.Printf("\nrounds in benchstat format: %s\n", o.out)
	}
	return nil
}

// vmagentStats is vmagent's own counters of rows pushed, dropped and
// sent (its /metrics), for an error message; "" for promrelay.
func vmagentStats(client *http.Client, p *process) string {
	if p.Name != "vmagent" {
		return ""
	}
	resp, err := client.Get(p.URL + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "vmagent_remotewrite_") && !strings.Contains(line, "_bucket{") || strings.HasPrefix(line, "vmagent_rows_inserted") || strings.Contains(line, "dropped") || strings.Contains(line, "_errors_total") {
			if !strings.HasSuffix(line, " 0") {
				out.WriteString("\n  " + line)
			}
		}
	}
	return "\nvmagent's counters:" + out.String()
}

// idleCPU is each process's CPU per second while no load is sent.
func idleCPU(ps []*process, d time.Duration) (map[string]float64, error) {
	before := map[string]time.Duration{}
	for _, p := range ps {
		c, err := p.CPU()
		if err != nil {
			return nil, err
		}
		before[p.Name] = c
	}
	time.Sleep(d)
	out := map[string]float64{}
	for _, p := range ps {
		c, err := p.CPU()
		if err != nil {
			return nil, err
		}
		out[p.Name] = float64(c-before[p.Name]) / d.Seconds() // ns per s
	}
	return out, nil
}

// measure runs one round of path p against t.relay: send, wait until the
// sink has every delivered sample, then charge CPU.
func measure(client, control *http.Client, sk *process, t target, p workload, round int, o options, perRequest int64) (measurement, error) {
	deadline := time.Now().Add(o.timeout)
	base, _, err := sinkCount(control, sk.URL, t.relay.Name)
	if err != nil {
		return measurement{}, err
	}
	c0, err := t.relay.CPU()
	if err != nil {
		return measurement{}, err
	}
	s0, _ := sk.CPU()
	l0, _ := proc.CPUOf(os.Getpid())
	start := time.Now()
	n, err := send(client, t.relay.URL+t.path, t.method, p.bodies, o.requests, o.concurrency, deadline)
	if err != nil {
		return measurement{}, fmt.Errorf("round %d, %s on %s: %w", round, p.name, t.relay.Name, err)
	}
	if n < o.requests {
		return measurement{}, fmt.Errorf("round %d, %s on %s: only %d of %d requests within -timeout %v", round, p.name, t.relay.Name, n, o.requests, o.timeout)
	}
	if _, err := waitSink(control, sk.URL, t.relay.Name, base+int64(n)*perRequest, deadline); err != nil {
		return measurement{}, fmt.Errorf("round %d, %s: %w", round, p.name, err)
	}
	wall := time.Since(start)
	c1, err := t.relay.CPU()
	if err != nil {
		return measurement{}, err
	}
	s1, _ := sk.CPU()
	l1, _ := proc.CPUOf(os.Getpid())
	in := float64(n * p.samples)
	return measurement{path: p.name, relay: t.relay.Name, round: round, wall: wall,
		nsPerSample: float64(c1-c0) / in, sinkNs: float64(s1-s0) / in, loadNs: float64(l1-l0) / in}, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(w io.Writer, o options, paths []workload, ms []measurement, hwm map[string]int64, idle map[string]float64, load0 string) {
	col := func(path, relay string, f func(measurement) float64) []float64 {
		var xs []float64
		for _, m := range ms {
			if m.path == path && m.relay == relay {
				xs = append(xs, f(m))
			}
		}
		return xs
	}
	relayNs := func(m measurement) float64 { return m.nsPerSample }
	fmt.Fprintf(w, "%d rounds (ABBA), %d requests per relay, path and round, concurrency %d, %d CPUs; load average %s at the start, %s at the end\n",
		o.rounds, o.requests, o.concurrency, runtime.NumCPU(), load0, loadAvg())
	fmt.Fprintf(w, "CPU time has USER_HZ resolution (10 ms): %.1f ns/sample a round at %d samples a request\n\n",
		float64(time.Second/userHZ)/float64(o.requests*o.series), o.series)
	fmt.Fprintf(w, "| path | promrelay ns/sample | vmagent ns/sample | ratio |\n|---|---|---|---|\n")
	for _, p := range paths {
		a := median(col(p.name, "promrelay", relayNs))
		vs := col(p.name, "vmagent", relayNs)
		vmCell, ratio := "—", "—"
		if len(vs) > 0 {
			b := median(vs)
			vmCell = fmt.Sprintf("%.0f (%s)", b, spread(vs))
			if b > 0 {
				ratio = fmt.Sprintf("%.2f", a/b)
			}
		}
		fmt.Fprintf(w, "| %s | %.0f (%s) | %s | %s |\n", p.name, a, spread(col(p.name, "promrelay", relayNs)), vmCell, ratio)
	}
	fmt.Fprintf(w, "\n(medians over rounds, min–max in brackets; ratio: promrelay's median over vmagent's, below 1 promrelay spends less)\n\n")
	fmt.Fprintf(w, "CPU outside the relays, ns per input sample (medians), and wall time per round:\n\n")
	fmt.Fprintf(w, "| path | relay | input samples/request | sink ns/sample | load generator ns/sample | wall/round |\n|---|---|---|---|---|---|\n")
	for _, p := range paths {
		for _, t := range p.targets {
			walls := col(p.name, t.relay.Name, func(m measurement) float64 { return float64(m.wall) })
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f | %v |\n", p.name, t.relay.Name, p.samples,
				median(col(p.name, t.relay.Name, func(m measurement) float64 { return m.sinkNs })),
				median(col(p.name, t.relay.Name, func(m measurement) float64 { return m.loadNs })),
				time.Duration(median(walls)).Round(time.Millisecond))
		}
	}
	fmt.Fprintf(w, "\n| process | peak RSS (VmHWM) | idle CPU |\n|---|---|---|\n")
	for _, name := range []string{"promrelay", "vmagent", "sink"} {
		fmt.Fprintf(w, "| %s | %.1f MiB | %.1f ms/s |\n", name, float64(hwm[name])/(1<<20), idle[name]/1e6)
	}
}

func spread(xs []float64) string {
	if len(xs) == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f–%.0f", slices.Min(xs), slices.Max(xs))
}

// writeBenchstat writes one line per measurement in Go's benchmark format
// (golang.org/x/perf/benchfmt), so that
// benchstat -col /impl -row /path file compares the relays.
func writeBenchstat(name string, o options, ms []measurement) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "goos: %s\ngoarch: %s\npkg: github.com/promrelay/promrelay/bench/process\n", runtime.GOOS, runtime.GOARCH)
	if cpu := cpuModel(); cpu != "" {
		fmt.Fprintf(&b, "cpu: %s\n", cpu)
	}
	fmt.Fprintf(&b, "series: %d\nconcurrency: %d\n", o.series, o.concurrency)
	sorted := slices.Clone(ms)
	slices.SortStableFunc(sorted, func(x, y measurement) int {
		return cmp.Or(cmp.Compare(x.path, y.path), cmp.Compare(x.relay, y.relay))
	})
	for _, m := range sorted {
		fmt.Fprintf(&b, "BenchmarkProcess/path=%s/impl=%s \t%d\t%.1f ns/sample\t%.1f sink-ns/sample\n",
			m.path, m.relay, o.requests, m.nsPerSample, m.sinkNs)
	}
	return os.WriteFile(name, b.Bytes(), 0o644)
}

// loadAvg is the 1, 5 and 15 minute load averages of /proc/loadavg.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
