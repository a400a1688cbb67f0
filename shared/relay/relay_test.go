package relay_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/requestid"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// recordingUpstream stands in for the upstream client: routing, limits and
// error answers do not depend on the network.
type recordingUpstream struct {
	series []string
	err    error
}

func (u *recordingUpstream) Write(_ context.Context, wr *wire.WriteRequest) (upstream.Result, error) {
	if u.err != nil {
		return upstream.Result{}, u.err
	}
	for _, s := range wr.Series {
		u.series = append(u.series, wire.FormatLabels(s.Labels, 500))
	}
	return upstream.Result{Requests: 1, UpstreamStatus: 204}, nil
}

func (u *recordingUpstream) WriteEncoded(ctx context.Context, raw []byte) (upstream.Result, error) {
	var wr wire.WriteRequest
	if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
		return upstream.Result{}, err
	}
	return u.Write(ctx, &wr)
}

// newHandler is the relay under test, stateless, with small limits; mod
// changes its options.
func newHandler(up relay.Upstream, mod func(*relay.Options)) http.Handler {
	h, _ := newHandlerLog(up, mod)
	return h
}

// newHandlerLog also returns the handler's log.
func newHandlerLog(up relay.Upstream, mod func(*relay.Options)) (http.Handler, *bytes.Buffer) {
	var log bytes.Buffer
	logger := slog.New(requestid.NewLogHandler(slog.NewJSONHandler(&log, nil)))
	now := func() time.Time { return time.Unix(100, 0) }
	ups := func(string) relay.Upstream { return up }
	state, err := pushstate.New(pushstate.Options{Write: relay.Writer(ups), Now: now, Logger: logger})
	if err != nil {
		panic(err)
	}
	o := relay.Options{Upstreams: ups, State: state, Logger: logger, MaxBodyBytes: 1024, MaxDecodedBytes: 4096,
		MaxPushDecodedBytes: 4096, Limits: wire.Limits{MaxSamples: 1000}, RequestTimeout: 5 * time.Second,
		Budget: relay.NewBudget(64<<20, 10*time.Millisecond), Now: now}
	if mod != nil {
		mod(&o)
	}
	h, err := relay.New(o)
	if err != nil {
		panic(err)
	}
	return h, &log
}

func serve(h http.Handler, method, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoutesAndLimits(t *testing.T) {
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) { o.PathPrefix = "/prod" })
	cases := []struct {
		name, method, path string
		body               []byte
		hdr                []string
		wantStatus         int
		wantBody           string
	}{
		{"push", "POST", "/prod/metrics/job/a", []byte("m 1\n"), nil, 200, ""},
		{"delete", "DELETE", "/prod/metrics/job/a", nil, nil, 202, ""},
		{"healthy", "GET", "/prod/-/healthy", nil, nil, 200, "Healthy"},
		{"ready", "GET", "/prod/-/ready", nil, nil, 200, "Ready"},
		{"without prefix", "POST", "/metrics/job/a", []byte("m 1\n"), nil, 404, ""},
		{"prefix lookalike", "POST", "/production/metrics/job/a", []byte("m 1\n"), nil, 404, ""},
		{"unknown route", "GET", "/prod/nope", nil, nil, 404, "404 page not found"},
		{"remote write GET", "GET", "/prod/api/v1/write", nil, nil, 405, "Method Not Allowed"},
		{"body too large", "POST", "/prod/metrics/job/a", bytes.Repeat([]byte("m 1\n"), 300), nil, 413, "exceeds the limit of 1024"},
		{"unknown content encoding", "POST", "/prod/metrics/job/a", []byte("m 1\n"), []string{"Content-Encoding", "br"}, 415, "Content-Encoding"},
		{"rw zstd", "POST", "/prod/api/v1/write", []byte("x"), []string{"Content-Encoding", "zstd"}, 415, "snappy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(h, tc.method, tc.path, tc.body, tc.hdr...)
			if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Fatalf("got %d %q, want %d with %q", rec.Code, rec.Body.String(), tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestDecodedSizeLimit(t *testing.T) {
	h := newHandler(&recordingUpstream{}, nil)
	// 1 KiB of gzip that inflates past the 4 KiB decoded limit.
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write(bytes.Repeat([]byte("m 1\n"), 5000))
	zw.Close()
	rec := serve(h, "POST", "/metrics/job/a", zbuf.Bytes(), "Content-Encoding", "gzip")
	if rec.Code != 413 {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
	big := wire.EncodeSnappy(nil, bytes.Repeat([]byte{0}, 5000))
	rec = serve(h, "POST", "/api/v1/write", big, "Content-Encoding", "snappy")
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "decompressed body of 5000 bytes") {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
}

func TestUpstreamErrorsPassThrough(t *testing.T) {
	for _, e := range []*upstream.Error{
		{Status: 400, Msg: "upstream rejected the data with 400: out of order"},
		{Status: 429, RetryAfter: 1500 * time.Millisecond, Msg: "rate limited"},
		{Status: 502, Msg: "upstream failed with 503"},
	} {
		h := newHandler(&recordingUpstream{err: e}, nil)
		rec := serve(h, "PUT", "/metrics/job/a", []byte("m 1\n"))
		if rec.Code != e.Status || !strings.Contains(rec.Body.String(), e.Msg) {
			t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), e.Status, e.Msg)
		}
		if e.Status == 429 && rec.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q, want 2 (rounded up)", rec.Header().Get("Retry-After"))
		}
	}
}

func TestExternalLabelsOnPushAndRemoteWrite(t *testing.T) {
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) {
		o.ExternalLabels = []wire.Label{{Name: "job", Value: "forced"}, {Name: "region", Value: "eu"}}
	})
	serve(h, "POST", "/metrics/job/a", []byte("m{region=\"us\"} 1\n"))
	var wr wire.WriteRequest
	wr.AppendSample(wr.AppendLabels(wire.Label{Name: "__name__", Value: "rw"}, wire.Label{Name: "job", Value: "x"}), wire.Sample{Value: 1, Timestamp: 1})
	rec := serve(h, "POST", "/api/v1/write", wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil)), "Content-Type", "application/x-protobuf", "Content-Encoding", "snappy")
	if rec.Code != 204 {
		t.Fatalf("remote write: %d %s", rec.Code, rec.Body.String())
	}
	want := []string{`m{job="forced",region="eu"}`, `push_time_seconds{job="forced",region="eu"}`, `rw{job="forced",region="eu"}`}
	if strings.Join(up.series, " ") != strings.Join(want, " ") {
		t.Fatalf("upstream got %v, want %v", up.series, want)
	}
}

// TestPushgatewayURLEdges: the statuses the real Pushgateway 1.5.1 answers
// for odd push URLs (e2e's TestPushgatewayReference compares them with the
// binary).
func TestPushgatewayURLEdges(t *testing.T) {
	h := newHandler(&recordingUpstream{}, func(o *relay.Options) { o.PathPrefix = "/prod" })
	cases := []struct {
		method, path   string
		status         int
		header, expect string
	}{
		{"PUT", "/prod/metrics/job/", 307, "Location", "/prod/metrics/job"},
		{"PUT", "/prod/metrics/job", 404, "", ""},
		{"PUT", "/prod/metrics/", 404, "", ""},
		{"PUT", "/prod/metrics/foo/x", 404, "", ""},
		{"PUT", "/prod/metrics/job@base64/", 404, "", ""},
		{"PUT", "/prod/metrics/job/j//x", 301, "Location", "/prod/metrics/job/j/x"},
		{"GET", "/prod/metrics/job/j", 405, "Allow", "DELETE, POST, PUT"},
		{"GET", "/prod/metrics/job/", 404, "", ""},
		{"GET", "/prod/metrics/job@base64/", 404, "", ""},
		{"POST", "/prod/-/healthy", 405, "Allow", "GET, HEAD"},
		{"HEAD", "/prod/-/ready", 200, "", ""},
		{"PUT", "/prod/metrics/job/j/a/b", 200, "", ""},
		{"PUT", "/prod/metrics/job/j/a/b%2Fc", 200, "", ""},
		{"PUT", "/prod/metrics/job/j%00x", 400, "", ""},
	}
	for _, c := range cases {
		rec := serve(h, c.method, c.path, []byte("m 1\n"))
		if rec.Code != c.status {
			t.Errorf("%s %s: %d %q, want %d", c.method, c.path, rec.Code, rec.Body.String(), c.status)
			continue
		}
		if c.header != "" {
			if got := strings.Join(rec.Header().Values(c.header), ", "); got != c.expect {
				t.Errorf("%s %s: %s %q, want %q", c.method, c.path, c.header, got, c.expect)
			}
		}
	}
}

// TestOneLogLinePerRequest: every request, routed or not, logs one line
// with its route, status and request id; misses name their path.
func TestOneLogLinePerRequest(t *testing.T) {
	h, log := newHandlerLog(&recordingUpstream{}, func(o *relay.Options) { o.PathPrefix = "/prod" })
	for _, p := range []string{"/prod/metrics/job/a", "/elsewhere/metrics/job/a", "/prod/nope"} {
		req := httptest.NewRequest("PUT", p, strings.NewReader("m 1\n"))
		req = req.WithContext(requestid.With(req.Context(), "rid-"+p))
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	var reqLines []string
	for _, l := range lines {
		if strings.Contains(l, `"msg":"request"`) {
			reqLines = append(reqLines, l)
		}
	}
	if len(reqLines) != 3 {
		t.Fatalf("%d request lines:\n%s", len(reqLines), log.String())
	}
	for i, want := range []string{`"route":"push","status":200`, `"route":"outside_prefix","status":404`, `"route":"unknown","status":404`} {
		if !strings.Contains(reqLines[i], want) || !strings.Contains(reqLines[i], `"request_id":"rid-`) {
			t.Errorf("line %d = %s, want %s and a request id", i, reqLines[i], want)
		}
	}
	// Without a platform id the relay makes one, on every line the
	// request logs.
	log.Reset()
	writes := 0
	h2, log2 := newHandlerLog(&funcUpstream{write: func(context.Context) error {
		// The data goes through; push_time_seconds is refused, which the
		// relay logs on a line of its own.
		if writes++; writes == 2 {
			return &upstream.Error{Status: 400, Msg: "out of order"}
		}
		return nil
	}}, nil)
	h2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PUT", "/metrics/job/a", strings.NewReader("m 1\n")))
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(log2.String()), "\n") {
		i := strings.Index(l, `"request_id":"`)
		if i < 0 {
			t.Fatalf("a line without a request id: %s", l)
		}
		ids = append(ids, l[i:i+len(`"request_id":"`)+16])
	}
	if len(ids) < 2 || ids[0] != ids[len(ids)-1] {
		t.Fatalf("request ids %v, want one id on the request's %d lines", ids, len(ids))
	}
	if !strings.Contains(reqLines[1], `"path":"/elsewhere/metrics/job/a"`) {
		t.Errorf("a prefix miss does not name its path: %s", reqLines[1])
	}
}

// TestMemoryBudget: a request that could never fit the budget is 413; one
// that does not fit while others hold it waits, then gets 429 with
// Retry-After; nothing reaches the upstream for either.
func TestMemoryBudget(t *testing.T) {
	up := &recordingUpstream{}
	budget := relay.NewBudget(64<<10, 20*time.Millisecond)
	h := newHandler(up, func(o *relay.Options) {
		o.Budget = budget
		o.MaxBodyBytes, o.MaxPushDecodedBytes, o.MaxDecodedBytes = 1<<20, 1<<20, 1<<20
	})
	big := bytes.Repeat([]byte("m 1\n"), 100000)
	rec := serve(h, "PUT", "/metrics/job/a", big)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "PROMRELAY_MEMORY_LIMIT") {
		t.Fatalf("over the whole budget: %d %q", rec.Code, rec.Body.String())
	}
	// Hold the budget with a request whose body never ends.
	pr, pw := io.Pipe()
	defer pw.Close()
	held := make(chan *httptest.ResponseRecorder)
	go func() {
		req := httptest.NewRequest("PUT", "/metrics/job/held", pr)
		req.ContentLength = 63 << 10
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		held <- rec
	}()
	pw.Write([]byte("m 1\n")) // the held request has reserved its body
	rec = serve(h, "PUT", "/metrics/job/b", []byte("m 1\n"))
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("while the budget is held: %d %q, Retry-After %q", rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	pw.CloseWithError(errors.New("client went away"))
	<-held
	if rec := serve(h, "PUT", "/metrics/job/b", []byte("m 1\n")); rec.Code != 200 {
		t.Fatalf("after the budget was released: %d %q", rec.Code, rec.Body.String())
	}
	if len(up.series) != 2 {
		t.Fatalf("upstream got %v", up.series)
	}
}

// TestSampleLimit: a request over PROMRELAY_MAX_SAMPLES_PER_REQUEST is 413
// naming the setting, pushes and remote writes alike.
func TestSampleLimit(t *testing.T) {
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) {
		o.Limits.MaxSamples = 10
		o.MaxBodyBytes = 1 << 20
		o.MaxPushDecodedBytes = 1 << 20
	})
	var text strings.Builder
	for i := 0; i < 11; i++ {
		fmt.Fprintf(&text, "m{i=\"%d\"} 1\n", i)
	}
	rec := serve(h, "PUT", "/metrics/job/a", []byte(text.String()))
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "PROMRELAY_MAX_SAMPLES_PER_REQUEST") {
		t.Fatalf("push: %d %q", rec.Code, rec.Body.String())
	}
	var wr wire.WriteRequest
	for i := 0; i < 11; i++ {
		wr.AppendSample(wr.AppendLabels(wire.Label{Name: "__name__", Value: "rw"}, wire.Label{Name: "i", Value: fmt.Sprint(i)}), wire.Sample{Value: 1, Timestamp: 1})
	}
	rec = serve(h, "POST", "/api/v1/write", wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil)), "Content-Encoding", "snappy")
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "PROMRELAY_MAX_SAMPLES_PER_REQUEST") {
		t.Fatalf("remote write: %d %q", rec.Code, rec.Body.String())
	}
	if len(up.series) != 0 {
		t.Fatalf("upstream got %v", up.series)
	}
}

type denyAll struct{ err error }

func (d denyAll) Authenticate(*http.Request) (inbound.Identity, error) {
	return inbound.Identity{}, d.err
}
func (denyAll) Challenge(h http.Header) { h.Set("WWW-Authenticate", `Bearer realm="promrelay"`) }

// TestAuthenticationComesFirst: without credentials every route but health
// is 401 with a challenge and Connection: close (the body is never read);
// a busy verifier is 503 with Retry-After.
func TestAuthenticationComesFirst(t *testing.T) {
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) { o.Inbound = denyAll{inbound.ErrMissing} })
	for _, r := range []struct{ method, path string }{{"PUT", "/metrics/job/a"}, {"DELETE", "/metrics/job/a"}, {"POST", "/api/v1/write"}} {
		rec := serve(h, r.method, r.path, []byte("m 1\n"))
		if rec.Code != 401 || rec.Header().Get("Connection") != "close" || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: %d, headers %v", r.method, r.path, rec.Code, rec.Header())
		}
	}
	if rec := serve(h, "GET", "/-/healthy", nil); rec.Code != 200 {
		t.Errorf("health: %d", rec.Code)
	}
	h = newHandler(up, func(o *relay.Options) { o.Inbound = denyAll{&inbound.BusyError{RetryAfter: 2 * time.Second}} })
	if rec := serve(h, "PUT", "/metrics/job/a", []byte("m 1\n")); rec.Code != 503 || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("busy: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if len(up.series) != 0 {
		t.Fatalf("upstream got %v", up.series)
	}
}

// TestOneDeadline: a push's store update and upstream writes share one
// deadline, RequestTimeout from the start.
func TestOneDeadline(t *testing.T) {
	var deadlines []time.Time
	up := &funcUpstream{write: func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		deadlines = append(deadlines, d)
		return nil
	}}
	h := newHandler(up, func(o *relay.Options) { o.RequestTimeout = time.Minute })
	if rec := serve(h, "PUT", "/metrics/job/a", []byte("m 1\n")); rec.Code != 200 {
		t.Fatalf("push: %d", rec.Code)
	}
	// The data, then push_time_seconds: both under the same deadline.
	if len(deadlines) != 2 || deadlines[0].IsZero() || !deadlines[0].Equal(deadlines[1]) {
		t.Fatalf("deadlines %v", deadlines)
	}
}

type funcUpstream struct {
	write func(ctx context.Context) error
}

func (u *funcUpstream) Write(ctx context.Context, _ *wire.WriteRequest) (upstream.Result, error) {
	return upstream.Result{Requests: 1}, u.write(ctx)
}

func (u *funcUpstream) WriteEncoded(ctx context.Context, _ []byte) (upstream.Result, error) {
	return upstream.Result{Requests: 1}, u.write(ctx)
}

// TestBudgetRefusalsAreCounted: a request the memory budget cannot take
// counts in promrelay_memory_budget_refused_total and as a rejection for
// the budget, and the in-use gauge is back at zero after it.
func TestBudgetRefusalsAreCounted(t *testing.T) {
	budget := relay.NewBudget(1000, time.Millisecond)
	m := metrics.New(budget.InUse, budget.Size)
	h := newHandler(&recordingUpstream{}, func(o *relay.Options) { o.Budget, o.Metrics = budget, m })
	if rec := serve(h, "PUT", "/metrics/job/j", []byte("a 1\n")); rec.Code != 413 {
		t.Fatalf("a push over the budget: %d %s", rec.Code, rec.Body)
	}
	if got := testutil.ToFloat64(m.BudgetRefused); got != 1 {
		t.Errorf("memory_budget_refused_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.RejectedRequests.WithLabelValues("push", "budget")); got != 1 {
		t.Errorf("rejected_requests_total{route=push,reason=budget} = %v, want 1", got)
	}
	if budget.InUse() != 0 {
		t.Errorf("budget in use after the request: %d bytes", budget.InUse())
	}
}

// TestValuesCountedByKind: a remote write's float samples, native
// histogram samples and exemplars count under their own kind, received
// and relayed.
func TestValuesCountedByKind(t *testing.T) {
	var hist, ex []byte
	hist = protowire.AppendTag(hist, 1, protowire.VarintType) // count_int
	hist = protowire.AppendVarint(hist, 3)
	hist = protowire.AppendTag(hist, 3, protowire.Fixed64Type) // sum
	hist = protowire.AppendFixed64(hist, math.Float64bits(1.5))
	hist = protowire.AppendTag(hist, 15, protowire.VarintType) // timestamp
	hist = protowire.AppendVarint(hist, 1000)
	ex = protowire.AppendTag(ex, 2, protowire.Fixed64Type) // value
	ex = protowire.AppendFixed64(ex, math.Float64bits(0.5))
	ex = protowire.AppendTag(ex, 3, protowire.VarintType) // timestamp
	ex = protowire.AppendVarint(ex, 1000)
	series := []wire.Series{
		{Labels: []wire.Label{{Name: "__name__", Value: "f"}}, Samples: []wire.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}}, Exemplars: [][]byte{ex}},
		{Labels: []wire.Label{{Name: "__name__", Value: "h"}}, Histograms: [][]byte{hist}},
	}
	m := metrics.New(nil, nil)
	h := newHandler(&recordingUpstream{}, func(o *relay.Options) { o.Metrics = m })
	if rec := serve(h, "POST", "/api/v1/write", wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, series, nil))); rec.Code != 204 {
		t.Fatalf("remote write: %d %s", rec.Code, rec.Body)
	}
	for kind, want := range map[string]float64{metrics.KindSample: 2, metrics.KindHistogram: 1, metrics.KindExemplar: 1} {
		if got := testutil.ToFloat64(m.Received.WithLabelValues(kind)); got != want {
			t.Errorf("received_total{kind=%s} = %v, want %v", kind, got, want)
		}
		if got := testutil.ToFloat64(m.Relayed.WithLabelValues(kind)); got != want {
			t.Errorf("relayed_total{kind=%s} = %v, want %v", kind, got, want)
		}
	}
}

// TestRejectionReasons: an upstream error's reason and what counts as
// relayed — the series a profile dropped are rejected for profile and the
// rest relayed; a series too large on its own is too_large; a data
// rejection upstream_4xx; a 5xx no rejection.
func TestRejectionReasons(t *testing.T) {
	series := make([]wire.Series, 3)
	for i := range series {
		series[i] = wire.Series{Labels: []wire.Label{{Name: "__name__", Value: "m"}, {Name: "i", Value: strconv.Itoa(i)}},
			Samples: []wire.Sample{{Value: 1, Timestamp: 1000}}}
	}
	body := wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, series, nil))
	for _, c := range []struct {
		name            string
		err             *upstream.Error
		reason          string
		relayed, reject float64
	}{
		{"profile dropped one", &upstream.Error{Status: 400, Partial: true, Dropped: [3]int{1, 0, 0}}, metrics.ReasonProfile, 2, 1},
		{"profile dropped all", &upstream.Error{Status: 400, Dropped: [3]int{3, 0, 0}}, metrics.ReasonProfile, 0, 3},
		{"series too large alone", &upstream.Error{Status: 400, UpstreamStatus: 413}, metrics.ReasonTooLarge, 0, 3},
		{"upstream refuses", &upstream.Error{Status: 400, UpstreamStatus: 400}, metrics.ReasonUpstream4xx, 0, 3},
		{"upstream down", &upstream.Error{Status: 503, UpstreamStatus: 503}, "", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := metrics.New(nil, nil)
			h := newHandler(&recordingUpstream{err: c.err}, func(o *relay.Options) { o.Metrics = m })
			if rec := serve(h, "POST", "/api/v1/write", body); rec.Code != c.err.Status {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if got := testutil.ToFloat64(m.Relayed.WithLabelValues(metrics.KindSample)); got != c.relayed {
				t.Errorf("relayed_total{kind=sample} = %v, want %v", got, c.relayed)
			}
			var rejected float64
			for _, r := range []string{metrics.ReasonProfile, metrics.ReasonTooLarge, metrics.ReasonUpstream4xx, metrics.ReasonInvalid} {
				got := testutil.ToFloat64(m.Rejected.WithLabelValues(metrics.KindSample, r))
				if r != c.reason && got != 0 {
					t.Errorf("rejected_total{reason=%s} = %v, want 0", r, got)
				}
				rejected += got
			}
			if rejected != c.reject {
				t.Errorf("rejected_total{reason=%q} = %v, want %v", c.reason, rejected, c.reject)
			}
		})
	}
}

// TestLogRefused: an event the platform adapter refused is one request
// line and counts as a request of route "event", rejected for its reason.
func TestLogRefused(t *testing.T) {
	m := metrics.New(nil, nil)
	h, log := newHandlerLog(&recordingUpstream{}, func(o *relay.Options) { o.Metrics = m })
	h.(*relay.Handler).LogRefused(context.Background(), "PUT", 413, "request body of 11 bytes exceeds the limit of 10")
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("event", "413")); got != 1 {
		t.Errorf("requests_total{route=event,code=413} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.RejectedRequests.WithLabelValues("event", metrics.ReasonTooLarge)); got != 1 {
		t.Errorf("rejected_requests_total{route=event,reason=too_large} = %v, want 1", got)
	}
	if l := log.String(); !strings.Contains(l, `"route":"event","status":413`) || !strings.Contains(l, `"request_id"`) || !strings.Contains(l, "exceeds the limit") {
		t.Errorf("log line: %s", l)
	}
}

// TestPushValuesCountedAsConverted: a push's received values are those of
// the series it becomes (a histogram without a +Inf bucket gets one), so a
// fully relayed push is received = relayed, and a refused one is rejected
// whole.
func TestPushValuesCountedAsConverted(t *testing.T) {
	body := []byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n")
	m := metrics.New(nil, nil)
	h := newHandler(&recordingUpstream{}, func(o *relay.Options) { o.Metrics = m })
	if rec := serve(h, "PUT", "/metrics/job/j", body); rec.Code != 200 {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	in, out := testutil.ToFloat64(m.Received.WithLabelValues(metrics.KindSample)), testutil.ToFloat64(m.Relayed.WithLabelValues(metrics.KindSample))
	if in != 4 || out != 4 {
		t.Errorf("received %v, relayed %v; want 4 and 4 (three buckets' worth: le=1, +Inf, _sum, _count)", in, out)
	}
	m2 := metrics.New(nil, nil)
	h = newHandler(&recordingUpstream{err: &upstream.Error{Status: 400, UpstreamStatus: 400}}, func(o *relay.Options) { o.Metrics = m2 })
	if rec := serve(h, "PUT", "/metrics/job/j", body); rec.Code != 400 {
		t.Fatalf("push to a refusing upstream: %d", rec.Code)
	}
	if got := testutil.ToFloat64(m2.Rejected.WithLabelValues(metrics.KindSample, metrics.ReasonUpstream4xx)); got != 4 {
		t.Errorf("rejected_total{reason=upstream_4xx} = %v, want 4", got)
	}
}
