package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/requestid"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// reply is a route's answer.
type reply struct {
	status     int
	msg        string        // the error body; "" for none
	detail     string        // for the log line only
	retryAfter time.Duration // Retry-After, for 429 and 503
	location   string        // Location, for redirects
	header     http.Header   // more headers of the answer
	// body, when set, is the answer's body (of contentType) in place of
	// msg, which the log line still gets.
	body        []byte
	contentType string
	// What an OTLP success reports as partial success.
	otlpRejected int64
	otlpMessage  string
	// reason is why the request's values were not relayed
	// (metrics.Reason*); respond derives it from status when empty.
	reason string
}

// routeFunc serves an authenticated request within ctx's deadline.
type routeFunc func(ctx context.Context, r *http.Request, id inbound.Identity) reply

// authenticated runs serve, a write route, for a caller with the write
// scope (authorized), and answers what it returns.
func (h *Handler) authenticated(serve routeFunc) func(http.ResponseWriter, *http.Request) {
	return h.authorized(inbound.ScopeWrite, func(w http.ResponseWriter, r *http.Request, id inbound.Identity) {
		h.respond(w, statsFrom(r.Context()), serve(r.Context(), r, id))
	})
}

// authorized runs serve for an authenticated caller with scope, both
// within the request's one deadline (a password verification waits for a
// slot no longer). A failure is 401 with the challenge, 403 for a caller
// without the scope, 503 when verifications are busy; the connection is
// then closed so that the unauthenticated body is not read. serve runs
// with a memory reservation in its context (reservationFrom), given back
// when it returns.
func (h *Handler) authorized(scope inbound.Scope, serve func(w http.ResponseWriter, r *http.Request, id inbound.Identity)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := h.deadline(r.Context())
		defer cancel()
		r = r.WithContext(ctx)
		id, ok := h.authenticate(w, r)
		if !ok {
			return
		}
		h.serveAs(w, r, id, scope, serve)
	}
}

// authenticate returns r's identity (every scope when there is no inbound
// authentication), or answers the failure and returns false.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (inbound.Identity, bool) {
	if h.o.Inbound == nil {
		return inbound.Identity{Scopes: inbound.ScopeAll}, true
	}
	id, err := h.o.Inbound.Authenticate(r)
	if err == nil {
		return id, true
	}
	rep := reply{status: inbound.Status(err), msg: err.Error()}
	switch rep.status {
	case http.StatusUnauthorized:
		h.o.Inbound.Challenge(w.Header())
		rep.msg = inbound.ErrMissing.Error()
	case http.StatusForbidden:
		rep.msg = http.StatusText(rep.status)
	case http.StatusServiceUnavailable:
		rep.msg = "too many password verifications in flight; retry later"
		rep.retryAfter = time.Second
		var busy *inbound.BusyError
		if errors.As(err, &busy) {
			rep.retryAfter = busy.RetryAfter
		}
	}
	w.Header().Set("Connection", "close")
	h.respond(w, statsFrom(r.Context()), rep)
	return inbound.Identity{}, false
}

// serveAs runs serve for id when it has scope (else 403), with a memory
// reservation and id in r's context (identityFrom).
func (h *Handler) serveAs(w http.ResponseWriter, r *http.Request, id inbound.Identity, scope inbound.Scope, serve func(w http.ResponseWriter, r *http.Request, id inbound.Identity)) {
	st := statsFrom(r.Context())
	st.mu.Lock()
	st.identity = id
	st.mu.Unlock()
	if !id.Scopes.Has(scope) {
		if h.o.Metrics != nil {
			h.o.Metrics.InboundAuthFailure(id.Scheme, "forbidden")
		}
		w.Header().Set("Connection", "close")
		h.respond(w, st, reply{status: http.StatusForbidden, msg: fmt.Sprintf("forbidden: these credentials lack the %s scope", scope)})
		return
	}
	// Everything the request holds in memory — its body, its decoded
	// forms, the stored group it reads, the answer it passes on — is
	// reserved in the budget.
	res := h.o.Budget.NewReservation()
	defer res.Release()
	ctx := groupstore.WithReservation(r.Context(), res)
	ctx = context.WithValue(ctx, identityKey{}, id)
	serve(w, r.WithContext(ctx), id)
}

type identityKey struct{}

// identityFrom is the identity serveAs put in ctx.
func identityFrom(ctx context.Context) inbound.Identity {
	id, _ := ctx.Value(identityKey{}).(inbound.Identity)
	return id
}

// reservationFrom is the request's memory reservation, which authorized
// put in its context.
func reservationFrom(ctx context.Context) *Reservation {
	c, _ := groupstore.ReservationFrom(ctx).(*Reservation)
	return c
}

// reasonOf is why rep rejects a request's values (metrics.Reason*): its
// own reason, else one its status implies, else "" (not a rejection).
func reasonOf(rep reply) string {
	if rep.reason != "" {
		return rep.reason
	}
	switch rep.status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return metrics.ReasonInvalid
	case http.StatusUnauthorized, http.StatusForbidden:
		return metrics.ReasonAuth
	case http.StatusRequestEntityTooLarge:
		return metrics.ReasonTooLarge
	}
	return ""
}

// LogRefused logs and counts, as route "event", a request a platform
// adapter answered itself because the invocation event could not become
// one (an oversized or malformed body, a bad path): status and msg are
// its answer. It implements platform.Adapter.Refused.
func (h *Handler) LogRefused(ctx context.Context, method string, status int, msg string) {
	if requestid.From(ctx) == "" {
		ctx = requestid.With(ctx, requestid.New())
	}
	rep := reply{status: status, msg: msg}
	st := &stats{route: "event", msg: msg, reason: reasonOf(rep)}
	h.log(ctx, &http.Request{Method: method, URL: &url.URL{}}, status, st, 0)
}

func (h *Handler) respond(w http.ResponseWriter, st *stats, rep reply) {
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	st.mu.Lock()
	st.msg, st.detail, st.reason = rep.msg, rep.detail, reasonOf(rep)
	st.mu.Unlock()
	if rep.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((rep.retryAfter+time.Second-1)/time.Second)))
	}
	if rep.location != "" {
		w.Header().Set("Location", rep.location)
	}
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if rep.body != nil {
		w.Header().Set("Content-Type", rep.contentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
		return
	}
	if rep.msg == "" {
		w.WriteHeader(rep.status)
		return
	}
	http.Error(w, rep.msg, rep.status)
}

// maxMargin is the most kept free before a platform's invocation deadline,
// so that the relay's own answer (a 502 or 504 naming the fault) still
// reaches the sender before the platform ends the invocation.
const maxMargin = 500 * time.Millisecond

// deadline is the request's one deadline: RequestTimeout from now, or the
// platform's earlier invocation deadline less min(500 ms, a tenth of the
// time left). Everything the request does — store updates, every upstream
// attempt — runs within it.
func (h *Handler) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(h.o.RequestTimeout)
	if pd, ok := ctx.Deadline(); ok {
		margin := min(maxMargin, time.Until(pd)/10)
		if pd.Add(-margin).Before(d) {
			d = pd.Add(-margin)
		}
	}
	return context.WithDeadline(ctx, d)
}

// errorReply maps what a request ran into to its answer: the upstream's
// answer as the upstream client decided it, 413 for limits that a retry
// cannot pass, 429 for what passes later, 503 for a store failure, 504 for
// the deadline, and 400 for invalid input.
func errorReply(err error) reply {
	var (
		ue *upstream.Error
		tl *wire.TooLargeError
		be *BudgetError
		le *pushstate.QuotaError
		se *pushstate.StoreError
		ke *pushstate.KindError
	)
	switch {
	case errors.As(err, &ue):
		rep := reply{status: ue.Status, msg: ue.Msg, detail: ue.Detail, retryAfter: ue.RetryAfter}
		switch {
		case ue.Partial || ue.Dropped != [3]int{}:
			rep.reason = metrics.ReasonProfile
		case ue.Status != http.StatusBadRequest:
			// 429, 5xx: the sender retries; not a rejection.
		case ue.UpstreamStatus == http.StatusRequestEntityTooLarge:
			rep.reason = metrics.ReasonTooLarge // a series too large on its own
		case ue.UpstreamStatus == 0:
			rep.reason = metrics.ReasonInvalid // a request the relay could not read or split
		default:
			rep.reason = metrics.ReasonUpstream4xx
		}
		return rep
	case errors.As(err, &tl):
		return reply{status: http.StatusRequestEntityTooLarge, msg: tl.Error() + " (" + sizeSetting(tl.What) + ")"}
	case errors.As(err, &be):
		if be.TooLarge() {
			return reply{status: http.StatusRequestEntityTooLarge, msg: be.Error(), reason: metrics.ReasonBudget}
		}
		return reply{status: http.StatusTooManyRequests, msg: be.Error(), retryAfter: time.Second, reason: metrics.ReasonBudget}
	case errors.As(err, &le):
		if le.What == pushstate.LimitSeriesPerGroup {
			return reply{status: http.StatusRequestEntityTooLarge, msg: le.Error() + " (PROMRELAY_MAX_SERIES_PER_GROUP)", reason: metrics.ReasonLimit}
		}
		return reply{status: http.StatusTooManyRequests, msg: le.Error() + " (PROMRELAY_MAX_GROUPS_PER_TENANT); delete groups, or wait for PROMRELAY_GROUP_TTL", retryAfter: time.Minute, reason: metrics.ReasonLimit}
	case errors.As(err, &ke):
		return reply{status: http.StatusConflict, msg: ke.Error(), reason: metrics.ReasonInvalid}
	case errors.As(err, &se):
		return reply{status: http.StatusServiceUnavailable, msg: "group store unavailable; retry later", detail: se.Error(), retryAfter: time.Second}
	case errors.Is(err, context.DeadlineExceeded):
		return reply{status: http.StatusGatewayTimeout, msg: "the request did not finish within its deadline (PROMRELAY_REQUEST_TIMEOUT)"}
	case errors.Is(err, context.Canceled):
		// The sender went away; nobody reads the answer.
		return reply{status: 499, msg: "client closed the request"}
	}
	return reply{status: http.StatusBadGateway, msg: "relay failed", detail: err.Error()}
}

// sizeSetting names the setting behind a size limit.
func sizeSetting(what string) string {
	switch what {
	case "request body":
		return "PROMRELAY_MAX_BODY_BYTES"
	case "push body", "decompressed push body":
		return "PROMRELAY_MAX_PUSH_DECODED_BYTES"
	default:
		return "PROMRELAY_MAX_DECODED_BYTES"
	}
}

// decodeReply answers a body the codec refused: 413 naming the setting for
// a limit, 400 with the reason otherwise.
func decodeReply(err error) reply {
	var le *wire.LimitError
	if !errors.As(err, &le) {
		return reply{status: http.StatusBadRequest, msg: err.Error()}
	}
	setting := map[wire.LimitKind]string{
		wire.LimitSamples:    "PROMRELAY_MAX_SAMPLES_PER_REQUEST",
		wire.LimitLabels:     "PROMRELAY_MAX_LABELS",
		wire.LimitLabelBytes: "PROMRELAY_MAX_LABEL_BYTES",
	}[le.Kind]
	return reply{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("%v (the limit of %s); send smaller requests", le, setting), reason: metrics.ReasonLimit}
}
