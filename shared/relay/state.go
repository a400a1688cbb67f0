package relay

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// groupID is the store id of a grouping key written by a writer: tenants
// never share a group.
func groupID(key push.GroupingKey, id inbound.Identity) string {
	ls := append([]wire.Label{}, key...)
	if id.Tenant != nil {
		ls = append(ls, wire.Label{Name: "\\x00tenant", Value: id.Tenant.Name})
	}
	ls = append(ls, id.Labels...)
	return groupstore.ID(ls)
}

func withoutName(ls []wire.Label) [][2]string {
	out := make([][2]string, 0, len(ls))
	for _, l := range ls {
		if l.Name != wire.MetricNameLabel {
			out = append(out, [2]string{l.Name, l.Value})
		}
	}
	return out
}

// pushStateful stores a converted push as the Pushgateway does — PUT
// replaces the group, POST only the families it carries — and sends its
// samples upstream with staleness markers for the series it removed. The
// markers stay in the group until the upstream took them, so a failed
// write cannot lose them; the answer is 200 only after both the store and
// the upstream accepted.
func (h *Handler) pushStateful(ctx context.Context, st *requestState, key push.GroupingKey, replace bool, now time.Time, out *outcome) {
	h.applyLabels(&st.wr, out.identity)
	fams := map[string]*groupstore.Family{}
	meta := map[string]wire.Metadata{}
	for _, m := range st.wr.Metadata {
		meta[m.FamilyName] = m
	}
	var keyLabels [][2]string
	for i, s := range st.wr.Series {
		name := st.conv.SeriesFamily[i]
		if name == push.PushTimeMetric {
			keyLabels = withoutName(s.Labels)
			continue
		}
		f := fams[name]
		if f == nil {
			m := meta[name]
			f = &groupstore.Family{Type: m.Type, Help: m.Help, Unit: m.Unit}
			fams[name] = f
		}
		f.Series = append(f.Series, groupstore.Series{Labels: groupstore.StoredLabels(s.Labels), Value: math.Float64bits(s.Samples[0].Value)})
	}
	var sent *groupstore.Group
	gid := groupID(key, out.identity)
	err := h.o.Store.Update(ctx, gid, func(old *groupstore.Group) (*groupstore.Group, error) {
		g := &groupstore.Group{ID: gid, Key: keyLabels, PushTime: now.UnixMilli(), Families: map[string]*groupstore.Family{}}
		if out.identity.Tenant != nil {
			g.Tenant = out.identity.Tenant.Name
		}
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
			g.AddStale(groupstore.Removed(live, g))
		}
		g.ClearStale(g.AllSeries())
		sent = &groupstore.Group{ID: gid, Key: g.Key, Stale: append([]groupstore.Series(nil), g.Stale...)}
		return g, nil
	})
	if err != nil {
		out.status, out.msg = http.StatusServiceUnavailable, err.Error()
		return
	}
	// Staleness markers go with the data; the push-time gauge stays last.
	pushTime := st.wr.Series[len(st.wr.Series)-1]
	st.wr.Series = st.wr.Series[:len(st.wr.Series)-1]
	stale := math.Float64frombits(groupstore.StaleNaN)
	for _, s := range sent.Stale {
		st.wr.AppendSample(st.wr.AppendLabels(groupstore.Labels(s.Labels)...), wire.Sample{Value: stale, Timestamp: now.UnixMilli()})
	}
	st.wr.Series = append(st.wr.Series, pushTime)
	h.relayPush(ctx, &st.wr, out, http.StatusOK)
	if out.status == http.StatusOK && len(sent.Stale) > 0 {
		if err := groupstore.Settle(ctx, h.o.Store, sent); err != nil {
			h.o.Logger.LogAttrs(ctx, slog.LevelWarn, "staleness markers sent but not cleared; the scheduled job resends them", slog.String("error", err.Error()))
		}
	}
}

// deleteGroup removes a group as the Pushgateway's DELETE does, with
// staleness markers for every series it had, and answers 202 once the
// upstream took them (the group stays marked deleted until then).
func (h *Handler) deleteGroup(ctx context.Context, st *requestState, key push.GroupingKey, out *outcome) {
	var sent *groupstore.Group
	gid := groupID(key, out.identity)
	err := h.o.Store.Update(ctx, gid, func(old *groupstore.Group) (*groupstore.Group, error) {
		if old == nil {
			return nil, nil
		}
		old.ID = gid
		if !old.Deleted {
			old.AddStale(groupstore.StaleSeries(old))
			old.Deleted = true
		}
		sent = old
		return old, nil
	})
	if err != nil {
		out.status, out.msg = http.StatusServiceUnavailable, err.Error()
		return
	}
	if sent == nil {
		out.status = http.StatusAccepted
		return
	}
	st.wr.Reset()
	groupstore.AppendGroup(&st.wr, sent, h.o.Now().UnixMilli())
	h.relay(ctx, &st.wr, out, http.StatusAccepted)
	if out.status == http.StatusAccepted {
		if err := groupstore.Settle(ctx, h.o.Store, sent); err != nil {
			h.o.Logger.LogAttrs(ctx, slog.LevelWarn, "group deleted upstream but not in the store; the scheduled job finishes it", slog.String("error", err.Error()))
		}
	}
}

// Reemit is the scheduled job (FC timer, Lambda schedule, the server's
// ticker): it re-sends every stored group upstream with fresh timestamps,
// deletes groups past the TTL, and finishes pending staleness markers;
// without a store it does nothing. It stops before ctx's deadline.
func (h *Handler) Reemit(ctx context.Context) error {
	if h.o.Store == nil {
		h.o.Logger.InfoContext(ctx, "no scheduled job configured: set PROMRELAY_STATE_URL for stateful pushes")
		return nil
	}
	start := time.Now()
	res, err := groupstore.Reemit(ctx, h.o.Store, func(ctx context.Context, tenant string, wr *wire.WriteRequest) error {
		// Group series carry their final labels: they go as they are, to
		// their tenant's upstream.
		up := h.o.Upstream
		if t := h.o.TenantUpstreams[tenant]; t != nil {
			up = t
		}
		_, err := up.Write(ctx, wr)
		return err
	}, h.o.Now(), h.o.GroupTTL, 5000)
	attrs := []slog.Attr{slog.Int("groups", res.Groups), slog.Int("samples", res.Series), slog.Int("expired", res.Expired),
		slog.Bool("complete", res.Complete), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		h.o.Logger.LogAttrs(ctx, slog.LevelError, "re-emission failed", attrs...)
		return err
	}
	h.o.Logger.LogAttrs(ctx, slog.LevelInfo, "re-emitted", attrs...)
	return nil
}

// RunReemitter calls Reemit every interval until ctx ends (the server's
// stand-in for a timer trigger); each run is bounded by the interval.
func (h *Handler) RunReemitter(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, interval)
			h.Reemit(rctx)
			cancel()
		}
	}
}
