package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// servePush handles PUT, POST and DELETE /metrics/job/... as the
// Pushgateway does: 400 for a bad URL or body, 200 once the upstream has
// accepted the push, 202 for a DELETE.
func (h *Handler) servePush(r *http.Request, groupPath string, out *outcome) {
	key, err := push.ParseGroupingKey(groupPath)
	if err != nil {
		out.status, out.msg = http.StatusBadRequest, err.Error()
		return
	}
	if max := h.o.Limits.MaxLabels; max > 0 && len(key) > max {
		out.status, out.msg = http.StatusBadRequest, fmt.Sprintf("grouping key has %d labels, more than the limit of %d", len(key), max)
		return
	}
	st := h.getState()
	defer h.putState(st)
	if r.Method == http.MethodDelete {
		if h.o.Store == nil {
			// Without a group store there is nothing to delete upstream.
			h.o.Logger.LogAttrs(r.Context(), slog.LevelInfo, "group delete accepted", slog.String("grouping_key", key.String()))
			out.status = http.StatusAccepted
			return
		}
		h.deleteGroup(r.Context(), st, key, out)
		return
	}

	st.body, err = readBody(r, st.body, h.o.MaxBodyBytes)
	out.bytesIn = len(st.body)
	if err != nil {
		out.status, out.msg = bodyStatus(err), err.Error()
		return
	}
	body := st.body
	switch enc := contentEncoding(r); enc {
	case "", "identity":
	case "gzip":
		st.decoded, err = gunzip(st.decoded, st.body, h.o.MaxDecodedBytes)
		if err != nil {
			out.status, out.msg = bodyStatus(err), err.Error()
			return
		}
		body = st.decoded
	default:
		out.status, out.msg = http.StatusUnsupportedMediaType, "unsupported Content-Encoding "+enc+"; use gzip or none"
		return
	}

	if isDelimited(r.Header.Get("Content-Type")) {
		err = st.exp.ParseDelimited(body)
	} else {
		// Text 0.0.4 is also the fallback for a missing or unknown
		// Content-Type, as on the Pushgateway.
		err = st.exp.ParseText(body)
	}
	if err != nil {
		out.status, out.msg = http.StatusBadRequest, err.Error()
		return
	}
	out.samplesIn = st.exp.NumSamples()
	now := h.o.Now()
	err = st.conv.Convert(&st.wr, &st.exp, key, now)
	if err == nil {
		// Pushes obey the same per-series limits as remote writes.
		for i := range st.wr.Series {
			if verr := wire.ValidateSeries(&st.wr.Series[i], h.o.Limits); verr != nil {
				err = verr
				break
			}
		}
	}
	if err != nil {
		out.status, out.msg = http.StatusBadRequest, "pushed metrics are invalid: "+err.Error()
		var inv *push.InvalidError
		if errors.As(err, &inv) {
			h.recordFailure(r.Context(), st, key, out.identity)
		}
		return
	}
	if h.o.Store != nil {
		h.pushStateful(r.Context(), st, key, r.Method == http.MethodPut, now, out)
		return
	}
	h.relayPush(r.Context(), &st.wr, out, http.StatusOK)
}

// recordFailure sends push_failure_time_seconds for a rejected push, as the
// Pushgateway records it; a failure to send is only logged.
func (h *Handler) recordFailure(ctx context.Context, st *requestState, key push.GroupingKey, id inbound.Identity) {
	st.wr.Reset()
	st.conv.FailureSeries(&st.wr, key, h.o.Now())
	h.applyLabels(&st.wr, id)
	if h.o.Store != nil {
		now := h.o.Now().UnixMilli()
		last := st.wr.Series[len(st.wr.Series)-1]
		gid := groupID(key, id)
		if err := h.o.Store.Update(ctx, gid, func(g *groupstore.Group) (*groupstore.Group, error) {
			if g == nil {
				g = &groupstore.Group{ID: gid, Key: withoutName(last.Labels), Families: map[string]*groupstore.Family{}}
				if id.Tenant != nil {
					g.Tenant = id.Tenant.Name
				}
			}
			g.FailureTime = now
			return g, nil
		}); err != nil {
			h.o.Logger.LogAttrs(ctx, slog.LevelWarn, "cannot record push failure time", slog.String("grouping_key", key.String()), slog.String("error", err.Error()))
		}
	}
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	if _, err := h.upstreamFor(id).Write(ctx, &st.wr); err != nil {
		h.o.Logger.LogAttrs(ctx, slog.LevelWarn, "cannot record push failure time", slog.String("grouping_key", key.String()), slog.String("error", err.Error()))
	}
}

// isDelimited reports whether a Content-Type names protobuf-delimited
// MetricFamily messages.
func isDelimited(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/vnd.google.protobuf" &&
		params["encoding"] == "delimited" && params["proto"] == "io.prometheus.client.MetricFamily"
}
