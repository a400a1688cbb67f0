// Package metrics holds promrelay's own metrics: one client_golang registry
// with every metric the relay exports (promrelay_ prefix, base units in the
// names, _total on counters, as the Prometheus naming guide
// https://prometheus.io/docs/practices/naming/ says), the Go and process
// collectors, the exposition handler behind GET /metrics, and the
// self-write (AppendSelf, SelfWriter) that sends the same series upstream,
// labelled job="promrelay" and an instance per function instance, on
// platforms nobody scrapes.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is the prefix of every metric of the relay (without the Go and
// process collectors' go_ and process_).
const Namespace = "promrelay"

// Label values of the kind label (Received, Relayed, Rejected): what a
// series value is. A sample is a float sample, a histogram a native
// histogram sample; an exemplar counts once per exemplar.
const (
	KindSample    = "sample"
	KindHistogram = "histogram"
	KindExemplar  = "exemplar"
)

// kinds lists the kind label values, in the order the registry
// pre-initialises them.
var kinds = [...]string{KindSample, KindHistogram, KindExemplar}

// Label values of Rejected's reason label: why series values did not reach
// the upstream.
const (
	ReasonLimit       = "limit"        // a wire.Limits bound (samples, labels, bytes) → 400/413
	ReasonInvalid     = "invalid"      // malformed body or invalid series (wire.ValidationError) → 400
	ReasonUpstream4xx = "upstream_4xx" // the upstream rejected the data (a 4xx other than 413/429)
	ReasonTooLarge    = "too_large"    // a body over the relay's byte bounds, or one the upstream's 413 could not split below
	ReasonBudget      = "budget"       // the memory budget refused the request (429 or 413)
	ReasonAuth        = "auth"         // inbound authentication or authorization failed (401/403)
	ReasonDelta       = "delta"        // OTLP delta temporality, which the translation does not take
	ReasonProfile     = "profile"      // dropped by the upstream profile's conversion
)

// writeRoutes are the route names of the write path, whose rejections
// start at zero.
var writeRoutes = [...]string{"push", "delete", "aggregate", "remote_write", "otlp"}

// schemes and authReasons are the label values of InboundAuthFailures
// (inbound.Options.OnFailure).
var (
	schemes     = [...]string{"", "bearer", "jwt", "basic", "other"}
	authReasons = [...]string{"missing", "invalid", "forbidden", "busy"}
)

var reasons = [...]string{ReasonLimit, ReasonInvalid, ReasonUpstream4xx, ReasonTooLarge, ReasonBudget, ReasonAuth, ReasonDelta, ReasonProfile}

// Label values of ProfileChanges' change label: the upstream profile's
// changes, as wire.ProfileCounts counts them.
const (
	ChangeHelpRewritten      = "help_rewritten"      // ProfileCounts.HelpRewritten
	ChangeHistogramConverted = "histogram_converted" // ProfileCounts.HistogramsConverted
	ChangeExemplarDropped    = "exemplar_dropped"    // ProfileCounts.ExemplarsDropped
)

var changes = [...]string{ChangeHelpRewritten, ChangeHistogramConverted, ChangeExemplarDropped}

// Label values of the result label (CredentialFetches, StoreOperations,
// SelfWrites).
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// statusClasses are the values of the status_class label (StatusClass).
var statusClasses = [...]string{"2xx", "3xx", "4xx", "5xx", "error"}

// StatusClass returns the status_class label value of an upstream answer:
// "2xx", "3xx", "4xx" or "5xx" for an HTTP status 200–599, and "error" for
// 0 (no answer: a transport error, a timeout or a credentials failure) or
// any other number.
func StatusClass(status int) string {
	if status < 200 || status > 599 {
		return "error"
	}
	return statusClasses[status/100-2]
}

// Code returns the code label value of an HTTP status: its decimal digits
// ("200"), as promhttp's InstrumentHandlerCounter writes it.
func Code(status int) string { return strconv.Itoa(status) }

// Buckets of the duration histograms, in seconds: from 1 ms (a push that
// the store answers from memory) to 60 s (beyond the longest request
// timeout a platform allows an HTTP function without streaming).
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds every metric of the relay, registered in its own registry
// (never prometheus.DefaultRegisterer) together with the Go collector
// (go_*) and the process collector (process_*). Every field is safe for
// concurrent use (client_golang). The comment of each field gives its name
// as exported and its labels.
type Metrics struct {
	// Requests counts the relay's answered HTTP requests:
	// promrelay_requests_total{route, code}; route is the relay's route
	// name (push, delete, remote_write, otlp, health, query routes,
	// unknown, redirect, outside_prefix), code the status (Code).
	Requests *prometheus.CounterVec
	// RequestDuration is the time from receiving a request to its
	// answer, in seconds: promrelay_request_duration_seconds{route}.
	RequestDuration *prometheus.HistogramVec
	// Received counts series values decoded from writers:
	// promrelay_received_total{kind}.
	Received *prometheus.CounterVec
	// Relayed counts series values the upstream accepted:
	// promrelay_relayed_total{kind}.
	Relayed *prometheus.CounterVec
	// Rejected counts series values that did not reach the upstream:
	// promrelay_rejected_total{kind, reason} (the Reason* constants).
	Rejected *prometheus.CounterVec
	// RejectedRequests counts requests answered with a rejection, by
	// route and reason (the Reason* constants), whether or not their
	// values were decoded: promrelay_rejected_requests_total{route,
	// reason}. A request refused before decoding (auth, limit, budget,
	// too_large) has no values for Rejected to count; it counts here.
	RejectedRequests *prometheus.CounterVec
	// ProfileChanges counts what the upstream profile changed:
	// promrelay_profile_changes_total{change} (the Change* constants).
	ProfileChanges *prometheus.CounterVec
	// UpstreamRequests counts HTTP requests to the upstream, retries
	// included: promrelay_upstream_requests_total{status_class}
	// (StatusClass).
	UpstreamRequests *prometheus.CounterVec
	// UpstreamRetries counts upstream requests that repeated an earlier
	// one (after a 429, a 5xx or a transport error):
	// promrelay_upstream_retries_total.
	UpstreamRetries prometheus.Counter
	// UpstreamSplits counts bodies split in two, after an upstream 413 or
	// because compressed they exceeded the upstream's request bound:
	// promrelay_upstream_splits_total.
	UpstreamSplits prometheus.Counter
	// UpstreamDuration is the time of one upstream HTTP request, in
	// seconds: promrelay_upstream_request_duration_seconds{status_class}.
	UpstreamDuration *prometheus.HistogramVec
	// UpstreamFallbacks counts writes that found the upstream takes only
	// remote write 1.0 and fell back from 2.0:
	// promrelay_upstream_fallbacks_total.
	UpstreamFallbacks prometheus.Counter
	// CredentialFetches counts fetches of upstream credentials (STS,
	// RAM role, instance metadata):
	// promrelay_credential_fetches_total{mode, result}; mode is the
	// signing mode (PROMRELAY_UPSTREAM_AUTH: sigv4, aliyun, …), result
	// ResultOK or ResultError.
	CredentialFetches *prometheus.CounterVec
	// InboundAuthFailures counts requests whose credentials the relay
	// refused: promrelay_inbound_auth_failures_total{scheme, reason};
	// scheme is bearer, jwt, basic or "" (none given), reason missing,
	// invalid, forbidden or busy (inbound.Authenticate's categories).
	InboundAuthFailures *prometheus.CounterVec
	// BudgetRefused counts requests the memory budget refused (429 after
	// waiting, or 413 for one that could never fit):
	// promrelay_memory_budget_refused_total.
	BudgetRefused prometheus.Counter
	// StoreOperations counts group store operations:
	// promrelay_store_operations_total{op, result}; op is update, list,
	// count, load_cursor or save_cursor.
	StoreOperations *prometheus.CounterVec
	// StoreConflicts counts conditional updates that lost to a
	// concurrent writer and were retried: promrelay_store_conflicts_total.
	StoreConflicts prometheus.Counter
	// StoreDuration is the time of one group store operation, in
	// seconds: promrelay_store_operation_duration_seconds{op}.
	StoreDuration *prometheus.HistogramVec
	// ReemitRuns counts scheduled re-emission runs:
	// promrelay_reemit_runs_total.
	ReemitRuns prometheus.Counter
	// ReemitGroups counts groups re-emitted: promrelay_reemitted_groups_total.
	ReemitGroups prometheus.Counter
	// ReemitSamples counts samples re-emitted:
	// promrelay_reemitted_samples_total.
	ReemitSamples prometheus.Counter
	// TTLDeletions counts groups deleted for exceeding their time to
	// live: promrelay_ttl_deleted_groups_total.
	TTLDeletions prometheus.Counter
	// QueryRequests counts relayed read requests:
	// promrelay_query_requests_total{route, code}.
	QueryRequests *prometheus.CounterVec
	// QueryDuration is the time of one relayed read request, in
	// seconds: promrelay_query_request_duration_seconds{route}.
	QueryDuration *prometheus.HistogramVec
	// SelfWrites counts SelfWriter's writes of these metrics upstream:
	// promrelay_self_writes_total{result}.
	SelfWrites *prometheus.CounterVec

	// Logger takes the errors of a Gather in Handler; optional (nil:
	// dropped).
	Logger *slog.Logger

	reg *prometheus.Registry
}

// New returns the relay's metrics in a new registry. budgetInUse (the
// bytes the memory budget has reserved now) and budgetSize (its size in
// bytes) back the gauges promrelay_memory_budget_in_use_bytes and
// promrelay_memory_budget_bytes; a nil func leaves its gauge out. The
// labels of finite, known sets (kind, reason, change, status_class,
// result) start at zero, so that rate() and increase() see the first
// increment of every series.
func New(budgetInUse, budgetSize func() int64) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	histogramVec := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: durationBuckets}, labels)
		reg.MustRegister(h)
		return h
	}
	m.Requests = counterVec("requests_total", "HTTP requests the relay answered, by route and status code.", "route", "code")
	m.RequestDuration = histogramVec("request_duration_seconds", "Time from receiving an HTTP request to its answer, in seconds, by route.", "route")
	m.Received = counterVec("received_total", "Series values decoded from writers, by kind (sample, histogram, exemplar).", "kind")
	m.Relayed = counterVec("relayed_total", "Series values the upstream accepted, by kind (sample, histogram, exemplar).", "kind")
	m.Rejected = counterVec("rejected_total", "Series values that did not reach the upstream, by kind and reason.", "kind", "reason")
	m.RejectedRequests = counterVec("rejected_requests_total", "Requests answered with a rejection (4xx), by route and reason.", "route", "reason")
	m.ProfileChanges = counterVec("profile_changes_total", "Changes the upstream profile made to relayed data, by change.", "change")
	m.UpstreamRequests = counterVec("upstream_requests_total", "HTTP requests to the upstream, retries included, by status class of the answer (error: none).", "status_class")
	m.UpstreamRetries = counter("upstream_retries_total", "Upstream requests that repeated an earlier one after a 429, a 5xx or a transport error.")
	m.UpstreamSplits = counter("upstream_splits_total", "Request bodies split in two, after an upstream 413 or because they exceeded the upstream's request size bound.")
	m.UpstreamDuration = histogramVec("upstream_request_duration_seconds", "Time of one upstream HTTP request, in seconds, by status class of the answer.", "status_class")
	m.UpstreamFallbacks = counter("upstream_fallbacks_total", "Writes that fell back from remote write 2.0 to 1.0 because the upstream takes only 1.0.")
	m.CredentialFetches = counterVec("credential_fetches_total", "Fetches of upstream credentials, by signing mode and result (ok, error).", "mode", "result")
	m.InboundAuthFailures = counterVec("inbound_auth_failures_total", "Requests whose credentials the relay refused, by scheme and reason (missing, invalid, forbidden, busy).", "scheme", "reason")
	m.BudgetRefused = counter("memory_budget_refused_total", "Requests the memory budget refused (429 after waiting, or 413 for one that could never fit).")
	m.StoreOperations = counterVec("store_operations_total", "Group store operations, by operation and result (ok, error).", "op", "result")
	m.StoreConflicts = counter("store_conflicts_total", "Conditional group store updates that lost to a concurrent writer and were retried.")
	m.StoreDuration = histogramVec("store_operation_duration_seconds", "Time of one group store operation, in seconds, by operation.", "op")
	m.ReemitRuns = counter("reemit_runs_total", "Scheduled re-emission runs.")
	m.ReemitGroups = counter("reemitted_groups_total", "Groups re-emitted by scheduled runs.")
	m.ReemitSamples = counter("reemitted_samples_total", "Samples re-emitted by scheduled runs.")
	m.TTLDeletions = counter("ttl_deleted_groups_total", "Groups deleted for exceeding their time to live.")
	m.QueryRequests = counterVec("query_requests_total", "Read requests relayed to the upstream, by route and status code.", "route", "code")
	m.QueryDuration = histogramVec("query_request_duration_seconds", "Time of one relayed read request, in seconds, by route.", "route")
	m.SelfWrites = counterVec("self_writes_total", "Writes of the relay's own metrics upstream, by result (ok, error).", "result")
	if budgetInUse != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "memory_budget_in_use_bytes",
			Help: "Bytes of the memory budget reserved by requests in flight now."}, func() float64 { return float64(budgetInUse()) }))
	}
	if budgetSize != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "memory_budget_bytes",
			Help: "Size of the memory budget of all requests in flight, in bytes (PROMRELAY_MEMORY_LIMIT)."}, func() float64 { return float64(budgetSize()) }))
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	for _, k := range kinds {
		m.Received.WithLabelValues(k)
		m.Relayed.WithLabelValues(k)
		for _, r := range reasons {
			if r != ReasonAuth { // refused before any value is decoded
				m.Rejected.WithLabelValues(k, r)
			}
		}
	}
	for _, c := range changes {
		m.ProfileChanges.WithLabelValues(c)
	}
	// Counters a short-lived instance may move once: seen from zero, so
	// that increase() over a new instance's series counts that once.
	for _, route := range writeRoutes {
		for _, r := range reasons {
			m.RejectedRequests.WithLabelValues(route, r)
		}
	}
	for _, scheme := range schemes {
		for _, r := range authReasons {
			m.InboundAuthFailures.WithLabelValues(scheme, r)
		}
	}
	for _, c := range statusClasses {
		m.UpstreamRequests.WithLabelValues(c)
	}
	m.SelfWrites.WithLabelValues(ResultOK)
	m.SelfWrites.WithLabelValues(ResultError)
	return m
}

// Registry returns the registry that holds the metrics, for a caller that
// registers its own collector or gathers directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the exposition format the scraper asks
// for (promhttp.HandlerFor: text 0.0.4, or protobuf; OpenMetrics is not
// offered, so no _created series), gzip-compressed when accepted. A
// collector's error is logged to Logger and the other metrics are still
// served (promhttp.ContinueOnError).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{m.Logger},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// errorLog is promhttp.Logger over slog.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Println(v ...any) {
	if e.l != nil {
		e.l.Error("gathering metrics", slog.String("error", fmt.Sprint(v...)))
	}
}
