// Package app is promrelay's one composition root: it turns the settings
// (shared/config) into the running relay — signers and credential
// providers (auth), upstream clients (upstream, one per tenant with its
// own), the group store (groupstore), the Pushgateway state (pushstate),
// inbound authentication (inbound), the HTTP handler (relay), the
// scheduled job, and the platform adapter (platform). The three commands
// in functions/ call it and nothing else. It is the only package under
// shared/ that imports shared/config.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/platform"
	"github.com/promrelay/promrelay/shared/pushstate"
	"github.com/promrelay/promrelay/shared/query"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/requestid"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// Version is promrelay's version, sent in the upstream User-Agent.
const Version = "0.2.0"

// App is a built relay.
type App struct {
	Config  config.Config
	Logger  *slog.Logger
	Handler *relay.Handler
	State   *pushstate.State
	// Adapter serves platform events (Function Compute, Lambda, the
	// custom runtime) with Handler and Scheduled.
	Adapter *platform.Adapter
	// Metrics are the relay's own metrics, served at GET /metrics.
	Metrics *metrics.Metrics
	// Self writes Metrics upstream every PROMRELAY_SELF_METRICS_INTERVAL
	// (WriteSelf); nil for the read-only entry points, which have no
	// write upstream.
	Self *metrics.SelfWriter

	budget *relay.Budget
	jobs   singleflight.Group
}

// Kind is where the relay runs.
type Kind int

// Kinds of App. On the functions, PROMRELAY_INBOUND_AUTH is required: their
// endpoints are public.
const (
	Server Kind = iota
	FunctionCompute
	Lambda
)

// Env is the process environment an App is built in, and what the
// binary links.
type Env struct {
	Getenv func(string) string // os.Getenv
	Log    io.Writer           // where the JSON log lines go: os.Stderr
	// Enforcer is the read path's tenant enforcement
	// (shared/query/enforce.Enforcer{}): set by the entry points that
	// serve reads (the server, functions/*-read); nil in the write-only
	// builds, which then refuse the read settings at start-up.
	Enforcer relay.Enforcer
	// ReadOnly makes an App of the read path alone (functions/*-read): no
	// write routes, no group store, no scheduled job, and no
	// PROMRELAY_UPSTREAM_URL needed.
	ReadOnly bool
}

// OS is the process's own environment.
func OS() Env { return Env{Getenv: os.Getenv, Log: os.Stderr} }

// FromEnv builds the App of kind from the PROMRELAY_* variables of env,
// after Load and Validate. Errors name the setting at fault.
func FromEnv(kind Kind, env Env) (*App, error) {
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return nil, err
	}
	return New(kind, cfg, env)
}

// New builds the App of kind from cfg, which it validates; env tells
// whether the user set GOMEMLIMIT, and takes the log. Errors name the
// setting at fault.
func New(kind Kind, cfg config.Config, env Env) (*App, error) {
	validate := cfg.Validate
	if env.ReadOnly {
		validate = cfg.ValidateRead
	}
	if err := validate(); err != nil {
		return nil, err
	}
	var tenants *inbound.Tenants
	if cfg.TenantsFile != "" {
		var err error
		if tenants, err = inbound.LoadTenants(cfg.TenantsFile); err != nil {
			return nil, fmt.Errorf("PROMRELAY_TENANTS_FILE: %w", err)
		}
	}
	if readConfigured(cfg, tenants) {
		if env.Enforcer == nil {
			return nil, errors.New("PROMRELAY_QUERY_URL, PROMRELAY_REMOTE_READ_URL or a tenant's query_url/remote_read_url is set, but this build serves writes only: deploy the read entry point (functions/lambda-read or functions/fc-read) or the server binary for the read path")
		}
		if len(cfg.InboundAuth) == 0 {
			// Reads go out with the relay's credentials: who may use them
			// must be a decision, on the server too.
			return nil, errors.New("PROMRELAY_INBOUND_AUTH is required with the read path (PROMRELAY_QUERY_URL, PROMRELAY_REMOTE_READ_URL): set bearer, basic or jwt, or none to let anyone read through the relay's credentials")
		}
	}
	if kind != Server && len(cfg.InboundAuth) == 0 {
		// A function's HTTP trigger or URL is public: who may write must be
		// a decision, not a default.
		return nil, errors.New("PROMRELAY_INBOUND_AUTH is required on Function Compute and Lambda: set bearer, basic or jwt (several with commas), or none to accept any writer")
	}
	logger := slog.New(requestid.NewLogHandler(slog.NewJSONHandler(env.Log, &slog.HandlerOptions{Level: cfg.LogLevel})))
	if env.Getenv("GOMEMLIMIT") == "" {
		// Below the platform's limit, so the collector works harder before
		// the platform kills the instance.
		debug.SetMemoryLimit(int64(float64(cfg.MemoryLimit) * config.GoMemLimitShare))
	}
	a := &App{Config: cfg, Logger: logger, budget: relay.NewBudget(int64(float64(cfg.MemoryLimit)*config.BudgetShare), config.BudgetWait)}
	m := metrics.New(a.budget.InUse, a.budget.Size)
	m.Logger = logger
	a.Metrics = m
	authn, err := authenticator(cfg, tenants, logger, m)
	if err != nil {
		return nil, err
	}
	o := relay.Options{
		ExternalLabels: cfg.ExternalLabels,
		OTLP: otlp.Settings{PromoteResourceAttributes: cfg.OTLPPromoteResourceAttributes,
			PromoteScopeMetadata: cfg.OTLPPromoteScopeMetadata, DeltaIngest: cfg.OTLPDelta == config.OTLPDeltaIngest},
		PathPrefix:          cfg.PathPrefix,
		RequestTimeout:      cfg.RequestTimeout,
		MaxBodyBytes:        cfg.MaxBodyBytes,
		MaxDecodedBytes:     cfg.MaxDecodedBytes,
		MaxPushDecodedBytes: cfg.MaxPushDecodedBytes,
		Limits:              wire.Limits{MaxSamples: cfg.MaxSamplesPerRequest, MaxLabels: cfg.MaxLabels, MaxLabelBytes: cfg.MaxLabelBytes},
		Budget:              a.budget,
		Logger:              logger,
		Now:                 time.Now,
		Metrics:             m,
		OpenMetrics:         cfg.MetricsAuth == config.MetricsAuthNone,
	}
	if authn != nil {
		o.Inbound = authn
	}
	if env.Enforcer != nil && readConfigured(cfg, tenants) {
		var def *query.Upstream
		if o.Read, def, err = readOptions(kind, cfg, tenants, env.Enforcer, m); err != nil {
			return nil, err
		}
		if cfg.MirrorAPIKey != "" {
			if o.Mirror, err = mirrorOptions(cfg, def); err != nil {
				return nil, err
			}
		}
	}
	if env.ReadOnly {
		if a.Handler, err = relay.New(o); err != nil {
			return nil, err
		}
		a.Adapter = &platform.Adapter{Handler: a.Handler, MaxBodyBytes: cfg.MaxBodyBytes, Logger: logger, Refused: a.Handler.LogRefused}
		return a, nil
	}
	ups, def, provider, err := upstreams(cfg, tenants, m)
	if err != nil {
		return nil, err
	}
	var store groupstore.Store
	if cfg.StateURL != "" {
		so := groupstore.ObjectOptions{Endpoint: cfg.StateEndpoint, Region: cfg.StateRegion, PathStyle: cfg.StateEndpoint != ""}
		if strings.HasPrefix(cfg.StateURL, "oss://") {
			// The OSS store signs with the upstream signer's provider, or
			// one of its own (the invocation's or the default chain's
			// credentials, or PROMRELAY_ALIYUN_ROLE_ARN's).
			if provider == nil {
				if provider, err = aliyunProvider(cfg, m); err != nil {
					return nil, fmt.Errorf("PROMRELAY_STATE_URL: %w", err)
				}
			}
			so.Credentials = provider.AWS()
		}
		if store, err = groupstore.Open(context.Background(), cfg.StateURL, so); err != nil {
			return nil, fmt.Errorf("PROMRELAY_STATE_URL: %w", err)
		}
		store = m.InstrumentStore(store)
	}
	if a.State, err = pushstate.New(pushstate.Options{
		Store:              store,
		Write:              relay.Writer(ups),
		TTL:                cfg.GroupTTL,
		MaxSeriesPerGroup:  cfg.MaxSeriesPerGroup,
		MaxGroupsPerTenant: cfg.MaxGroupsPerTenant,
		BatchSeries:        config.ReemitBatchSeries,
		Now:                time.Now,
		Logger:             logger,
	}); err != nil {
		return nil, err
	}
	o.Upstreams, o.State = ups, a.State
	if a.Handler, err = relay.New(o); err != nil {
		return nil, err
	}
	push, rw := o.LargestCosts()
	if cfg.StateURL != "" {
		// A stateful push also reads its group, of up to
		// PROMRELAY_MAX_SERIES_PER_GROUP series stored.
		push += int64(cfg.MaxSeriesPerGroup) * config.StoredSeriesBytes * groupstore.DecodeBytesPerByte
	}
	if push > a.budget.Size() || rw > a.budget.Size() {
		// Not an error: most requests are far smaller than the limits.
		logger.Warn("the largest requests the limits allow do not fit this instance's memory budget and will get 413: lower PROMRELAY_MAX_SAMPLES_PER_REQUEST, PROMRELAY_MAX_PUSH_DECODED_BYTES or PROMRELAY_MAX_DECODED_BYTES, or raise PROMRELAY_MEMORY_LIMIT",
			"budget_bytes", a.budget.Size(), "largest_push_bytes", push, "largest_remote_write_bytes", rw)
	}
	a.Self = &metrics.SelfWriter{
		Metrics:  m,
		Instance: metrics.InstanceName(env.Getenv),
		Interval: cfg.SelfMetricsInterval(kind != Server),
		Write:    selfWrite(def, cfg.ExternalLabels),
		Logger:   logger,
	}
	a.Adapter = &platform.Adapter{Handler: a.Handler, MaxBodyBytes: cfg.MaxBodyBytes, Logger: logger, Scheduled: a.Scheduled,
		SelfWrite: a.WriteSelf, Refused: a.Handler.LogRefused}
	return a, nil
}

// Scheduled is the scheduled job (FC timer, Lambda schedule, the
// custom runtime's /invoke, the server's ticker): it re-emits the stored
// groups. Runs that start while one is running wait for it and share its
// result, so concurrent triggers cost one run. Without a store it logs
// that there is nothing to do.
func (a *App) Scheduled(ctx context.Context) error {
	if a.State == nil || !a.State.Stateful() {
		a.Logger.InfoContext(ctx, "no scheduled job configured: set PROMRELAY_STATE_URL for stateful pushes")
		return nil
	}
	_, err, _ := a.jobs.Do("reemit", func() (any, error) {
		// The groups it reads count in the same budget as requests.
		mem := a.budget.NewReservation()
		defer mem.Release()
		ctx := groupstore.WithReservation(ctx, mem)
		start := time.Now()
		res, err := a.State.Reemit(ctx)
		if m := a.Metrics; m != nil {
			m.ReemitRuns.Inc()
			m.ReemitGroups.Add(float64(res.Groups))
			m.ReemitSamples.Add(float64(res.Samples))
			m.TTLDeletions.Add(float64(res.Expired))
		}
		attrs := []slog.Attr{slog.Int("groups", res.Groups), slog.Int("samples", res.Samples), slog.Int("expired", res.Expired),
			slog.Int("skipped", res.Skipped), slog.Bool("complete", res.Complete),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
		if err != nil {
			a.Logger.LogAttrs(ctx, slog.LevelError, "re-emission failed", append(attrs, slog.String("error", err.Error()))...)
			return nil, err
		}
		a.Logger.LogAttrs(ctx, slog.LevelInfo, "re-emitted", attrs...)
		return nil, nil
	})
	return err
}

// WriteSelf writes the relay's own metrics upstream when
// PROMRELAY_SELF_METRICS_INTERVAL has passed since the last write
// (metrics.SelfWriter.MaybeWrite), within config.SelfWriteTimeout and
// ctx's deadline, and never fails: a failure is logged and counted. The
// platform adapter calls it beside every invocation, the server's ticker
// on its own.
func (a *App) WriteSelf(ctx context.Context) {
	if a.Self == nil {
		return
	}
	// A request id of its own: the write is no request's doing.
	ctx, cancel := context.WithTimeout(requestid.With(ctx, requestid.New()), config.SelfWriteTimeout)
	defer cancel()
	a.Self.MaybeWrite(ctx)
}

// selfWrite returns the SelfWriter's Write: the default upstream, with the
// external labels on every series but job and instance, which name the
// relay itself.
func selfWrite(up relay.Upstream, external []wire.Label) func(context.Context, *wire.WriteRequest) error {
	var labels []wire.Label
	for _, l := range external {
		if l.Name != "job" && l.Name != "instance" {
			labels = append(labels, l)
		}
	}
	return func(ctx context.Context, wr *wire.WriteRequest) error {
		if len(labels) > 0 {
			wr.ApplyLabels(labels)
		}
		_, err := up.Write(ctx, wr)
		return err
	}
}

// onFetch is the credential fetch counter of mode, nil without metrics.
func onFetch(m *metrics.Metrics, mode string) func(error) {
	if m == nil {
		return nil
	}
	return m.CredentialFetch(mode)
}

// upstreams builds the default upstream client and one per tenant that
// names its own upstream.
func upstreams(cfg config.Config, tenants *inbound.Tenants, m *metrics.Metrics) (relay.Upstreams, relay.Upstream, *auth.AliyunProvider, error) {
	def, provider, err := newUpstream(cfg, m)
	if err != nil {
		return nil, nil, nil, err
	}
	byTenant := map[string]relay.Upstream{}
	if tenants != nil {
		for _, t := range tenants.All() {
			if t.Upstream == nil {
				continue
			}
			tc := tenantConfig(cfg, t)
			if err := tc.Validate(); err != nil {
				return nil, nil, nil, fmt.Errorf("tenant %q upstream: %w", t.Name, err)
			}
			if byTenant[t.Name], _, err = newUpstream(tc, m); err != nil {
				return nil, nil, nil, fmt.Errorf("tenant %q upstream: %w", t.Name, err)
			}
		}
	}
	return func(tenant string) relay.Upstream {
		if up := byTenant[tenant]; up != nil {
			return up
		}
		return def
	}, def, provider, nil
}

// tenantConfig is cfg with a tenant's own upstream settings (its
// upstream: block) in place of the relay's.
func tenantConfig(cfg config.Config, t *inbound.Tenant) config.Config {
	if t.Upstream == nil {
		return cfg
	}
	tc := cfg
	tc.UpstreamURL, tc.UpstreamAuth = t.Upstream.URL, t.Upstream.Auth
	tc.UpstreamUsername, tc.UpstreamPassword, tc.UpstreamBearerToken = t.Upstream.Username, t.Upstream.Password, t.Upstream.BearerToken
	if t.Upstream.AliyunRoleARN != "" {
		tc.AliyunRoleARN = t.Upstream.AliyunRoleARN
	}
	if t.Upstream.SigV4RoleARN != "" {
		tc.SigV4RoleARN = t.Upstream.SigV4RoleARN
	}
	if t.Upstream.SigV4Region != "" {
		tc.SigV4Region = t.Upstream.SigV4Region
	}
	return tc
}

// readConfigured reports whether any read URL is set (the relay's or a
// tenant's), or the StackState mirror.
func readConfigured(cfg config.Config, tenants *inbound.Tenants) bool {
	if cfg.QueryURL != "" || cfg.RemoteReadURL != "" || cfg.MirrorAPIKey != "" {
		return true
	}
	if tenants != nil {
		for _, t := range tenants.All() {
			if t.QueryURL != "" || t.RemoteReadURL != "" {
				return true
			}
		}
	}
	return false
}

// readOptions builds the read path: the relay's read upstream and one per
// tenant with its own query_url or remote_read_url (signed with the
// tenant's upstream: settings when it has them; a URL it does not name is
// the relay's), and the platform's response limit.
func readOptions(kind Kind, cfg config.Config, tenants *inbound.Tenants, enforcer relay.Enforcer, m *metrics.Metrics) (*relay.ReadOptions, *query.Upstream, error) {
	ro := &relay.ReadOptions{Enforcer: enforcer, CopyBufferBytes: config.QueryCopyBufferBytes, MaxQueries: config.MaxReadQueries,
		Version: config.PrometheusAPIVersion, Revision: "promrelay-" + Version}
	// The body's share of the platform's limit: the rest is the
	// response event's status, headers and envelope.
	switch {
	case kind == Lambda:
		ro.ResponseLimit, ro.Platform = config.LambdaResponseBytes-config.ResponseEnvelopeBytes, "Lambda"
	case kind == FunctionCompute && !cfg.FCCustomRuntime:
		ro.ResponseLimit, ro.Platform = config.FCResponseBytes-config.ResponseEnvelopeBytes, "Function Compute"
	}
	def, err := readUpstream(cfg, cfg.QueryURL, cfg.RemoteReadURL, m)
	if err != nil {
		return nil, nil, err
	}
	ro.API, ro.RemoteRead = def.HasAPI(), def.HasRemoteRead()
	byTenant := map[string]*query.Upstream{}
	if tenants != nil {
		for _, t := range tenants.All() {
			if t.Scopes.Has(inbound.ScopeRead) && len(t.Labels) == 0 &&
				((cfg.QueryURL != "" && t.QueryURL == "") || (cfg.RemoteReadURL != "" && t.RemoteReadURL == "")) {
				// Nothing would hold it to its own series.
				return nil, nil, fmt.Errorf("PROMRELAY_TENANTS_FILE: tenant %q may read but has no labels, so it would read every series of the relay's read upstream: give it labels, or its own query_url and remote_read_url", t.Name)
			}
			if t.QueryURL == "" && t.RemoteReadURL == "" {
				continue
			}
			qu, rr := t.QueryURL, t.RemoteReadURL
			if qu == "" {
				qu = cfg.QueryURL
			}
			if rr == "" {
				rr = cfg.RemoteReadURL
			}
			tc := tenantConfig(cfg, t)
			tc.QueryURL, tc.RemoteReadURL = strings.TrimRight(qu, "/"), rr
			if err := tc.ValidateRead(); err != nil {
				return nil, nil, fmt.Errorf("tenant %q: %w", t.Name, err)
			}
			up, err := readUpstream(tc, tc.QueryURL, tc.RemoteReadURL, m)
			if err != nil {
				return nil, nil, fmt.Errorf("tenant %q: %w", t.Name, err)
			}
			byTenant[t.Name] = up
			ro.API, ro.RemoteRead = ro.API || up.HasAPI(), ro.RemoteRead || up.HasRemoteRead()
		}
	}
	ro.Upstreams = func(tenant string) *query.Upstream {
		if up := byTenant[tenant]; up != nil {
			return up
		}
		return def
	}
	return ro, def, nil
}

// readUpstream is the read upstream of queryURL and remoteReadURL, signed
// as cfg's PROMRELAY_QUERY_AUTH says; nil when both are empty.
func readUpstream(cfg config.Config, queryURL, remoteReadURL string, m *metrics.Metrics) (*query.Upstream, error) {
	if queryURL == "" && remoteReadURL == "" {
		return nil, nil
	}
	signURL := queryURL
	if signURL == "" {
		signURL = remoteReadURL
	}
	signer, _, err := NewSigner(context.Background(), cfg.ReadConfig(signURL), m)
	if err != nil {
		return nil, fmt.Errorf("PROMRELAY_QUERY_AUTH: %w", err)
	}
	return query.New(query.Config{QueryURL: queryURL, RemoteReadURL: remoteReadURL, Signer: signer,
		Transport: upstream.NewTransport(), UserAgent: "promrelay/" + Version})
}

// NewSigner returns the upstream signer for cfg's PROMRELAY_UPSTREAM_AUTH
// mode, and for aliyun its credential provider (which the OSS group store
// shares). Its credential fetches are counted in m
// (promrelay_credential_fetches_total) unless m is nil.
func NewSigner(ctx context.Context, cfg config.Config, m *metrics.Metrics) (auth.Signer, *auth.AliyunProvider, error) {
	switch mode := cfg.AuthMode(); mode {
	case config.AuthNone:
		// Nothing, even when static credentials are set for another use
		// (PROMRELAY_QUERY_AUTH=none next to basic writes).
		return &auth.Static{}, nil, nil
	case config.AuthBasic:
		return &auth.Static{Username: cfg.UpstreamUsername, Password: cfg.UpstreamPassword}, nil, nil
	case config.AuthBearer:
		return &auth.Static{BearerToken: cfg.UpstreamBearerToken}, nil, nil
	case config.AuthAliyun:
		p, err := aliyunProvider(cfg, m)
		if err != nil {
			return nil, nil, err
		}
		s, err := auth.NewAliyun(auth.AliyunOptions{Provider: p, Form: auth.AliyunForm(cfg.AliyunAuthForm), MinForcedRefresh: cfg.MinForcedRefresh})
		return s, p, err
	case config.AuthSigV4:
		ctx, cancel := context.WithTimeout(ctx, config.SigV4SetupTimeout)
		defer cancel()
		s, err := auth.NewSigV4(ctx, cfg.UpstreamURL, auth.SigV4Options{
			Region:           cfg.SigV4Region,
			RoleARN:          cfg.SigV4RoleARN,
			ExternalID:       cfg.SigV4ExternalID,
			SessionName:      cfg.SigV4SessionName,
			STSEndpoint:      cfg.SigV4STSEndpoint,
			Window:           cfg.RefreshWindow,
			MinForcedRefresh: cfg.MinForcedRefresh,
			OnFetch:          onFetch(m, config.AuthSigV4),
		})
		return s, nil, err
	default:
		return nil, nil, fmt.Errorf("PROMRELAY_UPSTREAM_AUTH: unknown mode %q", mode)
	}
}

// aliyunProvider is the Alibaba Cloud credential provider of cfg: its role
// (PROMRELAY_ALIYUN_ROLE_ARN, or a tenant's aliyun_role_arn) assumed on
// top of the invocation's or the default chain's credentials.
func aliyunProvider(cfg config.Config, m *metrics.Metrics) (*auth.AliyunProvider, error) {
	return auth.NewAliyunProvider(auth.AliyunProviderOptions{
		OnFetch:     onFetch(m, config.AuthAliyun),
		RoleARN:     cfg.AliyunRoleARN,
		ExternalID:  cfg.AliyunExternalID,
		SessionName: cfg.AliyunSessionName,
		Duration:    cfg.AliyunDuration,
		STSEndpoint: cfg.AliyunSTSEndpoint,
		Window:      cfg.RefreshWindow,
	})
}

// newUpstream builds the upstream client and its signer for cfg.
func newUpstream(cfg config.Config, m *metrics.Metrics) (*upstream.Client, *auth.AliyunProvider, error) {
	signer, provider, err := NewSigner(context.Background(), cfg, m)
	if err != nil {
		return nil, nil, err
	}
	profile, maxBytes := UpstreamProfile(cfg)
	uc := upstream.Config{
		URL:             cfg.UpstreamURL,
		Timeout:         cfg.UpstreamTimeout,
		MaxRequestBytes: maxBytes,
		MinBackoff:      cfg.UpstreamMinBackoff,
		MaxBackoff:      cfg.UpstreamMaxBackoff,
		UserAgent:       "promrelay/" + Version,
		Signer:          signer,
		Profile:         profile,
		V2:              cfg.UpstreamProtocol == config.ProtocolV2,
	}
	if m != nil {
		uc.Observer = m
	}
	c, err := upstream.New(uc)
	return c, provider, err
}

// UpstreamProfile returns what cfg's upstream profile (config.Profile)
// changes in what is sent, and the largest compressed request for it in
// bytes: arms reduces HELP to printable ASCII; amp converts native
// histograms to classic ones of at most PROMRELAY_MAX_CLASSIC_BUCKETS
// buckets, drops exemplars, and caps requests at 1 MiB
// (config.AMPMaxRequestBytes); prometheus changes nothing.
func UpstreamProfile(cfg config.Config) (wire.Profile, int) {
	switch cfg.Profile() {
	case config.ProfileARMS:
		return wire.Profile{ASCIIHelp: true}, cfg.MaxRequestBytes
	case config.ProfileAMP:
		return wire.Profile{ClassicHistograms: true, MaxClassicBuckets: cfg.MaxClassicBuckets, DropExemplars: true},
			min(cfg.MaxRequestBytes, config.AMPMaxRequestBytes)
	}
	return wire.Profile{}, cfg.MaxRequestBytes
}

// authenticator builds inbound authentication from cfg; nil when
// PROMRELAY_INBOUND_AUTH is empty or only "none" without a tenants file.
func authenticator(cfg config.Config, tenants *inbound.Tenants, logger *slog.Logger, m *metrics.Metrics) (*inbound.Authenticator, error) {
	if len(cfg.InboundAuth) == 0 || (len(cfg.InboundAuth) == 1 && cfg.InboundAuth[0] == inbound.ModeNone && tenants == nil) {
		return nil, nil
	}
	o := inbound.Options{Modes: cfg.InboundAuth, Tokens: cfg.InboundTokens, ReadTokens: cfg.InboundReadTokens, Tenants: tenants, Logger: logger,
		MaxConcurrentBcrypt: cfg.BasicMaxConcurrent, OnFailure: m.InboundAuthFailure}
	if cfg.InboundTokensFile != "" {
		more, err := inbound.LoadTokens(cfg.InboundTokensFile)
		if err != nil {
			return nil, fmt.Errorf("PROMRELAY_INBOUND_TOKENS_FILE: %w", err)
		}
		o.Tokens = append(o.Tokens, more...)
	}
	if cfg.BasicUsersFile != "" {
		users, err := inbound.LoadBasicUsers(cfg.BasicUsersFile)
		if err != nil {
			return nil, fmt.Errorf("PROMRELAY_INBOUND_BASIC_USERS_FILE: %w", err)
		}
		o.BasicUsers = users
	}
	if slices.Contains(cfg.InboundAuth, inbound.ModeJWT) {
		jo := inbound.JWTOptions{Secret: []byte(cfg.JWTSecret), JWKS: cfg.JWTJWKS, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
			TenantClaim: cfg.JWTTenantClaim, TenantLabel: cfg.JWTTenantLabel, Leeway: config.JWTLeeway,
			MaxLifetime: cfg.JWTMaxLifetime, Logger: logger}
		if cfg.JWTPublicKeyFile != "" {
			pem, err := os.ReadFile(cfg.JWTPublicKeyFile)
			if err != nil {
				return nil, fmt.Errorf("PROMRELAY_JWT_PUBLIC_KEY_FILE: %w", err)
			}
			jo.PublicKeyPEM = pem
		}
		v, err := inbound.NewJWTVerifier(jo)
		if err != nil {
			return nil, err
		}
		o.JWT = v
	}
	return inbound.New(o)
}

// Fatal logs a start-up error as one JSON line and exits with status 1.
func Fatal(err error) {
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("invalid configuration", "error", err.Error())
	os.Exit(1)
}
