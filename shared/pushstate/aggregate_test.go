package pushstate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/aggregate"
	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// invocation is what one invocation with a fresh registry pushes: a
// counter of 1, one histogram observation and a gauge.
func invocation(obs, gauge float64) string {
	le := 0
	if obs <= 1 {
		le = 1
	}
	return fmt.Sprintf(`# TYPE jobs_total counter
jobs_total 1
# TYPE latency_seconds histogram
latency_seconds_bucket{le="1"} %d
latency_seconds_bucket{le="+Inf"} 1
latency_seconds_sum %v
latency_seconds_count 1
# TYPE last_value gauge
last_value %v
`, le, obs, gauge)
}

func aggOf(t testing.TB, text string, k push.GroupingKey, idem string, now time.Time) AggregatePush {
	t.Helper()
	p := pushOf(t, text, k, Owner{}, false, now)
	return AggregatePush{Key: p.Key, Owner: p.Owner, Request: p.Request, Families: p.Families, Time: now, IdempotencyKey: idem}
}

// tsWriter records every sample written, with its timestamp.
type tsWriter struct {
	mu   sync.Mutex
	reqs [][]string // "name{labels}=value@ts"
	fail func(wr *wire.WriteRequest) error
}

func (w *tsWriter) write(_ context.Context, _ string, wr *wire.WriteRequest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		if err := w.fail(wr); err != nil {
			return err
		}
	}
	var r []string
	for _, s := range wr.Series {
		val := "stale"
		if math.Float64bits(s.Samples[0].Value) != StaleNaN {
			val = formatFloat(s.Samples[0].Value)
		}
		r = append(r, fmt.Sprintf("%s=%s@%d", labelsString(s.Labels), val, s.Samples[0].Timestamp))
	}
	w.reqs = append(w.reqs, r)
	return nil
}

func (w *tsWriter) last() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, r := range w.reqs {
		out = append(out, r...)
	}
	return out
}

// sample returns the value and timestamp of the last sample written of the
// series whose labelsString starts with prefix.
func (w *tsWriter) sample(t *testing.T, prefix string) (string, int64) {
	t.Helper()
	all := w.last()
	for i := len(all) - 1; i >= 0; i-- {
		if strings.HasPrefix(all[i], prefix) {
			v, ts, _ := strings.Cut(all[i][len(prefix)+1:], "@")
			var n int64
			fmt.Sscan(ts, &n)
			return v, n
		}
	}
	t.Fatalf("no %s written in\n%s", prefix, strings.Join(all, "\n"))
	return "", 0
}

func newAggState(t *testing.T, store groupstore.Store) (*State, *tsWriter, *clock) {
	t.Helper()
	s, _, c := newState(t, store, Options{})
	w := &tsWriter{}
	s.o.Write = w.write
	return s, w, c
}

const (
	counter = `{__name__="jobs_total", job="agg"}`
	count   = `{__name__="latency_seconds_count", job="agg"}`
	bucket1 = `{__name__="latency_seconds_bucket", job="agg", le="1"}`
	sum     = `{__name__="latency_seconds_sum", job="agg"}`
	gauge   = `{__name__="last_value", job="agg"}`
	pushT   = `{__name__="push_time_seconds", job="agg"}`
)

func TestAggregateAddsCountersAndKeepsLastGauge(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	var lastTS int64
	for i, obs := range []float64{0.5, 2, 0.25} {
		// The clock stands still: timestamps must still increase.
		if err := s.Aggregate(ctx, aggOf(t, invocation(obs, float64(10+i)), k, "", c.t)); err != nil {
			t.Fatal(err)
		}
		v, ts := w.sample(t, counter)
		if v != fmt.Sprint(i+1) {
			t.Fatalf("after push %d: counter total %s, want %d", i, v, i+1)
		}
		if ts <= lastTS {
			t.Fatalf("push %d wrote its totals at %d, not after the previous %d", i, ts, lastTS)
		}
		if _, pts := w.sample(t, pushT); pts != ts {
			t.Fatalf("push_time_seconds at %d, totals at %d", pts, ts)
		}
		lastTS = ts
	}
	for prefix, want := range map[string]string{count: "3", bucket1: "2", sum: "2.75", gauge: "12"} {
		if v, _ := w.sample(t, prefix); v != want {
			t.Errorf("%s = %s, want %s", prefix, v, want)
		}
	}
	// A plain push to the same grouping key is refused (both would write
	// push_time_seconds under the same labels), and the totals stay.
	if AggregateGroupID(k, Owner{}) == GroupID(k, Owner{}) {
		t.Fatal("aggregated and plain groups share an id")
	}
	var ke *KindError
	if err := s.Push(ctx, pushOf(t, "jobs_total 100\n", k, Owner{}, true, c.t)); !errors.As(err, &ke) || !ke.Aggregated {
		t.Fatalf("plain push to an aggregated group's key: %v, want a KindError", err)
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != "4" {
		t.Fatalf("after a refused plain push to the same key, the aggregated total is %s, want 4", v)
	}
	// And the other way round.
	other := key("job", "plain")
	if err := s.Push(ctx, pushOf(t, "jobs_total 100\n", other, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), other, "", c.t)); !errors.As(err, &ke) || ke.Aggregated {
		t.Fatalf("aggregated push to a plain group's key: %v, want a KindError", err)
	}

	// The scheduled job re-emits the totals (and nothing of the state).
	w.reqs = nil
	c.t = c.t.Add(time.Minute)
	if res, err := s.Reemit(ctx); err != nil || res.Groups != 2 {
		t.Fatalf("Reemit = %+v, %v", res, err)
	}
	has(t, w.last(), counter+"=4@"+fmt.Sprint(c.t.UnixMilli()), count+"=4@"+fmt.Sprint(c.t.UnixMilli()))
	for _, l := range w.last() {
		if strings.Contains(l, `__name__=""`) || strings.Contains(l, "applied") {
			t.Fatalf("the aggregation state went upstream: %s", l)
		}
	}
}

func TestAggregateRefusesNegativeIncrements(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	err := s.Aggregate(ctx, aggOf(t, "# TYPE jobs_total counter\njobs_total -1\nother 5\n", k, "", c.t))
	var ie *aggregate.IncrementError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "jobs_total") {
		t.Fatalf("negative counter increment: %v, want an IncrementError naming jobs_total", err)
	}
	w.reqs = nil
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != "2" {
		t.Fatalf("counter %s after a refused push, want 2", v)
	}
	lacks(t, w.last(), `{__name__="other"`)
}

func TestAggregateIdempotencyKey(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	p := func(idem string) AggregatePush { return aggOf(t, invocation(1, 1), k, idem, c.t) }

	// The upstream fails after the store update: 5xx, and the retry with
	// the same key counts once.
	w.fail = func(*wire.WriteRequest) error {
		return &upstream.Error{Status: http.StatusServiceUnavailable, Msg: "down"}
	}
	if err := s.Aggregate(ctx, p("inv-1")); err == nil {
		t.Fatal("an upstream failure was not answered")
	}
	w.fail = nil
	if err := s.Aggregate(ctx, p("inv-1")); err != nil {
		t.Fatal(err)
	}
	v, ts1 := w.sample(t, counter)
	if v != "1" {
		t.Fatalf("a retried push counted %s times", v)
	}
	// A replay writes the same totals at the same timestamp again.
	w.reqs = nil
	if err := s.Aggregate(ctx, p("inv-1")); err != nil {
		t.Fatal(err)
	}
	if v, ts := w.sample(t, counter); v != "1" || ts != ts1 {
		t.Fatalf("replay wrote %s@%d, want 1@%d", v, ts, ts1)
	}
	// Other keys, and no key, count.
	for _, idem := range []string{"inv-2", "", ""} {
		if err := s.Aggregate(ctx, p(idem)); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := w.sample(t, counter); v != "4" {
		t.Fatalf("counter %s, want 4", v)
	}
	// The same key for another push is refused.
	var de *IdempotencyError
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 7), k, "inv-2", c.t)); !errors.As(err, &de) {
		t.Fatalf("key reused for another push: %v, want IdempotencyError", err)
	}
	// Keys are forgotten after AppliedKeyTTL.
	c.t = c.t.Add(AppliedKeyTTL + time.Second)
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "inv-1", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != "5" {
		t.Fatalf("counter %s after the key's TTL, want 5", v)
	}
	// At most MaxAppliedKeys are kept.
	for i := 0; i < MaxAppliedKeys+10; i++ {
		if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, fmt.Sprint("bulk-", i), c.t)); err != nil {
			t.Fatal(err)
		}
	}
	state, err := s.storedState(ctx, AggregateGroupID(k, Owner{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(state.Applied) != MaxAppliedKeys*appliedSize {
		t.Fatalf("%d applied keys kept, want %d", len(state.Applied)/appliedSize, MaxAppliedKeys)
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "bulk-0", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != fmt.Sprint(5+MaxAppliedKeys+10+1) {
		t.Fatalf("counter %s: the oldest key should have been forgotten", v)
	}
}

// lossyStore commits an update and then reports a failure, once: the
// store write succeeded but its answer was lost.
type lossyStore struct {
	groupstore.Store
	mu   sync.Mutex
	lose bool
}

func (s *lossyStore) Update(ctx context.Context, id string, fn func(*groupstore.Group) (*groupstore.Group, error)) error {
	err := s.Store.Update(ctx, id, fn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.lose {
		s.lose = false
		return errors.New("connection reset after the write")
	}
	return err
}

func TestAggregateStoreFailureThenRetryCountsOnce(t *testing.T) {
	fs, _ := fileStore(t)
	st := &lossyStore{Store: fs}
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	st.lose = true
	var se *StoreError
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "inv-1", c.t)); !errors.As(err, &se) {
		t.Fatalf("lost store answer: %v, want StoreError", err)
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "inv-1", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != "1" {
		t.Fatalf("counter %s after a store failure and the retry, want 1", v)
	}
}

// TestAggregateUpstreamRejection: an upstream 400 is answered unless a
// newer total of the group was written since (the refusal of an older one
// as out of order).
func TestAggregateUpstreamRejection(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	refuse := func(*wire.WriteRequest) error {
		return &upstream.Error{Status: http.StatusBadRequest, Msg: "label value too long"}
	}
	w.fail = refuse
	err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "k1", c.t))
	var ce *CountedError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "counted") || !strings.Contains(err.Error(), "label value too long") {
		t.Fatalf("an upstream 400 for what the totals hold: %v, want a CountedError naming the upstream's reason", err)
	}
	// Counted (an upstream that ingests the valid part of a refused
	// request has it; taking it back would make its counter go down):
	// the next push adds to it, and the sender's resend of k1 adds
	// nothing.
	w.fail = nil
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "k1", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != "1" {
		t.Fatalf("counter %s after the refused push and its resend under the same key, want 1", v)
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "k2", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != "2" {
		t.Fatalf("counter %s, want 2", v)
	}
	// A refusal for what the totals hold is answered even when a newer
	// push committed meanwhile: only an ordering refusal is explained by
	// a newer total.
	w.fail = func(wr *wire.WriteRequest) error {
		w.fail = nil
		w.mu.Unlock()
		defer w.mu.Lock()
		if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
			t.Error(err)
		}
		return &upstream.Error{Status: http.StatusBadRequest, Msg: "label value too long"}
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); !errors.As(err, &ce) {
		t.Fatalf("refused for its content while another push committed: %v, want a CountedError", err)
	}
	// A newer push commits while this one's write is on its way, and
	// its write gets there first: the older write's 400 is not answered.
	w.fail = func(wr *wire.WriteRequest) error {
		w.fail = nil
		w.mu.Unlock()
		defer w.mu.Lock()
		if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
			t.Error(err)
		}
		return &upstream.Error{Status: http.StatusBadRequest, Msg: "out of order sample"}
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatalf("a 400 for a total older than the group's last write was answered: %v", err)
	}
	if v, _ := w.sample(t, counter); v != "6" {
		t.Errorf("counter %s upstream, want 6", v)
	}
}

// TestAggregateWritesOnlyWhatWasPushed: a push writes the totals of its
// own series (and push_time_seconds), not the whole group.
func TestAggregateWritesOnlyWhatWasPushed(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	if err := s.Aggregate(ctx, aggOf(t, "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total 1\n", k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	w.reqs = nil
	if err := s.Aggregate(ctx, aggOf(t, "# TYPE a_total counter\na_total 2\n", k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(w.last(), " ")
	if !strings.Contains(got, `a_total", job="agg"}=3@`) || strings.Contains(got, "b_total") || !strings.Contains(got, "push_time_seconds") {
		t.Errorf("second push wrote %s; want a_total=3 and push_time_seconds only", got)
	}
}

func TestAggregateConcurrentPushesLoseNothing(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	k := key("job", "agg")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Aggregate(context.Background(), aggOf(t, invocation(1, float64(i)), k, fmt.Sprint("inv-", i), c.t)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The newest total, by timestamp, is the sum.
	best, bestTS := "", int64(-1)
	for _, l := range w.last() {
		if strings.HasPrefix(l, counter+"=") {
			v, ts, _ := strings.Cut(l[len(counter)+1:], "@")
			var n int64
			fmt.Sscan(ts, &n)
			if n == bestTS {
				t.Fatalf("two totals at timestamp %d", n)
			}
			if n > bestTS {
				best, bestTS = v, n
			}
		}
	}
	if best != "50" {
		t.Fatalf("the newest total is %s, want 50", best)
	}
}

func TestDeleteAggregate(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	for i := 0; i < 3; i++ {
		if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
			t.Fatal(err)
		}
	}
	_, lastTS := w.sample(t, counter)
	w.reqs = nil
	if err := s.DeleteAggregate(ctx, k, Owner{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{counter, count, gauge, pushT} {
		v, ts := w.sample(t, p)
		if v != "stale" || ts <= lastTS {
			t.Errorf("%s: %s@%d after DELETE, want a staleness marker after %d", p, v, ts, lastTS)
		}
	}
	l, err := st.List(ctx, "", 10)
	if err != nil || len(l.Groups) != 0 {
		t.Fatalf("groups left after DELETE: %+v %v", l.Groups, err)
	}
	// Totals start again.
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != "1" {
		t.Fatalf("counter %s after DELETE and one push, want 1", v)
	}
	// Deleting nothing is fine; without a store it is ErrNoStore.
	if err := s.DeleteAggregate(ctx, key("job", "none"), Owner{}); err != nil {
		t.Fatal(err)
	}
	nostore, _, _ := newState(t, nil, Options{})
	if err := nostore.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); !errors.Is(err, ErrNoStore) {
		t.Fatalf("without a store: %v", err)
	}
}

// BenchmarkAggregateFileStore measures aggregated pushes to one group on
// the file store, concurrent senders; the upstream is a no-op.
func BenchmarkAggregateFileStore(b *testing.B) {
	dir := b.TempDir()
	st, err := groupstore.NewFileStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	s, _, _ := newState(b, st, Options{})
	s.o.Write = func(context.Context, string, *wire.WriteRequest) error { return nil }
	s.o.Now = time.Now
	k := key("job", "agg")
	text := invocation(1, 1)
	var n int
	var mu sync.Mutex
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			idem := fmt.Sprint("b-", n)
			mu.Unlock()
			if err := s.Aggregate(context.Background(), aggOf(b, text, k, idem, time.Now())); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pushes/s")
}

// rerunStore commits an update and then runs fn again on what it stored,
// as the object store does when its PUT succeeded, its answer was lost,
// and the SDK's retry of the PUT was refused by If-Match (a conflict).
type rerunStore struct{ groupstore.Store }

func (s rerunStore) Update(ctx context.Context, id string, fn func(*groupstore.Group) (*groupstore.Group, error)) error {
	if err := s.Store.Update(ctx, id, fn); err != nil {
		return err
	}
	return s.Store.Update(ctx, id, fn)
}

func TestAggregateStoreRetryWithinTheRequestCountsOnce(t *testing.T) {
	fs, _ := fileStore(t)
	s, w, c := newAggState(t, rerunStore{fs})
	for i := 0; i < 3; i++ {
		if err := s.Aggregate(context.Background(), aggOf(t, invocation(1, 1), key("job", "agg"), "", c.t)); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := w.sample(t, counter); v != "3" {
		t.Fatalf("counter %s after 3 pushes whose store writes ran twice, want 3", v)
	}
}

// staleListing lists the groups as they were when snapshot was taken: a
// scheduled run whose List read a group just before a push committed.
type staleListing struct {
	groupstore.Store
	page groupstore.Listing
}

func (s *staleListing) List(context.Context, string, int) (groupstore.Listing, error) {
	return s.page, nil
}

// TestReemitOfAStaleListing shows why the scheduled job must claim a
// timestamp for an aggregated group (claimAggregate) rather than write the
// totals its listing read at its own now: a push that commits between the
// listing's read and the job's write has an earlier timestamp than the
// job's, and the job's older, smaller total would win upstream.
func TestReemitOfAStaleListing(t *testing.T) {
	fs, _ := fileStore(t)
	sl := &staleListing{Store: fs}
	s, w, c := newAggState(t, sl)
	ctx := context.Background()
	k := key("job", "agg")
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	var err error
	if sl.page, err = fs.List(ctx, "", 10); err != nil || len(sl.page.Groups) != 1 {
		t.Fatalf("List: %+v %v", sl.page, err)
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	_, pushed := w.sample(t, counter)
	c.t = c.t.Add(time.Millisecond * 5)
	now := c.t.UnixMilli()

	// The claim reads the current total, at a later timestamp.
	got, ts, err := s.claimAggregate(ctx, sl.page.Groups[0].ID, now)
	if err != nil || got == nil {
		t.Fatal(got, err)
	}
	var wr wire.WriteRequest
	appendTotals(&wr, got, ts, nil)
	if err := w.write(ctx, "", &wr); err != nil {
		t.Fatal(err)
	}
	if v, at := w.sample(t, counter); v != "2" || at <= pushed {
		t.Fatalf("claimed re-emission wrote %s@%d, want 2 after %d", v, at, pushed)
	}
	// A push after the claim is later still.
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", time.UnixMilli(ts-10))); err != nil {
		t.Fatal(err)
	}
	if v, at := w.sample(t, counter); v != "3" || at <= ts {
		t.Fatalf("push after the claim wrote %s@%d, want 3 after %d", v, at, ts)
	}

	// Reemit, whose listing still holds the total 1, writes the current
	// total, 3, after the last push's timestamp.
	_, last := w.sample(t, counter)
	w.reqs = nil
	if _, err := s.Reemit(ctx); err != nil {
		t.Fatal(err)
	}
	if v, at := w.sample(t, counter); v != "3" || at <= last {
		t.Fatalf("Reemit of a stale listing wrote %s@%d, want the current total 3 after %d", v, at, last)
	}
}

// TestKeylessPushesKeepSendersKeys: pushes without an Idempotency-Key do
// not push a sender's key out of the group's memory, and the keys drawn
// for them are forgotten after keylessKeyTTL.
func TestKeylessPushesKeepSendersKeys(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "inv-keyed", c.t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < MaxAppliedKeys+5; i++ {
		if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "inv-keyed", c.t)); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sample(t, counter); v != fmt.Sprint(1+MaxAppliedKeys+5) {
		t.Fatalf("counter %s: the keyed push's retry after %d keyless pushes counted again", v, MaxAppliedKeys+5)
	}
	c.t = c.t.Add(keylessKeyTTL + time.Second)
	if err := s.Aggregate(ctx, aggOf(t, invocation(1, 1), k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	state, err := s.storedState(ctx, AggregateGroupID(k, Owner{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(state.Applied) / appliedSize; n != 2 {
		t.Errorf("%d keys remembered after keylessKeyTTL, want 2 (the sender's and the last push's own)", n)
	}
}

// TestReemitKeepsABusyGroupWhole: a push writes only the series it
// carried; the scheduled run re-emits the whole group every time, so a
// series that a busy group's pushes no longer carry stays visible (a run
// once left out every group pushed within the last interval, and such a
// series vanished after the lookback).
func TestReemitKeepsABusyGroupWhole(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	if err := s.Aggregate(ctx, aggOf(t, "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total 1\n", k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	for range 20 { // ten minutes of pushes every 30 s, each followed by a run
		c.t = c.t.Add(30 * time.Second)
		if err := s.Aggregate(ctx, aggOf(t, "# TYPE a_total counter\na_total 1\n", k, "", c.t)); err != nil {
			t.Fatal(err)
		}
		if res, err := s.Reemit(ctx); err != nil || res.Groups != 1 {
			t.Fatalf("run: %+v %v, want the group re-emitted", res, err)
		}
	}
	bv, bts := w.sample(t, `{__name__="b_total", job="agg"}`)
	av, ats := w.sample(t, `{__name__="a_total", job="agg"}`)
	if bv != "1" || av != "21" || bts != ats {
		t.Errorf("after ten minutes: a_total %s at %d, b_total %s at %d; want 21 and 1, written together by the last run", av, ats, bv, bts)
	}
}

// barrierStore holds the first update of each id in hold until both have
// had one: the interleaving of a plain and an aggregated push that create
// their groups under one key at the same moment.
type barrierStore struct {
	groupstore.Store
	mu   sync.Mutex
	hold map[string]bool // ids whose first update waits; false once seen
	wg   *sync.WaitGroup
}

func (b *barrierStore) Update(ctx context.Context, id string, fn func(*groupstore.Group) (*groupstore.Group, error)) error {
	return b.Store.Update(ctx, id, func(g *groupstore.Group) (*groupstore.Group, error) {
		b.mu.Lock()
		first := b.hold[id]
		b.hold[id] = false
		b.mu.Unlock()
		if first {
			b.wg.Done()
			b.wg.Wait()
		}
		return fn(g)
	})
}

// TestKindCheckHoldsOneLock: the first plain push and the first
// aggregated push to one key, at once, on the file store, both finish
// (each checks the other kind outside its own update; it once took the
// other group's lock inside it, in opposite orders, and both waited until
// their deadlines).
func TestKindCheckHoldsOneLock(t *testing.T) {
	fs, _ := fileStore(t)
	wg := &sync.WaitGroup{}
	wg.Add(2)
	k := key("job", "x")
	hold := map[string]bool{GroupID(k, Owner{}): true, AggregateGroupID(k, Owner{}): true}
	s, _, c := newAggState(t, &barrierStore{Store: fs, hold: hold, wg: wg})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- s.Push(ctx, pushOf(t, "a 1\n", k, Owner{}, true, c.t)) }()
	go func() { errs <- s.Aggregate(ctx, aggOf(t, "# TYPE b_total counter\nb_total 1\n", k, "", c.t)) }()
	for range 2 {
		var ke *KindError
		if err := <-errs; err != nil && !errors.As(err, &ke) {
			t.Errorf("%v, want success or a KindError", err)
		}
	}
}

// TestRecordFailureLeavesAggregatedKeysAlone: an invalid plain push to an
// aggregated group's key records no plain group there (it once did, and
// every scheduled run then wrote push_time_seconds for the key twice).
func TestRecordFailureLeavesAggregatedKeysAlone(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	if err := s.Aggregate(ctx, aggOf(t, "# TYPE a_total counter\na_total 1\n", k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	var failure wire.WriteRequest
	failure.AppendSample(failure.AppendLabels(wire.Label{Name: "__name__", Value: "push_failure_time_seconds"}, wire.Label{Name: "job", Value: "agg"}),
		wire.Sample{Value: 1, Timestamp: c.t.UnixMilli()})
	s.RecordFailure(ctx, k, Owner{}, &failure)
	if live, err := s.live(ctx, GroupID(k, Owner{})); err != nil || live {
		t.Fatalf("plain group under the aggregated key: %v %v", live, err)
	}
	c.t = c.t.Add(time.Minute)
	w.reqs = nil
	if _, err := s.Reemit(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range w.last() {
		if strings.HasPrefix(l, pushT) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("push_time_seconds{job=agg} written %d times in one run, want 1", n)
	}
}

// promOrder makes a writer refuse as Prometheus does: a request with a
// sample older than its series' last is refused whole (400, nothing
// stored). Called under the writer's lock.
func promOrder(last map[string]int64, wr *wire.WriteRequest) error {
	for _, s := range wr.Series {
		if ts, ok := last[labelsString(s.Labels)]; ok && s.Samples[0].Timestamp < ts {
			return &upstream.Error{Status: http.StatusBadRequest, Msg: "out of order sample"}
		}
	}
	for _, s := range wr.Series {
		last[labelsString(s.Labels)] = s.Samples[0].Timestamp
	}
	return nil
}

// TestReemitOvertakenByAPush: a push that commits between a run's claim
// of a busy group and the run's write makes the upstream refuse the run's
// older totals; the run claims the group again and resends it whole, so
// the series the pushes do not carry stay visible (the run once skipped
// such a group, and with a push in every run's window those series
// vanished after the lookback).
func TestReemitOvertakenByAPush(t *testing.T) {
	st, _ := fileStore(t)
	s, w, c := newAggState(t, st)
	ctx := context.Background()
	k := key("job", "agg")
	last := map[string]int64{}
	race := false
	w.fail = func(wr *wire.WriteRequest) error {
		reemit := false
		for _, s := range wr.Series {
			reemit = reemit || strings.Contains(labelsString(s.Labels), `"b_total"`)
		}
		if race && reemit {
			race = false
			w.mu.Unlock()
			if err := s.Aggregate(ctx, aggOf(t, "# TYPE a_total counter\na_total 1\n", k, "", c.t)); err != nil {
				t.Error(err)
			}
			w.mu.Lock()
		}
		return promOrder(last, wr)
	}
	if err := s.Aggregate(ctx, aggOf(t, "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total 1\n", k, "", c.t)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c.t = c.t.Add(30 * time.Second)
		race = true
		if _, err := s.Reemit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	bv, bts := w.sample(t, `{__name__="b_total", job="agg"}`)
	av, ats := w.sample(t, `{__name__="a_total", job="agg"}`)
	if bv != "1" || av != "21" || ats-bts > 60*1000 {
		t.Errorf("after ten minutes: a_total %s at %d, b_total %s at %d; want 21 and 1, b_total written by the last run", av, ats, bv, bts)
	}
}
