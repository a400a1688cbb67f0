// Package config reads promrelay's settings from PROMRELAY_* environment
// variables (the interface on every platform) and, for the server, from
// command-line flags that mirror them. A missing or malformed setting is an
// error that names the variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promrelay/promrelay/shared/wire"
)

// Config is every setting of promrelay.
type Config struct {
	Listen string // server listen address, host:port

	UpstreamURL         string
	UpstreamAuth        string // none, basic, bearer, aliyun or sigv4
	UpstreamUsername    string
	UpstreamPassword    string
	UpstreamBearerToken string
	UpstreamTimeout     time.Duration // one upstream attempt
	MaxRequestBytes     int           // compressed bytes of one upstream request
	UpstreamMinBackoff  time.Duration // first retry delay
	UpstreamMaxBackoff  time.Duration // longest retry delay
	// UpstreamProtocol is the remote-write version sent upstream: v1 or
	// v2 (ProtocolV1, ProtocolV2).
	UpstreamProtocol string
	// UpstreamProfile says what the upstream accepts: auto, arms, amp or
	// prometheus (Profile resolves auto).
	UpstreamProfile string
	// MaxClassicBuckets bounds the buckets (+Inf included) of a native
	// histogram converted for the amp profile: default 40, at least 2.
	MaxClassicBuckets int

	// OTLP ingest (POST /v1/metrics): resource attributes promoted to
	// labels, scope metadata promoted, and what becomes of delta
	// temporality (OTLPDeltaReject or OTLPDeltaIngest).
	OTLPPromoteResourceAttributes []string
	OTLPPromoteScopeMetadata      bool
	OTLPDelta                     string

	// QueryURL is the base of the upstream's Prometheus HTTP API (before
	// /api/v1/…); RemoteReadURL the full remote-read URL; QueryAuth the
	// mode that signs both ("" for the upstream's, AuthMode).
	QueryURL      string
	RemoteReadURL string
	QueryAuth     string

	// The StackState mirror protocol (shared/mirror): MirrorAPIKey turns
	// it on (StackState checks it on every answer), under MirrorPrefix;
	// MirrorPathToken is the secret path segment that stands for a
	// reader's credentials; MirrorAllowedURLs and MirrorAllowedRoleARNs are
	// what a request's connectionDetails may name.
	MirrorAPIKey          string
	MirrorPrefix          string
	MirrorPathToken       string
	MirrorAllowedURLs     []string
	MirrorAllowedRoleARNs []string

	// MetricsAuth is who may GET /metrics: MetricsAuthRead (the read
	// scope) or MetricsAuthNone (anyone, like the health endpoints).
	MetricsAuth string
	// SelfMetricsEvery is PROMRELAY_SELF_METRICS_INTERVAL, how often the
	// relay writes its own metrics upstream; nil means the platform's
	// default (SelfMetricsInterval), 0 never.
	SelfMetricsEvery *time.Duration

	RequestTimeout time.Duration // one relayed request, retries included
	ExternalLabels []wire.Label  // sorted by name
	PathPrefix     string        // e.g. "/prod" for a gateway stage

	MaxBodyBytes         int // bytes of an inbound body as received
	MaxDecodedBytes      int // bytes of a remote-write body after snappy
	MaxPushDecodedBytes  int // bytes of a push body after gzip
	MaxLabels            int // labels per series
	MaxLabelBytes        int // bytes of one label name plus value
	MaxSamplesPerRequest int // samples and histograms of one request, each series counting at least one

	// MemoryLimit is the instance's memory in bytes: it sets GOMEMLIMIT
	// (unless the environment has one) and sizes the budget for requests
	// in flight.
	MemoryLimit int64
	// MaxConnections caps the server's open connections.
	MaxConnections int
	// ServerReadTimeout bounds reading one request, headers and body.
	ServerReadTimeout time.Duration
	// ServerIdleTimeout closes kept-alive connections idle this long.
	ServerIdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes int
	// InvokeSecret authenticates Function Compute custom-runtime timer
	// invocations (POST /invoke): the timer trigger's payload.
	InvokeSecret string

	LogLevel slog.Level

	RefreshWindow    time.Duration // refresh cloud credentials this long before expiry
	MinForcedRefresh time.Duration // least time between refreshes forced by expired-token answers

	AliyunRoleARN     string
	AliyunExternalID  string
	AliyunSessionName string
	AliyunDuration    time.Duration
	AliyunSTSEndpoint string
	AliyunAuthForm    string // basic or bearer

	SigV4Region      string
	SigV4RoleARN     string
	SigV4SessionName string
	SigV4ExternalID  string
	SigV4STSEndpoint string

	InboundAuth        []string // none, bearer, basic, jwt; empty: none on the server, an error on FC and Lambda
	InboundTokens      []string
	InboundReadTokens  []string // tokens of readers without a tenant
	BasicMaxConcurrent int      // bcrypt verifications at once
	JWTMaxLifetime     time.Duration
	InboundTokensFile  string
	BasicUsersFile     string
	JWTSecret          string
	JWTPublicKeyFile   string
	JWTJWKS            string
	JWTIssuer          string
	JWTAudience        string
	JWTTenantClaim     string
	JWTTenantLabel     string
	TenantsFile        string

	StateURL           string        // group store: file:///dir, s3://bucket/prefix, oss://bucket/prefix; empty: stateless
	StateEndpoint      string        // S3-compatible endpoint URL for the store
	StateRegion        string        // region of the store's bucket
	ReemitInterval     time.Duration // how often the scheduled job re-sends the groups
	GroupTTL           time.Duration // delete groups not pushed for this long; 0 keeps them
	MaxSeriesPerGroup  int           // series one stored group may hold
	MaxGroupsPerTenant int           // stored groups per tenant (writers without a tenant share one count)

	// FCCustomRuntime is set when Function Compute's custom runtime runs the
	// server (FC_SERVER_PORT or FC_CUSTOM_LISTEN_PORT present): then its
	// x-fc-* request headers are trusted.
	FCCustomRuntime bool
}

// Remote-write versions sent upstream (PROMRELAY_UPSTREAM_PROTOCOL).
const (
	ProtocolV1 = "v1"
	ProtocolV2 = "v2"
)

// Upstream profiles (PROMRELAY_UPSTREAM_PROFILE).
const (
	ProfileAuto       = "auto"
	ProfileARMS       = "arms"
	ProfileAMP        = "amp"
	ProfilePrometheus = "prometheus"
)

// What becomes of OTLP delta temporality (PROMRELAY_OTLP_DELTA).
const (
	OTLPDeltaReject = "reject"
	OTLPDeltaIngest = "ingest"
)

// AMPMaxRequestBytes is the largest compressed remote-write request AMP
// takes ("Amazon Managed Service for Prometheus service quotas": 1 MB per
// request); the amp profile caps PROMRELAY_MAX_REQUEST_BYTES at it.
const AMPMaxRequestBytes = 1 << 20

// Profile returns the upstream profile: PROMRELAY_UPSTREAM_PROFILE, or for
// auto the one of the upstream URL's host: arms for ARMS' remote-write
// hosts (*.arms.aliyuncs.com, and *.log.aliyuncs.com for ARMS on Simple
// Log Service), amp for AMP's (IsAMPHost), prometheus for any other.
func (c Config) Profile() string {
	if c.UpstreamProfile != "" && c.UpstreamProfile != ProfileAuto {
		return c.UpstreamProfile
	}
	u, err := url.Parse(c.UpstreamURL)
	if err != nil {
		return ProfilePrometheus
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	switch {
	case strings.HasSuffix(host, ".arms.aliyuncs.com"), strings.HasSuffix(host, ".log.aliyuncs.com"):
		return ProfileARMS
	case IsAMPHost(host):
		return ProfileAMP
	}
	return ProfilePrometheus
}

// Upstream authentication modes (PROMRELAY_UPSTREAM_AUTH).
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
	AuthAliyun = "aliyun"
	AuthSigV4  = "sigv4"
)

// Setting describes one configuration variable.
type Setting struct {
	Env     string // environment variable
	Flag    string // server flag
	Default string
	Usage   string
	Secret  bool // never printed
	set     func(*Config, string) error
}

// Settings lists every setting, in documentation order.
var Settings = []Setting{
	{Env: "PROMRELAY_LISTEN", Flag: "listen", Default: ":9091", Usage: "server listen address (host:port); the Pushgateway's port by default, 0.0.0.0:$FC_SERVER_PORT in Function Compute's custom runtime",
		set: func(c *Config, v string) error { c.Listen = v; return nil }},
	{Env: "PROMRELAY_UPSTREAM_URL", Flag: "upstream.url", Usage: "remote-write URL of the upstream (required), e.g. http://127.0.0.1:9090/api/v1/write",
		set: func(c *Config, v string) error { c.UpstreamURL = v; return nil }},
	{Env: "PROMRELAY_UPSTREAM_AUTH", Flag: "upstream.auth", Usage: "how upstream requests are signed: none, basic, bearer, aliyun (ARMS, Alibaba Cloud credentials) or sigv4 (AMP); default basic or bearer when those credentials are set, else none",
		set: authMode(func(c *Config) *string { return &c.UpstreamAuth })},
	{Env: "PROMRELAY_QUERY_URL", Flag: "query.url", Usage: "base of the upstream's Prometheus HTTP API, the part before /api/v1/ (AMP https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>, the ARMS HTTP API URL, http://<prometheus>:9090); set: the PromQL API routes are served",
		set: func(c *Config, v string) error { c.QueryURL = strings.TrimRight(v, "/"); return nil }},
	{Env: "PROMRELAY_REMOTE_READ_URL", Flag: "query.remote-read-url", Usage: "the upstream's remote-read URL (ARMS remote read, http://<prometheus>:9090/api/v1/read; AMP has none); set: POST /api/v1/read is served",
		set: func(c *Config, v string) error { c.RemoteReadURL = v; return nil }},
	{Env: "PROMRELAY_QUERY_AUTH", Flag: "query.auth", Usage: "how read requests are signed: none, basic, bearer, aliyun or sigv4 (service aps), with the upstream's credentials; default PROMRELAY_UPSTREAM_AUTH's mode",
		set: authMode(func(c *Config) *string { return &c.QueryAuth })},
	{Env: "PROMRELAY_MIRROR_API_KEY", Flag: "mirror.api-key", Usage: "the StackState mirror's API key, sent as X-MIRROR-API-KEY on every mirror answer; set: the mirror routes are served (with a read path)", Secret: true,
		set: func(c *Config, v string) error { c.MirrorAPIKey = v; return nil }},
	{Env: "PROMRELAY_MIRROR_PREFIX", Flag: "mirror.prefix", Default: "/stackstate", Usage: "path prefix of the StackState mirror routes",
		set: func(c *Config, v string) error {
			v = strings.TrimRight(v, "/")
			if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "{}.") {
				return errors.New("must start with / and hold no { } .")
			}
			for _, taken := range []string{"/metrics", "/api", "/-", "/invoke", "/aggregate", "/v1"} {
				if v == taken || strings.HasPrefix(v, taken+"/") {
					return fmt.Errorf("%s is where other routes live; choose another prefix", taken)
				}
			}
			c.MirrorPrefix = v
			return nil
		}},
	{Env: "PROMRELAY_MIRROR_PATH_TOKEN", Flag: "mirror.path-token", Usage: "secret path segment that stands for a reader's credentials on the mirror routes (<prefix>/<token>/api/…), for StackState, which sends none (at least 16 bytes)", Secret: true,
		set: func(c *Config, v string) error {
			if len(v) < 16 || strings.ContainsAny(v, "/?#%") {
				return errors.New("must be at least 16 bytes, without / ? # %")
			}
			c.MirrorPathToken = v
			return nil
		}},
	{Env: "PROMRELAY_MIRROR_ALLOWED_URLS", Flag: "mirror.allowed-urls", Usage: "the only Prometheus URLs a mirror request's connectionDetails.url may name, comma-separated; default PROMRELAY_QUERY_URL",
		set: func(c *Config, v string) error {
			c.MirrorAllowedURLs = nil
			for _, u := range splitList(v) {
				if !absoluteHTTP(u) {
					return fmt.Errorf("%q is not an absolute http(s) URL", u)
				}
				c.MirrorAllowedURLs = append(c.MirrorAllowedURLs, strings.TrimRight(u, "/"))
			}
			return nil
		}},
	{Env: "PROMRELAY_MIRROR_ALLOWED_ROLE_ARNS", Flag: "mirror.allowed-role-arns", Usage: "the only IAM roles a mirror request's connectionDetails.aws.role_arn may name, comma-separated; default none",
		set: func(c *Config, v string) error { c.MirrorAllowedRoleARNs = splitList(v); return nil }},
	{Env: "PROMRELAY_UPSTREAM_USERNAME", Flag: "upstream.username", Usage: "basic-auth user name for the upstream",
		set: func(c *Config, v string) error { c.UpstreamUsername = v; return nil }},
	{Env: "PROMRELAY_UPSTREAM_PASSWORD", Flag: "upstream.password", Usage: "basic-auth password for the upstream", Secret: true,
		set: func(c *Config, v string) error { c.UpstreamPassword = v; return nil }},
	{Env: "PROMRELAY_UPSTREAM_BEARER_TOKEN", Flag: "upstream.bearer-token", Usage: "bearer token for the upstream", Secret: true,
		set: func(c *Config, v string) error { c.UpstreamBearerToken = v; return nil }},
	{Env: "PROMRELAY_UPSTREAM_TIMEOUT", Flag: "upstream.timeout", Default: "10s", Usage: "time limit of one upstream HTTP attempt",
		set: duration(func(c *Config) *time.Duration { return &c.UpstreamTimeout })},
	{Env: "PROMRELAY_MAX_REQUEST_BYTES", Flag: "upstream.max-request-bytes", Default: "1048576", Usage: "largest compressed upstream request in bytes; larger batches are split on series boundaries",
		set: positiveInt(func(c *Config) *int { return &c.MaxRequestBytes })},
	{Env: "PROMRELAY_UPSTREAM_PROTOCOL", Flag: "upstream.protocol", Default: ProtocolV1, Usage: "remote-write version sent upstream: v1 (ARMS, AMP) or v2 (a receiver of remote write 2.0; a 415, or a 2xx without X-Prometheus-Remote-Write-*-Written headers, falls back to v1 for good)",
		set: oneOf(func(c *Config) *string { return &c.UpstreamProtocol }, ProtocolV1, ProtocolV2)},
	{Env: "PROMRELAY_UPSTREAM_PROFILE", Flag: "upstream.profile", Default: ProfileAuto, Usage: "what the upstream accepts: arms (HELP reduced to printable ASCII), amp (native histograms sent as classic ones, exemplars dropped, requests of at most 1 MiB), prometheus (everything as it is) or auto (by the upstream URL's host: *.arms.aliyuncs.com and *.log.aliyuncs.com arms, aps-workspaces.* amp, else prometheus)",
		set: oneOf(func(c *Config) *string { return &c.UpstreamProfile }, ProfileAuto, ProfileARMS, ProfileAMP, ProfilePrometheus)},
	{Env: "PROMRELAY_MAX_CLASSIC_BUCKETS", Flag: "upstream.max-classic-buckets", Default: "40", Usage: "most buckets (+Inf included) of a native histogram converted to a classic one for the amp profile; finer histograms are coarsened",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 {
				return errors.New("must be an integer of at least 2")
			}
			c.MaxClassicBuckets = n
			return nil
		}},
	{Env: "PROMRELAY_OTLP_PROMOTE_RESOURCE_ATTRIBUTES", Flag: "otlp.promote-resource-attributes", Usage: "OTLP resource attributes copied onto every series of their resource as labels, comma-separated (as Prometheus' otlp.promote_resource_attributes); the others stay on target_info",
		set: func(c *Config, v string) error { c.OTLPPromoteResourceAttributes = splitList(v); return nil }},
	{Env: "PROMRELAY_OTLP_PROMOTE_SCOPE_METADATA", Flag: "otlp.promote-scope-metadata", Default: "false", Usage: "set the otel_scope_name, otel_scope_version, otel_scope_schema_url and otel_scope_<attribute> labels on OTLP series (as Prometheus' otlp.promote_scope_metadata)",
		set: func(c *Config, v string) (err error) {
			c.OTLPPromoteScopeMetadata, err = strconv.ParseBool(v)
			return err
		}},
	{Env: "PROMRELAY_OTLP_DELTA", Flag: "otlp.delta", Default: OTLPDeltaReject, Usage: "OTLP sums and histograms of delta temporality: reject (400 naming the metric; the request's other metrics are relayed) or ingest (stored as the raw deltas, as Prometheus' otlp-native-delta-ingestion does)",
		set: oneOf(func(c *Config) *string { return &c.OTLPDelta }, OTLPDeltaReject, OTLPDeltaIngest)},
	{Env: "PROMRELAY_METRICS_AUTH", Flag: "metrics.auth", Default: MetricsAuthRead, Usage: "who may GET /metrics, the relay's own metrics: read (callers with the read scope, or anyone without PROMRELAY_INBOUND_AUTH) or none (anyone, like /-/healthy)",
		set: oneOf(func(c *Config) *string { return &c.MetricsAuth }, MetricsAuthRead, MetricsAuthNone)},
	{Env: "PROMRELAY_SELF_METRICS_INTERVAL", Flag: "metrics.self-interval", Usage: "how often the relay writes its own metrics upstream (job=\"promrelay\", instance = the function instance), e.g. 60s; 0 never; default 60s on Function Compute and Lambda, never on the server",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return err
			}
			if d < 0 || (d > 0 && d < MinSelfMetricsInterval) {
				return fmt.Errorf("must be 0 (never) or at least %v", MinSelfMetricsInterval)
			}
			c.SelfMetricsEvery = &d
			return nil
		}},
	{Env: "PROMRELAY_REQUEST_TIMEOUT", Flag: "request.timeout", Default: "30s", Usage: "time limit of one relayed request, retries included (a platform's invocation deadline, when earlier, wins)",
		set: duration(func(c *Config) *time.Duration { return &c.RequestTimeout })},
	{Env: "PROMRELAY_EXTERNAL_LABELS", Flag: "external-labels", Usage: "labels added to every series, overriding labels of the same name: k=v,k2=v2",
		set: func(c *Config, v string) (err error) { c.ExternalLabels, err = ParseLabels(v); return err }},
	{Env: "PROMRELAY_UPSTREAM_MIN_BACKOFF", Flag: "upstream.min-backoff", Default: "50ms", Usage: "delay before the first retry of an upstream request; doubled per retry, with jitter",
		set: duration(func(c *Config) *time.Duration { return &c.UpstreamMinBackoff })},
	{Env: "PROMRELAY_UPSTREAM_MAX_BACKOFF", Flag: "upstream.max-backoff", Default: "5s", Usage: "longest delay between retries of an upstream request",
		set: duration(func(c *Config) *time.Duration { return &c.UpstreamMaxBackoff })},
	{Env: "PROMRELAY_PATH_PREFIX", Flag: "path-prefix", Usage: "path prefix to strip from every route, e.g. /prod for an API gateway stage",
		set: func(c *Config, v string) error {
			v = strings.TrimRight(v, "/")
			if v != "" && !strings.HasPrefix(v, "/") {
				return errors.New("must start with /")
			}
			c.PathPrefix = v
			return nil
		}},
	{Env: "PROMRELAY_MAX_BODY_BYTES", Flag: "limits.max-body-bytes", Default: "16777216", Usage: "largest inbound request body in bytes, as received",
		set: positiveInt(func(c *Config) *int { return &c.MaxBodyBytes })},
	{Env: "PROMRELAY_MAX_DECODED_BYTES", Flag: "limits.max-decoded-bytes", Default: "33554432", Usage: "largest inbound body in bytes after snappy or gzip decoding",
		set: positiveInt(func(c *Config) *int { return &c.MaxDecodedBytes })},
	{Env: "PROMRELAY_MAX_LABELS", Flag: "limits.max-labels", Default: "256", Usage: "most labels per series, __name__ included",
		set: positiveInt(func(c *Config) *int { return &c.MaxLabels })},
	{Env: "PROMRELAY_MAX_LABEL_BYTES", Flag: "limits.max-label-bytes", Default: "8192", Usage: "longest label, name plus value, in bytes",
		set: positiveInt(func(c *Config) *int { return &c.MaxLabelBytes })},
	{Env: "PROMRELAY_CREDENTIALS_REFRESH_WINDOW", Flag: "upstream.refresh-window", Default: "5m", Usage: "refresh aliyun/sigv4 credentials this long before they expire",
		set: duration(func(c *Config) *time.Duration { return &c.RefreshWindow })},
	{Env: "PROMRELAY_ALIYUN_ROLE_ARN", Flag: "aliyun.role-arn", Usage: "RAM role to assume (STS AssumeRole) on top of the default credential chain, e.g. acs:ram::123:role/promrelay",
		set: func(c *Config, v string) error { c.AliyunRoleARN = v; return nil }},
	{Env: "PROMRELAY_CREDENTIALS_MIN_FORCED_REFRESH", Flag: "upstream.min-forced-refresh", Default: "10s", Usage: "least time between credential refreshes forced by an upstream's expired-token answer",
		set: duration(func(c *Config) *time.Duration { return &c.MinForcedRefresh })},
	{Env: "PROMRELAY_MEMORY_LIMIT", Flag: "memory-limit", Usage: "memory of the instance in bytes: sets GOMEMLIMIT (unless set) and the budget for requests in flight; default the function's memory size on Function Compute (FC_FUNCTION_MEMORY_SIZE) and Lambda (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), else 536870912",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			if n < 64<<20 {
				return errors.New("must be at least 67108864 (64 MiB)")
			}
			c.MemoryLimit = n
			return nil
		}},
	{Env: "PROMRELAY_MAX_CONNECTIONS", Flag: "server.max-connections", Default: "512", Usage: "most open connections the server accepts at once; more wait in the listen queue",
		set: positiveInt(func(c *Config) *int { return &c.MaxConnections })},
	{Env: "PROMRELAY_SERVER_READ_TIMEOUT", Flag: "server.read-timeout", Default: "30s", Usage: "time limit for the server to read one request, headers and body (a trickled body is cut off)",
		set: duration(func(c *Config) *time.Duration { return &c.ServerReadTimeout })},
	{Env: "PROMRELAY_SERVER_IDLE_TIMEOUT", Flag: "server.idle-timeout", Default: "60s", Usage: "kept-alive connections idle this long are closed",
		set: duration(func(c *Config) *time.Duration { return &c.ServerIdleTimeout })},
	{Env: "PROMRELAY_SERVER_MAX_HEADER_BYTES", Flag: "server.max-header-bytes", Default: "65536", Usage: "largest request header block in bytes",
		set: positiveInt(func(c *Config) *int { return &c.MaxHeaderBytes })},
	{Env: "PROMRELAY_INVOKE_SECRET", Flag: "invoke-secret", Usage: "Function Compute custom runtime: the timer trigger's payload, which POST /invoke must carry to run the scheduled job (at least 16 bytes)", Secret: true,
		set: func(c *Config, v string) error {
			if len(v) < 16 {
				return errors.New("must be at least 16 bytes")
			}
			c.InvokeSecret = v
			return nil
		}},
	{Env: "PROMRELAY_MAX_PUSH_DECODED_BYTES", Flag: "limits.max-push-decoded-bytes", Default: "8388608", Usage: "largest push body in bytes after gzip decoding (pushes expand more in memory than remote writes)",
		set: positiveInt(func(c *Config) *int { return &c.MaxPushDecodedBytes })},
	{Env: "PROMRELAY_MAX_SAMPLES_PER_REQUEST", Flag: "limits.max-samples-per-request", Default: "100000", Usage: "most samples and histograms in one request, each series counting at least one; checked while decoding",
		set: positiveInt(func(c *Config) *int { return &c.MaxSamplesPerRequest })},
	{Env: "PROMRELAY_ALIYUN_EXTERNAL_ID", Flag: "aliyun.external-id", Usage: "external id for the role assumption", Secret: true,
		set: func(c *Config, v string) error { c.AliyunExternalID = v; return nil }},
	{Env: "PROMRELAY_ALIYUN_ROLE_SESSION_NAME", Flag: "aliyun.role-session-name", Default: "promrelay", Usage: "session name of the role assumption",
		set: func(c *Config, v string) error { c.AliyunSessionName = v; return nil }},
	{Env: "PROMRELAY_ALIYUN_ROLE_DURATION", Flag: "aliyun.role-duration", Default: "1h", Usage: "lifetime of assumed-role credentials (15m to the role's maximum)",
		set: duration(func(c *Config) *time.Duration { return &c.AliyunDuration })},
	{Env: "PROMRELAY_ALIYUN_STS_ENDPOINT", Flag: "aliyun.sts-endpoint", Usage: "STS host, e.g. sts-vpc.cn-hangzhou.aliyuncs.com; default sts.aliyuncs.com (or ALIBABA_CLOUD_STS_REGION's)",
		set: func(c *Config, v string) error { c.AliyunSTSEndpoint = v; return nil }},
	{Env: "PROMRELAY_ALIYUN_AUTH_FORM", Flag: "aliyun.auth-form", Default: "basic", Usage: "how ARMS gets the credentials: basic (AccessKey ID, secret$token) or bearer (the security token)",
		set: func(c *Config, v string) error {
			if v != "basic" && v != "bearer" {
				return errors.New("must be basic or bearer")
			}
			c.AliyunAuthForm = v
			return nil
		}},
	{Env: "PROMRELAY_SIGV4_REGION", Flag: "sigv4.region", Usage: "AWS region for SigV4; default from the aps-workspaces.<region>.amazonaws.com URL, then AWS_REGION",
		set: func(c *Config, v string) error { c.SigV4Region = v; return nil }},
	{Env: "PROMRELAY_SIGV4_ROLE_ARN", Flag: "sigv4.role-arn", Usage: "IAM role to assume (stscreds) on top of the default credential chain",
		set: func(c *Config, v string) error { c.SigV4RoleARN = v; return nil }},
	{Env: "PROMRELAY_SIGV4_ROLE_SESSION_NAME", Flag: "sigv4.role-session-name", Default: "promrelay", Usage: "session name of the assumed IAM role (shows in CloudTrail)",
		set: func(c *Config, v string) error { c.SigV4SessionName = v; return nil }},
	{Env: "PROMRELAY_SIGV4_EXTERNAL_ID", Flag: "sigv4.external-id", Usage: "external id for the role assumption", Secret: true,
		set: func(c *Config, v string) error { c.SigV4ExternalID = v; return nil }},
	{Env: "PROMRELAY_SIGV4_STS_ENDPOINT", Flag: "sigv4.sts-endpoint", Usage: "STS endpoint URL (VPC endpoints)",
		set: func(c *Config, v string) error { c.SigV4STSEndpoint = v; return nil }},
	{Env: "PROMRELAY_INBOUND_AUTH", Flag: "inbound.auth", Usage: "who may write: none, bearer, basic, jwt, or several (bearer,basic); required on Function Compute and Lambda, none by default on the server",
		set: func(c *Config, v string) error {
			c.InboundAuth = nil
			for _, m := range strings.Split(v, ",") {
				switch m = strings.TrimSpace(m); m {
				case "none", "bearer", "basic", "jwt":
					if !slices.Contains(c.InboundAuth, m) {
						c.InboundAuth = append(c.InboundAuth, m)
					}
				case "":
				default:
					return fmt.Errorf("unknown mode %q: use none, bearer, basic or jwt", m)
				}
			}
			return nil
		}},
	{Env: "PROMRELAY_INBOUND_TOKENS", Flag: "inbound.tokens", Usage: "static bearer tokens, comma-separated", Secret: true,
		set: func(c *Config, v string) error { c.InboundTokens = splitList(v); return nil }},
	{Env: "PROMRELAY_INBOUND_READ_TOKENS", Flag: "inbound.read-tokens", Usage: "static bearer tokens of readers without a tenant (read scope: they read every series), comma-separated", Secret: true,
		set: func(c *Config, v string) error { c.InboundReadTokens = splitList(v); return nil }},
	{Env: "PROMRELAY_INBOUND_TOKENS_FILE", Flag: "inbound.tokens-file", Usage: "file of static bearer tokens, one per line",
		set: func(c *Config, v string) error { c.InboundTokensFile = v; return nil }},
	{Env: "PROMRELAY_INBOUND_BASIC_USERS_FILE", Flag: "inbound.basic-users-file", Usage: "basic-auth users with bcrypt hashes, in Prometheus web.yml format (basic_auth_users:)",
		set: func(c *Config, v string) error { c.BasicUsersFile = v; return nil }},
	{Env: "PROMRELAY_INBOUND_BASIC_MAX_CONCURRENT", Flag: "inbound.basic-max-concurrent", Default: "4", Usage: "most bcrypt verifications at once; further uncached basic-auth requests wait, then get 503",
		set: positiveInt(func(c *Config) *int { return &c.BasicMaxConcurrent })},
	{Env: "PROMRELAY_JWT_SECRET", Flag: "jwt.secret", Usage: "HS256 shared secret (at least 32 bytes)", Secret: true,
		set: func(c *Config, v string) error { c.JWTSecret = v; return nil }},
	{Env: "PROMRELAY_JWT_PUBLIC_KEY_FILE", Flag: "jwt.public-key-file", Usage: "RS256 or ES256 public key, PEM",
		set: func(c *Config, v string) error { c.JWTPublicKeyFile = v; return nil }},
	{Env: "PROMRELAY_JWT_JWKS", Flag: "jwt.jwks", Usage: "JWKS file path or https:// URL",
		set: func(c *Config, v string) error { c.JWTJWKS = v; return nil }},
	{Env: "PROMRELAY_JWT_ISSUER", Flag: "jwt.issuer", Usage: "required iss claim",
		set: func(c *Config, v string) error { c.JWTIssuer = v; return nil }},
	{Env: "PROMRELAY_JWT_AUDIENCE", Flag: "jwt.audience", Usage: "required aud claim",
		set: func(c *Config, v string) error { c.JWTAudience = v; return nil }},
	{Env: "PROMRELAY_JWT_MAX_LIFETIME", Flag: "jwt.max-lifetime", Usage: "reject JWTs valid for longer than this (exp - iat, and exp - now), e.g. 24h; unset: no bound",
		set: duration(func(c *Config) *time.Duration { return &c.JWTMaxLifetime })},
	{Env: "PROMRELAY_JWT_TENANT_CLAIM", Flag: "jwt.tenant-claim", Usage: "claim that names the writer's tenant (from the tenants file), or with PROMRELAY_JWT_TENANT_LABEL the value of that label",
		set: func(c *Config, v string) error { c.JWTTenantClaim = v; return nil }},
	{Env: "PROMRELAY_JWT_TENANT_LABEL", Flag: "jwt.tenant-label", Usage: "label set to the tenant claim's value, e.g. tenant_userid",
		set: func(c *Config, v string) error {
			if !wire.IsValidLabelName(v) || strings.HasPrefix(v, "__") {
				return errors.New("not a valid label name")
			}
			c.JWTTenantLabel = v
			return nil
		}},
	{Env: "PROMRELAY_TENANTS_FILE", Flag: "tenants-file", Usage: "YAML file of tenants (labels, optional upstream) and the tokens and users that belong to them",
		set: func(c *Config, v string) error { c.TenantsFile = v; return nil }},
	{Env: "PROMRELAY_STATE_URL", Flag: "state.url", Usage: "group store for Pushgateway semantics with state: file:///dir, s3://bucket/prefix or oss://bucket/prefix; unset: stateless",
		set: func(c *Config, v string) error {
			if !strings.HasPrefix(v, "file://") && !strings.HasPrefix(v, "s3://") && !strings.HasPrefix(v, "oss://") {
				return errors.New("must start with file://, s3:// or oss://")
			}
			c.StateURL = v
			return nil
		}},
	{Env: "PROMRELAY_STATE_ENDPOINT", Flag: "state.endpoint", Usage: "S3-compatible endpoint URL of the group store (default: AWS S3, or s3.oss-<region>.aliyuncs.com for oss://)",
		set: func(c *Config, v string) error { c.StateEndpoint = v; return nil }},
	{Env: "PROMRELAY_STATE_REGION", Flag: "state.region", Usage: "region of the group store's bucket (required for oss://)",
		set: func(c *Config, v string) error { c.StateRegion = v; return nil }},
	{Env: "PROMRELAY_REEMIT_INTERVAL", Flag: "state.reemit-interval", Default: "30s", Usage: "how often the scheduled job re-sends stored groups (the server's ticker; FC/Lambda timers are set in s.yaml/template.yaml)",
		set: duration(func(c *Config) *time.Duration { return &c.ReemitInterval })},
	{Env: "PROMRELAY_GROUP_TTL", Flag: "state.group-ttl", Usage: "delete groups not pushed for this long, with staleness markers (e.g. 24h); unset keeps them",
		set: duration(func(c *Config) *time.Duration { return &c.GroupTTL })},
	{Env: "PROMRELAY_LOG_LEVEL", Flag: "log.level", Default: "info", Usage: "log level: debug, info, warn or error",
		set: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{Env: "PROMRELAY_MAX_SERIES_PER_GROUP", Flag: "state.max-series-per-group", Default: "10000", Usage: "most series one stored group may hold; a push that would grow it beyond gets 413",
		set: positiveInt(func(c *Config) *int { return &c.MaxSeriesPerGroup })},
	{Env: "PROMRELAY_MAX_GROUPS_PER_TENANT", Flag: "state.max-groups-per-tenant", Default: "10000", Usage: "most stored groups per tenant (writers without a tenant share one count); a push that would create one more gets 429",
		set: positiveInt(func(c *Config) *int { return &c.MaxGroupsPerTenant })},
}

// authMode sets the signing mode field of c: none, basic, bearer, aliyun
// or sigv4.
func authMode(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch v {
		case AuthNone, AuthBasic, AuthBearer, AuthAliyun, AuthSigV4:
			*field(c) = v
			return nil
		}
		return errors.New("must be none, basic, bearer, aliyun or sigv4")
	}
}

// splitList splits a comma-separated list, dropping blanks.
// oneOf sets a string field to one of values.
func oneOf(field func(*Config) *string, values ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if !slices.Contains(values, v) {
			return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
		}
		*field(c) = v
		return nil
	}
}

func splitList(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		*field(c) = d
		return nil
	}
}

func positiveInt(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New("must be positive")
		}
		*field(c) = n
		return nil
	}
}

// Load reads every setting from getenv (os.Getenv in production), using the
// defaults for unset variables. It returns an error naming the first
// malformed variable; it does not check required settings (see Validate).
func Load(getenv func(string) string) (Config, error) {
	var c Config
	for _, s := range Settings {
		v := getenv(s.Env)
		if v == "" {
			v = s.Default
		}
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return c, settingError(s, v, err)
		}
	}
	// In Function Compute's custom runtime the platform names the port
	// (FC_SERVER_PORT, or FC_CUSTOM_LISTEN_PORT in older runtimes) and
	// connects from outside the loopback interface.
	if getenv("PROMRELAY_LISTEN") == "" {
		for _, name := range []string{"FC_SERVER_PORT", "FC_CUSTOM_LISTEN_PORT"} {
			if port := getenv(name); port != "" {
				c.Listen = "0.0.0.0:" + port
				break
			}
		}
	}
	c.FCCustomRuntime = getenv("FC_SERVER_PORT") != "" || getenv("FC_CUSTOM_LISTEN_PORT") != ""
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
		// The function's configured memory, in MB, as the platforms
		// announce it to the instance.
		for _, name := range []string{"FC_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"} {
			if mb, err := strconv.ParseInt(getenv(name), 10, 64); err == nil && mb > 0 {
				c.MemoryLimit = mb << 20
				break
			}
		}
	}
	return c, nil
}

// Values of PROMRELAY_METRICS_AUTH.
const (
	MetricsAuthRead = "read"
	MetricsAuthNone = "none"
)

// SelfMetricsInterval returns PROMRELAY_SELF_METRICS_INTERVAL, or its
// default where it is unset: DefaultSelfMetricsInterval on a function
// (onFunction), 0 (never) on the server, which is scraped instead.
func (c Config) SelfMetricsInterval(onFunction bool) time.Duration {
	switch {
	case c.SelfMetricsEvery != nil:
		return *c.SelfMetricsEvery
	case onFunction:
		return DefaultSelfMetricsInterval
	}
	return 0
}

// DefaultSelfMetricsInterval is PROMRELAY_SELF_METRICS_INTERVAL's default
// on Function Compute and Lambda: one write of the relay's metrics per
// instance per minute, about 190 series.
const DefaultSelfMetricsInterval = time.Minute

// MinSelfMetricsInterval is the shortest PROMRELAY_SELF_METRICS_INTERVAL:
// each write is one upstream request of about 250 series.
const MinSelfMetricsInterval = time.Second

// SelfWriteTimeout bounds one write of the relay's own metrics upstream.
const SelfWriteTimeout = 10 * time.Second

// DefaultMemoryLimit is PROMRELAY_MEMORY_LIMIT's default in bytes where no
// platform announces the function's memory size.
const DefaultMemoryLimit = 512 << 20

// Fixed tunings, kept here with the defaults of the settings.
const (
	// GoMemLimitShare of PROMRELAY_MEMORY_LIMIT is the Go runtime's soft
	// memory limit (GOMEMLIMIT), when the user set none.
	GoMemLimitShare = 0.75
	// BudgetShare of PROMRELAY_MEMORY_LIMIT is the budget of the requests
	// in flight; the rest is the runtime, buffers kept for reuse and
	// garbage not yet collected.
	BudgetShare = 0.6
	// BudgetWait is how long a request waits for room in the budget
	// before it gets 429.
	BudgetWait = time.Second
	// StoredSeriesBytes is about what one series of a stored group takes
	// in the group store's JSON, in bytes (a node_exporter-like series:
	// 115), for estimating what reading the largest group costs.
	StoredSeriesBytes = 128
	// ReemitBatchSeries is the most series of one scheduled-job write.
	ReemitBatchSeries = 5000
	// JWTLeeway is the clock skew allowed on a JWT's exp, nbf and iat.
	JWTLeeway = 30 * time.Second
	// ServerWriteMargin is how much longer than PROMRELAY_REQUEST_TIMEOUT
	// the server gives a request to write its answer.
	ServerWriteMargin = 5 * time.Second
	// SigV4SetupTimeout bounds loading the AWS SDK's configuration at
	// start-up.
	SigV4SetupTimeout = 10 * time.Second
	// ReadHeaderTimeout bounds the server's wait for a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// LambdaResponseBytes is the largest response Lambda returns from a
	// buffered (RequestResponse) invocation: 6 MB ("Lambda quotas",
	// invocation payload), counted after base64 for binary bodies.
	LambdaResponseBytes = 6 << 20
	// FCResponseBytes is the largest response body of a Function Compute
	// HTTP-trigger invocation of the built-in runtime: 16 MB (Function
	// Compute, "Limits on HTTP responses").
	FCResponseBytes = 16 << 20
	// ResponseEnvelopeBytes is kept free of a buffered platform's
	// response limit for the event's status, headers and JSON envelope.
	ResponseEnvelopeBytes = 64 << 10
	// MaxReadQueries bounds the queries of one remote-read request.
	MaxReadQueries = 128
	// QueryCopyBufferBytes is the buffer that streams one read response.
	QueryCopyBufferBytes = 32 << 10
	// MirrorMaxBodyBytes bounds a StackState mirror request's JSON body.
	MirrorMaxBodyBytes = 1 << 20
	// MirrorMaxResponseBytes bounds one upstream answer the mirror reads
	// (it holds the answer and about two decoded copies of it).
	MirrorMaxResponseBytes = 8 << 20
	// MirrorConnectionBurst new mirror connections may be built at once,
	// and one per MirrorConnectionEvery after.
	MirrorConnectionBurst = 8
	MirrorConnectionEvery = time.Second
	// MirrorConnections is how many connections' (URL, role, keys)
	// credentials the mirror keeps, least recently used first out.
	MirrorConnections = 64
	// PrometheusAPIVersion is the version GET /api/v1/status/buildinfo
	// reports: the Prometheus HTTP API the read path is tested against
	// (Grafana picks its features by it).
	PrometheusAPIVersion = "2.42.0"
)

func settingError(s Setting, v string, err error) error {
	shown := strconv.Quote(v)
	if s.Secret {
		shown = "(secret)"
	}
	return fmt.Errorf("%s (-%s): invalid value %s: %v", s.Env, s.Flag, shown, err)
}

// RegisterFlags defines one flag per setting on fs; parsing fs then
// overrides the values already in c (flags win over the environment).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, s := range Settings {
		usage := fmt.Sprintf("%s (env %s", s.Usage, s.Env)
		if s.Default != "" {
			usage += ", default " + s.Default
		}
		usage += ")"
		fs.Func(s.Flag, usage, func(v string) error {
			if err := s.set(c, v); err != nil {
				return settingError(s, v, err)
			}
			return nil
		})
	}
}

// Validate checks the settings of a relay that writes: an absolute
// http(s) upstream URL, at most one form of static upstream credentials,
// and, when set, the read URLs (ValidateRead).
func (c *Config) Validate() error {
	if c.UpstreamURL == "" {
		return errors.New("PROMRELAY_UPSTREAM_URL (-upstream.url) is required: the remote-write URL of the upstream, e.g. http://127.0.0.1:9090/api/v1/write")
	}
	if !absoluteHTTP(c.UpstreamURL) {
		return fmt.Errorf("PROMRELAY_UPSTREAM_URL (-upstream.url): %q is not an absolute http(s) URL", c.UpstreamURL)
	}
	return c.validate()
}

// ValidateRead checks the settings of the read entry points, which serve
// only the read path: PROMRELAY_QUERY_URL or PROMRELAY_REMOTE_READ_URL is
// required, PROMRELAY_UPSTREAM_URL is not.
func (c *Config) ValidateRead() error {
	if c.QueryURL == "" && c.RemoteReadURL == "" && (c.MirrorAPIKey == "" || len(c.MirrorAllowedURLs) == 0) {
		return errors.New("PROMRELAY_QUERY_URL or PROMRELAY_REMOTE_READ_URL is required by the read entry points: the upstream's Prometheus HTTP API base or its remote-read URL")
	}
	return c.validate()
}

// absoluteHTTP reports whether s is an absolute http or https URL.
func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// IsAMPHost reports whether host (a URL's host, with or without a port)
// is an Amazon Managed Service for Prometheus workspace endpoint,
// aps-workspaces[-fips].<region>.amazonaws.com[.cn], or an interface VPC
// endpoint's vpce-<id>.aps-workspaces.<region>.vpce.amazonaws.com: AMP serves the
// PromQL HTTP API but no remote read ("Amazon Managed Service for
// Prometheus APIs", which lists QueryMetrics, GetLabels, GetSeries and
// GetMetricMetadata, and no read endpoint).
func IsAMPHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if strings.HasPrefix(host, "vpce-") && strings.Contains(host, ".aps-workspaces.") {
		// An interface VPC endpoint's name:
		// vpce-<id>.aps-workspaces.<region>.vpce.amazonaws.com.
		return strings.HasSuffix(host, ".vpce.amazonaws.com") || strings.HasSuffix(host, ".vpce.amazonaws.com.cn")
	}
	if !strings.HasPrefix(host, "aps-workspaces.") && !strings.HasPrefix(host, "aps-workspaces-fips.") {
		return false
	}
	return strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")
}

// QueryAuthMode returns how read requests are signed: PROMRELAY_QUERY_AUTH,
// else the upstream's mode (AuthMode).
func (c *Config) QueryAuthMode() string {
	if c.QueryAuth != "" {
		return c.QueryAuth
	}
	return c.AuthMode()
}

// ReadConfig returns the settings that sign read requests for the read
// URL readURL: c with the upstream URL (which SigV4 takes its region from)
// replaced by readURL and the mode by QueryAuthMode.
func (c Config) ReadConfig(readURL string) Config {
	c.UpstreamAuth = c.QueryAuthMode()
	c.UpstreamURL = readURL
	return c
}

// validate checks what writers and readers share.
func (c *Config) validate() error {
	if c.QueryURL != "" || c.RemoteReadURL != "" {
		switch c.QueryAuthMode() {
		case AuthBasic:
			if c.UpstreamUsername == "" && c.UpstreamPassword == "" {
				return errors.New("PROMRELAY_QUERY_AUTH=basic needs PROMRELAY_UPSTREAM_USERNAME and PROMRELAY_UPSTREAM_PASSWORD")
			}
		case AuthBearer:
			if c.UpstreamBearerToken == "" {
				return errors.New("PROMRELAY_QUERY_AUTH=bearer needs PROMRELAY_UPSTREAM_BEARER_TOKEN")
			}
		}
	}
	if c.QueryURL != "" && !absoluteHTTP(c.QueryURL) {
		return fmt.Errorf("PROMRELAY_QUERY_URL (-query.url): %q is not an absolute http(s) URL", c.QueryURL)
	}
	if c.RemoteReadURL != "" {
		if !absoluteHTTP(c.RemoteReadURL) {
			return fmt.Errorf("PROMRELAY_REMOTE_READ_URL (-query.remote-read-url): %q is not an absolute http(s) URL", c.RemoteReadURL)
		}
		if u, _ := url.Parse(c.RemoteReadURL); IsAMPHost(u.Host) {
			return fmt.Errorf("PROMRELAY_REMOTE_READ_URL (-query.remote-read-url): %s is an Amazon Managed Service for Prometheus host, and AMP has no remote read API; unset it and read through PROMRELAY_QUERY_URL", u.Host)
		}
	}
	if c.UpstreamBearerToken != "" && (c.UpstreamUsername != "" || c.UpstreamPassword != "") {
		return errors.New("PROMRELAY_UPSTREAM_BEARER_TOKEN and PROMRELAY_UPSTREAM_USERNAME/PASSWORD are exclusive: set one form of upstream credentials")
	}
	static := c.UpstreamBearerToken != "" || c.UpstreamUsername != "" || c.UpstreamPassword != ""
	switch c.AuthMode() {
	case AuthBasic:
		if c.UpstreamUsername == "" && c.UpstreamPassword == "" {
			return errors.New("PROMRELAY_UPSTREAM_AUTH=basic needs PROMRELAY_UPSTREAM_USERNAME and PROMRELAY_UPSTREAM_PASSWORD")
		}
		if c.UpstreamBearerToken != "" {
			return errors.New("PROMRELAY_UPSTREAM_AUTH=basic: unset PROMRELAY_UPSTREAM_BEARER_TOKEN")
		}
	case AuthBearer:
		if c.UpstreamBearerToken == "" {
			return errors.New("PROMRELAY_UPSTREAM_AUTH=bearer needs PROMRELAY_UPSTREAM_BEARER_TOKEN")
		}
	case AuthNone, AuthAliyun, AuthSigV4:
		if static {
			return fmt.Errorf("PROMRELAY_UPSTREAM_AUTH=%s: unset PROMRELAY_UPSTREAM_USERNAME, _PASSWORD and _BEARER_TOKEN", c.AuthMode())
		}
	}
	if len(c.InboundAuth) > 1 && slices.Contains(c.InboundAuth, "none") {
		return errors.New("PROMRELAY_INBOUND_AUTH: none cannot be combined with another mode (it would let requests without credentials through)")
	}
	if c.FCCustomRuntime && c.StateURL != "" && c.InvokeSecret == "" {
		return errors.New("PROMRELAY_INVOKE_SECRET is required on Function Compute's custom runtime with PROMRELAY_STATE_URL: the timer trigger's payload that authenticates POST /invoke")
	}
	if c.UpstreamMinBackoff > c.UpstreamMaxBackoff {
		return errors.New("PROMRELAY_UPSTREAM_MIN_BACKOFF must not exceed PROMRELAY_UPSTREAM_MAX_BACKOFF")
	}
	if c.JWTTenantLabel != "" && c.JWTTenantClaim == "" {
		return errors.New("PROMRELAY_JWT_TENANT_LABEL needs PROMRELAY_JWT_TENANT_CLAIM")
	}
	if c.AliyunRoleARN != "" && c.AliyunDuration < 15*time.Minute {
		return errors.New("PROMRELAY_ALIYUN_ROLE_DURATION: STS needs at least 15m")
	}
	return nil
}

// AuthMode returns the upstream authentication mode: PROMRELAY_UPSTREAM_AUTH,
// or basic/bearer when those credentials are set, else none.
func (c *Config) AuthMode() string {
	switch {
	case c.UpstreamAuth != "":
		return c.UpstreamAuth
	case c.UpstreamBearerToken != "":
		return AuthBearer
	case c.UpstreamUsername != "" || c.UpstreamPassword != "":
		return AuthBasic
	}
	return AuthNone
}

// ParseLabels parses "k=v,k2=v2" into labels sorted by name. Names must be
// valid label names, not reserved (__*), and unique.
func ParseLabels(s string) ([]wire.Label, error) {
	var ls []wire.Label
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not name=value", pair)
		}
		if !wire.IsValidLabelName(name) || strings.HasPrefix(name, "__") {
			return nil, fmt.Errorf("invalid label name %q", name)
		}
		if value == "" {
			return nil, fmt.Errorf("label %q has an empty value", name)
		}
		for _, l := range ls {
			if l.Name == name {
				return nil, fmt.Errorf("label %q given twice", name)
			}
		}
		ls = append(ls, wire.Label{Name: name, Value: value})
	}
	slices.SortFunc(ls, func(a, b wire.Label) int { return strings.Compare(a.Name, b.Name) })
	return ls, nil
}
