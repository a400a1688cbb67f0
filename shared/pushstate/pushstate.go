// Package pushstate gives pushes the Pushgateway's semantics
// (https://github.com/prometheus/pushgateway#api) on a relay that keeps
// nothing in memory: PUT replaces a group, POST replaces only the metric
// families it carries, DELETE removes the group, and the series a push or a
// delete removed get a staleness marker upstream. With a group store
// (shared/groupstore) the groups survive between invocations and the
// scheduled job re-emits them, so pushed values stay visible as a
// Pushgateway keeps them scrapeable; without one, a push is relayed as it
// is and a DELETE has nothing to remove.
//
// Every method takes the request's context and does all its work — store
// updates, upstream writes — within its deadline.
package pushstate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// StaleNaN is the staleness marker: the NaN whose bits Prometheus reserves
// to mark a series as gone (value.StaleNaN in prometheus/model/value).
const StaleNaN uint64 = 0x7ff0000000000002

// Writer sends one write request to the upstream of tenant ("" for writers
// without a tenant). Its errors are the upstream client's (*upstream.Error
// for answers), returned as they are.
type Writer func(ctx context.Context, tenant string, wr *wire.WriteRequest) error

// Options configure a State. Every field without "optional" is required.
type Options struct {
	// Store keeps the groups; optional: nil relays pushes without state.
	Store groupstore.Store
	// Write sends series upstream.
	Write Writer
	// TTL deletes groups not pushed for this long in the scheduled job;
	// 0 keeps them (the Pushgateway never expires groups).
	TTL time.Duration
	// MaxSeriesPerGroup bounds the series a group holds after a push
	// (POST adds to a group); 0 is no limit.
	MaxSeriesPerGroup int
	// MaxGroupsPerTenant bounds the groups one tenant (or the writers
	// without one) can create; 0 is no limit.
	MaxGroupsPerTenant int
	// BatchSeries is the most series the scheduled job puts in one write
	// request (groups are never split, so a batch ends at the first group
	// that reaches it).
	BatchSeries int
	// PushTimeWithData, optional, sends a push's push_time_seconds in the
	// same request as its data series, which the upstream then stores
	// together or not at all (Prometheus commits a remote write whole),
	// saving one upstream request per push. A request the upstream
	// rejects (400: a concurrent push's newer push time makes the gauge
	// out of order) is resent split, the data first, as without it. An
	// upstream that stores part of a request it rejects (some Cortex-like
	// stores do) may then keep a push time of a push whose data it refused.
	PushTimeWithData bool
	// Now is the clock of push times, TTLs and re-emitted samples.
	Now func() time.Time
	// Logger takes what a push or the job does not answer: a push time
	// refused as out of order, markers not settled, groups skipped.
	Logger *slog.Logger
}

// State applies pushes and runs the scheduled job. It is safe for
// concurrent use.
type State struct{ o Options }

// New returns the State for o; an error names a missing option.
func New(o Options) (*State, error) {
	switch {
	case o.Write == nil:
		return nil, errors.New("pushstate: Write is required")
	case o.Now == nil:
		return nil, errors.New("pushstate: Now is required")
	case o.Logger == nil:
		return nil, errors.New("pushstate: Logger is required")
	case o.Store != nil && o.BatchSeries <= 0:
		return nil, errors.New("pushstate: BatchSeries must be positive")
	}
	return &State{o: o}, nil
}

// Stateful reports whether s keeps groups in a store.
func (s *State) Stateful() bool { return s.o.Store != nil }

// Owner is who pushes: groups of different owners never meet, whatever
// their grouping keys.
type Owner struct {
	Tenant string       // "" for writers without a tenant
	Labels []wire.Label // the writer's identity labels, sorted by name
}

// QuotaError is a push refused for a limit of the group store (not a
// limit of one request, which is wire.LimitError).
type QuotaError struct {
	What  string // "series per group" or "groups per tenant"
	Limit int
	Have  int // how many the push would have made
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("the push would make %d %s, more than the limit of %d", e.Have, e.What, e.Limit)
}

// Limits of QuotaError.What.
const (
	LimitSeriesPerGroup  = "series per group"
	LimitGroupsPerTenant = "groups per tenant"
)

// StoreError is a group store failure: transient, the sender should retry.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return "group store: " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// Push is one converted push (push.Converter.Convert), with the external
// and writer labels already applied.
type Push struct {
	Key   push.GroupingKey
	Owner Owner
	// Replace is PUT: the push replaces the whole group; POST replaces
	// only the families it carries.
	Replace bool
	// Request holds the data series, then push_time_seconds as the last
	// series; Families[i] is the family name of Request.Series[i].
	Request  *wire.WriteRequest
	Families []string
	Time     time.Time
}

// Push stores p as the Pushgateway does and writes its samples upstream,
// with a staleness marker for every series it removed from the group. The
// markers stay in the group until the upstream took them, so a failed write
// loses none of them. Without a store, the data series are written as
// they are. Either way push_time_seconds follows the data in a request of
// its own, or goes in the same request with Options.PushTimeWithData (see
// writeData).
//
// Errors: *QuotaError, *KindError (the key is an aggregated group's),
// *StoreError, or the Writer's error for the data series. Nothing is acknowledged the upstream did not take.
func (s *State) Push(ctx context.Context, p Push) error {
	wr := p.Request
	if len(wr.Series) == 0 || len(p.Families) != len(wr.Series) {
		return errors.New("pushstate: a push needs its push_time_seconds series")
	}
	if s.o.Store == nil {
		return s.writeData(ctx, p.Owner.Tenant, wr)
	}
	fams, key := s.families(p)
	id := GroupID(p.Key, p.Owner)
	created := false
	var sent, prev, mine *groupstore.Group
	// A new group: the key must not be an aggregated group's.
	err := s.updateChecked(ctx, id, AggregateGroupID(p.Key, p.Owner), true, func(old *groupstore.Group) (*groupstore.Group, error) {
		created, prev = old == nil, old
		if created {
			if err := s.checkGroups(ctx, id); err != nil {
				return nil, err
			}
		}
		g := merge(old, fams, p.Replace)
		g.ID, g.Key, g.Tenant, g.PushTime = id, key, p.Owner.Tenant, p.Time.UnixMilli()
		if err := s.checkSeries(g); err != nil {
			return nil, err
		}
		sent, mine = snapshot(g), g
		return g, nil
	})
	if err == nil && created {
		adopted, adoptedMine, aerr := s.adoptLegacy(ctx, id, p, key)
		switch {
		case aerr != nil:
			s.rollback(ctx, id, prev, mine)
			err = aerr
		case adopted != nil:
			sent, mine = adopted, adoptedMine
		}
	}
	if err != nil {
		return storeError(err)
	}
	// Staleness markers go with the data; push_time_seconds stays last.
	last := wr.Series[len(wr.Series)-1]
	wr.Series = wr.Series[:len(wr.Series)-1]
	appendStale(wr, sent.Stale, p.Time.UnixMilli())
	wr.Series = append(wr.Series, last)
	if err := s.writeData(ctx, p.Owner.Tenant, wr); err != nil {
		if rejected(err) {
			// The upstream will never take this push: the group must not
			// keep it, or every scheduled run would resend it.
			s.rollback(ctx, id, prev, mine)
		}
		return err
	}
	s.settle(ctx, sent, "staleness markers sent but not cleared; the scheduled job resends them")
	return nil
}

// rollback puts the group id back as it was before a push (prev, nil for
// none) that the sender was refused, unless the group is no longer what
// that push stored (mine): another push changed it since, even in the
// same millisecond. A failure is logged: the push's own answer is the
// refusal.
func (s *State) rollback(ctx context.Context, id string, prev, mine *groupstore.Group) {
	want, _ := json.Marshal(mine)
	err := s.o.Store.Update(ctx, id, func(cur *groupstore.Group) (*groupstore.Group, error) {
		if cur == nil || mine == nil {
			return nil, groupstore.ErrKeep
		}
		if got, _ := json.Marshal(cur); !bytes.Equal(got, want) {
			return nil, groupstore.ErrKeep
		}
		return prev, nil
	})
	if err != nil {
		s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "a refused push stays in the group store", slog.String("group", id), slog.String("error", err.Error()))
	}
}

// writeData writes wr, whose last series is push_time_seconds: its data
// series, then push_time_seconds in a request of its own. Concurrent pushes
// to one group write that gauge at nearly the same millisecond, and
// Prometheus rejects (400), and rolls back, a whole request with an
// out-of-order or duplicate sample: alone, a rejected gauge only means a
// newer push time is already stored, so that rejection is logged, not
// answered; any other failure of it is answered, so that the sender
// retries. With Options.PushTimeWithData the whole of wr goes in one
// request first, and only a rejected one (400) is split as above. All
// writes share ctx's deadline.
func (s *State) writeData(ctx context.Context, tenant string, wr *wire.WriteRequest) error {
	n := len(wr.Series)
	if n > 1 && s.o.PushTimeWithData {
		if err := s.o.Write(ctx, tenant, wr); err == nil || !rejected(err) {
			return err
		}
	}
	last := wr.Series[n-1]
	meta := wr.Metadata
	wr.Series = wr.Series[:n-1]
	if len(wr.Series) > 0 {
		if err := s.o.Write(ctx, tenant, wr); err != nil {
			return err
		}
	}
	wr.Series = append(wr.Series[:0], last)
	wr.Metadata = meta[:0]
	for _, m := range meta {
		if m.FamilyName == push.PushTimeMetric {
			wr.Metadata = append(wr.Metadata, m)
		}
	}
	if err := s.o.Write(ctx, tenant, wr); err != nil {
		if !rejected(err) {
			// A transient fault: the sender retries the push.
			return err
		}
		s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "push time not stored: a concurrent push's is newer", slog.String("error", err.Error()))
	}
	return nil
}

// families groups p's data series by family, copied out of the request's
// memory, and returns the group key: push_time_seconds' labels without
// __name__.
func (s *State) families(p Push) (map[string]*groupstore.Family, groupstore.LabelSet) {
	meta := map[string]wire.Metadata{}
	for _, m := range p.Request.Metadata {
		meta[m.FamilyName] = m
	}
	fams := map[string]*groupstore.Family{}
	var key groupstore.LabelSet
	for i, sr := range p.Request.Series {
		name := p.Families[i]
		if i == len(p.Request.Series)-1 {
			key = cloneLabels(withoutName(sr.Labels))
			continue
		}
		f := fams[name]
		if f == nil {
			m := meta[name]
			f = &groupstore.Family{Type: m.Type, Help: strings.Clone(m.Help), Unit: strings.Clone(m.Unit)}
			fams[name] = f
		}
		f.Series = append(f.Series, groupstore.Series{Labels: cloneLabels(sr.Labels), Value: math.Float64bits(sr.Samples[0].Value)})
	}
	return fams, key
}

// merge returns the group after a push of fams onto old (nil when new).
func merge(old *groupstore.Group, fams map[string]*groupstore.Family, replace bool) *groupstore.Group {
	g := &groupstore.Group{Families: map[string]*groupstore.Family{}}
	live := old
	if old != nil {
		g.FailureTime = old.FailureTime
		g.Stale = append(g.Stale, old.Stale...)
		if old.Deleted {
			live = nil
		}
	}
	if !replace && live != nil {
		for n, f := range live.Families {
			g.Families[n] = f
		}
	}
	for n, f := range fams {
		g.Families[n] = f
	}
	if live != nil {
		addStale(g, removed(live, g))
	}
	clearStale(g, allSeries(g))
	return g
}

func (s *State) checkSeries(g *groupstore.Group) error {
	if s.o.MaxSeriesPerGroup <= 0 {
		return nil
	}
	n := 0
	for _, f := range g.Families {
		n += len(f.Series)
	}
	if n > s.o.MaxSeriesPerGroup {
		return &QuotaError{What: LimitSeriesPerGroup, Limit: s.o.MaxSeriesPerGroup, Have: n}
	}
	return nil
}

// checkGroups refuses a new group when its owner already has
// MaxGroupsPerTenant.
func (s *State) checkGroups(ctx context.Context, id string) error {
	if s.o.MaxGroupsPerTenant <= 0 {
		return nil
	}
	prefix := id[:strings.IndexByte(id, '/')+1]
	n, err := s.o.Store.Count(ctx, prefix, s.o.MaxGroupsPerTenant)
	if err != nil {
		return err
	}
	if n >= s.o.MaxGroupsPerTenant {
		return &QuotaError{What: LimitGroupsPerTenant, Limit: s.o.MaxGroupsPerTenant, Have: n + 1}
	}
	return nil
}

// Delete removes the group of key as the Pushgateway's DELETE does: every
// series it had, push_time_seconds and push_failure_time_seconds get a
// staleness marker, and the group is gone once the upstream took them (it
// stays marked deleted until then, and the scheduled job finishes it).
// Deleting a group that does not exist, or any group without a store, does
// nothing. Errors: *StoreError, or the Writer's.
func (s *State) Delete(ctx context.Context, key push.GroupingKey, owner Owner) error {
	if s.o.Store == nil {
		s.o.Logger.LogAttrs(ctx, slog.LevelInfo, "group delete accepted; without PROMRELAY_STATE_URL there is no group to remove", slog.String("grouping_key", key.String()))
		return nil
	}
	sent, err := s.markDeleted(ctx, GroupID(key, owner), nil)
	if err == nil && sent == nil {
		sent, err = s.markDeleted(ctx, legacyID(key, owner), func(g *groupstore.Group) bool { return g.Tenant == owner.Tenant })
	}
	if err != nil {
		return storeError(err)
	}
	if sent == nil {
		return nil
	}
	var wr wire.WriteRequest
	appendGroup(&wr, sent, s.o.Now().UnixMilli())
	if err := s.o.Write(ctx, sent.Tenant, &wr); err != nil {
		return err
	}
	s.settle(ctx, sent, "group deleted upstream but not in the store; the scheduled job finishes it")
	return nil
}

// markDeleted marks the group id deleted, with staleness markers for all its
// series, when it exists and mine (if given) accepts it; it returns what to
// send, or nil.
func (s *State) markDeleted(ctx context.Context, id string, mine func(*groupstore.Group) bool) (*groupstore.Group, error) {
	var sent *groupstore.Group
	err := s.o.Store.Update(ctx, id, func(old *groupstore.Group) (*groupstore.Group, error) {
		if old == nil && mine == nil {
			// Nothing, or a group that cannot be decoded: its owner's
			// delete removes it.
			return nil, nil
		}
		if old == nil || (mine != nil && !mine(old)) {
			return nil, groupstore.ErrKeep
		}
		old.ID = id
		if !old.Deleted {
			addStale(old, staleSeries(old))
			old.Deleted = true
		}
		sent = snapshot(old)
		sent.Deleted = true
		return old, nil
	})
	return sent, err
}

// RecordFailure records a rejected push as the Pushgateway does: failure
// holds push_failure_time_seconds{<grouping key>} with every label applied;
// the group's failure time is stored (creating the group if need be) and
// the series written upstream. Failures are logged, never returned: the
// push's own answer is the rejection.
func (s *State) RecordFailure(ctx context.Context, key push.GroupingKey, owner Owner, failure *wire.WriteRequest) {
	now := s.o.Now().UnixMilli()
	if s.o.Store != nil && len(failure.Series) > 0 {
		id := GroupID(key, owner)
		glabels := cloneLabels(withoutName(failure.Series[len(failure.Series)-1].Labels))
		// Not under an aggregated group's key: a plain group there would
		// write push_time_seconds beside the aggregated one's.
		err := s.updateChecked(ctx, id, AggregateGroupID(key, owner), true, func(g *groupstore.Group) (*groupstore.Group, error) {
			if g == nil {
				if err := s.checkGroups(ctx, id); err != nil {
					return nil, err
				}
				g = &groupstore.Group{ID: id, Key: glabels, Tenant: owner.Tenant, Families: map[string]*groupstore.Family{}}
			}
			g.FailureTime = now
			return g, nil
		})
		var ke *KindError
		if errors.As(err, &ke) {
			err = nil // the aggregated group has no failure time
		}
		if err != nil {
			s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "cannot store the push failure time", slog.String("grouping_key", key.String()), slog.String("error", err.Error()))
		}
	}
	if err := s.o.Write(ctx, owner.Tenant, failure); err != nil {
		s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "cannot write the push failure time", slog.String("grouping_key", key.String()), slog.String("error", err.Error()))
	}
}

// settle records that the pending staleness markers of sent (a snapshot of
// a group) reached the upstream: they are cleared from the stored group,
// and a deleted group is removed. A failure is logged with msg: the
// scheduled job resends them.
func (s *State) settle(ctx context.Context, sent *groupstore.Group, msg string) {
	if err := settle(ctx, s.o.Store, sent); err != nil {
		s.o.Logger.LogAttrs(ctx, slog.LevelWarn, msg, slog.String("group", sent.ID), slog.String("error", err.Error()))
	}
}

func settle(ctx context.Context, st groupstore.Store, sent *groupstore.Group) error {
	if len(sent.Stale) == 0 && !sent.Deleted {
		return nil
	}
	return st.Update(ctx, sent.ID, func(cur *groupstore.Group) (*groupstore.Group, error) {
		if cur == nil {
			return nil, groupstore.ErrKeep
		}
		if cur.Deleted && sent.Deleted {
			return nil, nil
		}
		clearStale(cur, sent.Stale)
		return cur, nil
	})
}

func storeError(err error) error {
	var le *QuotaError
	if errors.As(err, &le) {
		return le
	}
	var ke *KindError
	if errors.As(err, &ke) {
		return ke
	}
	return &StoreError{Err: err}
}

// GroupID returns the store id of the group key pushed by owner:
// "t<16 hex>/<40 hex>", the first part a SHA-256 of the owner's tenant
// name, the second a SHA-256 of the owner's identity labels and the
// grouping key's labels; every name and value is length-prefixed and each
// hash has a domain tag of its own. No grouping key of one owner can
// produce another owner's id, and a tenant's groups share a folder, which
// MaxGroupsPerTenant counts.
func GroupID(key push.GroupingKey, owner Owner) string {
	tenant := sha256.Sum256(appendString([]byte("promrelay tenant v1\x00"), owner.Tenant))
	h := sha256.New()
	buf := binary.AppendUvarint([]byte("promrelay group v1\x00"), uint64(len(owner.Labels)))
	buf = wire.AppendLabelsKey(buf, owner.Labels)
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	h.Write(wire.AppendLabelsKey(buf, key))
	return "t" + hex.EncodeToString(tenant[:8]) + "/" + hex.EncodeToString(h.Sum(nil)[:20])
}

// legacyID is the id promrelay 0.1 stored a group under: a SHA-256 of
// name\0value\0 pairs of the grouping key, a "\x00tenant" label and the
// identity labels. Such groups are taken over (checked to belong to the
// owner) on their next push or delete.
func legacyID(key push.GroupingKey, owner Owner) string {
	h := sha256.New()
	write := func(ls ...wire.Label) {
		for _, l := range ls {
			h.Write([]byte(l.Name))
			h.Write([]byte{0})
			h.Write([]byte(l.Value))
			h.Write([]byte{0})
		}
	}
	write(key...)
	if owner.Tenant != "" {
		write(wire.Label{Name: "\\x00tenant", Value: owner.Tenant})
	}
	write(owner.Labels...)
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// adoptLegacy moves the promrelay 0.1 group of p, if there is one that
// belongs to p's owner and key, into the group id that p just created, as
// if p had been pushed onto it, and deletes it. It returns what to send
// and what it stored, both nil when there was nothing to move.
func (s *State) adoptLegacy(ctx context.Context, id string, p Push, key groupstore.LabelSet) (sent, mine *groupstore.Group, err error) {
	var legacy *groupstore.Group
	lid := legacyID(p.Key, p.Owner)
	err = s.o.Store.Update(ctx, lid, func(old *groupstore.Group) (*groupstore.Group, error) {
		if old != nil && old.Tenant == p.Owner.Tenant && slices.Equal(old.Key, key) {
			legacy = old
		}
		return nil, groupstore.ErrKeep // a read
	})
	if err != nil || legacy == nil {
		return nil, nil, err
	}
	err = s.o.Store.Update(ctx, id, func(cur *groupstore.Group) (*groupstore.Group, error) {
		if cur == nil {
			return nil, errors.New("group vanished during migration")
		}
		if !p.Replace && !legacy.Deleted {
			for n, f := range legacy.Families {
				if cur.Families[n] == nil {
					cur.Families[n] = f
				}
			}
		} else if !legacy.Deleted {
			addStale(cur, removed(legacy, cur))
		}
		addStale(cur, legacy.Stale)
		if cur.FailureTime == 0 {
			cur.FailureTime = legacy.FailureTime
		}
		clearStale(cur, allSeries(cur))
		if err := s.checkSeries(cur); err != nil {
			return nil, err
		}
		sent, mine = snapshot(cur), cur
		return cur, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := s.o.Store.Update(ctx, lid, func(*groupstore.Group) (*groupstore.Group, error) { return nil, nil }); err != nil {
		return nil, nil, err
	}
	s.o.Logger.LogAttrs(ctx, slog.LevelInfo, "group taken over from promrelay 0.1's id", slog.String("from", lid), slog.String("to", id))
	return sent, mine, nil
}

// snapshot is what a push must send of g: its id, key, tenant and pending
// staleness markers (copied, as the store keeps g).
func snapshot(g *groupstore.Group) *groupstore.Group {
	return &groupstore.Group{ID: g.ID, Key: g.Key, Tenant: g.Tenant, Stale: slices.Clone(g.Stale)}
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
