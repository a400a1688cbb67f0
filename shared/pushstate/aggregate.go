package pushstate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/promrelay/promrelay/shared/aggregate"
	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// Idempotency of aggregated pushes: an aggregated group remembers the
// Idempotency-Key of the pushes it applied (IETF
// draft-ietf-httpapi-idempotency-key-header), at most MaxAppliedKeys of
// them and none older than AppliedKeyTTL; a push whose key it remembers
// adds nothing.
const (
	MaxAppliedKeys = 1024
	AppliedKeyTTL  = time.Hour
)

// ErrNoStore is an aggregated push or delete on a State without a group
// store: totals need one (PROMRELAY_STATE_URL).
var ErrNoStore = errors.New("aggregating pushes needs a group store (PROMRELAY_STATE_URL)")

// IdempotencyError is a push whose Idempotency-Key the group already
// applied to a push of other series or values: the draft's 422 (section
// 2.7, "reuse of an idempotency key with a different request payload").
type IdempotencyError struct{}

func (e *IdempotencyError) Error() string {
	return "the Idempotency-Key was already used for a different push to this group, and that push is counted; do not resend this one under another key unless it is a push of its own"
}

// KindError is a push to a grouping key whose group exists as the other
// kind: a plain push (PUT|POST /metrics/…) to the key of an aggregated
// group, or an aggregated one to a plain group's. Both would write
// push_time_seconds (and any metric of the same name) under the same
// labels upstream, and the upstream would refuse one of them as out of
// order. Answered 409.
type KindError struct {
	Aggregated bool // the existing group is aggregated
}

func (e *KindError) Error() string {
	if e.Aggregated {
		return "this grouping key belongs to an aggregated group (/aggregate/metrics/…): push to another grouping key, or DELETE the aggregated group first"
	}
	return "this grouping key belongs to a pushed group (/metrics/…): aggregate under another grouping key (add a label), or DELETE the pushed group first"
}

// CountedError is an upstream refusal (400) of an aggregated push's totals
// for what they hold, not for their order: the push's increment is in the
// group's totals, and a resend would count it again. The upstream keeps
// refusing the group's writes until the series it refuses is fixed or
// the group deleted.
type CountedError struct{ Err error }

func (e *CountedError) Error() string {
	return "the upstream refused the group's totals (" + e.Err.Error() + "); this push is counted in them: do not resend it. The group's writes fail until the refused series is fixed or the group is deleted"
}

func (e *CountedError) Unwrap() error { return e.Err }

// orderRefusal reports whether err is an upstream 400 that says a sample
// was out of order, a duplicate or too old: what an older total written
// after a newer one gets (Prometheus: "out of order sample", "duplicate
// sample for timestamp", "too old"; Cortex-based stores: "out of order
// sample", "duplicate sample", "sample timestamp too old", "out of
// bounds").
func orderRefusal(err error) bool {
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != http.StatusBadRequest {
		return false
	}
	m := strings.ToLower(ue.Msg + " " + ue.Detail)
	for _, w := range []string{"out of order", "out-of-order", "duplicate sample", "too old", "out of bounds"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// errKindCheck is what an update function of updateChecked returns for a
// group about to be created whose key has not been checked yet.
var errKindCheck = errors.New("pushstate: the other kind of group must be checked first")

// updateChecked runs s.o.Store.Update(ctx, id, fn), except that before fn
// creates the group (sees nil), other — the id of the other kind of group
// under the same key — must not be live, or the update is a *KindError
// (with aggregated, whether other is the aggregated one). The check runs
// outside the update, so that no update holds two groups' locks: a plain
// and an aggregated push creating their groups under one key at once took
// them in opposite orders and waited for each other until their
// deadlines. A group of the other kind created between the check and the
// update is not seen (as with S3's If-Match, which cannot span two
// objects): both then exist until one is deleted.
func (s *State) updateChecked(ctx context.Context, id, other string, aggregated bool, fn func(*groupstore.Group) (*groupstore.Group, error)) error {
	checked := false
	wrapped := func(old *groupstore.Group) (*groupstore.Group, error) {
		if old == nil && !checked {
			return nil, errKindCheck
		}
		return fn(old)
	}
	for {
		err := s.o.Store.Update(ctx, id, wrapped)
		if !errors.Is(err, errKindCheck) {
			return err
		}
		live, err := s.live(ctx, other)
		if err != nil {
			return err
		}
		if live {
			return &KindError{Aggregated: aggregated}
		}
		checked = true
	}
}

// live reports whether group id exists and is not deleted.
func (s *State) live(ctx context.Context, id string) (bool, error) {
	found := false
	err := s.o.Store.Update(ctx, id, func(cur *groupstore.Group) (*groupstore.Group, error) {
		found = cur != nil && !cur.Deleted
		return nil, groupstore.ErrKeep
	})
	return found, err
}

// AggregatePush is one converted push (push.Converter.Convert, external
// and writer labels applied) whose values are increments to add to the
// group's totals (shared/aggregate's rules).
type AggregatePush struct {
	Key   push.GroupingKey
	Owner Owner
	// Request holds the data series, then push_time_seconds as the last
	// series; Families[i] is the family name of Request.Series[i].
	Request  *wire.WriteRequest
	Families []string
	Time     time.Time
	// IdempotencyKey is the push's Idempotency-Key header; "" for none
	// (a retried push then counts again).
	IdempotencyKey string
}

// stateFamily is the family name under which an aggregated group keeps its
// own state (aggState as JSON in the family's Help, no series): no metric
// family has an empty name, a family without series writes nothing
// upstream, and every Update of the group keeps its families.
const stateFamily = ""

// aggState is an aggregated group's own state.
type aggState struct {
	// LastMs is the timestamp (Unix ms) of the last totals written: the
	// next are written at max(now, LastMs+1), so that a newer total always
	// has a later timestamp, whichever instance's clock assigned it.
	LastMs int64 `json:"last_ms"`
	// Applied holds the applied pushes, oldest first, appliedSize bytes
	// each: the first 16 bytes of a SHA-256 of the Idempotency-Key, the
	// first 8 of a SHA-256 of the push's series and values, and when it
	// was applied (Unix ms, big-endian; the top bit set for a key the
	// relay drew for a push without one, ownKey); base64 in JSON. Fixed-size
	// records keep a group of MaxAppliedKeys cheap to decode on every
	// push (44 KB of base64 at most).
	Applied []byte `json:"applied,omitempty"`
}

const appliedSize = 32

// loadState returns g's aggregation state and its families without the
// state; a state that does not decode reads as none.
func loadState(g *groupstore.Group) (aggState, map[string]*groupstore.Family) {
	var st aggState
	if g == nil {
		return st, nil
	}
	fams := make(map[string]*groupstore.Family, len(g.Families))
	for n, f := range g.Families {
		if n == stateFamily {
			_ = json.Unmarshal([]byte(f.Help), &st)
			continue
		}
		fams[n] = f
	}
	return st, fams
}

func storeState(g *groupstore.Group, st aggState) {
	b, _ := json.Marshal(st)
	g.Families[stateFamily] = &groupstore.Family{Help: string(b)}
}

// IsAggregate reports whether g is an aggregated group.
func IsAggregate(g *groupstore.Group) bool {
	_, ok := g.Families[stateFamily]
	return ok
}

// prune drops the applied keys past their time at now (Unix ms) —
// AppliedKeyTTL for a sender's key, keylessKeyTTL for a request's own —
// and beyond MaxAppliedKeys-1 (room for one more) the oldest requests' own
// first, then the oldest senders' keys: keyless pushes never push a
// sender's key out while a key of their own is left.
func (st *aggState) prune(now int64) {
	n := len(st.Applied) / appliedSize
	keep := st.Applied[:0]
	keyless := 0
	for i := 0; i < n; i++ {
		rec := st.Applied[i*appliedSize : (i+1)*appliedSize]
		at, own := recordTime(rec)
		ttl := AppliedKeyTTL
		if own {
			ttl = keylessKeyTTL
		}
		if at > now-ttl.Milliseconds() {
			keep = append(keep, rec...)
			if own {
				keyless++
			}
		}
	}
	st.Applied = keep
	over := len(st.Applied)/appliedSize - (MaxAppliedKeys - 1)
	if over <= 0 {
		return
	}
	// Drop the oldest of the requests' own keys, then of the senders'.
	drop := func(own bool, k int) {
		keep := st.Applied[:0]
		for i := 0; i < len(st.Applied)/appliedSize; i++ {
			rec := st.Applied[i*appliedSize : (i+1)*appliedSize]
			if _, o := recordTime(rec); o == own && k > 0 {
				k--
				continue
			}
			keep = append(keep, rec...)
		}
		st.Applied = keep
	}
	k := min(over, keyless)
	drop(true, k)
	drop(false, over-k)
}

// ownKey marks, in a record's time, a key the relay drew for a push
// without an Idempotency-Key.
const ownKey = uint64(1) << 63

// keylessKeyTTL is how long a push without an Idempotency-Key is
// remembered under the key the relay drew for it: longer than any
// request's deadline (Lambda's longest invocation is 15 minutes), which is
// all it is for.
const keylessKeyTTL = 15 * time.Minute

// recordTime returns when a record was applied (Unix ms) and whether its
// key is the relay's own.
func recordTime(rec []byte) (int64, bool) {
	v := binary.BigEndian.Uint64(rec[24:])
	return int64(v &^ ownKey), v&ownKey != 0
}

// find returns the fingerprint recorded with key, if key was applied.
func (st *aggState) find(key []byte) ([]byte, bool) {
	for i := 0; i+appliedSize <= len(st.Applied); i += appliedSize {
		if bytes.Equal(st.Applied[i:i+16], key) {
			return st.Applied[i+16 : i+24], true
		}
	}
	return nil, false
}

func (st *aggState) add(key, fp []byte, ms int64, own bool) {
	t := uint64(ms)
	if own {
		t |= ownKey
	}
	st.Applied = append(st.Applied, key...)
	st.Applied = append(st.Applied, fp...)
	st.Applied = binary.BigEndian.AppendUint64(st.Applied, t)
}

// AggregateGroupID returns the store id of the aggregated group key of
// owner: "t<16 hex>/a<40 hex>", the tenant folder of GroupID and a SHA-256
// with a domain tag of its own, so an aggregated group never shares its id
// with the plain group of the same grouping key.
func AggregateGroupID(key push.GroupingKey, owner Owner) string {
	tenant := sha256.Sum256(appendString([]byte("promrelay tenant v1\x00"), owner.Tenant))
	buf := binary.AppendUvarint([]byte("promrelay aggregated group v1\x00"), uint64(len(owner.Labels)))
	buf = wire.AppendLabelsKey(buf, owner.Labels)
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	h := sha256.Sum256(wire.AppendLabelsKey(buf, key))
	return "t" + hex.EncodeToString(tenant[:8]) + "/a" + hex.EncodeToString(h[:20])
}

// Aggregate adds p's increments to the totals of its aggregated group
// (shared/aggregate.Merge; PUT and POST alike: families and series a push
// does not carry keep their totals), and writes the totals of the series
// it pushed, the group's pending staleness markers and push_time_seconds
// upstream at a timestamp the store update assigns, max(now, the last one
// + 1 ms), so that a newer total always has a later timestamp. An
// upstream 400 for that write is logged, not answered, when the group's
// last write is later than this one and the upstream calls it an ordering
// refusal (a newer total got there first, and Prometheus refuses the older
// as out of order); any other is answered as a *CountedError: the
// increment stays in the totals (an upstream that ingests the valid part
// of a request it refuses, as Cortex-based ones do, already has them; a
// rollback would make its counters go down), so the sender must not
// resend it.
//
// With p.IdempotencyKey set and already applied to the group, nothing is
// added, and the pushed series' current totals are written again at the
// group's last timestamp: a sender that retries after a failure (the
// upstream's, the store's, or a lost answer) counts once. Without one,
// the push gets a random key of its own, so that the store's retries
// within the request count it once; the sender's retries count again.
//
// A store conflict is retried until ctx ends. Errors: ErrNoStore,
// *aggregate.IncrementError or *aggregate.ConflictError (nothing stored),
// *IdempotencyError, *KindError, *QuotaError, *StoreError, *CountedError
// (the upstream refused the totals as invalid: counted, do not resend), or
// the Writer's error (the increment stays stored; retry with the same key).
func (s *State) Aggregate(ctx context.Context, p AggregatePush) error {
	wr := p.Request
	if len(wr.Series) == 0 || len(p.Families) != len(wr.Series) {
		return errors.New("pushstate: a push needs its push_time_seconds series")
	}
	if s.o.Store == nil {
		return ErrNoStore
	}
	fams, key := s.families(Push{Key: p.Key, Owner: p.Owner, Request: wr, Families: p.Families})
	id := AggregateGroupID(p.Key, p.Owner)
	// Without a key of the sender's, a random one of this request's: the
	// store's own retry of a write whose answer was lost (an S3 PUT that
	// succeeded, retried, then refused by If-Match) runs fn again on the
	// group that already holds this push, and must not add it twice.
	fp := fingerprint(fams)
	var idem []byte
	if p.IdempotencyKey != "" {
		h := sha256.Sum256(appendString([]byte("promrelay idempotency key v1\x00"), p.IdempotencyKey))
		idem = h[:16]
	} else {
		idem = make([]byte, 16)
		rand.Read(idem)
	}
	now := p.Time.UnixMilli()
	var (
		sent *groupstore.Group
		ts   int64
	)
	fn := func(old *groupstore.Group) (*groupstore.Group, error) {
		sent = nil
		if old == nil {
			if err := s.checkGroups(ctx, id); err != nil {
				return nil, err
			}
		}
		st, totals := loadState(old)
		st.prune(now)
		if got, ok := st.find(idem); ok {
			if !bytes.Equal(got, fp) {
				return nil, &IdempotencyError{}
			}
			if old != nil && !old.Deleted {
				sent, ts = totalsOf(old), st.LastMs
			}
			return nil, groupstore.ErrKeep
		}
		live := old != nil && !old.Deleted
		if !live {
			totals = nil
		}
		merged, err := aggregate.Merge(totals, fams)
		if err != nil {
			return nil, err
		}
		g := &groupstore.Group{ID: id, Key: key, Tenant: p.Owner.Tenant, PushTime: now, Families: merged}
		if old != nil {
			g.FailureTime = old.FailureTime
			g.Stale = slices.Clone(old.Stale)
			if live {
				// Merge keeps every series (a type change is a
				// ConflictError); whatever left the group gets its
				// staleness markers.
				addStale(g, removed(old, g))
			}
		}
		clearStale(g, allSeries(g))
		if err := s.checkSeries(g); err != nil {
			return nil, err
		}
		// The clock at the update, not at the request's start: a push
		// that waited for the store still writes a current sample.
		ts = max(s.o.Now().UnixMilli(), st.LastMs+1)
		st.LastMs = ts
		st.add(idem, fp, now, p.IdempotencyKey == "")
		storeState(g, st)
		sent = totalsOf(g)
		return g, nil
	}
	// A new group: the key must not be a plain group's.
	plain := GroupID(p.Key, p.Owner)
	err := s.updateChecked(ctx, id, plain, false, fn)
	for errors.Is(err, groupstore.ErrConflict) && ctx.Err() == nil {
		err = s.updateChecked(ctx, id, plain, false, fn)
	}
	if err != nil {
		var ie *aggregate.IncrementError
		var ce *aggregate.ConflictError
		var de *IdempotencyError
		var ke *KindError
		if errors.As(err, &ie) || errors.As(err, &ce) || errors.As(err, &de) || errors.As(err, &ke) {
			return err
		}
		return storeError(err)
	}
	if sent == nil {
		return nil // a replay onto a group deleted since
	}
	var out wire.WriteRequest
	appendTotals(&out, touched(sent, fams), ts, wr.Metadata)
	if err := s.writeData(ctx, p.Owner.Tenant, &out); err != nil {
		if !rejected(err) {
			return err
		}
		// Refused as out of order only because a newer total got there
		// first? Then the upstream says so, and the group's last write
		// is later than this one's.
		if !orderRefusal(err) {
			return &CountedError{Err: err}
		}
		if last, rerr := s.lastWritten(ctx, id); rerr != nil || last <= ts {
			return &CountedError{Err: err}
		}
		s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "aggregated totals not stored upstream: a newer total is already there", slog.String("group", id), slog.String("error", err.Error()))
		return nil
	}
	s.settle(ctx, sent, "staleness markers sent but not cleared; the scheduled job resends them")
	return nil
}

// storedState reads the aggregation state of group id as stored (the
// zero state for a group gone).
func (s *State) storedState(ctx context.Context, id string) (aggState, error) {
	var st aggState
	err := s.o.Store.Update(ctx, id, func(cur *groupstore.Group) (*groupstore.Group, error) {
		st, _ = loadState(cur)
		return nil, groupstore.ErrKeep
	})
	return st, err
}

// lastWritten returns the timestamp (Unix ms) of the last totals written
// of aggregated group id, 0 for a group gone.
func (s *State) lastWritten(ctx context.Context, id string) (int64, error) {
	st, err := s.storedState(ctx, id)
	return st.LastMs, err
}

// touched is g with only the series of the pushed families fams (the
// totals a push changed: an upstream billed per sample is not sent the
// whole group on every push; the scheduled job re-emits it whole), its
// staleness markers kept.
func touched(g *groupstore.Group, fams map[string]*groupstore.Family) *groupstore.Group {
	out := *g
	out.Families = make(map[string]*groupstore.Family, len(fams))
	var key []byte
	for name, inc := range fams {
		f := g.Families[name]
		if f == nil {
			continue
		}
		pushed := make(map[string]bool, len(inc.Series))
		for _, s := range inc.Series {
			key = wire.AppendLabelsKey(key[:0], s.Labels)
			pushed[string(key)] = true
		}
		t := &groupstore.Family{Type: f.Type, Help: f.Help, Unit: f.Unit}
		for _, s := range f.Series {
			key = wire.AppendLabelsKey(key[:0], s.Labels)
			if pushed[string(key)] {
				t.Series = append(t.Series, s)
			}
		}
		out.Families[name] = t
	}
	return &out
}

// totalsOf is what a write of g's totals needs: its id, key, tenant, push
// time, families (shared: the store's copy is not changed after the
// update) and pending staleness markers (copied).
func totalsOf(g *groupstore.Group) *groupstore.Group {
	fams := make(map[string]*groupstore.Family, len(g.Families))
	for n, f := range g.Families {
		if n != stateFamily {
			fams[n] = f
		}
	}
	return &groupstore.Group{ID: g.ID, Key: g.Key, Tenant: g.Tenant, PushTime: g.PushTime, Families: fams, Stale: slices.Clone(g.Stale)}
}

// appendTotals appends to wr every series of g at ts (Unix ms), a
// staleness marker for each of g.Stale, and push_time_seconds last, with
// the metadata of g's families and push_time_seconds' from meta.
func appendTotals(wr *wire.WriteRequest, g *groupstore.Group, ts int64, meta []wire.Metadata) {
	for _, s := range allSeries(g) {
		wr.AppendSample(wr.AppendLabels(s.Labels...), wire.Sample{Value: s.Float(), Timestamp: ts})
	}
	appendStale(wr, g.Stale, ts)
	wr.AppendSample(wr.AppendLabels(timeLabels(push.PushTimeMetric, g.Key)...), wire.Sample{Value: float64(g.PushTime) / 1000, Timestamp: ts})
	names := make([]string, 0, len(g.Families))
	for n := range g.Families {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := g.Families[n]
		wr.Metadata = append(wr.Metadata, wire.Metadata{Type: f.Type, FamilyName: n, Help: f.Help, Unit: f.Unit})
	}
	for _, m := range meta {
		if m.FamilyName == push.PushTimeMetric {
			wr.Metadata = append(wr.Metadata, m)
		}
	}
}

// fingerprint is a hash of a push's series and values, families in name
// order: what tells a retry of a push from another push with its key.
func fingerprint(fams map[string]*groupstore.Family) []byte {
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	var buf []byte
	for _, n := range names {
		buf = appendString(buf[:0], n)
		for _, s := range fams[n].Series {
			buf = wire.AppendLabelsKey(buf, s.Labels)
			buf = binary.BigEndian.AppendUint64(buf, s.Value)
		}
		h.Write(buf)
	}
	return h.Sum(nil)[:8]
}

// DeleteAggregate removes the aggregated group of key as Delete removes a
// group: every total, push_time_seconds and push_failure_time_seconds get
// a staleness marker, at a timestamp after the group's last totals
// (max(now, last + 1 ms)), and the group is gone once the upstream took
// them. Deleting a group that does not exist does nothing. Errors:
// ErrNoStore, *StoreError, or the Writer's.
func (s *State) DeleteAggregate(ctx context.Context, key push.GroupingKey, owner Owner) error {
	if s.o.Store == nil {
		return ErrNoStore
	}
	id := AggregateGroupID(key, owner)
	now := s.o.Now().UnixMilli()
	var (
		sent *groupstore.Group
		ts   int64
	)
	fn := func(old *groupstore.Group) (*groupstore.Group, error) {
		sent = nil
		if old == nil {
			return nil, nil // nothing, or a group that does not decode
		}
		st, _ := loadState(old)
		ts = max(now, st.LastMs+1)
		st.LastMs = ts
		old.ID = id
		if !old.Deleted {
			addStale(old, staleSeries(old))
			old.Deleted = true
		}
		storeState(old, st)
		sent = snapshot(old)
		sent.Deleted = true
		return old, nil
	}
	err := s.o.Store.Update(ctx, id, fn)
	for errors.Is(err, groupstore.ErrConflict) && ctx.Err() == nil {
		err = s.o.Store.Update(ctx, id, fn)
	}
	if err != nil {
		return storeError(err)
	}
	if sent == nil {
		return nil
	}
	var wr wire.WriteRequest
	appendStale(&wr, sent.Stale, ts)
	if err := s.o.Write(ctx, sent.Tenant, &wr); err != nil {
		return err
	}
	s.settle(ctx, sent, "aggregated group deleted upstream but not in the store; the scheduled job finishes it")
	return nil
}

// claimAggregate is what the scheduled job does for an aggregated group
// instead of re-emitting the copy its listing read (see Reemit): a store
// update that reads the group's current totals and assigns them a
// timestamp after every earlier write of the group,
// max(now, last + 1 ms) (Unix ms), recorded as the last one. A push that
// committed after the listing read the group then cannot be overwritten
// by the listing's older totals at a later timestamp (a counter that goes
// down: a reset to rate() and increase()), and a push after the claim gets
// a later timestamp still. It returns nil for a group gone or deleted
// meanwhile. Errors: the store's.
func (s *State) claimAggregate(ctx context.Context, id string, now int64) (*groupstore.Group, int64, error) {
	var (
		sent *groupstore.Group
		ts   int64
	)
	err := s.o.Store.Update(ctx, id, func(cur *groupstore.Group) (*groupstore.Group, error) {
		sent = nil
		if cur == nil || cur.Deleted || !IsAggregate(cur) {
			return nil, groupstore.ErrKeep
		}
		st, _ := loadState(cur)
		ts = max(now, st.LastMs+1)
		st.LastMs = ts
		storeState(cur, st)
		sent = totalsOf(cur)
		return cur, nil
	})
	return sent, ts, err
}
