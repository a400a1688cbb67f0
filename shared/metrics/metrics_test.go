package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/promrelay/promrelay/shared/wire"
)

// exercised returns metrics with every metric family moved at least once,
// so that every name is in a Gather.
func exercised(t testing.TB) *Metrics {
	t.Helper()
	m := New(func() int64 { return 1 << 20 }, func() int64 { return 64 << 20 })
	m.Requests.WithLabelValues("remote_write", Code(200)).Inc()
	m.Requests.WithLabelValues("push", Code(400)).Add(2)
	m.RequestDuration.WithLabelValues("remote_write").Observe(0.012)
	m.RequestDuration.WithLabelValues("push").Observe(1)
	m.Received.WithLabelValues(KindSample).Add(1000)
	m.Relayed.WithLabelValues(KindSample).Add(990)
	m.Rejected.WithLabelValues(KindSample, ReasonLimit).Add(10)
	m.ProfileChanges.WithLabelValues(ChangeHelpRewritten).Inc()
	m.UpstreamRequests.WithLabelValues(StatusClass(204)).Inc()
	m.UpstreamRetries.Inc()
	m.UpstreamSplits.Inc()
	m.UpstreamDuration.WithLabelValues(StatusClass(204)).Observe(0.2)
	m.UpstreamFallbacks.Inc()
	m.CredentialFetches.WithLabelValues("sigv4", ResultOK).Inc()
	m.InboundAuthFailures.WithLabelValues("bearer", "invalid").Inc()
	m.BudgetRefused.Inc()
	m.StoreOperations.WithLabelValues("update", ResultOK).Inc()
	m.StoreConflicts.Inc()
	m.StoreDuration.WithLabelValues("update").Observe(0.004)
	m.ReemitRuns.Inc()
	m.ReemitGroups.Add(3)
	m.ReemitSamples.Add(30)
	m.TTLDeletions.Inc()
	m.QueryRequests.WithLabelValues("query", Code(200)).Inc()
	m.QueryDuration.WithLabelValues("query").Observe(0.05)
	return m
}

// wantNames are the families of the relay (promrelay_), as the README
// lists them.
var wantNames = []string{
	"promrelay_credential_fetches_total",
	"promrelay_inbound_auth_failures_total",
	"promrelay_memory_budget_bytes",
	"promrelay_memory_budget_in_use_bytes",
	"promrelay_memory_budget_refused_total",
	"promrelay_profile_changes_total",
	"promrelay_query_request_duration_seconds",
	"promrelay_query_requests_total",
	"promrelay_received_total",
	"promrelay_reemit_runs_total",
	"promrelay_reemitted_groups_total",
	"promrelay_reemitted_samples_total",
	"promrelay_rejected_requests_total",
	"promrelay_rejected_total",
	"promrelay_relayed_total",
	"promrelay_request_duration_seconds",
	"promrelay_requests_total",
	"promrelay_self_writes_total",
	"promrelay_store_conflicts_total",
	"promrelay_store_operation_duration_seconds",
	"promrelay_store_operations_total",
	"promrelay_ttl_deleted_groups_total",
	"promrelay_upstream_fallbacks_total",
	"promrelay_upstream_request_duration_seconds",
	"promrelay_upstream_requests_total",
	"promrelay_upstream_retries_total",
	"promrelay_upstream_splits_total",
}

func gatherNames(t testing.TB, m *Metrics) map[string]dto.MetricType {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]dto.MetricType{}
	for _, f := range fams {
		names[f.GetName()] = f.GetType()
	}
	return names
}

func TestFamilies(t *testing.T) {
	names := gatherNames(t, exercised(t))
	var got []string
	for n := range names {
		if strings.HasPrefix(n, Namespace+"_") {
			got = append(got, n)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, wantNames) {
		t.Errorf("families:\n got %q\nwant %q", got, wantNames)
	}
	for _, n := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no %s: the Go and process collectors are missing", n)
		}
	}
	for n, typ := range names {
		if typ == dto.MetricType_COUNTER && !strings.HasSuffix(n, "_total") {
			t.Errorf("counter %s does not end in _total", n)
		}
	}
	// Without the budget funcs, no budget gauges.
	bare := gatherNames(t, New(nil, nil))
	for _, n := range []string{"promrelay_memory_budget_bytes", "promrelay_memory_budget_in_use_bytes"} {
		if _, ok := bare[n]; ok {
			t.Errorf("New(nil, nil) exports %s", n)
		}
	}
}

func TestPreinitialised(t *testing.T) {
	m := New(nil, nil)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, f := range fams {
		count[f.GetName()] = len(f.GetMetric())
	}
	for name, want := range map[string]int{
		"promrelay_received_total":              3,
		"promrelay_relayed_total":               3,
		"promrelay_rejected_total":              3 * 7, // auth: no values decoded
		"promrelay_rejected_requests_total":     5 * 8,
		"promrelay_inbound_auth_failures_total": 5 * 4,
		"promrelay_profile_changes_total":       3,
		"promrelay_upstream_requests_total":     5,
		"promrelay_self_writes_total":           2,
	} {
		if count[name] != want {
			t.Errorf("%s: %d series at start, want %d", name, count[name], want)
		}
	}
}

func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{0: "error", 199: "error", 200: "2xx", 204: "2xx", 302: "3xx", 413: "4xx", 599: "5xx", 600: "error", -1: "error"} {
		if got := StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

func scrape(t testing.TB, m *Metrics, accept string) ([]byte, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return body, resp.Header.Get("Content-Type")
}

// TestPromtool runs promtool check metrics (the linter of the naming
// conventions) over the relay's own families as Handler serves them.
func TestPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("promtool: skipped under -short")
	}
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	body, _ := scrape(t, exercised(t), "text/plain;version=0.0.4")
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestHandlerErrorsLogged checks a collector's error reaches the log and
// the other metrics are still served.
func TestHandlerErrorsLogged(t *testing.T) {
	m := New(nil, nil)
	var logged bytes.Buffer
	m.Logger = newTextLogger(&logged)
	m.Registry().MustRegister(failing{})
	body, _ := scrape(t, m, "")
	if !bytes.Contains(body, []byte("promrelay_requests_total")) && !bytes.Contains(body, []byte("promrelay_received_total")) {
		t.Errorf("the other metrics were not served:\n%.500s", body)
	}
	if bytes.Contains(body, []byte("collector failed")) {
		t.Error("the error was served")
	}
	if !strings.Contains(logged.String(), "collector failed") {
		t.Errorf("the error was not logged: %q", logged.String())
	}
}

// scraped is what a Prometheus scrape stores of a text exposition: the
// series parsed by Prometheus' own parser (model/textparse, as the scrape
// loop parses), with the target's job and instance labels added.
type scraped struct {
	values map[string]float64
	help   map[string]string
	types  map[string]string
}

func parseScrape(t testing.TB, body []byte, contentType, instance string) scraped {
	t.Helper()
	p, err := textparse.New(body, contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := scraped{values: map[string]float64{}, help: map[string]string{}, types: map[string]string{}}
	var lset labels.Labels
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e {
		case textparse.EntrySeries:
			_, _, v := p.Series()
			p.Labels(&lset)
			b := labels.NewBuilder(lset)
			b.Set("job", Job)
			b.Set("instance", instance)
			s.values[b.Labels().String()] = v
		case textparse.EntryHelp:
			n, h := p.Help()
			s.help[string(n)] = string(h)
		case textparse.EntryType:
			n, typ := p.Type()
			s.types[string(n)] = string(typ)
		case textparse.EntryHistogram:
			t.Fatal("native histogram in a text scrape")
		}
	}
	return s
}

func seriesKey(ls []wire.Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels().String()
}

// volatile reports whether a series' value may change between two
// gathers of an idle process (the Go runtime and the process).
func volatile(key string) bool {
	return !strings.HasPrefix(key, "{__name__=\""+Namespace+"_")
}

// TestAppendSelfEqualsScrape is the differential test: AppendSelf's
// series and metadata equal what Prometheus' parser stores of a scrape of
// Handler(), with job and instance set as the scrape sets them.
func TestAppendSelfEqualsScrape(t *testing.T) {
	m := exercised(t)
	// A summary and le/quantile values that normalise.
	body, ct := scrape(t, m, "text/plain;version=0.0.4")
	want := parseScrape(t, body, ct, "fn-1")

	var wr wire.WriteRequest
	now := time.UnixMilli(1_700_000_000_123)
	if err := m.AppendSelf(&wr, "fn-1", now); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for i := range wr.Series {
		s := &wr.Series[i]
		if !slices.IsSortedFunc(s.Labels, func(a, b wire.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("labels not sorted: %v", s.Labels)
		}
		if err := wire.ValidateSeries(s, wire.Limits{MaxSamples: 1}); err != nil {
			t.Errorf("invalid series: %v", err)
		}
		if len(s.Samples) != 1 || s.Samples[0].Timestamp != now.UnixMilli() {
			t.Errorf("%v: samples %v, want one at %d", s.Labels, s.Samples, now.UnixMilli())
		}
		k := seriesKey(s.Labels)
		if _, dup := got[k]; dup {
			t.Errorf("duplicate series %s", k)
		}
		got[k] = s.Samples[0].Value
	}
	for k, v := range want.values {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("scraped series %s missing from AppendSelf", k)
		case !volatile(k) && g != v && !(math.IsNaN(g) && math.IsNaN(v)):
			t.Errorf("%s = %v, scraped %v", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want.values[k]; !ok {
			t.Errorf("AppendSelf series %s not in the scrape", k)
		}
	}
	if len(got) < 150 {
		t.Errorf("only %d series", len(got))
	}
	// Metadata: one per family, with the scrape's type and help.
	if len(wr.Metadata) != len(want.types) {
		t.Errorf("%d metadata, scrape has %d families", len(wr.Metadata), len(want.types))
	}
	typeNames := map[wire.MetadataType]string{wire.MetadataCounter: "counter", wire.MetadataGauge: "gauge",
		wire.MetadataHistogram: "histogram", wire.MetadataSummary: "summary", wire.MetadataUnknown: "unknown"}
	for _, md := range wr.Metadata {
		if typeNames[md.Type] != want.types[md.FamilyName] {
			t.Errorf("%s: type %v, scrape %q", md.FamilyName, md.Type, want.types[md.FamilyName])
		}
		if md.Help != want.help[md.FamilyName] {
			t.Errorf("%s: help %q, scrape %q", md.FamilyName, md.Help, want.help[md.FamilyName])
		}
	}
	// The encoded request decodes as remote write 1.0.
	raw := wire.AppendWriteRequest(nil, wr.Series, wr.Metadata)
	var back wire.WriteRequest
	if err := back.Unmarshal(raw, wire.Limits{MaxSamples: 100000}); err != nil {
		t.Fatal(err)
	}
	if len(back.Series) != len(wr.Series) || len(back.Metadata) != len(wr.Metadata) {
		t.Errorf("round trip: %d series, %d metadata", len(back.Series), len(back.Metadata))
	}
	t.Logf("%d series, %d families, %d bytes uncompressed, %d snappy", len(wr.Series), len(wr.Metadata), len(raw), len(wire.EncodeSnappy(nil, raw)))
}

// TestAppendSelfFamiliesEqualExpfmt compares the metadata with the
// families expfmt decodes from the protobuf exposition.
func TestAppendSelfFamiliesEqualExpfmt(t *testing.T) {
	m := exercised(t)
	body, ct := scrape(t, m, string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(http.Header{"Content-Type": {ct}}))
	fams := map[string]*dto.MetricFamily{}
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		fams[f.GetName()] = &f
	}
	var wr wire.WriteRequest
	if err := m.AppendSelf(&wr, "i", time.Now()); err != nil {
		t.Fatal(err)
	}
	perFamily := map[string]int{}
	for i := range wr.Series {
		for _, l := range wr.Series[i].Labels {
			if l.Name == "__name__" {
				perFamily[familyOf(l.Value, fams)]++
			}
		}
	}
	for _, md := range wr.Metadata {
		f, ok := fams[md.FamilyName]
		if !ok {
			t.Errorf("family %s not served", md.FamilyName)
			continue
		}
		want := 0
		for _, mt := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				want += 2 + len(mt.GetHistogram().GetBucket())
				if bs := mt.GetHistogram().GetBucket(); len(bs) == 0 || !math.IsInf(bs[len(bs)-1].GetUpperBound(), 1) {
					want++
				}
			case dto.MetricType_SUMMARY:
				want += 2 + len(mt.GetSummary().GetQuantile())
			default:
				want++
			}
		}
		if perFamily[md.FamilyName] != want {
			t.Errorf("%s: %d series, expfmt's family has %d", md.FamilyName, perFamily[md.FamilyName], want)
		}
	}
	if len(wr.Metadata) != len(fams) {
		t.Errorf("%d families written, %d served", len(wr.Metadata), len(fams))
	}
}

func familyOf(name string, fams map[string]*dto.MetricFamily) string {
	if _, ok := fams[name]; ok {
		return name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok {
			if _, ok := fams[b]; ok {
				return b
			}
		}
	}
	return name
}

func TestAppendSelfOverridesAndDropsEmpty(t *testing.T) {
	m := New(nil, nil)
	m.Requests.WithLabelValues("", "200").Inc() // empty route: dropped, as Prometheus drops empty labels
	m.Registry().MustRegister(constCollector{})
	var wr wire.WriteRequest
	if err := m.AppendSelf(&wr, "fn-9", time.UnixMilli(5)); err != nil {
		t.Fatal(err)
	}
	var seen, ts int
	for i := range wr.Series {
		s := &wr.Series[i]
		k := seriesKey(s.Labels)
		switch {
		case strings.Contains(k, `__name__="promrelay_requests_total"`):
			if k != `{__name__="promrelay_requests_total", code="200", instance="fn-9", job="promrelay"}` {
				t.Errorf("got %s", k)
			}
			seen++
		case strings.Contains(k, `__name__="test_const"`):
			if k != `{__name__="test_const", instance="fn-9", job="promrelay", zone="a"}` {
				t.Errorf("job/instance not overridden: %s", k)
			}
			if s.Samples[0].Timestamp != 42 {
				t.Errorf("metric timestamp not honoured: %d", s.Samples[0].Timestamp)
			}
			ts++
		}
	}
	if seen != 1 || ts != 1 {
		t.Errorf("seen %d requests series, %d const", seen, ts)
	}
}

func TestOpenMetricsFloat(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.001, 0.25, 2.5, 10, 60, 1e6, 1e21, 1.5e-7, math.Inf(1), math.Inf(-1), math.NaN(), 123456789} {
		if got, want := string(wire.AppendOpenMetricsFloat(nil, f)), labels.FormatOpenMetricsFloat(f); got != want {
			t.Errorf("%v: %q, Prometheus %q", f, got, want)
		}
	}
}

func TestInstanceName(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	lambda := "2026/12/03/[$LATEST]2f399eb14537447da05ab2a2e39309de"
	if got := InstanceName(env(map[string]string{"AWS_LAMBDA_LOG_STREAM_NAME": lambda, "FC_INSTANCE_ID": "x"})); got != lambda {
		t.Errorf("Lambda: %q", got)
	}
	if got := InstanceName(env(map[string]string{"FC_INSTANCE_ID": "c-6734a8e1-1b2c"})); got != "c-6734a8e1-1b2c" {
		t.Errorf("FC: %q", got)
	}
	got := InstanceName(env(nil))
	if i := strings.LastIndexByte(got, ':'); i <= 0 || i == len(got)-1 {
		t.Errorf("server: %q, want hostname:pid", got)
	}
}

// TestSelfWriterInterval checks writes happen at most once per Interval
// (less a tenth, for a timer of that period that fires early), and a
// failure is counted and due again 10 s later, not at once.
func TestSelfWriterInterval(t *testing.T) {
	m := New(nil, nil)
	now := time.Unix(1000, 0)
	var calls int
	var fail bool
	var logged bytes.Buffer
	s := &SelfWriter{Metrics: m, Instance: "a", Interval: time.Minute, Now: func() time.Time { return now }, Logger: newTextLogger(&logged),
		Write: func(ctx context.Context, wr *wire.WriteRequest) error {
			calls++
			if len(wr.Series) == 0 {
				t.Error("empty write")
			}
			if !IsSelfWrite(ctx) {
				t.Error("the write's context is not marked as a self-write")
			}
			if fail {
				return errors.New("upstream said no")
			}
			return nil
		}}
	step := func(d time.Duration, want bool) {
		t.Helper()
		now = now.Add(d)
		if got := s.MaybeWrite(context.Background()); got != want {
			t.Errorf("at +%v: wrote %v, want %v", d, got, want)
		}
	}
	step(0, true) // the first call writes
	step(time.Second, false)
	step(52*time.Second, false) // 53 s after the first
	step(time.Second, true)     // 54 s: a timer tick 6 s early still writes
	fail = true
	step(time.Minute, true)
	step(9*time.Second, false) // a failure is not retried at once
	step(time.Second, true)    // but 10 s later
	fail = false
	step(time.Second, false)
	if calls != 4 {
		t.Errorf("%d writes, want 4", calls)
	}
	if ok, bad := counterValue(t, m, "promrelay_self_writes_total", "ok"), counterValue(t, m, "promrelay_self_writes_total", "error"); ok != 2 || bad != 2 {
		t.Errorf("self_writes_total ok=%v error=%v, want 2 and 2", ok, bad)
	}
	if !strings.Contains(logged.String(), "upstream said no") {
		t.Errorf("failure not logged: %q", logged.String())
	}
	off := &SelfWriter{Metrics: m, Interval: 0, Write: func(context.Context, *wire.WriteRequest) error { t.Error("disabled writer wrote"); return nil }}
	if off.MaybeWrite(context.Background()) {
		t.Error("Interval 0 wrote")
	}
}

// TestSelfWriterSingleFlight checks that calls during a write return at
// once without writing.
func TestSelfWriterSingleFlight(t *testing.T) {
	m := New(nil, nil)
	release := make(chan struct{})
	started := make(chan struct{})
	var calls atomic.Int32
	s := &SelfWriter{Metrics: m, Instance: "a", Interval: time.Nanosecond,
		Write: func(ctx context.Context, wr *wire.WriteRequest) error {
			if calls.Add(1) == 1 {
				close(started)
				<-release
			}
			return nil
		}}
	done := make(chan bool)
	go func() { done <- s.MaybeWrite(context.Background()) }()
	<-started
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if s.MaybeWrite(context.Background()) {
				t.Error("a second write ran during the first")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("a call waited %v for the write in progress", d)
			}
		}()
	}
	wg.Wait()
	close(release)
	if !<-done {
		t.Error("the first call did not write")
	}
	if calls.Load() != 1 {
		t.Errorf("%d writes", calls.Load())
	}
	time.Sleep(time.Millisecond)
	if !s.MaybeWrite(context.Background()) {
		t.Error("no write after the first finished")
	}
}

// TestTwoInstances checks two instances' self-writes are two sets of
// series, not one: every series of one differs from every series of the
// other only by instance.
func TestTwoInstances(t *testing.T) {
	store := map[string][]float64{}
	write := func(ctx context.Context, wr *wire.WriteRequest) error {
		for i := range wr.Series {
			k := seriesKey(wr.Series[i].Labels)
			store[k] = append(store[k], wr.Series[i].Samples[0].Value)
		}
		return nil
	}
	a, b := New(nil, nil), New(nil, nil)
	a.Requests.WithLabelValues("push", "200").Add(3)
	b.Requests.WithLabelValues("push", "200").Add(5)
	now := time.Unix(2000, 0)
	sa := &SelfWriter{Metrics: a, Instance: "fn-a", Interval: time.Minute, Write: write, Now: func() time.Time { return now }}
	sb := &SelfWriter{Metrics: b, Instance: "fn-b", Interval: time.Minute, Write: write, Now: func() time.Time { return now }}
	sa.MaybeWrite(context.Background())
	na := len(store)
	sb.MaybeWrite(context.Background())
	if len(store) != 2*na {
		t.Fatalf("%d series after both, %d after one: a collision", len(store), na)
	}
	for k, vs := range store {
		if len(vs) != 1 {
			t.Errorf("%s written %d times", k, len(vs))
		}
	}
	for inst, want := range map[string]float64{"fn-a": 3, "fn-b": 5} {
		k := `{__name__="promrelay_requests_total", code="200", instance="` + inst + `", job="promrelay", route="push"}`
		if vs := store[k]; len(vs) != 1 || vs[0] != want {
			t.Errorf("%s: %v, want [%v]", k, vs, want)
		}
	}
}

func counterValue(t testing.TB, m *Metrics, name, label string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetValue() == label {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return math.NaN()
}

// BenchmarkHotPath measures what one request does to the metrics: its
// request counter, its duration histogram and the relayed samples.
func BenchmarkHotPath(b *testing.B) {
	m := New(nil, nil)
	b.Run("WithLabelValues", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Requests.WithLabelValues("remote_write", "200").Inc()
				m.RequestDuration.WithLabelValues("remote_write").Observe(0.0123)
				m.Relayed.WithLabelValues(KindSample).Add(500)
			}
		})
	})
	b.Run("Curried", func(b *testing.B) {
		// Children looked up once, as a caller that caches them does.
		req := m.Requests.WithLabelValues("remote_write", "200")
		dur := m.RequestDuration.WithLabelValues("remote_write")
		rel := m.Relayed.WithLabelValues(KindSample)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req.Inc()
				dur.Observe(0.0123)
				rel.Add(500)
			}
		})
	})
}

// BenchmarkAppendSelf measures one self-write's encoding (Gather and
// conversion), without the upstream request.
func BenchmarkAppendSelf(b *testing.B) {
	m := exercised(b)
	var wr wire.WriteRequest
	b.ReportAllocs()
	for b.Loop() {
		if err := m.AppendSelf(&wr, "fn-1", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(wr.Series)), "series")
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// failing is a collector whose Collect fails.
type failing struct{}

var failingDesc = prometheus.NewDesc("test_failing", "A collector that fails.", nil, nil)

func (failing) Describe(ch chan<- *prometheus.Desc) { ch <- failingDesc }
func (failing) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(failingDesc, errors.New("collector failed"))
}

// constCollector exports a gauge with its own job, instance and
// timestamp, as a collector of federated data would.
type constCollector struct{}

var constDesc = prometheus.NewDesc("test_const", "A gauge with job and instance labels.", []string{"instance", "job", "zone"}, nil)

func (constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- constDesc }
func (constCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewMetricWithTimestamp(time.UnixMilli(42), prometheus.MustNewConstMetric(constDesc, prometheus.GaugeValue, 1, "other", "other-job", "a"))
}

// TestSelfWriterWritesWhatWasGathered: a failing collector is logged, and
// the other metrics are written all the same, as GET /metrics serves them
// (promhttp.ContinueOnError).
func TestSelfWriterWritesWhatWasGathered(t *testing.T) {
	m := New(nil, nil)
	m.Registry().MustRegister(failing{})
	var logged bytes.Buffer
	var series int
	s := &SelfWriter{Metrics: m, Instance: "a", Interval: time.Minute, Logger: newTextLogger(&logged),
		Write: func(ctx context.Context, wr *wire.WriteRequest) error { series = len(wr.Series); return nil }}
	if !s.MaybeWrite(context.Background()) || series == 0 {
		t.Fatalf("wrote %d series", series)
	}
	if !strings.Contains(logged.String(), "collector failed") {
		t.Errorf("the collector's failure is not logged: %q", logged.String())
	}
	if ok := testutil.ToFloat64(m.SelfWrites.WithLabelValues(ResultOK)); ok != 1 {
		t.Errorf("self_writes_total{result=ok} = %v, want 1", ok)
	}
}
