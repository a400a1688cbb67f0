package relay

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/wire"
)

// servePush handles PUT, POST and DELETE below /metrics/ as the Pushgateway
// does: 400 for a bad grouping key or body, 200 once the upstream has
// accepted the push, 202 for a DELETE.
func (h *Handler) servePush(ctx context.Context, r *http.Request, id inbound.Identity) reply {
	groupPath := strings.TrimPrefix(r.URL.EscapedPath(), "/metrics/")
	if strings.HasSuffix(groupPath, "/") && strings.Count(groupPath, "/") == 1 {
		// /metrics/job/ (nothing after the job segment): the Pushgateway
		// redirects it to /metrics/job, which is not a route.
		if strings.HasPrefix(groupPath, push.JobLabel+"/") {
			return h.redirect(r, "/metrics/job")
		}
		return reply{status: http.StatusNotFound, msg: "404 page not found"}
	}
	key, err := push.ParseGroupingKey(groupPath, h.o.Limits.MaxLabels)
	if err != nil {
		return reply{status: http.StatusBadRequest, msg: err.Error()}
	}
	owner := ownerOf(id)
	if r.Method == http.MethodDelete {
		if err := h.o.State.Delete(ctx, key, owner); err != nil {
			return errorReply(err)
		}
		return reply{status: http.StatusAccepted}
	}
	return h.pushBody(ctx, r, key, owner, id)
}

// redirect answers 307 to path (below the path prefix, which the log
// wrapper puts back).
func (h *Handler) redirect(_ *http.Request, path string) reply {
	return reply{status: http.StatusTemporaryRedirect, location: path}
}

// ownerOf is the pushstate owner of a writer.
func ownerOf(id inbound.Identity) pushstate.Owner {
	o := pushstate.Owner{Labels: id.Labels}
	if id.Tenant != nil {
		o.Tenant = id.Tenant.Name
	}
	return o
}

// pushBody reads, decodes, converts and applies a PUT or POST.
func (h *Handler) pushBody(ctx context.Context, r *http.Request, key push.GroupingKey, owner pushstate.Owner, id inbound.Identity) reply {
	return h.withBody(ctx, r, func(st *requestState, c *charge) reply {
		return h.decodePush(ctx, r, st, c, key, owner, id)
	})
}

// decodePush decodes, converts and applies a push whose body st holds.
func (h *Handler) decodePush(ctx context.Context, r *http.Request, st *requestState, c *charge, key push.GroupingKey, owner pushstate.Owner, id inbound.Identity) reply {
	var err error
	body := st.body
	switch enc := contentEncoding(r); enc {
	case "", "identity":
		if len(body) > h.o.MaxPushDecodedBytes {
			return errorReply(&wire.TooLargeError{What: "decompressed push body", Size: len(body), Limit: h.o.MaxPushDecodedBytes})
		}
		if err := c.grow(ctx, pushCost(len(body), h.o.Limits.MaxSamples)); err != nil {
			return errorReply(err)
		}
	case "gzip":
		st.decoded, err = gunzip(ctx, st.decoded, st.body, h.o.MaxPushDecodedBytes, c, func(d int) int64 { return pushCost(d, h.o.Limits.MaxSamples) })
		if err != nil {
			var tl *wire.TooLargeError
			if errors.As(err, &tl) {
				tl.What = "decompressed push body"
			}
			return bodyReply(err)
		}
		body = st.decoded
	default:
		return reply{status: http.StatusUnsupportedMediaType, msg: "unsupported Content-Encoding " + enc + "; use gzip or none"}
	}

	if isDelimited(r.Header.Get("Content-Type")) {
		err = st.exp.ParseDelimited(body, h.o.Limits)
	} else {
		// Text 0.0.4 is also the fallback for a missing or unknown
		// Content-Type, as on the Pushgateway.
		err = st.exp.ParseText(body, h.o.Limits)
	}
	if err != nil {
		return decodeReply(err)
	}
	n := st.exp.NumSamples()
	addSamplesIn(ctx, n)
	if err := c.grow(ctx, int64(n)*pushBytesPerSample); err != nil {
		return errorReply(err)
	}
	now := h.o.Now()
	err = st.conv.Convert(&st.wr, &st.exp, key, now, h.o.Limits)
	if le := (*wire.LimitError)(nil); errors.As(err, &le) {
		return decodeReply(err)
	}
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
		var inv *push.InvalidError
		if errors.As(err, &inv) {
			st.wr.Reset()
			st.conv.FailureSeries(&st.wr, key, now)
			h.applyLabels(st, id)
			h.o.State.RecordFailure(ctx, key, owner, &st.wr)
		}
		return reply{status: http.StatusBadRequest, msg: "pushed metrics are invalid: " + err.Error()}
	}
	h.applyLabels(st, id)
	err = h.o.State.Push(ctx, pushstate.Push{Key: key, Owner: owner, Replace: r.Method == http.MethodPut,
		Request: &st.wr, Families: st.conv.SeriesFamily, Time: now})
	if err != nil {
		return errorReply(err)
	}
	return reply{status: http.StatusOK}
}

// withBody reads r's body into a request state, reserving its memory in
// the budget, and runs serve on it; the state and the reservation are
// given back when serve returns.
func (h *Handler) withBody(ctx context.Context, r *http.Request, serve func(st *requestState, c *charge) reply) reply {
	st := h.getState()
	defer h.putState(st)
	c := &charge{b: h.o.Budget}
	defer c.release()
	var err error
	st.body, err = readBody(ctx, r, st.body, h.o.MaxBodyBytes, c)
	addBytesIn(ctx, len(st.body))
	if err != nil {
		return bodyReply(err)
	}
	return serve(st, c)
}

// bodyReply answers a body that could not be read or decoded: 413 for a
// limit, 429 for the budget, 400 for the rest.
func bodyReply(err error) reply {
	var (
		tl *wire.TooLargeError
		be *BudgetError
	)
	if errors.As(err, &tl) || errors.As(err, &be) {
		return errorReply(err)
	}
	return reply{status: http.StatusBadRequest, msg: err.Error()}
}

// applyLabels sets the external labels and the writer's tenant labels,
// which win over anything in the body, the URL or the external labels, in
// one pass over wr.
func (h *Handler) applyLabels(st *requestState, id inbound.Identity) {
	st.wr.ApplyLabels(h.overrides(st, id))
}

// isDelimited reports whether a Content-Type names protobuf-delimited
// MetricFamily messages.
func isDelimited(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/vnd.google.protobuf" &&
		params["encoding"] == "delimited" && params["proto"] == "io.prometheus.client.MetricFamily"
}
