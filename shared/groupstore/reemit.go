package groupstore

import (
	"context"
	"math"
	"time"

	"github.com/promrelay/promrelay/shared/wire"
)

// Push-time series names, as the Pushgateway exposes them.
const (
	pushTimeMetric        = "push_time_seconds"
	pushFailureTimeMetric = "push_failure_time_seconds"
)

// AppendGroup appends to wr what the upstream must store for g at time now
// (Unix ms): every current series with a fresh timestamp (unless g is
// deleted), push_time_seconds and push_failure_time_seconds with the
// group's original times, and a staleness marker for each series in
// g.Stale.
func AppendGroup(wr *wire.WriteRequest, g *Group, now int64) {
	if !g.Deleted {
		for _, s := range g.AllSeries() {
			wr.AppendSample(wr.AppendLabels(Labels(s.Labels)...), wire.Sample{Value: s.Float(), Timestamp: now})
		}
		for _, m := range []struct {
			name string
			ms   int64
		}{{pushTimeMetric, g.PushTime}, {pushFailureTimeMetric, g.FailureTime}} {
			wr.AppendSample(wr.AppendLabels(timeLabels(m.name, g.Key)...), wire.Sample{Value: float64(m.ms) / 1000, Timestamp: now})
		}
	}
	stale := math.Float64frombits(StaleNaN)
	for _, s := range g.Stale {
		wr.AppendSample(wr.AppendLabels(Labels(s.Labels)...), wire.Sample{Value: stale, Timestamp: now})
	}
}

// timeLabels is name{<grouping key>}, sorted, without empty values.
func timeLabels(name string, key [][2]string) []wire.Label {
	out := []wire.Label{{Name: wire.MetricNameLabel, Value: name}}
	for _, l := range key {
		if l[1] != "" {
			out = append(out, wire.Label{Name: l[0], Value: l[1]})
		}
	}
	// __name__ sorts after upper-case names: keep the set sorted.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Name < out[j-1].Name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// StaleSeries returns staleness-marker series for the time series of g that
// a deletion removes: every current series plus push_time_seconds and
// push_failure_time_seconds.
func StaleSeries(g *Group) []Series {
	out := g.AllSeries()
	for _, name := range []string{pushTimeMetric, pushFailureTimeMetric} {
		out = append(out, Series{Labels: StoredLabels(timeLabels(name, g.Key))})
	}
	return out
}

// ReemitResult describes one run of the scheduled job.
type ReemitResult struct {
	Groups   int  // groups re-emitted
	Series   int  // samples written
	Expired  int  // groups deleted for their TTL
	Complete bool // false when the deadline stopped it; the next run resumes
}

// Reemit is the scheduled job: it writes every stored group's current
// samples upstream with the time now, so pushed values stay visible as they
// do on a Pushgateway; it deletes groups whose last push is older than ttl
// (0: never) with staleness markers, finishes deletions and staleness
// markers that an earlier upstream failure left pending, and stops before
// ctx's deadline, saving where to resume when the store supports it.
// Batches hold at most batchSeries series.
//
// write receives batches of one tenant's groups ("" for writers without a
// tenant), so that each goes to its tenant's upstream.
func Reemit(ctx context.Context, s Store, write func(ctx context.Context, tenant string, wr *wire.WriteRequest) error, now time.Time, ttl time.Duration, batchSeries int) (ReemitResult, error) {
	var res ReemitResult
	if batchSeries <= 0 {
		batchSeries = 5000
	}
	after := ""
	cursors, _ := s.(Cursors)
	if cursors != nil {
		after, _ = cursors.LoadCursor(ctx)
	}
	type batch struct {
		wr   wire.WriteRequest
		done []*Group // groups in the batch
	}
	batches := map[string]*batch{}
	flushOne := func(tenant string, b *batch) error {
		if len(b.wr.Series) == 0 {
			return nil
		}
		if err := write(ctx, tenant, &b.wr); err != nil {
			return err
		}
		res.Series += len(b.wr.Series)
		for _, g := range b.done {
			if err := Settle(ctx, s, g); err != nil {
				return err
			}
		}
		b.wr.Reset()
		b.done = b.done[:0]
		return nil
	}
	flush := func() error {
		for tenant, b := range batches {
			if err := flushOne(tenant, b); err != nil {
				return err
			}
		}
		return nil
	}
	ms := now.UnixMilli()
	// Keep a fifth of the run, at most 2 s, to flush before the deadline.
	margin := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		margin = min(margin, time.Until(dl)/5)
	}
	for {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < margin {
			if cursors != nil {
				cursors.SaveCursor(ctx, after)
			}
			return res, flush()
		}
		groups, next, err := s.List(ctx, after, 100)
		if err != nil {
			return res, err
		}
		for _, g := range groups {
			if ttl > 0 && !g.Deleted && g.PushTime > 0 && now.Sub(time.UnixMilli(g.PushTime)) > ttl {
				g.Deleted = true
				g.AddStale(StaleSeries(g))
				if err := s.Update(ctx, g.StoreID(), func(cur *Group) (*Group, error) {
					if cur == nil {
						return nil, nil
					}
					cur.Deleted = true
					cur.AddStale(StaleSeries(cur))
					return cur, nil
				}); err != nil {
					return res, err
				}
				res.Expired++
			}
			b := batches[g.Tenant]
			if b == nil {
				b = &batch{}
				batches[g.Tenant] = b
			}
			AppendGroup(&b.wr, g, ms)
			b.done = append(b.done, g)
			res.Groups++
			if len(b.wr.Series) >= batchSeries {
				if err := flushOne(g.Tenant, b); err != nil {
					return res, err
				}
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.Complete = true
	if cursors != nil {
		cursors.SaveCursor(ctx, "")
	}
	return res, nil
}

// Settle records that the pending staleness markers of sent (a snapshot of
// a group) reached the upstream: they are cleared from the stored group,
// and a deleted group is removed. Errors are the store's.
func Settle(ctx context.Context, s Store, sent *Group) error {
	if len(sent.Stale) == 0 && !sent.Deleted {
		return nil
	}
	return s.Update(ctx, sent.StoreID(), func(cur *Group) (*Group, error) {
		if cur == nil {
			return nil, nil
		}
		if cur.Deleted && sent.Deleted {
			return nil, nil
		}
		cur.ClearStale(sent.Stale)
		return cur, nil
	})
}
