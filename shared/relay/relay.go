// Package relay is promrelay's platform-neutral http.Handler: the routes of
// DESIGN.md §2, request limits, error bodies, one log line per request, and
// the wiring of the codec (wire), the Pushgateway semantics (push) and the
// upstream client. Every platform adapter ends here.
package relay

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// Upstream is where relayed series go; *upstream.Client implements it.
type Upstream interface {
	Write(ctx context.Context, wr *wire.WriteRequest) (upstream.Result, error)
	// WriteEncoded sends an encoded (uncompressed) remote-write request.
	WriteEncoded(ctx context.Context, raw []byte) (upstream.Result, error)
}

// Options configures the handler.
type Options struct {
	Upstream        Upstream
	ExternalLabels  []wire.Label  // sorted by name; set on every series, overriding
	PathPrefix      string        // stripped from every route, e.g. "/prod"
	RequestTimeout  time.Duration // one relayed request, retries included; 0 means 30 s
	MaxBodyBytes    int           // inbound body as received; 0 means 16 MiB
	MaxDecodedBytes int           // inbound body after snappy/gzip; 0 means 32 MiB
	Limits          wire.Limits   // per-series limits for remote write
	Logger          *slog.Logger  // nil means slog.Default()
	Now             func() time.Time
	// Inbound, when set, authenticates every push and remote write;
	// health checks stay open.
	Inbound *inbound.Authenticator
	// TenantUpstreams are the upstreams of tenants that have their own.
	TenantUpstreams map[string]Upstream
	// Store, when set, keeps pushed groups (the Pushgateway's state): PUT
	// and DELETE take effect upstream with staleness markers, and Reemit
	// re-sends the groups on a schedule.
	Store groupstore.Store
	// GroupTTL deletes groups not pushed for this long; 0 keeps them.
	GroupTTL time.Duration
}

// Handler serves the relay's routes. It is safe for concurrent use.
type Handler struct {
	o     Options
	state sync.Pool // *requestState
}

// requestState is the reusable memory of one request.
type requestState struct {
	body    []byte
	decoded []byte
	out     []byte
	set     []wire.Label
	wr      wire.WriteRequest
	exp     wire.Exposition
	conv    push.Converter
	rw      wire.Rewriter
}

// New returns the relay handler for o.
func New(o Options) *Handler {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 16 << 20
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = 32 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PathPrefix = strings.TrimRight(o.PathPrefix, "/")
	return &Handler{o: o}
}

// outcome is what a route did, for the response and the log line.
type outcome struct {
	route      string
	status     int
	msg        string // error body, empty on success
	retryAfter time.Duration
	samplesIn  int
	samplesOut int
	bytesIn    int
	up         upstream.Result
	invalid    int // series rejected as invalid
	identity   inbound.Identity
}

// authenticate checks the writer when inbound authentication is on; on
// failure it fills out with 401 (and a challenge) or 403.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, out *outcome) bool {
	if h.o.Inbound == nil {
		return true
	}
	id, err := h.o.Inbound.Authenticate(r)
	if err != nil {
		out.status = inbound.Status(err)
		out.msg = http.StatusText(out.status)
		if out.status == http.StatusUnauthorized {
			h.o.Inbound.Challenge(w.Header())
			out.msg = inbound.ErrMissing.Error()
		}
		return false
	}
	out.identity = id
	return true
}

type requestIDKey struct{}

// WithRequestID returns a context that carries the platform's request id
// into the relay's log line.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// ServeHTTP routes the request:
//
//	PUT|POST|DELETE /metrics/job/<job>{/<label>/<value>}   Pushgateway push
//	POST /api/v1/write                                     remote write 1.0
//	GET  /-/healthy, /-/ready                              health
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path := r.URL.EscapedPath()
	if h.o.PathPrefix != "" {
		rest, ok := strings.CutPrefix(path, h.o.PathPrefix)
		if !ok || (rest != "" && rest[0] != '/') {
			http.NotFound(w, r)
			return
		}
		path = rest
	}
	var out outcome
	switch {
	case path == "/api/v1/write":
		out.route = "remote_write"
		if !h.authenticate(w, r, &out) {
			break
		}
		if r.Method != http.MethodPost {
			out.status, out.msg = http.StatusMethodNotAllowed, "remote write takes POST"
			w.Header().Set("Allow", http.MethodPost)
			break
		}
		h.serveRemoteWrite(r, &out)
	case strings.HasPrefix(path, "/metrics/"):
		out.route = "push"
		if !h.authenticate(w, r, &out) {
			break
		}
		switch r.Method {
		case http.MethodPut, http.MethodPost, http.MethodDelete:
			h.servePush(r, strings.TrimPrefix(path, "/metrics/"), &out)
		default:
			out.status, out.msg = http.StatusMethodNotAllowed, "pushes take PUT, POST or DELETE"
			w.Header().Set("Allow", "PUT, POST, DELETE")
		}
	case path == "/-/healthy" || path == "/-/ready":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			out.status, out.msg = http.StatusMethodNotAllowed, "health checks take GET"
			break
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if path == "/-/healthy" {
			_, _ = w.Write([]byte("promrelay is Healthy.\n"))
		} else {
			_, _ = w.Write([]byte("promrelay is Ready.\n"))
		}
		return
	default:
		out.route, out.status, out.msg = "unknown", http.StatusNotFound, "404 page not found"
	}
	h.respond(w, &out)
	h.log(r, &out, time.Since(start))
}

func (h *Handler) respond(w http.ResponseWriter, out *outcome) {
	if out.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((out.retryAfter+time.Second-1)/time.Second)))
	}
	if out.msg == "" {
		w.WriteHeader(out.status)
		return
	}
	http.Error(w, out.msg, out.status)
}

func (h *Handler) log(r *http.Request, out *outcome, d time.Duration) {
	level := slog.LevelInfo
	switch {
	case out.status >= 500:
		level = slog.LevelError
	case out.status >= 400:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", out.route),
		slog.Int("status", out.status),
		slog.Int("samples_in", out.samplesIn),
		slog.Int("samples_out", out.samplesOut),
		slog.Int("bytes_in", out.bytesIn),
		slog.Int("bytes_out", out.up.BytesSent),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int("upstream_status", out.up.UpstreamStatus),
		slog.Int("upstream_requests", out.up.Requests),
	}
	if id, ok := r.Context().Value(requestIDKey{}).(string); ok {
		attrs = append(attrs, slog.String("request_id", id))
	}
	if out.identity.Subject != "" {
		attrs = append(attrs, slog.String("writer", out.identity.Subject))
	}
	if out.identity.Tenant != nil {
		attrs = append(attrs, slog.String("tenant", out.identity.Tenant.Name))
	}
	if out.msg != "" {
		attrs = append(attrs, slog.String("error", out.msg))
	}
	h.o.Logger.LogAttrs(r.Context(), level, "request", attrs...)
}

func (h *Handler) getState() *requestState {
	st, _ := h.state.Get().(*requestState)
	if st == nil {
		st = &requestState{}
	}
	return st
}

func (h *Handler) putState(st *requestState) {
	// Do not keep a huge buffer from one outsized request alive forever.
	if cap(st.body) > 4*h.o.MaxBodyBytes || cap(st.decoded) > 64<<20 || cap(st.out) > 64<<20 {
		return
	}
	st.wr.Reset()
	st.exp.Reset()
	h.state.Put(st)
}

// deadlineMargin is kept free before a platform's invocation deadline, so
// that the relay's own answer (a 502 or 504 naming the fault) still reaches
// the sender before the platform ends the invocation.
const deadlineMargin = 500 * time.Millisecond

// deadline bounds a relayed request by RequestTimeout, or by the platform's
// earlier invocation deadline less deadlineMargin.
func (h *Handler) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(h.o.RequestTimeout)
	if pd, ok := ctx.Deadline(); ok {
		margin := min(deadlineMargin, time.Until(pd)/10)
		if pd.Add(-margin).Before(d) {
			d = pd.Add(-margin)
		}
	}
	return context.WithDeadline(ctx, d)
}

// applyLabels sets the external labels, then the writer's tenant labels,
// which win over anything in the body, the URL or the external labels.
func (h *Handler) applyLabels(wr *wire.WriteRequest, id inbound.Identity) {
	wr.ApplyLabels(h.o.ExternalLabels)
	wr.ApplyLabels(id.Labels)
}

// labelsToSet returns the external labels with the writer's tenant labels
// merged in (the tenant's win), sorted, in st's memory: the single set the
// remote-write Rewriter splices into every series.
func (h *Handler) labelsToSet(st *requestState, id inbound.Identity) []wire.Label {
	ext, ten := h.o.ExternalLabels, id.Labels
	if len(ten) == 0 {
		return ext
	}
	st.set = st.set[:0]
	i, j := 0, 0
	for i < len(ext) || j < len(ten) {
		switch {
		case j == len(ten) || (i < len(ext) && ext[i].Name < ten[j].Name):
			st.set = append(st.set, ext[i])
			i++
		case i == len(ext) || ten[j].Name < ext[i].Name:
			st.set = append(st.set, ten[j])
			j++
		default: // same name: the tenant's label wins
			st.set = append(st.set, ten[j])
			i++
			j++
		}
	}
	return st.set
}

// upstreamFor returns the writer's tenant upstream, or the default one.
func (h *Handler) upstreamFor(id inbound.Identity) Upstream {
	if id.Tenant != nil {
		if up := h.o.TenantUpstreams[id.Tenant.Name]; up != nil {
			return up
		}
	}
	return h.o.Upstream
}

// relayPush sends a converted push: the data series first (they decide the
// answer), then the push-time gauge (the last series) in its own request.
// Concurrent pushes to one group write that gauge at nearly the same
// millisecond, and Prometheus rejects, and rolls back, a whole request
// with an out-of-order or duplicate sample: alone, a rejected gauge only
// means a newer push time is already stored, so it is logged, not answered.
func (h *Handler) relayPush(ctx context.Context, wr *wire.WriteRequest, out *outcome, okStatus int) {
	n := len(wr.Series)
	if n == 0 {
		h.relay(ctx, wr, out, okStatus)
		return
	}
	pushTime := wr.Series[n-1]
	wr.Series = wr.Series[:n-1]
	h.relay(ctx, wr, out, okStatus)
	if out.status != okStatus {
		return
	}
	wr.Series = append(wr.Series[:0], pushTime)
	wr.Metadata = wr.Metadata[:0]
	h.applyLabels(wr, out.identity)
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	res, err := h.upstreamFor(out.identity).Write(ctx, wr)
	out.up.Requests += res.Requests
	out.samplesOut++
	if err != nil {
		h.o.Logger.LogAttrs(ctx, slog.LevelWarn, "push time not stored (a concurrent push's is newer, or the upstream failed)", slog.String("error", err.Error()))
	}
}

// relay sends wr upstream and records the result in out.
func (h *Handler) relay(ctx context.Context, wr *wire.WriteRequest, out *outcome, okStatus int) {
	h.applyLabels(wr, out.identity)
	out.samplesOut = wr.NumSamples()
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	res, err := h.upstreamFor(out.identity).Write(ctx, wr)
	out.up = res
	if err != nil {
		out.samplesOut = 0
		h.upstreamError(err, out)
		return
	}
	out.status = okStatus
}

// upstreamError records a failed upstream write as the sender's answer.
func (h *Handler) upstreamError(err error, out *outcome) {
	if e, ok := err.(*upstream.Error); ok {
		out.status, out.msg, out.retryAfter = e.Status, e.Msg, e.RetryAfter
		return
	}
	out.status, out.msg = http.StatusBadGateway, err.Error()
}
