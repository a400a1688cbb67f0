package relay

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/golang/snappy"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/query"
	"github.com/promrelay/promrelay/shared/wire"
)

// Enforcer forces a tenant's labels onto PromQL;
// shared/query/enforce.Enforcer implements it with the Prometheus parser.
type Enforcer interface {
	// Query returns the PromQL expression q with labels forced onto every
	// vector selector; an error is the parser's message.
	Query(q string, labels []wire.Label) (string, error)
	// Selector does the same for one series selector (a match[]).
	Selector(s string, labels []wire.Label) (string, error)
}

// ReadOptions configure the read path (the PromQL HTTP API and remote
// read); every field is required unless marked optional.
type ReadOptions struct {
	// Upstreams returns the read upstream of a reader's tenant ("" for a
	// reader without one): the tenant's own URLs, else the relay's; nil
	// when it has none, which is 404.
	Upstreams func(tenant string) *query.Upstream
	// API and RemoteRead say which routes exist (some upstream has the
	// URL).
	API, RemoteRead bool
	// Enforcer forces a tenant reader's labels onto its queries.
	Enforcer Enforcer
	// ResponseLimit is the buffered platform's response limit in bytes
	// (shared/config's LambdaResponseBytes, FCResponseBytes); 0 streams
	// the upstream's answers. Platform names it for the 502 over it.
	ResponseLimit int
	Platform      string // optional
	// CopyBufferBytes is the buffer one streamed answer holds.
	CopyBufferBytes int
	// MaxQueries bounds the queries of one remote-read request.
	MaxQueries int
	// Version is what GET /api/v1/status/buildinfo reports as the
	// Prometheus version; Revision names promrelay's.
	Version, Revision string
}

// apiRoutes are the PromQL HTTP API endpoints relayed (Prometheus' "HTTP
// API" page): the methods each accepts.
var apiRoutes = []struct{ path, methods string }{
	{"query", "GET POST"},
	{"query_range", "GET POST"},
	{"series", "GET POST"},
	{"labels", "GET POST"},
	{"label/{name}/values", "GET"},
	{"metadata", "GET"},
	{"query_exemplars", "GET POST"},
}

// registerRead adds the read routes of o.Read.
func (h *Handler) registerRead() {
	ro := h.o.Read
	if ro.API {
		for _, rt := range apiRoutes {
			endpoint, name := rt.path, rt.path
			if endpoint == "label/{name}/values" {
				name = "label_values"
			}
			for _, m := range strings.Fields(rt.methods) {
				h.route(m+" /api/v1/"+rt.path, name, h.authorized(inbound.ScopeRead, func(w http.ResponseWriter, r *http.Request, id inbound.Identity) {
					h.serveAPI(w, r, endpoint, id)
				}))
			}
		}
		h.route("GET /api/v1/status/buildinfo", "buildinfo", h.authorized(inbound.ScopeRead, h.serveBuildInfo))
	}
	if ro.RemoteRead {
		h.route("POST /api/v1/read", "remote_read", h.authorized(inbound.ScopeRead, h.serveRemoteRead))
	}
}

// serveBuildInfo answers GET /api/v1/status/buildinfo itself, in
// Prometheus' format: AMP has no such endpoint, and Grafana's Prometheus
// data source probes it to pick its features.
func (h *Handler) serveBuildInfo(w http.ResponseWriter, r *http.Request, _ inbound.Identity) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"success","data":{"version":%q,"revision":%q,"branch":"","buildUser":"","buildDate":"","goVersion":""}}`+"\n",
		h.o.Read.Version, h.o.Read.Revision)
}

// tenantOf is a reader's tenant name, "" for none.
func tenantOf(id inbound.Identity) string {
	if id.Tenant != nil {
		return id.Tenant.Name
	}
	return ""
}

// serveAPI relays one PromQL HTTP API request. A reader with a tenant
// (labels) gets them forced onto every query (query, query_range,
// query_exemplars) and every match[] (series, labels, label values; one
// is added when there is none); metadata, which cannot be scoped, is 403
// for it.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, endpoint string, id inbound.Identity) {
	ctx := r.Context()
	st := statsFrom(ctx)
	up := h.o.Read.Upstreams(tenantOf(id))
	if !up.HasAPI() {
		h.respond(w, st, reply{status: http.StatusNotFound, msg: "no PromQL API upstream for this reader (PROMRELAY_QUERY_URL, or the tenant's query_url)"})
		return
	}
	labels := id.Labels
	if len(labels) > 0 && endpoint == "metadata" {
		h.respond(w, st, reply{status: http.StatusForbidden, msg: "forbidden: /api/v1/metadata cannot be limited to a tenant's series"})
		return
	}
	c := h.reservation(ctx)
	params, rep := h.readParams(ctx, r, c)
	if rep.status != 0 {
		h.respond(w, st, rep)
		return
	}
	if len(params["query"]) > 1 {
		// Prometheus reads the first; one query per request keeps the
		// parser's work bounded.
		h.respond(w, st, reply{status: http.StatusBadRequest, msg: "more than one query parameter"})
		return
	}
	if n := len(params["match[]"]); n > maxMatches {
		h.respond(w, st, reply{status: http.StatusBadRequest, msg: fmt.Sprintf("%d match[] parameters, more than the limit of %d", n, maxMatches)})
		return
	}
	if endpoint == "label/{name}/values" {
		// A label name only: nothing that a path could resolve (.., %2F)
		// to another endpoint or another workspace's. Prometheus 3 sends
		// other names U__-encoded, which are valid legacy names too.
		name := r.PathValue("name")
		if !wire.IsValidLabelName(name) {
			h.respond(w, st, reply{status: http.StatusBadRequest, msg: fmt.Sprintf("invalid label name %q", name)})
			return
		}
		endpoint = "label/" + name + "/values"
	}
	if len(labels) > 0 {
		if rep := h.enforceParams(ctx, endpoint, params, labels); rep.status != 0 {
			h.respond(w, st, rep)
			return
		}
	}
	if err := c.Grow(ctx, h.responseCharge()); err != nil {
		h.respond(w, st, errorReply(err))
		return
	}
	resp, err := up.API(ctx, r.Method, endpoint, params, r.Header)
	h.pass(w, r, up, resp, err)
}

// readParams returns the request's parameters: the query string's, and
// for a POST the form body's (read within PROMRELAY_MAX_BODY_BYTES),
// body values first, as Prometheus' Request.ParseForm merges them.
func (h *Handler) readParams(ctx context.Context, r *http.Request, c *Reservation) (url.Values, reply) {
	// The parameters, their encoding upstream, the enforced queries and
	// the signer's canonical form each hold about the input's size.
	if err := c.Grow(ctx, paramsBytesPerByte*int64(len(r.URL.RawQuery))); err != nil {
		return nil, errorReply(err)
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, reply{status: http.StatusBadRequest, msg: "invalid query string: " + err.Error()}
	}
	if r.Method != http.MethodPost {
		return params, reply{}
	}
	if r.ContentLength != 0 {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
			return nil, reply{status: http.StatusUnsupportedMediaType, msg: "a POST to the PromQL API needs Content-Type application/x-www-form-urlencoded"}
		}
	}
	body, err := readBody(ctx, r, nil, h.o.MaxBodyBytes, c)
	addBytesIn(ctx, len(body))
	if err != nil {
		return nil, bodyReply(err)
	}
	if err := c.Grow(ctx, paramsBytesPerByte*int64(len(body))); err != nil {
		return nil, errorReply(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, reply{status: http.StatusBadRequest, msg: "invalid form body: " + err.Error()}
	}
	for k, vs := range params {
		form[k] = append(form[k], vs...)
	}
	return form, reply{}
}

// Bounds of the read path's parameters: maxMatches match[] per request
// (Grafana sends one or two), and what the parameters cost in memory per
// byte received (parsed, enforced, encoded upstream, canonicalised by the
// signer, and the transport's copy of a form body).
const (
	maxMatches         = 64
	paramsBytesPerByte = 6
)

// enforceParams forces labels onto the PromQL of params, each parse within
// ctx's deadline.
func (h *Handler) enforceParams(ctx context.Context, endpoint string, params url.Values, labels []wire.Label) reply {
	enforced := func(what string, err error) reply {
		if ctx.Err() != nil {
			return errorReply(ctx.Err())
		}
		return reply{status: http.StatusBadRequest, msg: "invalid " + what + ": " + err.Error()}
	}
	switch {
	case endpoint == "query" || endpoint == "query_range" || endpoint == "query_exemplars":
		for i, q := range params["query"] {
			if ctx.Err() != nil {
				return errorReply(ctx.Err())
			}
			out, err := h.o.Read.Enforcer.Query(q, labels)
			if err != nil {
				return enforced("PromQL in query", err)
			}
			params["query"][i] = out
		}
	case endpoint == "series" || endpoint == "labels" || strings.HasPrefix(endpoint, "label/"):
		matches := params["match[]"]
		if len(matches) == 0 {
			params["match[]"] = []string{tenantSelector(labels)}
			break
		}
		for i, m := range matches {
			if ctx.Err() != nil {
				return errorReply(ctx.Err())
			}
			out, err := h.o.Read.Enforcer.Selector(m, labels)
			if err != nil {
				return enforced("series selector in match[]", err)
			}
			matches[i] = out
		}
	}
	return reply{}
}

// tenantSelector is the series selector of exactly the tenant's labels,
// {name="value",…}: the match[] of a tenant reader that gave none. The
// names are valid label names (the tenants file and
// PROMRELAY_JWT_TENANT_LABEL are checked), and strconv.Quote's escapes are
// PromQL's (PromQL string literals unquote as Go's do).
func tenantSelector(labels []wire.Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// serveRemoteRead relays POST /api/v1/read (remote read 1.0, sampled or
// STREAMED_XOR_CHUNKS answers passed through). A reader with a tenant gets
// its labels forced onto every query: the request is decoded, its
// matchers on those names replaced, re-encoded, then signed.
func (h *Handler) serveRemoteRead(w http.ResponseWriter, r *http.Request, id inbound.Identity) {
	ctx := r.Context()
	st := statsFrom(ctx)
	up := h.o.Read.Upstreams(tenantOf(id))
	if !up.HasRemoteRead() {
		h.respond(w, st, reply{status: http.StatusNotFound, msg: "no remote-read upstream for this reader (PROMRELAY_REMOTE_READ_URL, or the tenant's remote_read_url)"})
		return
	}
	if enc := contentEncoding(r); enc != "snappy" {
		h.respond(w, st, reply{status: http.StatusUnsupportedMediaType, msg: "remote read needs Content-Encoding snappy"})
		return
	}
	c := h.reservation(ctx)
	body, err := readBody(ctx, r, nil, h.o.MaxBodyBytes, c)
	addBytesIn(ctx, len(body))
	if err != nil {
		h.respond(w, st, bodyReply(err))
		return
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		h.respond(w, st, reply{status: http.StatusBadRequest, msg: "cannot decode snappy block: " + err.Error()})
		return
	}
	if n > h.o.MaxDecodedBytes {
		h.respond(w, st, errorReply(&wire.TooLargeError{What: "decompressed body", Size: n, Limit: h.o.MaxDecodedBytes}))
		return
	}
	// The decoded request, the enforced one and its encoding.
	if err := c.Grow(ctx, 3*int64(n)+h.responseCharge()); err != nil {
		h.respond(w, st, errorReply(err))
		return
	}
	decoded, err := wire.DecodeSnappy(nil, body, h.o.MaxDecodedBytes)
	if err != nil {
		h.respond(w, st, bodyReply(err))
		return
	}
	var labels []wire.Label
	if len(id.Labels) > 0 {
		labels = id.Labels
	}
	// Validated for every reader (the upstream sees only well-formed
	// requests within the limits); rewritten for a tenant reader.
	enforced, err := wire.AppendEnforcedReadRequest(make([]byte, 0, n+len(labels)*64), decoded, labels, h.o.Read.MaxQueries, h.o.Limits.MaxLabels)
	if err != nil {
		if le := (*wire.ReadLimitError)(nil); errors.As(err, &le) {
			setting := "a fixed limit"
			if le.What == wire.LimitReadMatchers {
				setting = "PROMRELAY_MAX_LABELS"
			}
			h.respond(w, st, reply{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("%v (%s); send fewer queries or matchers per request", le, setting)})
			return
		}
		h.respond(w, st, reply{status: http.StatusBadRequest, msg: "cannot decode remote-read request: " + err.Error()})
		return
	}
	if len(labels) > 0 {
		body = wire.EncodeSnappy(nil, enforced)
	}
	resp, err := up.RemoteRead(ctx, body, r.Header)
	h.pass(w, r, up, resp, err)
}

// reservation is the request's memory reservation (authorized made it).
func (h *Handler) reservation(ctx context.Context) *Reservation {
	return reservationFrom(ctx)
}

// responseCharge is what passing one answer on holds: the copy buffer
// when streaming, else the platform's limit twice (the buffer grows by
// doubling).
func (h *Handler) responseCharge() int64 {
	if h.o.Read.ResponseLimit > 0 {
		return 2 * int64(h.o.Read.ResponseLimit)
	}
	return int64(h.o.Read.CopyBufferBytes)
}

// pass answers with the upstream's response (or its failure), and records
// it for the log line. An answer cut off after its status went out aborts
// the connection (http.ErrAbortHandler), so the reader sees a broken
// response rather than a short one that looks whole.
func (h *Handler) pass(w http.ResponseWriter, r *http.Request, up *query.Upstream, resp *http.Response, err error) {
	st := statsFrom(r.Context())
	if err == nil {
		var n int64
		n, err = up.Copy(w, resp, query.CopyOptions{Limit: h.o.Read.ResponseLimit, Platform: h.o.Read.Platform, Buffer: make([]byte, h.o.Read.CopyBufferBytes)})
		st.mu.Lock()
		st.up.Requests++
		st.up.UpstreamStatus = resp.StatusCode
		st.bytesOut += n
		st.mu.Unlock()
	}
	var qe *query.Error
	var se *query.StreamError
	switch {
	case err == nil:
	case errors.As(err, &qe):
		if qe.UpstreamStatus != 0 {
			st.mu.Lock()
			st.up.UpstreamStatus = qe.UpstreamStatus
			st.mu.Unlock()
		}
		h.respond(w, st, reply{status: qe.Status, msg: qe.Msg, detail: qe.Detail})
	case errors.As(err, &se):
		st.mu.Lock()
		st.msg = se.Error()
		st.mu.Unlock()
		panic(http.ErrAbortHandler)
	default:
		h.respond(w, st, reply{status: http.StatusBadGateway, msg: "relay failed", detail: err.Error()})
	}
}
