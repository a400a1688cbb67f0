package pushstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// ReemitResult describes one run of the scheduled job.
type ReemitResult struct {
	Groups   int  // groups re-emitted
	Samples  int  // samples written, staleness markers included
	Expired  int  // groups deleted for their TTL
	Skipped  int  // groups that could not be read or that the upstream rejected
	Complete bool // false when the deadline stopped it; the next run resumes
}

// batch is one tenant's pending write request and the groups in it.
type batch struct {
	wr     wire.WriteRequest
	groups []*groupstore.Group
	// ts[i] is the timestamp claimed for groups[i] when it is an
	// aggregated group (claimAggregate), 0 for any other.
	ts []int64
}

// Reemit is the scheduled job: it writes every stored group's current
// samples upstream with the time now, a page of groups at a time (the
// groups of a page are accounted in ctx's groupstore.Reservation, released
// after each page), so pushed values stay visible as they
// do on a Pushgateway; it deletes groups whose last push is older than the
// TTL with staleness markers, finishes deletions and markers that an
// earlier upstream failure left pending, and stops before ctx's deadline,
// saving where to resume when the store supports it (groupstore.Cursors).
//
// A group that cannot be decoded, or that its upstream rejects as invalid
// (400), is logged and skipped; an upstream that fails leaves its tenant's
// groups for the next run and the job goes on with the other tenants. The
// error joins the failures of the run; without a store it does nothing.
func (s *State) Reemit(ctx context.Context) (ReemitResult, error) {
	var res ReemitResult
	if s.o.Store == nil {
		return res, nil
	}
	now := s.o.Now()
	after := ""
	cursors, _ := s.o.Store.(groupstore.Cursors)
	if cursors != nil {
		after, _ = cursors.LoadCursor(ctx)
	}
	batches := map[string]*batch{}
	failed := map[string]error{} // tenant → why its upstream failed
	var errs []error
	// Keep a fifth of the run, at most 2 s, to flush before the deadline.
	margin := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		margin = min(margin, time.Until(dl)/5)
	}
	for {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < margin {
			for t, b := range batches {
				s.flush(ctx, t, b, &res, failed)
			}
			if cursors != nil {
				if err := cursors.SaveCursor(ctx, after); err != nil {
					errs = append(errs, err)
				}
			}
			return res, joinFailures(errs, failed)
		}
		page, err := s.o.Store.List(ctx, after, 100)
		if err != nil {
			return res, errors.Join(append(errs, &StoreError{Err: err})...)
		}
		for id, cerr := range page.Corrupt {
			res.Skipped++
			s.o.Logger.LogAttrs(ctx, slog.LevelError, "group skipped: cannot read it (it does not decode, or does not fit the memory budget)", slog.String("group", id), slog.String("error", cerr.Error()))
		}
		for _, g := range page.Groups {
			if failed[g.Tenant] != nil {
				continue
			}
			if s.o.TTL > 0 && !g.Deleted && g.PushTime > 0 && now.Sub(time.UnixMilli(g.PushTime)) > s.o.TTL {
				expired, err := s.expire(ctx, g)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if !expired {
					continue // pushed since it was read: the next run sends it
				}
				res.Expired++
			}
			b := batches[g.Tenant]
			if b == nil {
				b = &batch{}
				batches[g.Tenant] = b
			}
			var ts int64
			if IsAggregate(g) && !g.Deleted {
				// Every run, even just after a push: a push writes
				// only the series it carried, so a busy group's
				// other series rely on this run to stay visible.
				// Totals go out at a timestamp claimed in the
				// store, after every push's and with the totals
				// as they are now: the listing's may be older
				// than a push that committed since.
				fresh, claimed, err := s.claimAggregate(ctx, g.ID, now.UnixMilli())
				if err != nil {
					errs = append(errs, &StoreError{Err: fmt.Errorf("claim aggregated group %s: %w", g.ID, err)})
					continue
				}
				if fresh == nil {
					continue // deleted since it was read
				}
				g, ts = fresh, claimed
				appendTotals(&b.wr, g, ts, nil)
			} else {
				appendGroup(&b.wr, g, now.UnixMilli())
			}
			b.groups = append(b.groups, g)
			b.ts = append(b.ts, ts)
			res.Groups++
			if len(b.wr.Series) >= s.o.BatchSeries {
				s.flush(ctx, g.Tenant, b, &res, failed)
			}
		}
		// The page's groups are in memory until their batches are
		// written: write them, and give the page's memory back to the
		// budget before reading the next.
		for t, b := range batches {
			s.flush(ctx, t, b, &res, failed)
		}
		if r := groupstore.ReservationFrom(ctx); r != nil {
			r.Release()
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	res.Complete = len(failed) == 0
	if cursors != nil {
		if err := cursors.SaveCursor(ctx, ""); err != nil {
			errs = append(errs, err)
		}
	}
	return res, joinFailures(errs, failed)
}

// expire marks g (and its stored state) deleted for its TTL, unless it was
// pushed since it was read; it reports whether it did.
func (s *State) expire(ctx context.Context, g *groupstore.Group) (bool, error) {
	expired := false
	err := s.o.Store.Update(ctx, g.ID, func(cur *groupstore.Group) (*groupstore.Group, error) {
		if cur == nil || cur.PushTime != g.PushTime {
			return nil, groupstore.ErrKeep
		}
		cur.Deleted = true
		addStale(cur, staleSeries(cur))
		expired = true
		return cur, nil
	})
	if err != nil {
		return false, &StoreError{Err: fmt.Errorf("expire group %s: %w", g.ID, err)}
	}
	if expired {
		g.Deleted = true
		addStale(g, staleSeries(g))
	}
	return expired, nil
}

// flush writes b to tenant's upstream and settles its groups. When the
// upstream rejects the batch as invalid, each group is sent alone and the
// ones it rejects are logged and skipped; any other failure marks the
// tenant failed for the rest of the run.
func (s *State) flush(ctx context.Context, tenant string, b *batch, res *ReemitResult, failed map[string]error) {
	defer func() {
		b.wr.Reset()
		b.groups = b.groups[:0]
		b.ts = b.ts[:0]
	}()
	if len(b.wr.Series) == 0 || failed[tenant] != nil {
		return
	}
	err := s.o.Write(ctx, tenant, &b.wr)
	if err == nil {
		res.Samples += len(b.wr.Series)
		for _, g := range b.groups {
			s.settle(ctx, g, "re-emitted group not settled; the next run resends it")
		}
		return
	}
	if !rejected(err) {
		failed[tenant] = err
		return
	}
	now := s.o.Now().UnixMilli()
	for i, g := range b.groups {
		var one wire.WriteRequest
		if b.ts[i] != 0 {
			appendTotals(&one, g, b.ts[i], nil)
		} else {
			appendGroup(&one, g, now)
		}
		if len(one.Series) == 0 {
			continue
		}
		if err := s.o.Write(ctx, tenant, &one); err != nil {
			if !rejected(err) {
				failed[tenant] = err
				return
			}
			if b.ts[i] != 0 && orderRefusal(err) {
				if last, rerr := s.lastWritten(ctx, g.ID); rerr == nil && last > b.ts[i] {
					// A push wrote newer totals after this run's
					// claim; the series it did not carry still
					// need this run.
					s.resendAggregate(ctx, tenant, g.ID, res, failed)
					continue
				}
			}
			res.Skipped++
			s.o.Logger.LogAttrs(ctx, slog.LevelError, "group skipped: the upstream rejects it", slog.String("group", g.ID), slog.String("tenant", tenant), slog.String("error", err.Error()))
			continue
		}
		res.Samples += len(one.Series)
		s.settle(ctx, g, "re-emitted group not settled; the next run resends it")
	}
}

// resendAggregate claims a new timestamp for aggregated group id, after
// the push that overtook the run's first claim, and writes its totals
// alone, once: a group pushed to while a run claims it is still re-emitted
// whole. Refused again (pushed to again in between), it is left to the
// next run, logged.
func (s *State) resendAggregate(ctx context.Context, tenant, id string, res *ReemitResult, failed map[string]error) {
	fresh, ts, err := s.claimAggregate(ctx, id, s.o.Now().UnixMilli())
	if err != nil || fresh == nil {
		if err != nil {
			s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "aggregated group not re-emitted: cannot claim it again", slog.String("group", id), slog.String("error", err.Error()))
		}
		return
	}
	var one wire.WriteRequest
	appendTotals(&one, fresh, ts, nil)
	if err := s.o.Write(ctx, tenant, &one); err != nil {
		if !rejected(err) {
			failed[tenant] = err
			return
		}
		s.o.Logger.LogAttrs(ctx, slog.LevelWarn, "aggregated group not re-emitted this run: pushes keep overtaking it", slog.String("group", id), slog.String("error", err.Error()))
		return
	}
	res.Samples += len(one.Series)
	s.settle(ctx, fresh, "re-emitted group not settled; the next run resends it")
}

// rejected reports whether err is the upstream refusing the data itself.
func rejected(err error) bool {
	var ue *upstream.Error
	return errors.As(err, &ue) && ue.Status == http.StatusBadRequest
}

func joinFailures(errs []error, failed map[string]error) error {
	for t, err := range failed {
		name := t
		if name == "" {
			name = "(none)"
		}
		errs = append(errs, fmt.Errorf("tenant %s: %w", name, err))
	}
	return errors.Join(errs...)
}
