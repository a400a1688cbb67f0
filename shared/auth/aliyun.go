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
)

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

// AliyunOptions configure an Aliyun signer.
type AliyunOptions struct {
	// RoleARN, when set, is assumed (STS AssumeRole) on top of the default
	// credential chain; ExternalID, SessionName and Duration (at least
	// 15 minutes; 0 means 1 hour) go with it.
	RoleARN     string
	ExternalID  string
	SessionName string
	Duration    time.Duration
	// STSEndpoint overrides the STS host (host[:port]), e.g.
	// sts-vpc.cn-hangzhou.aliyuncs.com.
	STSEndpoint string
	// Form is AliyunBasic (default) or AliyunBearer.
	Form AliyunForm
	// Window is how long before expiry credentials are refreshed; 0 means
	// 5 minutes.
	Window time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// MinForcedRefresh bounds how often a 401/403 may force a refresh;
	// 0 means 10 s.
	MinForcedRefresh time.Duration
}

// Aliyun signs requests for ARMS with Alibaba Cloud credentials, in this
// order: the per-invocation role credentials of Function Compute (from
// fccontext in the request's context); else the assumed role
// (RoleARN); else the default credential chain of credentials-go (the
// ALIBABA_CLOUD_* environment, OIDC/RRSA, profile, ECS RAM role).
type Aliyun struct {
	form   AliyunForm
	cache  *Cache
	now    func() time.Time
	minGap time.Duration

	mu         sync.Mutex
	lastForced time.Time
}

// NewAliyun returns an Aliyun signer. The credentials are fetched on first
// use, not here; errors are for invalid options.
func NewAliyun(o AliyunOptions) (*Aliyun, error) {
	if o.Form == "" {
		o.Form = AliyunBasic
	}
	if o.Form != AliyunBasic && o.Form != AliyunBearer {
		return nil, fmt.Errorf("unknown ARMS credential form %q (basic or bearer)", o.Form)
	}
	if o.Duration == 0 {
		o.Duration = time.Hour
	}
	if o.RoleARN != "" && o.Duration < 15*time.Minute {
		return nil, fmt.Errorf("role session duration %v is shorter than STS's minimum of 15m", o.Duration)
	}
	if o.SessionName == "" {
		o.SessionName = "promrelay"
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinForcedRefresh <= 0 {
		o.MinForcedRefresh = 10 * time.Second
	}
	a := &Aliyun{form: o.Form, now: o.Now, minGap: o.MinForcedRefresh}
	// credentials-go providers are not goroutine-safe; the cache never
	// calls Fetch concurrently.
	var base providers.CredentialsProvider
	fetch := func(ctx context.Context) (Credentials, error) {
		if base == nil {
			base = providers.NewDefaultCredentialsProvider()
		}
		if o.RoleARN == "" {
			c, err := base.GetCredentials()
			if err != nil {
				return Credentials{}, err
			}
			creds := Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}
			if c.SecurityToken != "" {
				// The chain's STS providers (ECS RAM role, OIDC) refresh
				// themselves; ask them again every minute.
				creds.Expires = o.Now().Add(time.Minute + o.Window)
			}
			return creds, nil
		}
		// A new provider per refresh makes credentials-go call STS now,
		// on this cache's schedule rather than its own.
		b := providers.NewRAMRoleARNCredentialsProviderBuilder().
			WithCredentialsProvider(base).
			WithRoleArn(o.RoleARN).
			WithRoleSessionName(o.SessionName).
			WithDurationSeconds(int(o.Duration / time.Second))
		if o.ExternalID != "" {
			b = b.WithExternalId(o.ExternalID)
		}
		if o.STSEndpoint != "" {
			b = b.WithStsEndpoint(o.STSEndpoint)
		}
		p, err := b.Build()
		if err != nil {
			return Credentials{}, err
		}
		start := o.Now()
		c, err := p.GetCredentials()
		if err != nil {
			return Credentials{}, err
		}
		return Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken,
			Expires: start.Add(o.Duration)}, nil
	}
	a.cache = &Cache{Fetch: fetch, Window: o.Window, Now: o.Now}
	return a, nil
}

// Fetches returns how many times credentials were fetched.
func (a *Aliyun) Fetches() int { return a.cache.Fetches() }

// invocationCredentials returns Function Compute's per-invocation
// credentials from ctx, if any.
func invocationCredentials(ctx context.Context) (Credentials, bool) {
	fcc, ok := fccontext.FromContext(ctx)
	if !ok || fcc.Credentials.AccessKeyId == "" {
		return Credentials{}, false
	}
	c := fcc.Credentials
	return Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}, true
}

// Sign implements Signer.
func (a *Aliyun) Sign(req *http.Request, _ []byte) error {
	creds, ok := invocationCredentials(req.Context())
	if !ok {
		var err error
		if creds, err = a.cache.Get(req.Context()); err != nil {
			return &CredentialsError{Err: err}
		}
	}
	switch a.form {
	case AliyunBearer:
		if creds.SecurityToken == "" {
			return &CredentialsError{Err: errors.New("the bearer form needs STS credentials with a security token")}
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
// credentials when they came from the cache (Function Compute's
// per-invocation credentials cannot be refreshed) and no refresh was forced
// in the last MinForcedRefresh, so a wrong configuration does not turn every
// request into an STS call.
func (a *Aliyun) Expired(req *http.Request, status int, _ http.Header, _ []byte) bool {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return false
	}
	if _, ok := invocationCredentials(req.Context()); ok {
		return false
	}
	used := Credentials{}
	if user, pass, ok := req.BasicAuth(); ok {
		used.AccessKeyID = user
		if _, token, found := strings.Cut(pass, "$"); found {
			used.SecurityToken = token
		}
	} else {
		used.SecurityToken = strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
		if cur, err := a.cache.Get(req.Context()); err == nil && cur.SecurityToken == used.SecurityToken {
			used.AccessKeyID = cur.AccessKeyID
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if now := a.now(); !a.lastForced.IsZero() && now.Sub(a.lastForced) < a.minGap {
		return false
	}
	a.lastForced = a.now()
	return a.cache.Invalidate(used)
}
