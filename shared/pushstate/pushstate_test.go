package pushstate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// sink records what the State writes, per tenant, as "name{labels}=value"
// strings; fail decides an error per request.
type sink struct {
	mu   sync.Mutex
	reqs map[string][][]string
	fail func(tenant string, wr *wire.WriteRequest) error
}

func (k *sink) write(_ context.Context, tenant string, wr *wire.WriteRequest) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		if err := k.fail(tenant, wr); err != nil {
			return err
		}
	}
	if k.reqs == nil {
		k.reqs = map[string][][]string{}
	}
	var r []string
	for _, s := range wr.Series {
		v := s.Samples[0].Value
		val := "stale"
		if math.Float64bits(v) != StaleNaN {
			val = formatFloat(v)
		}
		r = append(r, labelsString(s.Labels)+"="+val)
	}
	k.reqs[tenant] = append(k.reqs[tenant], r)
	return nil
}

func labelsString(ls []wire.Label) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "=" + strconv.Quote(l.Value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (k *sink) last(tenant string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.reqs[tenant]
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1]
}

func (k *sink) all(tenant string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, r := range k.reqs[tenant] {
		out = append(out, r...)
	}
	return out
}

func (k *sink) reset() {
	k.mu.Lock()
	k.reqs = nil
	k.mu.Unlock()
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newState(t testing.TB, store groupstore.Store, o Options) (*State, *sink, *clock) {
	t.Helper()
	k := &sink{}
	c := &clock{t: t0}
	o.Store, o.Write, o.Now = store, k.write, c.now
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.BatchSeries == 0 {
		o.BatchSeries = 1000
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, k, c
}

func fileStore(t *testing.T) (*groupstore.FileStore, string) {
	dir := t.TempDir()
	st, err := groupstore.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st, dir
}

// pushOf builds a converted push of text for key, as the relay does.
func pushOf(t testing.TB, text string, key push.GroupingKey, owner Owner, replace bool, now time.Time) Push {
	t.Helper()
	var e wire.Exposition
	if err := e.ParseText([]byte(text), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	var c push.Converter
	wr := &wire.WriteRequest{}
	if err := c.Convert(wr, &e, key, now, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	wr.ApplyLabels(owner.Labels)
	return Push{Key: key, Owner: owner, Replace: replace, Request: wr, Families: slices.Clone(c.SeriesFamily), Time: now}
}

func key(kv ...string) push.GroupingKey {
	var k push.GroupingKey
	for i := 0; i < len(kv); i += 2 {
		k = append(k, wire.Label{Name: kv[i], Value: kv[i+1]})
	}
	slices.SortFunc(k, func(a, b wire.Label) int { return strings.Compare(a.Name, b.Name) })
	return k
}

func has(t *testing.T, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %s in\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func lacks(t *testing.T, got []string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		for _, g := range got {
			if strings.HasPrefix(g, w) {
				t.Errorf("unexpected %s in\n%s", g, strings.Join(got, "\n"))
			}
		}
	}
}

func TestPutReplacesAndMarksRemovedSeriesStale(t *testing.T) {
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	k1 := key("job", "j")
	if err := s.Push(ctx, pushOf(t, "a 1\nb 2\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	has(t, k.all(""), `{__name__="a", job="j"}=1`, `{__name__="b", job="j"}=2`)
	k.reset()
	c.t = c.t.Add(time.Minute)
	if err := s.Push(ctx, pushOf(t, "a 3\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	has(t, k.all(""), `{__name__="a", job="j"}=3`, `{__name__="b", job="j"}=stale`)
	// The marker was settled: the scheduled job sends only a.
	k.reset()
	res, err := s.Reemit(ctx)
	if err != nil || res.Groups != 1 || !res.Complete {
		t.Fatalf("Reemit = %+v, %v", res, err)
	}
	got := k.all("")
	has(t, got, `{__name__="a", job="j"}=3`)
	lacks(t, got, `{__name__="b"`)
}

func TestPostKeepsOtherFamilies(t *testing.T) {
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	k1 := key("job", "j")
	for _, body := range []string{"a 1\nb 2\n", "b 5\nc 6\n"} {
		if err := s.Push(ctx, pushOf(t, body, k1, Owner{}, false, c.t)); err != nil {
			t.Fatal(err)
		}
	}
	k.reset()
	if _, err := s.Reemit(ctx); err != nil {
		t.Fatal(err)
	}
	has(t, k.all(""), `{__name__="a", job="j"}=1`, `{__name__="b", job="j"}=5`, `{__name__="c", job="j"}=6`)
}

func TestDeleteMarksEverySeriesStaleAndRemovesTheGroup(t *testing.T) {
	st, dir := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	k1 := key("job", "j", "instance", "i")
	if err := s.Push(ctx, pushOf(t, "a 1\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	k.reset()
	if err := s.Delete(ctx, k1, Owner{}); err != nil {
		t.Fatal(err)
	}
	has(t, k.last(""), `{__name__="a", instance="i", job="j"}=stale`,
		`{__name__="push_time_seconds", instance="i", job="j"}=stale`,
		`{__name__="push_failure_time_seconds", instance="i", job="j"}=stale`)
	page, err := st.List(ctx, "", 10)
	if err != nil || len(page.Groups) != 0 {
		t.Fatalf("groups after delete: %v, %v", page.Groups, err)
	}
	// No lock file is left behind (a lock file per group id was never
	// removed before).
	var files []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("files left after delete: %v", files)
	}
	// Deleting again writes nothing.
	k.reset()
	if err := s.Delete(ctx, k1, Owner{}); err != nil || k.last("") != nil {
		t.Fatalf("second delete: %v, wrote %v", err, k.last(""))
	}
}

func TestFailedDeleteIsFinishedByTheScheduledJob(t *testing.T) {
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	k1 := key("job", "j")
	if err := s.Push(ctx, pushOf(t, "a 1\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	down := &upstream.Error{Status: http.StatusBadGateway, Msg: "down"}
	k.fail = func(string, *wire.WriteRequest) error { return down }
	if err := s.Delete(ctx, k1, Owner{}); !errors.Is(err, down) {
		t.Fatalf("Delete = %v, want the upstream's error", err)
	}
	k.fail = nil
	k.reset()
	if _, err := s.Reemit(ctx); err != nil {
		t.Fatal(err)
	}
	got := k.all("")
	has(t, got, `{__name__="a", job="j"}=stale`)
	lacks(t, got, `{__name__="a", job="j"}=1`)
	if page, _ := st.List(ctx, "", 10); len(page.Groups) != 0 {
		t.Fatalf("group still stored: %+v", page.Groups[0])
	}
}

// TestGroupIDsCannotCollideAcrossOwners is the attack of issue 11: a writer
// without a tenant chose a job value whose NUL-joined form equals tenant
// team-a's group, and its DELETE removed that group.
func TestGroupIDsCannotCollideAcrossOwners(t *testing.T) {
	victim := Owner{Tenant: "team-a", Labels: []wire.Label{{Name: "tenant_userid", Value: "1001"}}}
	victimKey := key("job", "j")
	attackKey := key("job", "j\x00\\x00tenant\x00team-a\x00tenant_userid\x001001")
	if legacyID(attackKey, Owner{}) != legacyID(victimKey, victim) {
		t.Fatal("the test no longer reproduces the 0.1 collision")
	}
	if GroupID(attackKey, Owner{}) == GroupID(victimKey, victim) {
		t.Fatal("group ids collide")
	}
	// Owners with the same name and labels in other places differ too.
	if GroupID(victimKey, Owner{Tenant: "a", Labels: []wire.Label{{Name: "b", Value: "c"}}}) ==
		GroupID(victimKey, Owner{Tenant: "ab", Labels: []wire.Label{{Name: "", Value: "c"}}}) {
		t.Fatal("owner hashes collide")
	}
	// A label cannot move between the owner and the grouping key.
	if GroupID(key("job", "j"), Owner{Tenant: "a", Labels: []wire.Label{{Name: "x", Value: "1"}}}) ==
		GroupID(key("job", "j", "x", "1"), Owner{Tenant: "a"}) {
		t.Fatal("owner labels and grouping labels collide")
	}
	// A tenant's groups share a folder, whatever the writer's labels.
	folder := func(id string) string { return strings.Split(id, "/")[0] }
	if folder(GroupID(victimKey, victim)) != folder(GroupID(key("job", "other"), Owner{Tenant: "team-a"})) ||
		folder(GroupID(victimKey, victim)) == folder(GroupID(victimKey, Owner{Tenant: "team-b"})) {
		t.Fatal("group folders are not per tenant")
	}

	// A 0.1 group of the victim cannot be deleted by the attacker, and is
	// taken over by the victim's next push.
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	legacy := &groupstore.Group{Key: groupstore.LabelSet(append(slices.Clone(victimKey), victim.Labels...)), Tenant: "team-a", PushTime: t0.UnixMilli(),
		Families: map[string]*groupstore.Family{"old": {Series: []groupstore.Series{{Labels: []wire.Label{{Name: "__name__", Value: "old"}, {Name: "job", Value: "j"}, {Name: "tenant_userid", Value: "1001"}}, Value: math.Float64bits(7)}}}}}
	lid := legacyID(victimKey, victim)
	if err := st.Update(ctx, lid, func(*groupstore.Group) (*groupstore.Group, error) { return legacy, nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, attackKey, Owner{}); err != nil {
		t.Fatal(err)
	}
	if got := k.all(""); len(got) != 0 {
		t.Fatalf("the attacker's delete wrote %v", got)
	}
	c.t = c.t.Add(time.Minute)
	if err := s.Push(ctx, pushOf(t, "new 1\n", victimKey, victim, true, c.t)); err != nil {
		t.Fatal(err)
	}
	has(t, k.all("team-a"), `{__name__="new", job="j", tenant_userid="1001"}=1`, `{__name__="old", job="j", tenant_userid="1001"}=stale`)
	page, _ := st.List(ctx, "", 10)
	if len(page.Groups) != 1 || page.Groups[0].ID != GroupID(victimKey, victim) {
		t.Fatalf("groups after the takeover: %+v", page.Groups)
	}
}

func TestMaxSeriesPerGroup(t *testing.T) {
	st, _ := fileStore(t)
	s, _, c := newState(t, st, Options{MaxSeriesPerGroup: 2})
	ctx := context.Background()
	k1 := key("job", "j")
	if err := s.Push(ctx, pushOf(t, "a 1\nb 1\n", k1, Owner{}, false, c.t)); err != nil {
		t.Fatal(err)
	}
	// POST grows a group: the third series is over the limit.
	err := s.Push(ctx, pushOf(t, "c 1\n", k1, Owner{}, false, c.t))
	var le *QuotaError
	if !errors.As(err, &le) || le.What != LimitSeriesPerGroup || le.Have != 3 {
		t.Fatalf("Push = %v, want the series limit", err)
	}
	// A PUT that replaces them fits.
	if err := s.Push(ctx, pushOf(t, "c 1\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
}

func TestMaxGroupsPerTenant(t *testing.T) {
	st, _ := fileStore(t)
	s, _, c := newState(t, st, Options{MaxGroupsPerTenant: 2})
	ctx := context.Background()
	a := Owner{Tenant: "a"}
	for _, j := range []string{"1", "2"} {
		if err := s.Push(ctx, pushOf(t, "x 1\n", key("job", j), a, true, c.t)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Push(ctx, pushOf(t, "x 1\n", key("job", "3"), a, true, c.t))
	var le *QuotaError
	if !errors.As(err, &le) || le.What != LimitGroupsPerTenant {
		t.Fatalf("Push = %v, want the groups limit", err)
	}
	// Existing groups still take pushes; other tenants are not affected.
	if err := s.Push(ctx, pushOf(t, "x 2\n", key("job", "1"), a, true, c.t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, pushOf(t, "x 1\n", key("job", "3"), Owner{Tenant: "b"}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	// A failed push does not create a group past the limit either.
	var c2 push.Converter
	var wr wire.WriteRequest
	c2.FailureSeries(&wr, key("job", "4"), c.t)
	s.RecordFailure(ctx, key("job", "4"), a, &wr)
	if n, _ := st.Count(ctx, strings.Split(GroupID(key("job", "1"), a), "/")[0]+"/", 10); n != 2 {
		t.Fatalf("tenant a has %d groups, want 2", n)
	}
}

func TestRecordFailureKeepsTheFailureTime(t *testing.T) {
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	k1 := key("job", "j")
	if err := s.Push(ctx, pushOf(t, "a 1\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Second)
	var conv push.Converter
	var wr wire.WriteRequest
	conv.FailureSeries(&wr, k1, c.t)
	s.RecordFailure(ctx, k1, Owner{}, &wr)
	k.reset()
	if _, err := s.Reemit(ctx); err != nil {
		t.Fatal(err)
	}
	want := `{__name__="push_failure_time_seconds", job="j"}=` + formatFloat(float64(c.t.Unix()))
	has(t, k.all(""), want, `{__name__="a", job="j"}=1`)
}

func TestReemitSkipsBadGroupsAndGoesOn(t *testing.T) {
	st, dir := fileStore(t)
	s, k, c := newState(t, st, Options{BatchSeries: 1})
	ctx := context.Background()
	for _, tenant := range []string{"a", "b", "c"} {
		for _, j := range []string{"bad", "good"} {
			if err := s.Push(ctx, pushOf(t, "x 1\n", key("job", j), Owner{Tenant: tenant}, true, c.t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One group file is corrupt.
	corrupt := filepath.Join(dir, filepath.FromSlash(GroupID(key("job", "bad"), Owner{Tenant: "c"}))+".json")
	if err := os.WriteFile(corrupt, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Tenant a's upstream rejects job="bad"; tenant b's upstream is down.
	k.fail = func(tenant string, wr *wire.WriteRequest) error {
		if tenant == "b" {
			return &upstream.Error{Status: http.StatusServiceUnavailable, Msg: "down"}
		}
		for _, s := range wr.Series {
			if slices.Contains(s.Labels, wire.Label{Name: "job", Value: "bad"}) {
				return &upstream.Error{Status: http.StatusBadRequest, Msg: "out of bounds"}
			}
		}
		return nil
	}
	k.reset()
	res, err := s.Reemit(ctx)
	if err == nil || !strings.Contains(err.Error(), "tenant b") {
		t.Fatalf("Reemit error = %v, want tenant b's failure", err)
	}
	if res.Skipped != 2 || res.Complete {
		t.Errorf("result = %+v, want 2 skipped (corrupt, rejected), incomplete", res)
	}
	has(t, k.all("a"), `{__name__="x", job="good"}=1`)
	has(t, k.all("c"), `{__name__="x", job="good"}=1`)
	if got := k.all("b"); len(got) != 0 {
		t.Errorf("tenant b got %v", got)
	}
}

func TestReemitExpiresGroupsPastTheTTL(t *testing.T) {
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{TTL: time.Hour})
	ctx := context.Background()
	if err := s.Push(ctx, pushOf(t, "old 1\n", key("job", "old"), Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(50 * time.Minute)
	if err := s.Push(ctx, pushOf(t, "new 1\n", key("job", "new"), Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(20 * time.Minute)
	k.reset()
	res, err := s.Reemit(ctx)
	if err != nil || res.Expired != 1 {
		t.Fatalf("Reemit = %+v, %v", res, err)
	}
	has(t, k.all(""), `{__name__="old", job="old"}=stale`, `{__name__="new", job="new"}=1`)
	page, _ := st.List(ctx, "", 10)
	if len(page.Groups) != 1 || page.Groups[0].Key[0].Value != "new" {
		t.Fatalf("groups left: %+v", page.Groups)
	}
}

func TestReemitStopsBeforeTheDeadlineAndResumes(t *testing.T) {
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	for _, j := range []string{"1", "2", "3"} {
		if err := s.Push(ctx, pushOf(t, "x 1\n", key("job", j), Owner{}, true, c.t)); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-dctx.Done()
	k.reset()
	res, _ := s.Reemit(dctx)
	if res.Complete || res.Groups != 0 {
		t.Fatalf("Reemit past its deadline = %+v", res)
	}
	res, err := s.Reemit(ctx)
	if err != nil || !res.Complete || res.Groups != 3 {
		t.Fatalf("Reemit = %+v, %v", res, err)
	}
}

func TestStatelessPushWritesPushTimeAlone(t *testing.T) {
	s, k, c := newState(t, nil, Options{})
	ctx := context.Background()
	if s.Stateful() {
		t.Fatal("Stateful without a store")
	}
	if err := s.Push(ctx, pushOf(t, "a 1\n", key("job", "j"), Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	reqs := k.reqs[""]
	k.mu.Unlock()
	if len(reqs) != 2 || len(reqs[0]) != 1 || len(reqs[1]) != 1 || !strings.Contains(reqs[1][0], "push_time_seconds") {
		t.Fatalf("requests = %v, want the data, then push_time_seconds alone", reqs)
	}
	// A failed push-time write is not the push's failure.
	k.fail = func(_ string, wr *wire.WriteRequest) error {
		if strings.Contains(labelsString(wr.Series[0].Labels), "push_time") {
			return &upstream.Error{Status: http.StatusBadRequest, Msg: "out of order"}
		}
		return nil
	}
	if err := s.Push(ctx, pushOf(t, "a 1\n", key("job", "j"), Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	k.reset()
	k.fail = nil
	if err := s.Delete(ctx, key("job", "j"), Owner{}); err != nil || len(k.all("")) != 0 {
		t.Fatalf("stateless Delete = %v, wrote %v", err, k.all(""))
	}
	if res, err := s.Reemit(ctx); err != nil || res.Groups != 0 {
		t.Fatalf("stateless Reemit = %+v, %v", res, err)
	}
}

// TestPushTimeWithData: with PushTimeWithData a push is one request; a
// rejected one is split as without it.
func TestPushTimeWithData(t *testing.T) {
	s, k, c := newState(t, nil, Options{PushTimeWithData: true})
	ctx := context.Background()
	if err := s.Push(ctx, pushOf(t, "a 1\n", key("job", "j"), Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	reqs := k.reqs[""]
	k.mu.Unlock()
	if len(reqs) != 1 || len(reqs[0]) != 2 || !strings.Contains(reqs[0][1], "push_time_seconds") {
		t.Fatalf("requests = %v, want the data and push_time_seconds in one", reqs)
	}
	// An upstream that refuses the push time (out of order: a concurrent
	// push's is newer) refuses the request holding it; the data go alone,
	// then the push time alone, and its refusal is not the push's failure.
	k.reset()
	k.fail = pushTimeFails(&upstream.Error{Status: http.StatusBadRequest, Msg: "out of order"})
	if err := s.Push(ctx, pushOf(t, "a 1\n", key("job", "j"), Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	reqs = k.reqs[""]
	k.mu.Unlock()
	if len(reqs) != 1 || len(reqs[0]) != 1 || strings.Contains(reqs[0][0], "push_time_seconds") {
		t.Fatalf("requests taken = %v, want the data alone", reqs)
	}
	// A push of nothing but its push time: the refusal is logged too.
	k.reset()
	if err := s.Push(ctx, pushOf(t, "", key("job", "j"), Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	// Data the upstream refuses: the push fails, and no push time is sent
	// after them.
	k.reset()
	var seen [][]string
	k.fail = func(_ string, wr *wire.WriteRequest) error {
		var r []string
		for _, s := range wr.Series {
			r = append(r, labelsString(s.Labels))
		}
		seen = append(seen, r)
		return &upstream.Error{Status: http.StatusBadRequest, Msg: "out of bounds"}
	}
	if err := s.Push(ctx, pushOf(t, "a 1\nb 2\n", key("job", "j"), Owner{}, true, c.t)); err == nil {
		t.Fatal("a push whose data the upstream refused succeeded")
	}
	if len(seen) != 2 || len(seen[0]) != 3 || len(seen[1]) != 2 || strings.Contains(strings.Join(seen[1], " "), "push_time_seconds") {
		t.Fatalf("requests tried = %v, want the whole push, then its data alone", seen)
	}
	// Down: the sender must retry.
	k.fail = pushTimeFails(&upstream.Error{Status: http.StatusBadGateway, Msg: "down"})
	if err := s.Push(ctx, pushOf(t, "a 1\n", key("job", "j"), Owner{}, true, c.t)); err == nil {
		t.Fatal("a push whose push time could not be written succeeded")
	}
}

func TestStoreErrorsAreTransient(t *testing.T) {
	s, _, c := newState(t, failingStore{}, Options{})
	err := s.Push(context.Background(), pushOf(t, "a 1\n", key("job", "j"), Owner{}, true, c.t))
	var se *StoreError
	if !errors.As(err, &se) {
		t.Fatalf("Push = %v, want a *StoreError", err)
	}
	if err := s.Delete(context.Background(), key("job", "j"), Owner{}); !errors.As(err, &se) {
		t.Fatalf("Delete = %v, want a *StoreError", err)
	}
}

func TestNewNamesMissingOptions(t *testing.T) {
	for _, o := range []Options{{}, {Write: (&sink{}).write}, {Write: (&sink{}).write, Now: time.Now}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

type failingStore struct{}

func (failingStore) Update(context.Context, string, func(*groupstore.Group) (*groupstore.Group, error)) error {
	return errors.New("disk full")
}
func (failingStore) List(context.Context, string, int) (groupstore.Listing, error) {
	return groupstore.Listing{}, errors.New("disk full")
}
func (failingStore) Count(context.Context, string, int) (int, error) {
	return 0, errors.New("disk full")
}

// TestRefusedPushLeavesTheGroup: a push the upstream rejects as invalid is
// not kept, so the scheduled job does not resend it forever; a push-time
// write that fails for a transient reason fails the push (the sender
// retries), while one refused as out of order does not.
func TestRefusedPushLeavesTheGroup(t *testing.T) {
	st, _ := fileStore(t)
	s, k, c := newState(t, st, Options{})
	ctx := context.Background()
	k1 := key("job", "j")
	if err := s.Push(ctx, pushOf(t, "a 1\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Minute)
	k.fail = func(string, *wire.WriteRequest) error {
		return &upstream.Error{Status: http.StatusBadRequest, Msg: "out of bounds"}
	}
	if err := s.Push(ctx, pushOf(t, "a 2\nb 2\n", k1, Owner{}, true, c.t)); err == nil {
		t.Fatal("a rejected push succeeded")
	}
	k.fail = nil
	k.reset()
	if _, err := s.Reemit(ctx); err != nil {
		t.Fatal(err)
	}
	got := k.all("")
	has(t, got, `{__name__="a", job="j"}=1`)
	lacks(t, got, `{__name__="b"`, `{__name__="a", job="j"}=2`)

	// push_time_seconds refused as out of order: the push stands.
	k.fail = pushTimeFails(&upstream.Error{Status: http.StatusBadRequest, Msg: "out of order sample"})
	if err := s.Push(ctx, pushOf(t, "a 3\n", k1, Owner{}, true, c.t)); err != nil {
		t.Fatalf("push with an out-of-order push time: %v", err)
	}
	// ... but down: the sender must retry.
	k.fail = pushTimeFails(&upstream.Error{Status: http.StatusBadGateway, Msg: "down"})
	if err := s.Push(ctx, pushOf(t, "a 4\n", k1, Owner{}, true, c.t)); err == nil {
		t.Fatal("a push whose push time could not be written succeeded")
	}
}

// pushTimeFails is a sink failure that refuses, with err, every request
// holding push_time_seconds, as an upstream that already has a newer push
// time (or is down for it) would.
func pushTimeFails(err error) func(string, *wire.WriteRequest) error {
	return func(_ string, wr *wire.WriteRequest) error {
		for _, s := range wr.Series {
			if strings.Contains(labelsString(s.Labels), "push_time_seconds") {
				return err
			}
		}
		return nil
	}
}

// TestCorruptGroupIsReplaced: a stored group that cannot be decoded does
// not block its owner: a push replaces it and a delete removes it.
func TestCorruptGroupIsReplaced(t *testing.T) {
	st, dir := fileStore(t)
	s, _, c := newState(t, st, Options{})
	ctx := context.Background()
	for _, j := range []string{"put", "delete"} {
		path := filepath.Join(dir, filepath.FromSlash(GroupID(key("job", j), Owner{}))+".json")
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Push(ctx, pushOf(t, "a 1\n", key("job", "put"), Owner{}, true, c.t)); err != nil {
		t.Fatalf("push onto a corrupt group: %v", err)
	}
	if err := s.Delete(ctx, key("job", "delete"), Owner{}); err != nil {
		t.Fatalf("delete of a corrupt group: %v", err)
	}
	page, err := st.List(ctx, "", 10)
	if err != nil || len(page.Corrupt) != 0 || len(page.Groups) != 1 {
		t.Fatalf("after: %d groups, corrupt %v, %v", len(page.Groups), page.Corrupt, err)
	}
}
