// Package relay is promrelay's platform-neutral http.Handler: the routes,
// authentication of every route but health, the request's one deadline,
// bounds on each request's work and on the memory of all requests in
// flight, error bodies, and one log line per request. It decodes with the
// codec (wire), gives pushes the Pushgateway's semantics through
// pushstate, and writes with the upstream client. Every platform adapter
// (shared/platform) ends here; shared/app builds it.
//
// Routes (below Options.PathPrefix):
//
//	PUT|POST|DELETE /metrics/job/<job>{/<label>/<value>}   Pushgateway push
//	PUT|POST|DELETE /metrics/job@base64/<job>{/…}          the same, job in base64url
//	PUT|POST|DELETE /aggregate/metrics/job/<job>{/…}       aggregated push: values add up (and job@base64)
//	POST /api/v1/write                                     remote write 1.0 or 2.0 (by Content-Type)
//	POST /v1/metrics, /api/v1/otlp/v1/metrics              OTLP/HTTP metrics (protobuf or JSON)
//	GET|POST /api/v1/query, query_range, series, labels,   the PromQL HTTP API, relayed
//	         query_exemplars; GET label/<name>/values,     (Options.Read)
//	         metadata, status/buildinfo
//	POST /api/v1/read                                      remote read, relayed (Options.Read)
//	GET  /metrics                                          the relay's own metrics (Options.Metrics)
//	GET  /-/healthy, /-/ready                              health, unauthenticated
//
// Writing needs the write scope, reading (and GET /metrics, unless
// Options.OpenMetrics) the read scope (inbound.Identity.Scopes); a caller
// without it gets 403.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/requestid"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// Upstream is where relayed series go; *upstream.Client implements it.
type Upstream interface {
	Write(ctx context.Context, wr *wire.WriteRequest) (upstream.Result, error)
	// WriteEncoded sends an encoded (uncompressed) remote-write request.
	WriteEncoded(ctx context.Context, raw []byte) (upstream.Result, error)
}

// Upstreams returns the upstream of a tenant ("" for writers without one,
// and for tenants without their own upstream: the default).
type Upstreams func(tenant string) Upstream

// Authenticator checks a request's credentials; *inbound.Authenticator
// implements it.
type Authenticator interface {
	Authenticate(r *http.Request) (inbound.Identity, error)
	Challenge(h http.Header)
}

// Options configure the handler; every field is required unless marked
// optional. shared/config holds the defaults.
type Options struct {
	// Upstreams chooses the upstream of each writer's tenant, and State
	// applies pushes (with or without a group store): both set, the
	// write routes exist; both nil, they do not (the read entry points).
	Upstreams Upstreams
	State     *pushstate.State
	// Read configures the read routes; optional: nil, they do not exist.
	Read *ReadOptions
	// Mirror configures the StackState mirror routes, on top of Read;
	// optional.
	Mirror *MirrorOptions
	// Inbound authenticates every route but health; optional: nil
	// accepts any writer (PROMRELAY_INBOUND_AUTH=none).
	Inbound        Authenticator
	ExternalLabels []wire.Label // optional; sorted by name, set on every series
	// OTLP translates OTLP requests (its MaxBytes is the handler's to
	// set); optional: the zero value is Prometheus' defaults.
	OTLP       otlp.Settings
	PathPrefix string // optional; stripped from every route, e.g. "/prod"
	// RequestTimeout bounds everything one request does: reading, store
	// updates and every upstream attempt.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a body as received (compressed), in bytes.
	MaxBodyBytes int
	// MaxDecodedBytes bounds a remote-write body after snappy, in bytes.
	MaxDecodedBytes int
	// MaxPushDecodedBytes bounds a push body after gzip, in bytes.
	MaxPushDecodedBytes int
	// Limits bound each request while it is decoded: its samples
	// (MaxSamples, required) and each series' labels.
	Limits wire.Limits
	// Budget bounds the memory of all requests in flight.
	Budget *Budget
	// Logger takes the request lines; with requestid.NewLogHandler, every
	// line carries the request's id.
	Logger *slog.Logger
	// Now is the clock of push times (time.Now).
	Now func() time.Time
	// Metrics, when set, counts every request (shared/metrics) and is
	// served at GET /metrics; optional.
	Metrics *metrics.Metrics
	// OpenMetrics serves GET /metrics to anyone, like the health
	// endpoints (PROMRELAY_METRICS_AUTH=none); else it needs the read
	// scope.
	OpenMetrics bool
}

// Handler serves the relay's routes. It is safe for concurrent use.
type Handler struct {
	o     Options
	mux   *http.ServeMux
	state sync.Pool // *requestState
}

// New returns the handler for o; an error names a missing option.
func New(o Options) (*Handler, error) {
	switch {
	case (o.Upstreams == nil) != (o.State == nil):
		return nil, errors.New("relay: Upstreams and State go together")
	case o.State == nil && o.Read == nil:
		return nil, errors.New("relay: no routes: set Upstreams and State, or Read")
	case o.Read != nil && (o.Read.Upstreams == nil || o.Read.Enforcer == nil || o.Read.CopyBufferBytes <= 0 || o.Read.MaxQueries <= 0):
		return nil, errors.New("relay: Read needs Upstreams, Enforcer, CopyBufferBytes and MaxQueries")
	case o.RequestTimeout <= 0:
		return nil, errors.New("relay: RequestTimeout must be positive")
	case o.MaxBodyBytes <= 0 || o.MaxDecodedBytes <= 0 || o.MaxPushDecodedBytes <= 0:
		return nil, errors.New("relay: MaxBodyBytes, MaxDecodedBytes and MaxPushDecodedBytes must be positive")
	case o.Limits.MaxSamples <= 0:
		return nil, errors.New("relay: Limits.MaxSamples must be positive")
	case o.Budget == nil:
		return nil, errors.New("relay: Budget is required")
	case o.Logger == nil || o.Now == nil:
		return nil, errors.New("relay: Logger and Now are required")
	}
	o.PathPrefix = strings.TrimRight(o.PathPrefix, "/")
	h := &Handler{o: o, mux: http.NewServeMux()}
	if o.Read != nil {
		h.registerRead()
	}
	if o.Mirror != nil {
		if o.Read == nil || o.Mirror.Upstream == nil || o.Mirror.Prefix == "" || o.Mirror.MaxBodyBytes <= 0 || o.Mirror.MaxResponseBytes <= 0 {
			return nil, errors.New("relay: Mirror needs Read, Upstream, Prefix, MaxBodyBytes and MaxResponseBytes")
		}
		if err := h.registerMirror(); err != nil {
			return nil, err
		}
	}
	if o.Metrics != nil {
		serve := o.Metrics.Handler().ServeHTTP
		if o.OpenMetrics {
			h.route("GET /metrics", "metrics", serve)
		} else {
			h.route("GET /metrics", "metrics", h.authorized(inbound.ScopeRead, func(w http.ResponseWriter, r *http.Request, _ inbound.Identity) {
				serve(w, r)
			}))
		}
	}
	h.route("GET /-/healthy", "health", health("promrelay is Healthy.\n"))
	h.route("GET /-/ready", "health", health("promrelay is Ready.\n"))
	if o.State == nil {
		return h, nil
	}
	for _, base := range []string{"/metrics/job/", "/metrics/job" + "@base64/"} {
		for _, verb := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
			route := "push"
			if verb == http.MethodDelete {
				route = "delete"
			}
			h.route(verb+" "+base+"{rest...}", route, h.authenticated(h.servePush))
		}
	}
	// Aggregated pushes: the same paths below /aggregate.
	for _, base := range []string{AggregatePrefix + "/metrics/job/", AggregatePrefix + "/metrics/job@base64/"} {
		for _, verb := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
			h.route(verb+" "+base+"{rest...}", "aggregate", h.authenticated(h.serveAggregate))
		}
	}
	h.route("POST /api/v1/write", "remote_write", h.authenticated(h.serveRemoteWrite))
	h.route("POST /v1/metrics", "otlp", h.authenticated(h.serveOTLP))
	h.route("POST /api/v1/otlp/v1/metrics", "otlp", h.authenticated(h.serveOTLP))
	// As on the Pushgateway: no group below the job segment is not a
	// route (ServeMux would answer GET with 405).
	h.route("GET /metrics/job/{$}", "unknown", notFound)
	h.route("GET /metrics/job@base64/{$}", "unknown", notFound)
	// Without these, ServeMux would redirect them to the subtree root.
	h.route("/metrics/job", "unknown", notFound)
	h.route("/metrics/job@base64", "unknown", notFound)
	// Anything else is ServeMux's own 404, or its 405 with Allow for a
	// route's path with another method.
	return h, nil
}

// route registers a handler that names its route for the log line.
func (h *Handler) route(pattern, name string, serve func(w http.ResponseWriter, r *http.Request)) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if st := statsFrom(r.Context()); st != nil {
			st.route = name
		}
		serve(w, r)
	})
}

func health(text string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(text))
		}
	}
}

func notFound(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

// ServeHTTP strips the path prefix, routes the request, and logs one line
// for it, whatever the route answered (ServeMux's own 301 to a cleaned
// path and 405 with Allow included).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := &stats{route: "unknown"}
	rw := &statusWriter{ResponseWriter: w, prefix: h.o.PathPrefix}
	ctx := withStats(r.Context(), st)
	if requestid.From(ctx) == "" {
		// The platform gave none (the plain server): every line this
		// request logs still shares one id.
		ctx = requestid.With(ctx, requestid.New())
	}
	r = r.WithContext(ctx)
	defer func() {
		// A read answer cut off mid-stream aborts the connection; its
		// line is still logged.
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				h.log(ctx, r, rw.status, st, time.Since(start))
			}
			panic(p)
		}
	}()
	if p := r.URL.EscapedPath(); h.o.Mirror != nil && strings.Contains(p, "//") && strings.HasPrefix(p, h.o.PathPrefix+h.o.Mirror.Prefix+"/") {
		// StackState joins its data source URL and the mirror's paths
		// as it likes (a doubled slash): empty segments are dropped in
		// place, since a 301 would turn its POST into a GET. Nothing
		// else is cleaned here (a "." or ".." still gets the 301), so no
		// path leaves the mirror's prefix.
		c := p
		for strings.Contains(c, "//") {
			c = strings.ReplaceAll(c, "//", "/")
		}
		if strings.HasPrefix(c, h.o.PathPrefix+h.o.Mirror.Prefix+"/") {
			u := *r.URL
			u.RawPath = c
			u.Path, _ = url.PathUnescape(c)
			if u.RawPath == u.Path {
				u.RawPath = ""
			}
			r.URL = &u
		}
	}
	if p := r.URL.EscapedPath(); p != cleanPath(p) {
		// As the Pushgateway (and ServeMux for GET) does, for every
		// method: 301 to the cleaned path.
		u := *r.URL
		u.RawPath = cleanPath(p)
		u.Path, _ = url.PathUnescape(u.RawPath)
		st.route = "redirect"
		rw.prefix = "" // the Location already has it
		http.Redirect(rw, r, u.RequestURI(), http.StatusMovedPermanently)
		h.log(ctx, r, rw.status, st, time.Since(start))
		return
	}
	if h.o.PathPrefix == "" {
		h.mux.ServeHTTP(rw, r)
	} else if rest, ok := stripPrefix(r.URL.EscapedPath(), h.o.PathPrefix); ok {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.RawPath = rest
		u.Path = strings.TrimPrefix(u.Path, h.o.PathPrefix)
		if u.Path == "" {
			u.Path = "/"
		}
		if u.RawPath == u.Path {
			u.RawPath = ""
		}
		r2.URL = &u
		h.mux.ServeHTTP(rw, r2)
	} else {
		st.route = "outside_prefix"
		http.NotFound(rw, r)
	}
	h.log(ctx, r, rw.status, st, time.Since(start))
}

// cleanPath is p without empty, "." and ".." segments, keeping a trailing
// slash (path.Clean, as ServeMux cleans).
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// stripPrefix cuts prefix off an escaped path at a segment boundary.
func stripPrefix(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	if rest == "" {
		rest = "/"
	}
	return rest, true
}

// statusWriter records the status for the log line, and puts the path
// prefix back on ServeMux's redirects to a cleaned path.
type statusWriter struct {
	http.ResponseWriter
	prefix string
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
		if w.prefix != "" && status/100 == 3 {
			if loc := w.Header().Get("Location"); strings.HasPrefix(loc, "/") {
				w.Header().Set("Location", w.prefix+loc)
			}
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// log writes the request's one line.
func (h *Handler) log(ctx context.Context, r *http.Request, status int, st *stats, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelWarn
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if h.o.Metrics != nil {
		h.observe(status, st, d)
	}
	if !h.o.Logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", st.route),
		slog.Int("status", status),
		slog.Int("samples_in", st.in[kindSample]+st.in[kindHistogram]),
		slog.Int("samples_out", st.out[kindSample]+st.out[kindHistogram]),
		slog.Int("bytes_in", st.bytesIn),
		slog.Int("bytes_out", st.up.BytesSent),
		slog.Int64("bytes_returned", st.bytesOut),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int("upstream_status", st.up.UpstreamStatus),
		slog.Int("upstream_requests", st.up.Requests),
	}
	if p := st.up.Profile; p != (wire.ProfileCounts{}) {
		// What the upstream profile changed (README "Upstream protocol
		// and profiles").
		attrs = append(attrs, slog.Int("profile_help_rewritten", p.HelpRewritten),
			slog.Int("profile_histograms_converted", p.HistogramsConverted),
			slog.Int("profile_exemplars_dropped", p.ExemplarsDropped))
	}
	if st.up.FellBack {
		attrs = append(attrs, slog.Bool("upstream_fell_back_to_v1", true), slog.String("fallback_reason", st.up.FallbackReason))
	}
	if st.route == "outside_prefix" || st.route == "unknown" {
		attrs = append(attrs, slog.String("path", r.URL.EscapedPath()))
	}
	if st.identity.Subject != "" {
		attrs = append(attrs, slog.String("writer", st.identity.Subject))
	}
	if st.identity.Tenant != nil {
		attrs = append(attrs, slog.String("tenant", st.identity.Tenant.Name))
	}
	if st.msg != "" {
		attrs = append(attrs, slog.String("error", st.msg))
	}
	if st.detail != "" {
		attrs = append(attrs, slog.String("detail", st.detail))
	}
	h.o.Logger.LogAttrs(ctx, level, "request", attrs...)
}

// readRoutes are the route names of the read path, which
// promrelay_query_requests_total counts as well.
var readRoutes = map[string]bool{"query": true, "query_range": true, "series": true, "labels": true, "label_values": true,
	"query_exemplars": true, "metadata": true, "buildinfo": true, "remote_read": true, "mirror": true}

// observe counts a request in the relay's metrics. st.mu is held.
func (h *Handler) observe(status int, st *stats, d time.Duration) {
	m := h.o.Metrics
	code := metrics.Code(status)
	m.Requests.WithLabelValues(st.route, code).Inc()
	m.RequestDuration.WithLabelValues(st.route).Observe(d.Seconds())
	if readRoutes[st.route] {
		m.QueryRequests.WithLabelValues(st.route, code).Inc()
		m.QueryDuration.WithLabelValues(st.route).Observe(d.Seconds())
	}
	for k, n := range st.in {
		if n > 0 {
			m.Received.WithLabelValues(kindNames[k]).Add(float64(n))
		}
		if o := st.out[k]; o > 0 {
			m.Relayed.WithLabelValues(kindNames[k]).Add(float64(o))
		}
		if st.reason != "" && n > st.out[k] {
			m.Rejected.WithLabelValues(kindNames[k], st.reason).Add(float64(n - st.out[k]))
		}
	}
	if st.reason != "" {
		m.RejectedRequests.WithLabelValues(st.route, st.reason).Inc()
	} else if st.partial > 0 {
		m.Rejected.WithLabelValues(metrics.KindSample, metrics.ReasonInvalid).Add(float64(st.partial))
	}
	if st.reason == metrics.ReasonBudget {
		m.BudgetRefused.Inc()
	}
	if p := st.up.Profile; p != (wire.ProfileCounts{}) {
		if p.HelpRewritten > 0 {
			m.ProfileChanges.WithLabelValues(metrics.ChangeHelpRewritten).Add(float64(p.HelpRewritten))
		}
		if p.HistogramsConverted > 0 {
			m.ProfileChanges.WithLabelValues(metrics.ChangeHistogramConverted).Add(float64(p.HistogramsConverted))
		}
		if p.ExemplarsDropped > 0 {
			m.ProfileChanges.WithLabelValues(metrics.ChangeExemplarDropped).Add(float64(p.ExemplarsDropped))
		}
	}
}

// stats is what a request did, for its log line. The upstream writer adds
// to it from whatever goroutine writes, hence the lock.
type stats struct {
	mu       sync.Mutex
	route    string
	in, out  counts // series values decoded, and taken by the upstream
	bytesIn  int
	bytesOut int64 // bytes of a read answer passed to the reader
	up       upstream.Result
	identity inbound.Identity
	msg      string // the error answered
	detail   string // what only the log gets (an upstream's full answer)
	reason   string // why values were rejected (metrics.Reason*), "" for none
	// partial counts values refused within a request answered 2xx (an
	// OTLP partial success), for the invalid reason.
	partial int
}

type statsKey struct{}

func withStats(ctx context.Context, st *stats) context.Context {
	return context.WithValue(ctx, statsKey{}, st)
}

func statsFrom(ctx context.Context) *stats {
	st, _ := ctx.Value(statsKey{}).(*stats)
	return st
}

// countData counts the series values of a push's write request that came
// from the writer: not the push_time_seconds and push_failure_time_seconds
// the relay adds, nor its staleness markers.
func countData(wr *wire.WriteRequest) counts {
	var c counts
	for i := range wr.Series {
		s := &wr.Series[i]
		if name := seriesName(s.Labels); name == push.PushTimeMetric || name == push.PushFailureTimeMetric {
			continue
		}
		for _, smp := range s.Samples {
			if math.Float64bits(smp.Value) != pushstate.StaleNaN {
				c[kindSample]++
			}
		}
		c[kindHistogram] += len(s.Histograms)
		c[kindExemplar] += len(s.Exemplars)
	}
	return c
}

// seriesName is the __name__ of a label set sorted by name.
func seriesName(ls []wire.Label) string {
	for _, l := range ls {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}

// Writer returns the pushstate.Writer that sends to each tenant's upstream
// and adds what it did to the request's log line.
func Writer(ups Upstreams) pushstate.Writer {
	return func(ctx context.Context, tenant string, wr *wire.WriteRequest) error {
		res, err := ups(tenant).Write(ctx, wr)
		record(ctx, res, err, countData(wr))
		return err
	}
}

// record adds an upstream result, for a request of c series values, to the
// request's log line.
func record(ctx context.Context, res upstream.Result, err error, c counts) {
	st := statsFrom(ctx)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.up.Requests += res.Requests
	st.up.BytesSent += res.BytesSent
	st.up.Profile.HelpRewritten += res.Profile.HelpRewritten
	st.up.Profile.HistogramsConverted += res.Profile.HistogramsConverted
	st.up.Profile.ExemplarsDropped += res.Profile.ExemplarsDropped
	st.up.Profile.ClassicSeries += res.Profile.ClassicSeries
	if res.FellBack {
		st.up.FellBack, st.up.FallbackReason = true, res.FallbackReason
	}
	if res.UpstreamStatus != 0 {
		st.up.UpstreamStatus = res.UpstreamStatus
	}
	if err == nil {
		for k := range c {
			st.out[k] += c[k]
		}
		return
	}
	if ue := (*upstream.Error)(nil); errors.As(err, &ue) && ue.Partial {
		// The profile dropped some series; the upstream took the rest.
		for k := range c {
			st.out[k] += max(0, c[k]-ue.Dropped[k])
		}
	}
}
