// Package mirror speaks StackState's telemetry "mirror" protocol: the JSON
// protocol StackState's Mirror data source uses to read telemetry from a
// small HTTP service, as StackState's AWS Prometheus mirror
// (github.com/stackstate-lab/aws-prometheus-mirror) implements it for
// Prometheus and Amazon Managed Service for Prometheus.
//
// Routes, below the mirror prefix (the caller strips it):
//
//	GET  /                 {"app":"StackState Prometheus Mirror"}
//	GET  /healthcheck      {"status":"OK"} (not in the original; for probes)
//	POST /api/connection   TestConnectionRequest  → TestConnectionResponse
//	POST /api/field/name   FieldNamesRequest      → FieldNamesResponse
//	POST /api/field/value  FieldValuesRequest     → FieldValuesResponse
//	POST /api/metric       MetricsRequest         → MetricsResponse
//
// Every request carries connectionDetails (the Prometheus to query and how);
// every response, errors included, carries X-MIRROR-API-KEY, which StackState
// checks to know it talks to its mirror. Errors are HTTP 500 with a body
// tagged MetricNotFoundError or RemoteMirrorError, as the original answers
// them (a connection the Querier refuses too; 413 for a body over the
// limit); a failed connection test is a TestConnectionResponse with status
// FAILURE and a MetricStoreConnectionError, with the upstream's status.
//
// A metric query has exactly one of the reserved keys __gauge__ (the metric
// name of a gauge), __counter__ (the name of a counter, read as its
// increase over 60 s) or ~ (PromQL used as is) among its conditions; the
// other conditions become label matchers. With an aggregation the query is
// wrapped in the function the original mirror builds for it, evaluated with
// query_range at a step of the bucket size (at least 30 s); the answer is
// one series turned into StackState telemetry: [value, timestamp ms] points
// (RawMetricTelemetry) or [value, bucket start ms, bucket end ms] points
// (AggregatedMetricTelemetry), none past the query's endTime.
//
// Where this package differs from the original, it is stricter: label
// values are quoted (strconv.Quote, which PromQL's string literals accept),
// InSetValue members are regexp-escaped in full, metric and label names are
// validated, the work of a request is bounded (body bytes, conditions,
// points), and request bodies are not echoed in validation errors (they
// carry AWS secrets). The caller decides which connections may be used: a
// Querier returns a *RefusedError for a URL or role it does not allow, and
// nothing is sent upstream.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Querier runs one Prometheus HTTP API request for a connection: method
// GET, path "/api/v1/" + endpoint below the connection's URL (endpoint
// "query", "query_range", "labels", "label/<name>/values", "series"), params
// as the query string. It returns the upstream's HTTP status and body. An
// error means nothing usable came back; if it is a *RefusedError (the
// connection's URL or role is not allowed), the mirror answers the
// protocol's error for it and says so; any other error is answered
// "Prometheus error." (MetricStoreConnectionError for a connection test).
type Querier interface {
	Query(ctx context.Context, conn Connection, endpoint string, params url.Values) (status int, body []byte, err error)
}

// Connection is a request's connectionDetails, decoded and validated.
// It holds secrets (AWS keys): its String and LogValue leave them out.
type Connection struct {
	// URL is the base of the Prometheus HTTP API ("url"), the part before
	// /api/v1/, absolute http(s), one trailing slash removed as the
	// original removes it.
	URL string
	// RequestTimeout is "request_timeout_seconds" (default 30 s): the time
	// budget of the request's upstream query, within the caller's context.
	RequestTimeout time.Duration
	// NaNInterpretation is "nan_interpretation" (default "ZERO"): "ZERO"
	// answers a NaN sample as 0.0; any other value drops the point.
	NaNInterpretation string
	// AWS is "aws", nil when absent.
	AWS *AWSDetails
}

// AWSDetails is connectionDetails.aws: how the original mirror gets AWS
// credentials to sign queries to Amazon Managed Service for Prometheus
// (SigV4, service aps). Fields are "" when absent.
type AWSDetails struct {
	RoleARN         string        // role_arn: the role to assume
	ExternalID      string        // external_id: the AssumeRole external ID
	AccessKeyID     string        // aws_access_key_id
	SecretAccessKey string        // aws_secret_access_key (secret)
	SessionToken    string        // aws_session_token (secret)
	TokenExpiry     time.Duration // token_expiry_seconds, 900 s to 12 h (default 900 s): assumed credentials' lifetime
	Region          string        // region_name (default "eu-west-1")
	RoleSessionName string        // role_session_name (default "StackState-Prometheus-Mirror")
}

// Protocol defaults, as the original mirror's model defines them
// (src/prometheus_mirror/model.py), and the AssumeRole default lifetime.
const (
	DefaultRequestTimeout    = 30 * time.Second
	DefaultNaNInterpretation = NaNAsZero
	DefaultRegion            = "eu-west-1"
	DefaultRoleSessionName   = "StackState-Prometheus-Mirror"
	DefaultTokenExpiry       = 900 * time.Second
	// NaNAsZero is the nan_interpretation that answers NaN samples as 0.0.
	NaNAsZero = "ZERO"
)

// String describes c without its secrets.
func (c Connection) String() string {
	s := fmt.Sprintf("url=%s timeout=%s nan=%s", c.URL, c.RequestTimeout, c.NaNInterpretation)
	if c.AWS != nil {
		s += fmt.Sprintf(" role_arn=%s region=%s access_key_id=%s", c.AWS.RoleARN, c.AWS.Region, c.AWS.AccessKeyID)
	}
	return s
}

// LogValue is c for log/slog, without its secrets.
func (c Connection) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("url", c.URL)}
	if c.AWS != nil {
		attrs = append(attrs, slog.String("role_arn", c.AWS.RoleARN), slog.String("region", c.AWS.Region))
	}
	return slog.GroupValue(attrs...)
}

// RefusedError is what a Querier returns for a connection it will not use
// (a URL or role not allowed); Reason says which, for the caller's answer.
type RefusedError struct{ Reason string }

// Error returns "connection refused by the mirror: " and the reason.
func (e *RefusedError) Error() string { return "connection refused by the mirror: " + e.Reason }

// Options configures a Handler; every field but Now and Logger is required.
type Options struct {
	// Querier runs the upstream queries.
	Querier Querier
	// APIKey is sent as X-MIRROR-API-KEY on every response, errors
	// included.
	APIKey string
	// Now is the clock (nil: time.Now). The original protocol takes no
	// default from the clock (startTime and endTime default to 0), so it
	// only times the requests that are logged.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies; a larger one is answered 413 with
	// the protocol's validation error.
	MaxBodyBytes int
	// Logger logs one event per failed request (nil: discard). Secrets
	// are never logged.
	Logger *slog.Logger
}

// Handler serves the mirror protocol. It is safe for concurrent use.
type Handler struct {
	q       Querier
	apiKey  string
	now     func() time.Time
	maxBody int64
	log     *slog.Logger
}

// New returns the Handler of o. Errors: no Querier, no APIKey, MaxBodyBytes
// not positive.
func New(o Options) (*Handler, error) {
	switch {
	case o.Querier == nil:
		return nil, errors.New("mirror: no Querier")
	case o.APIKey == "":
		return nil, errors.New("mirror: no API key (X-MIRROR-API-KEY)")
	case o.MaxBodyBytes <= 0:
		return nil, errors.New("mirror: MaxBodyBytes must be positive")
	}
	h := &Handler{q: o.Querier, apiKey: o.APIKey, now: o.Now, maxBody: int64(o.MaxBodyBytes), log: o.Logger}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// APIKeyHeader is the response header StackState checks on every answer of
// its mirror.
const APIKeyHeader = "X-MIRROR-API-KEY"

// ServeHTTP serves the protocol's routes with the mirror prefix (and the
// path token) already stripped by the caller: GET /, GET /healthcheck,
// POST /api/connection, /api/field/name, /api/field/value, /api/metric.
// Other paths are answered 404 and other methods 405, with FastAPI's bodies
// ({"detail":"Not Found"}) as the original answers them.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(APIKeyHeader, h.apiKey)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.ErrorContext(r.Context(), "mirror panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeJSON(w, http.StatusInternalServerError, remoteMirrorError{Type: "RemoteMirrorError",
				Summary: summaryInternal, Details: map[string]string{"message": "internal error"}})
		}
	}()
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	var post func(context.Context, []byte) (int, any)
	switch path {
	case "/", "/healthcheck":
		if r.Method != http.MethodGet {
			h.notAllowed(w, http.MethodGet)
			return
		}
		if path == "/" {
			writeJSON(w, http.StatusOK, map[string]string{"app": "StackState Prometheus Mirror"})
		} else {
			writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
		}
		return
	case "/api/connection":
		post = h.connection
	case "/api/field/name":
		post = h.fieldNames
	case "/api/field/value":
		post = h.fieldValues
	case "/api/metric":
		post = h.metric
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
		return
	}
	if r.Method != http.MethodPost {
		h.notAllowed(w, http.MethodPost)
		return
	}
	body, status, verr := readBody(w, r, h.maxBody)
	if verr != nil {
		h.log.InfoContext(r.Context(), "mirror request refused", "path", path, "status", status, "reason", verr.Detail[0].Msg)
		writeJSON(w, status, validationErrors(verr))
		return
	}
	start := h.now()
	status, answer := post(r.Context(), body)
	if status >= 400 {
		h.log.InfoContext(r.Context(), "mirror request failed", "path", path, "status", status, "answer", logSummary(answer),
			"seconds", h.now().Sub(start).Seconds())
	}
	writeJSON(w, status, answer)
}

func (h *Handler) notAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method Not Allowed"})
}
