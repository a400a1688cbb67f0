package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/credentials-go/credentials/providers"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// AliyunMinRoleDuration is the shortest session STS AssumeRole grants
// (DurationSeconds 900, Alibaba Cloud STS API reference).
const AliyunMinRoleDuration = 15 * time.Minute

// chainRecheck is how long credentials from credentials-go's default chain
// that carry a security token (ECS RAM role, OIDC/RRSA) are served before
// the chain is asked again. Those providers refresh 180 s before expiry,
// so what they hand out is valid for at least 3 minutes.
const chainRecheck = time.Minute

// AliyunProviderOptions configure an AliyunProvider. The zero value of a
// required field is an error from NewAliyunProvider naming it.
type AliyunProviderOptions struct {
	// RoleARN, when set, is the RAM role assumed with STS AssumeRole on top
	// of the source credentials (see AliyunProvider); ExternalID (optional),
	// SessionName (required with RoleARN) and Duration (required with
	// RoleARN, at least AliyunMinRoleDuration) go with it.
	RoleARN     string
	ExternalID  string
	SessionName string
	Duration    time.Duration
	// STSEndpoint is the STS host[:port] (always HTTPS), e.g.
	// sts-vpc.cn-hangzhou.aliyuncs.com; empty means credentials-go's
	// choice (sts.aliyuncs.com, or ALIBABA_CLOUD_STS_REGION's).
	STSEndpoint string
	// Window is how long before expiry cached credentials are refreshed
	// (required).
	Window time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// OnFetch, when set, is told of every fetch of cached credentials
	// (Cache.OnFetch); per-invocation credentials are not fetched.
	OnFetch func(err error)
}

// AliyunProvider resolves Alibaba Cloud credentials for a request, from
// the request's context:
//
//   - with a RoleARN: the role assumed (STS AssumeRole, credentials-go's
//     RAM role ARN provider) with source credentials that are Function
//     Compute's per-invocation credentials when the context carries them
//     (fccontext), else credentials-go's default chain; the assumed
//     credentials are cached for Duration and refreshed Window before;
//   - without: Function Compute's per-invocation credentials when the
//     context carries them (never cached: they belong to the invocation),
//     else the default chain (the ALIBABA_CLOUD_* environment, OIDC/RRSA,
//     profile, ECS RAM role), asked again every minute for STS tokens.
//
// The invocation's credentials never replace a configured role. One
// provider serves the ARMS signer (NewAliyun) and, through AWS, the OSS
// group store. It is safe for concurrent use.
type AliyunProvider struct {
	o     AliyunProviderOptions
	cache *Cache
	// chain is created on first use; the cache never calls fetch
	// concurrently, and credentials-go providers are not goroutine-safe.
	chain providers.CredentialsProvider
}

// NewAliyunProvider returns a provider for o. Credentials are fetched on
// first use, not here; errors are for missing or invalid options.
func NewAliyunProvider(o AliyunProviderOptions) (*AliyunProvider, error) {
	if o.Window <= 0 {
		return nil, errors.New("auth: AliyunProviderOptions.Window (the credentials refresh window) is required")
	}
	if o.RoleARN != "" {
		if o.SessionName == "" {
			return nil, errors.New("auth: AliyunProviderOptions.SessionName is required with a RoleARN")
		}
		if o.Duration < AliyunMinRoleDuration {
			return nil, fmt.Errorf("auth: AliyunProviderOptions.Duration %v is shorter than STS's minimum of %v", o.Duration, AliyunMinRoleDuration)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &AliyunProvider{o: o}
	p.cache = &Cache{Fetch: p.fetch, Window: o.Window, Now: o.Now, OnFetch: o.OnFetch}
	return p, nil
}

// Credentials returns the credentials for a request with context ctx (see
// AliyunProvider). Per-invocation credentials have Expires set to now: use
// them for this invocation's requests, do not cache them. Errors are
// *CredentialsError.
func (p *AliyunProvider) Credentials(ctx context.Context) (Credentials, error) {
	if p.o.RoleARN == "" {
		if c, ok := invocationCredentials(ctx); ok {
			c.Expires = p.o.Now()
			return c, nil
		}
	}
	c, err := p.cache.Get(ctx)
	if err != nil {
		return Credentials{}, NewCredentialsError(err)
	}
	return c, nil
}

// AWS returns p as an aws.CredentialsProvider, for OSS's S3-compatible
// API (AccessKey ID, secret and security token as the AWS SDK's access
// key, secret key and session token). The credentials' Expires is p's, so
// an aws.CredentialsCache around it keeps per-invocation credentials for
// no time at all and others no longer than p would.
func (p *AliyunProvider) AWS() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		c, err := p.Credentials(ctx)
		if err != nil {
			return aws.Credentials{}, err
		}
		return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.AccessKeySecret, SessionToken: c.SecurityToken,
			Source: "promrelay/aliyun", CanExpire: !c.Expires.IsZero(), Expires: c.Expires}, nil
	})
}

// Fetches returns how many times credentials were fetched (for tests and
// metrics).
func (p *AliyunProvider) Fetches() int { return p.cache.Fetches() }

// fetch is the cache's FetchFunc.
func (p *AliyunProvider) fetch(ctx context.Context) (Credentials, error) {
	var source providers.CredentialsProvider
	if c, ok := invocationCredentials(ctx); ok && p.o.RoleARN != "" {
		b := providers.NewStaticSTSCredentialsProviderBuilder().
			WithAccessKeyId(c.AccessKeyID).WithAccessKeySecret(c.AccessKeySecret).WithSecurityToken(c.SecurityToken)
		var err error
		if source, err = b.Build(); err != nil {
			return Credentials{}, fmt.Errorf("the invocation's credentials: %w", err)
		}
	} else {
		if p.chain == nil {
			p.chain = providers.NewDefaultCredentialsProvider()
		}
		source = p.chain
	}
	start := p.o.Now()
	if p.o.RoleARN == "" {
		c, err := source.GetCredentials()
		if err != nil {
			return Credentials{}, err
		}
		creds := Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}
		if c.SecurityToken != "" {
			creds.Expires = start.Add(chainRecheck)
		}
		return creds, nil
	}
	// A new provider per refresh makes credentials-go call STS now, on
	// this cache's schedule rather than its own.
	b := providers.NewRAMRoleARNCredentialsProviderBuilder().
		WithCredentialsProvider(source).
		WithRoleArn(p.o.RoleARN).
		WithRoleSessionName(p.o.SessionName).
		WithDurationSeconds(int(p.o.Duration / time.Second))
	if p.o.ExternalID != "" {
		b = b.WithExternalId(p.o.ExternalID)
	}
	if p.o.STSEndpoint != "" {
		b = b.WithStsEndpoint(p.o.STSEndpoint)
	}
	rp, err := b.Build()
	if err != nil {
		return Credentials{}, err
	}
	c, err := rp.GetCredentials()
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken,
		Expires: start.Add(p.o.Duration)}, nil
}

// invocationCredentials returns Function Compute's per-invocation
// credentials from ctx, if any.
func invocationCredentials(ctx context.Context) (Credentials, bool) {
	fcc, ok := fccontext.FromContext(ctx)
	if !ok || fcc == nil || fcc.Credentials.AccessKeyId == "" {
		return Credentials{}, false
	}
	c := fcc.Credentials
	return Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}, true
}

// AliyunForm is how credentials are presented to ARMS.
type AliyunForm string

// AliyunForm values.
const (
	// AliyunBasic is basic auth with the AccessKey ID as user name and the
	// AccessKey secret as password, or "<secret>$<security token>" for STS
	// credentials, as ARMS documents for its remote-write endpoints.
	AliyunBasic AliyunForm = "basic"
	// AliyunBearer sends "Authorization: Bearer <security token>".
	AliyunBearer AliyunForm = "bearer"
)

// AliyunOptions configure an Aliyun signer; every field is required.
type AliyunOptions struct {
	// Provider resolves the credentials.
	Provider *AliyunProvider
	// Form is AliyunBasic or AliyunBearer.
	Form AliyunForm
	// MinForcedRefresh bounds how often a 401/403 may force a refresh.
	MinForcedRefresh time.Duration
}

// Aliyun signs requests for ARMS with the credentials of an
// AliyunProvider, in the form ARMS accepts (AliyunForm).
type Aliyun struct {
	p      *AliyunProvider
	form   AliyunForm
	minGap time.Duration

	mu         sync.Mutex
	lastForced time.Time
}

// NewAliyun returns an Aliyun signer. Errors are for missing or invalid
// options, naming the field.
func NewAliyun(o AliyunOptions) (*Aliyun, error) {
	if o.Provider == nil {
		return nil, errors.New("auth: AliyunOptions.Provider is required")
	}
	if o.Form != AliyunBasic && o.Form != AliyunBearer {
		return nil, fmt.Errorf("auth: AliyunOptions.Form %q is not an ARMS credential form (basic or bearer)", o.Form)
	}
	if o.MinForcedRefresh <= 0 {
		return nil, errors.New("auth: AliyunOptions.MinForcedRefresh is required")
	}
	return &Aliyun{p: o.Provider, form: o.Form, minGap: o.MinForcedRefresh}, nil
}

// Fetches returns how many times the provider fetched credentials.
func (a *Aliyun) Fetches() int { return a.p.Fetches() }

// Sign implements Signer. Errors are *CredentialsError.
func (a *Aliyun) Sign(req *http.Request, _ []byte) error {
	creds, err := a.p.Credentials(req.Context())
	if err != nil {
		return err
	}
	switch a.form {
	case AliyunBearer:
		if creds.SecurityToken == "" {
			return NewCredentialsError(errors.New("the bearer form needs STS credentials with a security token"))
		}
		req.Header.Set("Authorization", "Bearer "+creds.SecurityToken)
	default:
		password := creds.AccessKeySecret
		if creds.SecurityToken != "" {
			password += "$" + creds.SecurityToken
		}
		req.SetBasicAuth(creds.AccessKeyID, password)
	}
	return nil
}

// Expired implements Signer: a 401 or 403 from ARMS is taken for expired
// credentials when they came from the provider's cache (Function Compute's
// per-invocation credentials cannot be refreshed) and no refresh was forced
// in the last MinForcedRefresh, so a wrong configuration does not turn every
// request into an STS call.
func (a *Aliyun) Expired(req *http.Request, status int, _ http.Header, _ []byte) bool {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return false
	}
	if a.p.o.RoleARN == "" {
		if _, ok := invocationCredentials(req.Context()); ok {
			return false
		}
	}
	used := Credentials{}
	if user, pass, ok := req.BasicAuth(); ok {
		used.AccessKeyID = user
		if _, token, found := strings.Cut(pass, "$"); found {
			used.SecurityToken = token
		}
	} else {
		used.SecurityToken = strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
		if cur, err := a.p.cache.Get(req.Context()); err == nil && cur.SecurityToken == used.SecurityToken {
			used.AccessKeyID = cur.AccessKeyID
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.p.o.Now()
	if !a.lastForced.IsZero() && now.Sub(a.lastForced) < a.minGap {
		return false
	}
	a.lastForced = now
	a.p.cache.Invalidate(used)
	return true
}
