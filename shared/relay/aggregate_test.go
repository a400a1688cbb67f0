package relay_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// valueUpstream records the last value written of each series, by its
// formatted labels.
type valueUpstream struct {
	mu   sync.Mutex
	last map[string]float64
	err  error
}

func (u *valueUpstream) Write(_ context.Context, wr *wire.WriteRequest) (upstream.Result, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return upstream.Result{}, u.err
	}
	if u.last == nil {
		u.last = map[string]float64{}
	}
	for _, s := range wr.Series {
		u.last[wire.FormatLabels(s.Labels, 500)] = s.Samples[0].Value
	}
	return upstream.Result{Requests: 1, UpstreamStatus: 204}, nil
}

func (u *valueUpstream) WriteEncoded(ctx context.Context, raw []byte) (upstream.Result, error) {
	var wr wire.WriteRequest
	if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
		return upstream.Result{}, err
	}
	return u.Write(ctx, &wr)
}

func (u *valueUpstream) get(series string) float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last[series]
}

// statefulHandler is the relay with a group store (store, or a file store).
func statefulHandler(t *testing.T, up relay.Upstream, store groupstore.Store, mod func(*relay.Options)) http.Handler {
	t.Helper()
	if store == nil {
		fs, err := groupstore.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		store = fs
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ups := func(string) relay.Upstream { return up }
	state, err := pushstate.New(pushstate.Options{Store: store, BatchSeries: 1000, Write: relay.Writer(ups), Now: time.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	o := relay.Options{Upstreams: ups, State: state, Logger: logger, MaxBodyBytes: 1 << 16, MaxDecodedBytes: 1 << 16,
		MaxPushDecodedBytes: 1 << 16, Limits: wire.Limits{MaxSamples: 1000}, RequestTimeout: 5 * time.Second,
		Budget: relay.NewBudget(64<<20, 10*time.Millisecond), Now: time.Now}
	if mod != nil {
		mod(&o)
	}
	h, err := relay.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const invocationBody = "# TYPE jobs_total counter\njobs_total 1\n# TYPE last gauge\nlast %d\n"

func TestAggregateRoute(t *testing.T) {
	up := &valueUpstream{}
	h := statefulHandler(t, up, nil, func(o *relay.Options) {
		o.PathPrefix = "/prod"
		o.ExternalLabels = []wire.Label{{Name: "region", Value: "eu"}}
	})
	const total = `jobs_total{job="fn",region="eu",worker="w1"}`
	for i := 1; i <= 3; i++ {
		method := "POST"
		if i == 2 {
			method = "PUT" // PUT adds as POST does
		}
		rec := serve(h, method, "/prod/aggregate/metrics/job/fn/worker/w1", []byte(fmt.Sprintf(invocationBody, i)))
		if rec.Code != 200 {
			t.Fatalf("push %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if got := up.get(total); got != 3 {
		t.Fatalf("counter total %v, want 3", got)
	}
	if got := up.get(`last{job="fn",region="eu",worker="w1"}`); got != 3 {
		t.Fatalf("gauge %v, want the last pushed 3", got)
	}
	// job@base64, and a plain push to the same key, are other paths to the
	// same and to another group.
	b64 := base64.RawURLEncoding.EncodeToString([]byte("fn"))
	if rec := serve(h, "POST", "/prod/aggregate/metrics/job@base64/"+b64+"/worker/w1", []byte(fmt.Sprintf(invocationBody, 4))); rec.Code != 200 {
		t.Fatalf("job@base64: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/prod/metrics/job/fn/worker/w1", []byte("jobs_total 100\n")); rec.Code != 409 || !strings.Contains(rec.Body.String(), "aggregated group") {
		t.Fatalf("plain push to an aggregated group's key: %d %s, want 409", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte(fmt.Sprintf(invocationBody, 5))); rec.Code != 200 {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	if got := up.get(total); got != 5 {
		t.Fatalf("counter total %v after a refused plain push to the same key, want 5", got)
	}

	// Idempotency-Key: a retry counts once; another push with it is 422.
	for i := 0; i < 3; i++ {
		rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte(fmt.Sprintf(invocationBody, 6)), "Idempotency-Key", `"inv-6"`)
		if rec.Code != 200 {
			t.Fatalf("keyed push %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if got := up.get(total); got != 6 {
		t.Fatalf("counter total %v after one push sent three times with its key, want 6", got)
	}
	if rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte(fmt.Sprintf(invocationBody, 7)), "Idempotency-Key", "inv-6"); rec.Code != 422 {
		t.Fatalf("key reused for another push: %d %s, want 422", rec.Code, rec.Body)
	}

	// A negative counter increment is 400 naming the series; nothing is
	// stored.
	rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte("# TYPE jobs_total counter\njobs_total -2\n"))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "jobs_total") {
		t.Fatalf("negative increment: %d %s, want 400 naming jobs_total", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte(fmt.Sprintf(invocationBody, 8))); rec.Code != 200 || up.get(total) != 7 {
		t.Fatalf("after a refused push: %d, total %v, want 7", rec.Code, up.get(total))
	}
	// A family pushed as another type is 409 naming it; nothing is stored.
	rec = serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte("jobs_total 5\n"))
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), "jobs_total: pushed as untyped, its totals are counter") {
		t.Fatalf("type change: %d %s, want 409 naming jobs_total", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte(fmt.Sprintf(invocationBody, 9))); rec.Code != 200 || up.get(total) != 8 {
		t.Fatalf("after a conflicting push: %d, total %v, want 8", rec.Code, up.get(total))
	}
	// Grouping-key errors and bodies as for pushes.
	for path, want := range map[string]int{
		"/prod/aggregate/metrics/job/":         307,
		"/prod/aggregate/metrics/job/fn/odd":   400,
		"/prod/aggregate/metrics/job@base64/!": 400,
	} {
		if rec := serve(h, "POST", path, []byte("a 1\n")); rec.Code != want {
			t.Errorf("%s: %d %s, want %d", path, rec.Code, rec.Body, want)
		}
	}
	if rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn", []byte("a 1 1234\n")); rec.Code != 400 {
		t.Errorf("a sample with a timestamp: %d, want 400", rec.Code)
	}
	// DELETE: 202, markers upstream, and the totals start again.
	if rec := serve(h, "DELETE", "/prod/aggregate/metrics/job/fn/worker/w1", nil); rec.Code != 202 {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	if v := up.get(total); v == v {
		t.Fatalf("after DELETE the total is %v, want a staleness marker", v)
	}
	if rec := serve(h, "POST", "/prod/aggregate/metrics/job/fn/worker/w1", []byte(fmt.Sprintf(invocationBody, 9))); rec.Code != 200 || up.get(total) != 1 {
		t.Fatalf("after DELETE and a push: %d, total %v, want 1", rec.Code, up.get(total))
	}
}

func TestAggregateNeedsAStore(t *testing.T) {
	h := newHandler(&recordingUpstream{}, nil)
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		rec := serve(h, m, "/aggregate/metrics/job/fn", []byte("a_total 1\n"))
		if rec.Code != 501 || !strings.Contains(rec.Body.String(), "PROMRELAY_STATE_URL") {
			t.Errorf("%s without a store: %d %s, want 501 naming PROMRELAY_STATE_URL", m, rec.Code, rec.Body)
		}
	}
}

// busyStore conflicts forever, as a group too contended to update.
type busyStore struct{ groupstore.Store }

func (busyStore) Update(ctx context.Context, _ string, _ func(*groupstore.Group) (*groupstore.Group, error)) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("group store: %w: %w", groupstore.ErrConflict, ctx.Err())
	case <-time.After(5 * time.Millisecond):
		return fmt.Errorf("group store: %w after 20 attempts", groupstore.ErrConflict)
	}
}

func TestAggregateConflictsUntilTheDeadlineAre503(t *testing.T) {
	h := statefulHandler(t, &valueUpstream{}, busyStore{}, func(o *relay.Options) { o.RequestTimeout = 200 * time.Millisecond })
	start := time.Now()
	rec := serve(h, "POST", "/aggregate/metrics/job/fn", []byte("a_total 1\n"))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("contended store: %d %s (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("gave up after %v, before the request's deadline", d)
	}
}

func TestAggregateUpstreamFailureThenRetry(t *testing.T) {
	up := &valueUpstream{err: &upstream.Error{Status: 503, Msg: "upstream down"}}
	h := statefulHandler(t, up, nil, nil)
	body := []byte(fmt.Sprintf(invocationBody, 1))
	if rec := serve(h, "POST", "/aggregate/metrics/job/fn", body, "Idempotency-Key", "k1"); rec.Code != 503 {
		t.Fatalf("upstream down: %d %s, want its 503", rec.Code, rec.Body)
	}
	up.mu.Lock()
	up.err = nil
	up.mu.Unlock()
	if rec := serve(h, "POST", "/aggregate/metrics/job/fn", body, "Idempotency-Key", "k1"); rec.Code != 200 {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	if got := up.get(`jobs_total{job="fn"}`); got != 1 {
		t.Fatalf("total %v after a failure and the retry, want 1", got)
	}
}
