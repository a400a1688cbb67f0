package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/mirror"
	"github.com/promrelay/promrelay/shared/query"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
)

// mirrorOptions builds the StackState mirror routes of cfg over the read
// path whose upstream for PROMRELAY_QUERY_URL is def (nil when unset).
func mirrorOptions(cfg config.Config, def *query.Upstream) (*relay.MirrorOptions, error) {
	m, err := newMirrorUpstreams(cfg, def)
	if err != nil {
		return nil, err
	}
	return &relay.MirrorOptions{Prefix: cfg.MirrorPrefix, PathToken: cfg.MirrorPathToken, Upstream: m.get, APIKey: cfg.MirrorAPIKey,
		MaxBodyBytes: config.MirrorMaxBodyBytes, MaxResponseBytes: config.MirrorMaxResponseBytes}, nil
}

// newMirrorUpstreams is the mirror's connections of cfg.
func newMirrorUpstreams(cfg config.Config, def *query.Upstream) (*mirrorUpstreams, error) {
	allowed := cfg.MirrorAllowedURLs
	if len(allowed) == 0 && cfg.QueryURL != "" {
		allowed = []string{cfg.QueryURL}
	}
	if len(allowed) == 0 {
		return nil, fmt.Errorf("PROMRELAY_MIRROR_API_KEY is set, but no URL is allowed: set PROMRELAY_QUERY_URL or PROMRELAY_MIRROR_ALLOWED_URLS")
	}
	cache, err := lru.New[string, *query.Upstream](config.MirrorConnections)
	if err != nil {
		return nil, err
	}
	tr := upstream.NewTransport()
	return &mirrorUpstreams{cfg: cfg, def: def, allowedURLs: allowed, allowedRoles: cfg.MirrorAllowedRoleARNs, cache: cache,
		transport: tr, stsClient: auth.NewSDKHTTPClient(config.SigV4SetupTimeout),
		builds: rate.NewLimiter(rate.Every(config.MirrorConnectionEvery), config.MirrorConnectionBurst)}, nil
}

// mirrorUpstreams gives each mirror connection its read upstream: only an
// allow-listed URL, only an allow-listed role, with credentials kept per
// connection — URL, role, external id, access key and a digest of its
// secret, not the URL alone — for the config.MirrorConnections most
// recently used. The fields a caller could vary freely without changing
// whose credentials are used (region, session name, lifetime) are taken
// from the connection's first request, so varying them builds nothing;
// new connections are built at most config.MirrorConnectionBurst at once
// and one per config.MirrorConnectionEvery after, so a caller with the
// path token cannot make the relay build signers (and call STS) on every
// request. All share one connection pool, to the upstreams and to STS.
type mirrorUpstreams struct {
	cfg          config.Config
	def          *query.Upstream
	allowedURLs  []string
	allowedRoles []string
	transport    http.RoundTripper
	stsClient    aws.HTTPClient // one pool for every connection's STS calls
	builds       *rate.Limiter
	mu           sync.Mutex // one connection built at a time
	cache        *lru.Cache[string, *query.Upstream]
}

func (m *mirrorUpstreams) get(ctx context.Context, conn mirror.Connection) (*query.Upstream, error) {
	u := strings.TrimRight(conn.URL, "/")
	if !slices.Contains(m.allowedURLs, u) {
		return nil, &mirror.RefusedError{Reason: "connectionDetails.url is not one of PROMRELAY_MIRROR_ALLOWED_URLS"}
	}
	a := conn.AWS
	if a != nil && a.RoleARN != "" && !slices.Contains(m.allowedRoles, a.RoleARN) {
		return nil, &mirror.RefusedError{Reason: "connectionDetails.aws.role_arn is not one of PROMRELAY_MIRROR_ALLOWED_ROLE_ARNS"}
	}
	if a == nil && u == m.cfg.QueryURL && m.def != nil {
		// Signed as every read of PROMRELAY_QUERY_URL (ARMS: Alibaba
		// Cloud credentials; AMP: SigV4).
		return m.def, nil
	}
	key := "plain\x00" + u
	if a != nil {
		secret := sha256.Sum256([]byte(a.SecretAccessKey + "\x00" + a.SessionToken))
		key = strings.Join([]string{"aws", u, a.RoleARN, a.ExternalID, a.AccessKeyID, hex.EncodeToString(secret[:])}, "\x00")
	}
	if up, ok := m.cache.Get(key); ok {
		return up, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if up, ok := m.cache.Get(key); ok {
		return up, nil
	}
	if !m.builds.Allow() {
		return nil, &mirror.RefusedError{Reason: "too many new connections at once; retry later"}
	}
	up, err := m.build(ctx, u, a)
	if err != nil {
		return nil, err
	}
	m.cache.Add(key, up)
	return up, nil
}

// build makes the upstream of one connection: SigV4 with the
// connection's keys or the relay's default chain, its role assumed on top
// for its token_expiry_seconds and refreshed before they end, in the
// region of an AMP URL (else the connection's region_name); without aws,
// unsigned: only PROMRELAY_QUERY_URL gets the relay's read credentials.
func (m *mirrorUpstreams) build(ctx context.Context, u string, a *mirror.AWSDetails) (*query.Upstream, error) {
	if a == nil {
		return query.New(query.Config{QueryURL: u, Transport: m.transport, UserAgent: "promrelay/" + Version})
	}
	expiry := a.TokenExpiry
	if expiry <= 0 {
		expiry = 15 * time.Minute
	}
	session := a.RoleSessionName
	if session == "" {
		session = m.cfg.SigV4SessionName
	}
	region := auth.RegionFromURL(u)
	if region == "" {
		region = a.Region
	}
	if region == "" {
		region = m.cfg.SigV4Region
	}
	ctx, cancel := context.WithTimeout(ctx, config.SigV4SetupTimeout)
	defer cancel()
	signer, err := auth.NewSigV4(ctx, u, auth.SigV4Options{
		Region:           region,
		RoleARN:          a.RoleARN,
		ExternalID:       a.ExternalID,
		SessionName:      session,
		Duration:         expiry,
		AccessKeyID:      a.AccessKeyID,
		SecretAccessKey:  a.SecretAccessKey,
		SessionToken:     a.SessionToken,
		STSEndpoint:      m.cfg.SigV4STSEndpoint,
		HTTPClient:       m.stsClient,
		Window:           min(m.cfg.RefreshWindow, expiry/3),
		MinForcedRefresh: m.cfg.MinForcedRefresh,
	})
	if err != nil {
		return nil, &mirror.RefusedError{Reason: "cannot sign for the connection: " + auth.RedactText(err.Error())}
	}
	return query.New(query.Config{QueryURL: u, Signer: signer, Transport: m.transport, UserAgent: "promrelay/" + Version})
}
