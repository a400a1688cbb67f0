package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
)

// UpstreamAttempt counts one HTTP request to the upstream: status is its
// answer (0 for none: a transport error, a timeout, a credentials
// failure), d how long it took, retry whether it repeated an earlier one;
// a self-write's (IsSelfWrite) are left out. It implements
// upstream.Observer.
func (m *Metrics) UpstreamAttempt(ctx context.Context, status int, d time.Duration, retry bool) {
	if IsSelfWrite(ctx) {
		return
	}
	class := StatusClass(status)
	m.UpstreamRequests.WithLabelValues(class).Inc()
	m.UpstreamDuration.WithLabelValues(class).Observe(d.Seconds())
	if retry {
		m.UpstreamRetries.Inc()
	}
}

// UpstreamSplit counts a body split in two after an upstream 413
// (upstream.Observer).
func (m *Metrics) UpstreamSplit(ctx context.Context) {
	if !IsSelfWrite(ctx) {
		m.UpstreamSplits.Inc()
	}
}

// UpstreamFallback counts a write that fell back from remote write 2.0 to
// 1.0 (upstream.Observer).
func (m *Metrics) UpstreamFallback(ctx context.Context) {
	if !IsSelfWrite(ctx) {
		m.UpstreamFallbacks.Inc()
	}
}

// CredentialFetch returns the func that counts each completed fetch of
// upstream credentials of mode (PROMRELAY_UPSTREAM_AUTH: sigv4 or aliyun;
// the OSS group store shares the aliyun provider), with its result: auth.Cache.OnFetch and
// auth.SigV4Options.OnFetch.
func (m *Metrics) CredentialFetch(mode string) func(err error) {
	ok := m.CredentialFetches.WithLabelValues(mode, ResultOK)
	failed := m.CredentialFetches.WithLabelValues(mode, ResultError)
	return func(err error) {
		if err != nil {
			failed.Inc()
			return
		}
		ok.Inc()
	}
}

// InboundAuthFailure counts a request whose credentials were refused:
// scheme is the scheme the caller used (bearer, jwt, basic, "" for none,
// other), reason one of missing, invalid, forbidden, busy
// (inbound.Options.OnFailure).
func (m *Metrics) InboundAuthFailure(scheme, reason string) {
	m.InboundAuthFailures.WithLabelValues(scheme, reason).Inc()
}

// Store operations, the op label of StoreOperations and StoreDuration.
const (
	OpUpdate     = "update"
	OpList       = "list"
	OpCount      = "count"
	OpLoadCursor = "load_cursor"
	OpSaveCursor = "save_cursor"
)

// InstrumentStore returns s with every operation counted and timed
// (StoreOperations, StoreDuration) and every conditional update that lost
// to a concurrent writer counted (StoreConflicts: an Update whose function
// ran n times lost n−1 races, as groupstore.Store's contract re-runs it on
// the new state). When s implements groupstore.Cursors so does the
// result. An Update whose function refused the change (its error, or
// groupstore.ErrKeep) counts as ok: the store worked.
func (m *Metrics) InstrumentStore(s groupstore.Store) groupstore.Store {
	for _, op := range []string{OpUpdate, OpList, OpCount, OpLoadCursor, OpSaveCursor} {
		// From zero, as New's counters, now that there is a store.
		m.StoreOperations.WithLabelValues(op, ResultOK)
		m.StoreOperations.WithLabelValues(op, ResultError)
	}
	is := &instrumentedStore{s: s, m: m}
	if c, ok := s.(groupstore.Cursors); ok {
		return &instrumentedCursors{instrumentedStore: is, c: c}
	}
	return is
}

type instrumentedStore struct {
	s groupstore.Store
	m *Metrics
}

// observe counts one operation op that started at start and ended with
// err (storeErr: the store's own failure, not the caller's refusal).
func (s *instrumentedStore) observe(op string, start time.Time, storeErr bool) {
	result := ResultOK
	if storeErr {
		result = ResultError
	}
	s.m.StoreOperations.WithLabelValues(op, result).Inc()
	s.m.StoreDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (s *instrumentedStore) Update(ctx context.Context, id string, fn func(*groupstore.Group) (*groupstore.Group, error)) error {
	start := time.Now()
	runs := 0
	var fnErr error
	err := s.s.Update(ctx, id, func(g *groupstore.Group) (*groupstore.Group, error) {
		runs++
		out, err := fn(g)
		fnErr = err
		return out, err
	})
	if runs > 1 {
		s.m.StoreConflicts.Add(float64(runs - 1))
	}
	s.observe(OpUpdate, start, err != nil && (fnErr == nil || !errors.Is(err, fnErr)))
	return err
}

func (s *instrumentedStore) List(ctx context.Context, after string, limit int) (groupstore.Listing, error) {
	start := time.Now()
	l, err := s.s.List(ctx, after, limit)
	s.observe(OpList, start, err != nil)
	return l, err
}

func (s *instrumentedStore) Count(ctx context.Context, prefix string, max int) (int, error) {
	start := time.Now()
	n, err := s.s.Count(ctx, prefix, max)
	s.observe(OpCount, start, err != nil)
	return n, err
}

type instrumentedCursors struct {
	*instrumentedStore
	c groupstore.Cursors
}

func (s *instrumentedCursors) LoadCursor(ctx context.Context) (string, error) {
	start := time.Now()
	after, err := s.c.LoadCursor(ctx)
	s.observe(OpLoadCursor, start, err != nil)
	return after, err
}

func (s *instrumentedCursors) SaveCursor(ctx context.Context, after string) error {
	start := time.Now()
	err := s.c.SaveCursor(ctx, after)
	s.observe(OpSaveCursor, start, err != nil)
	return err
}
