package relay

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/wire"
)

// servePush handles PUT, POST and DELETE below /metrics/ as the Pushgateway
// does: 400 for a bad grouping key or body, 200 once the upstream has
// accepted the push, 202 for a DELETE.
func (h *Handler) servePush(ctx context.Context, r *http.Request, id inbound.Identity) reply {
	key, rep := h.groupingKey(r, "")
	if rep.status != 0 {
		return rep
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

// groupingKey parses the grouping key of a push below base+"/metrics/"
// (base "" for the Pushgateway's routes, AggregatePrefix): 400 for a bad
// key, and for /metrics/job/ (nothing after the job segment) the
// Pushgateway's redirect to /metrics/job, which is not a route (the log
// wrapper puts the path prefix back on the Location).
func (h *Handler) groupingKey(r *http.Request, base string) (push.GroupingKey, reply) {
	groupPath := strings.TrimPrefix(r.URL.EscapedPath(), base+"/metrics/")
	if strings.HasSuffix(groupPath, "/") && strings.Count(groupPath, "/") == 1 {
		if strings.HasPrefix(groupPath, push.JobLabel+"/") {
			return nil, reply{status: http.StatusTemporaryRedirect, location: base + "/metrics/job"}
		}
		return nil, reply{status: http.StatusNotFound, msg: "404 page not found"}
	}
	key, err := push.ParseGroupingKey(groupPath, h.o.Limits.MaxLabels)
	if err != nil {
		return nil, reply{status: http.StatusBadRequest, msg: err.Error()}
	}
	return key, reply{}
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
	return h.withBody(ctx, r, func(st *requestState, c *Reservation) reply {
		return h.decodePush(ctx, r, st, c, key, owner, id)
	})
}

// decodePush decodes, converts and applies a push whose body st holds.
func (h *Handler) decodePush(ctx context.Context, r *http.Request, st *requestState, c *Reservation, key push.GroupingKey, owner pushstate.Owner, id inbound.Identity) reply {
	if rep := h.decodeExposition(ctx, r, st, c); rep.status != 0 {
		return rep
	}
	now := h.o.Now()
	if rep := h.convert(ctx, st, key, owner, id, now, true); rep.status != 0 {
		return rep
	}
	err := h.o.State.Push(ctx, pushstate.Push{Key: key, Owner: owner, Replace: r.Method == http.MethodPut,
		Request: &st.wr, Families: st.conv.SeriesFamily, Time: now})
	if err != nil {
		return errorReply(err)
	}
	return reply{status: http.StatusOK}
}

// decodeExposition inflates and parses the exposition st's body holds
// (protobuf-delimited by Content-Type, else text 0.0.4, which is also the
// Pushgateway's fallback for a missing or unknown Content-Type) into
// st.exp, with its samples counted and their memory reserved; a reply
// with a status when it cannot.
func (h *Handler) decodeExposition(ctx context.Context, r *http.Request, st *requestState, c *Reservation) reply {
	body, rep := h.inflate(ctx, r, st, c)
	if rep.status != 0 {
		return rep
	}
	var err error
	if isDelimited(r.Header.Get("Content-Type")) {
		err = st.exp.ParseDelimited(body, h.o.Limits)
	} else {
		err = st.exp.ParseText(body, h.o.Limits)
	}
	if err != nil {
		return decodeReply(err)
	}
	n := st.exp.NumSamples()
	addIn(ctx, counts{kindSample: n})
	if err := c.Grow(ctx, int64(n)*pushBytesPerSample); err != nil {
		return errorReply(err)
	}
	return reply{}
}

// inflate returns the push body as text, gunzipped when it came gzipped,
// with its parse reserved in the budget; a reply with a status when it
// cannot.
func (h *Handler) inflate(ctx context.Context, r *http.Request, st *requestState, c *Reservation) ([]byte, reply) {
	cost := func(decoded int) int64 { return pushCost(decoded, h.o.Limits.MaxSamples) }
	switch enc := contentEncoding(r); enc {
	case "", "identity":
		if len(st.body) > h.o.MaxPushDecodedBytes {
			return nil, errorReply(&wire.TooLargeError{What: "push body", Size: len(st.body), Limit: h.o.MaxPushDecodedBytes})
		}
		if err := c.Grow(ctx, cost(len(st.body))); err != nil {
			return nil, errorReply(err)
		}
		return st.body, reply{}
	case "gzip":
		var err error
		st.decoded, err = gunzip(ctx, st.decoded, st.body, h.o.MaxPushDecodedBytes, c, cost)
		if err != nil {
			var tl *wire.TooLargeError
			if errors.As(err, &tl) {
				tl.What = "decompressed push body"
			}
			return nil, bodyReply(err)
		}
		return st.decoded, reply{}
	default:
		return nil, reply{status: http.StatusUnsupportedMediaType, msg: "unsupported Content-Encoding " + enc + "; use gzip or none"}
	}
}

// convert turns the parsed push into write-request series with every
// label applied, as the Pushgateway would expose them. An invalid push is
// 400, and with recordFailure its failure time is recorded as the
// Pushgateway records it (an aggregated group has none).
func (h *Handler) convert(ctx context.Context, st *requestState, key push.GroupingKey, owner pushstate.Owner, id inbound.Identity, now time.Time, recordFailure bool) reply {
	err := st.conv.Convert(&st.wr, &st.exp, key, now, h.o.Limits)
	if le := (*wire.LimitError)(nil); errors.As(err, &le) {
		return decodeReply(err)
	}
	if err == nil {
		// Pushes obey the same per-series limits as remote writes. Every
		// string of a converted push is valid UTF-8 (the text parser and
		// the delimited one's checkLabelPairs check label values, names are
		// legacy names, ParseGroupingKey checks the key; FuzzConvertDuplicates
		// asserts it for text pushes), so plainValid need not.
		for i := range st.wr.Series {
			if s := &st.wr.Series[i]; !plainValid(s, h.o.Limits, true) {
				if err = wire.ValidateSeries(s, h.o.Limits); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		if inv := (*push.InvalidError)(nil); recordFailure && errors.As(err, &inv) {
			st.wr.Reset()
			st.conv.FailureSeries(&st.wr, key, now)
			h.applyLabels(st, id)
			h.o.State.RecordFailure(ctx, key, owner, &st.wr)
		}
		return reply{status: http.StatusBadRequest, msg: "pushed metrics are invalid: " + err.Error()}
	}
	h.applyLabels(st, id)
	setIn(ctx, countData(&st.wr))
	return reply{}
}

// withBody reads r's body into a request state, reserving its memory in
// the request's reservation (which the authenticated middleware gives
// back), and runs serve on it; the state goes back to the pool when serve
// returns.
func (h *Handler) withBody(ctx context.Context, r *http.Request, serve func(st *requestState, c *Reservation) reply) reply {
	st := h.getState()
	defer h.putState(st)
	c, _ := groupstore.ReservationFrom(ctx).(*Reservation)
	if c == nil {
		c = h.o.Budget.NewReservation()
		defer c.Release()
	}
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

// plainValid reports whether s passes wire.ValidateSeries, deciding only
// the common case: every label name and value ASCII (so valid UTF-8) or,
// with utf8Known, known to be valid UTF-8 by the caller, names non-empty
// and strictly increasing, __name__ set, each label within lim, float
// samples in time order. False means only that ValidateSeries must decide
// (and name the reason); it costs a fraction of ValidateSeries' UTF-8
// checks, a call per string; with utf8Known it skips the ASCII scan of
// every name and value.
func plainValid(s *wire.Series, lim wire.Limits, utf8Known bool) bool {
	if lim.MaxLabels > 0 && len(s.Labels) > lim.MaxLabels || len(s.Samples)+len(s.Histograms)+len(s.Exemplars) == 0 {
		return false
	}
	hasName := false
	prev := ""
	for i, l := range s.Labels {
		if l.Name == "" || i > 0 && prev >= l.Name || lim.MaxLabelBytes > 0 && len(l.Name)+len(l.Value) > lim.MaxLabelBytes {
			return false
		}
		if !utf8Known && (!asciiString(l.Name) || !asciiString(l.Value)) {
			return false
		}
		if l.Name == wire.MetricNameLabel {
			if l.Value == "" {
				return false
			}
			hasName = true
		}
		prev = l.Name
	}
	for i := 1; i < len(s.Samples); i++ {
		if s.Samples[i].Timestamp < s.Samples[i-1].Timestamp {
			return false
		}
	}
	return hasName
}

// asciiString reports whether s has no byte above 0x7f, eight at a time.
func asciiString(s string) bool {
	for len(s) >= 8 {
		if (uint64(s[0])|uint64(s[1])<<8|uint64(s[2])<<16|uint64(s[3])<<24|
			uint64(s[4])<<32|uint64(s[5])<<40|uint64(s[6])<<48|uint64(s[7])<<56)&0x8080808080808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
