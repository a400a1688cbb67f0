package relay

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/promrelay/promrelay/shared/aggregate"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/pushstate"
)

// AggregatePrefix is the path below which pushes are aggregated: a
// Pushgateway client whose base URL ends in /aggregate pushes to
// PUT|POST /aggregate/metrics/job/<job>{/<label>/<value>} (or
// job@base64), and DELETE on the same path removes the group.
const AggregatePrefix = "/aggregate"

// IdempotencyKeyHeader is the request header that makes an aggregated push
// count once however often it is retried (IETF
// draft-ietf-httpapi-idempotency-key-header; client_golang sets it with
// push.Pusher.Header). Its value is an sf-string, "…"; a bare token is
// taken as it is.
const IdempotencyKeyHeader = "Idempotency-Key"

// serveAggregate handles PUT, POST and DELETE below /aggregate/metrics/:
// the grouping key, body, limits, memory budget, tenant and external
// labels as for a push (servePush), then the values are added to the
// group's totals (pushstate.State.Aggregate). 200 once the upstream has
// the totals, 202 for a DELETE; 400 for a bad grouping key or body or a
// negative increment, 422 for an Idempotency-Key reused for another push,
// 501 without a group store, 503 with Retry-After when the store does not
// answer within the request's deadline.
func (h *Handler) serveAggregate(ctx context.Context, r *http.Request, id inbound.Identity) reply {
	if !h.o.State.Stateful() {
		return reply{status: http.StatusNotImplemented, msg: "aggregating pushes needs a group store: set PROMRELAY_STATE_URL"}
	}
	key, rep := h.groupingKey(r, AggregatePrefix)
	if rep.status != 0 {
		return rep
	}
	owner := ownerOf(id)
	if r.Method == http.MethodDelete {
		if err := h.o.State.DeleteAggregate(ctx, key, owner); err != nil {
			return aggregateReply(err)
		}
		return reply{status: http.StatusAccepted}
	}
	return h.withBody(ctx, r, func(st *requestState, c *Reservation) reply {
		if rep := h.decodeExposition(ctx, r, st, c); rep.status != 0 {
			return rep
		}
		now := h.o.Now()
		if rep := h.convert(ctx, st, key, owner, id, now, false); rep.status != 0 {
			return rep
		}
		err := h.o.State.Aggregate(ctx, pushstate.AggregatePush{Key: key, Owner: owner, Request: &st.wr,
			Families: st.conv.SeriesFamily, Time: now, IdempotencyKey: idempotencyKey(r)})
		if err != nil {
			return aggregateReply(err)
		}
		return reply{status: http.StatusOK}
	})
}

// idempotencyKey returns the request's Idempotency-Key without the
// sf-string's quotes; "" for none.
func idempotencyKey(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get(IdempotencyKeyHeader))
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// aggregateReply answers the errors of an aggregated push or delete.
func aggregateReply(err error) reply {
	var (
		ie      *aggregate.IncrementError
		ce      *aggregate.ConflictError
		de      *pushstate.IdempotencyError
		counted *pushstate.CountedError
	)
	switch {
	case errors.As(err, &ie):
		return reply{status: http.StatusBadRequest, msg: ie.Error()}
	case errors.As(err, &ce):
		return reply{status: http.StatusConflict, msg: ce.Error()}
	case errors.As(err, &counted):
		return reply{status: http.StatusBadRequest, msg: counted.Error(), reason: metrics.ReasonUpstream4xx}
	case errors.As(err, &de):
		return reply{status: http.StatusUnprocessableEntity, msg: de.Error()}
	case errors.Is(err, pushstate.ErrNoStore):
		return reply{status: http.StatusNotImplemented, msg: err.Error()}
	}
	return errorReply(err)
}
