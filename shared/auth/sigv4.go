package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// SigV4Service is the signing name of Amazon Managed Service for
// Prometheus.
const SigV4Service = "aps"

// SigV4Options configure a SigV4 signer. The zero value of a required
// field is an error from NewSigV4 naming it.
type SigV4Options struct {
	// Region of the workspace; empty means parsed from the upstream URL's
	// aps-workspaces.<region>.amazonaws.com host, then the SDK's default
	// (AWS_REGION).
	Region string
	// RoleARN, when set, is the IAM role assumed with stscreds on top of
	// the default credential chain (on Lambda, the function role's
	// credentials from the environment are the source credentials, never
	// a replacement); ExternalID (optional) and SessionName (required with
	// RoleARN) go with it.
	RoleARN     string
	ExternalID  string
	SessionName string
	// Duration, when set, is the lifetime asked of an assumed role's
	// credentials (stscreds' Duration; STS allows 15 minutes up to the
	// role's maximum); zero means STS's default of one hour.
	Duration time.Duration
	// AccessKeyID, SecretAccessKey and SessionToken, when the key id is
	// set, are the source credentials in place of the default chain (the
	// StackState mirror protocol's aws_access_key_id and friends).
	AccessKeyID, SecretAccessKey, SessionToken string
	// STSEndpoint overrides the STS endpoint URL (VPC endpoints, tests).
	STSEndpoint string
	// HTTPClient, when set, is the client of the SDK's own calls (STS),
	// from NewSDKHTTPClient: many signers can share one pool of
	// connections.
	HTTPClient aws.HTTPClient
	// Window is how long before expiry credentials are refreshed
	// (required).
	Window time.Duration
	// MinForcedRefresh bounds how often an expired-token answer may force
	// a refresh (required).
	MinForcedRefresh time.Duration
	// ConfigOptions are passed to config.LoadDefaultConfig (tests).
	ConfigOptions []func(*config.LoadOptions) error
	// OnFetch, when set, is told of every fetch of credentials the
	// signer's cache makes (a Retrieve of the chain or of the assumed
	// role) and its error, for the relay's metrics.
	OnFetch func(err error)
}

// observedProvider tells OnFetch of each Retrieve of a provider.
type observedProvider struct {
	p       aws.CredentialsProvider
	onFetch func(error)
}

func (o observedProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if cc, ok := o.p.(*aws.CredentialsCache); ok {
		// The chain's own cache, below the signer's: the signer asks
		// only when it needs new credentials (expiry, or a forced
		// refresh), so this one must not answer from its cache.
		cc.Invalidate()
	}
	c, err := o.p.Retrieve(ctx)
	o.onFetch(err)
	return c, err
}

// SigV4 signs requests for AMP with AWS Signature Version 4 (service "aps"),
// using the aws-sdk-go-v2 default credential chain, or a role assumed with
// it, cached in an aws.CredentialsCache that refreshes Window before
// expiry.
type SigV4 struct {
	region string
	creds  *aws.CredentialsCache
	signer *v4.Signer
	minGap time.Duration
	mu     sync.Mutex
	forced time.Time
}

// RegionFromURL returns the region of an AMP endpoint URL
// (https://aps-workspaces.<region>.amazonaws.com/...), or "".
func RegionFromURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	for _, prefix := range []string{"aps-workspaces.", "aps-workspaces-fips.", "aps."} {
		if rest, ok := strings.CutPrefix(host, prefix); ok {
			if region, _, ok := strings.Cut(rest, "."); ok && region != "" {
				return region
			}
		}
	}
	return ""
}

// NewSigV4 loads the AWS configuration and returns a signer for the
// upstream at upstreamURL. It fails for a missing option and when no region
// can be found; missing credentials are found out at the first request (a
// *CredentialsError).
func NewSigV4(ctx context.Context, upstreamURL string, o SigV4Options) (*SigV4, error) {
	switch {
	case o.Window <= 0:
		return nil, errors.New("auth: SigV4Options.Window (the credentials refresh window) is required")
	case o.MinForcedRefresh <= 0:
		return nil, errors.New("auth: SigV4Options.MinForcedRefresh is required")
	case o.RoleARN != "" && o.SessionName == "":
		return nil, errors.New("auth: SigV4Options.SessionName is required with a RoleARN")
	}
	region := o.Region
	if region == "" {
		region = RegionFromURL(upstreamURL)
	}
	opts := append([]func(*config.LoadOptions) error{
		// The default chain's cache refreshes Window before expiry.
		config.WithCredentialsCacheOptions(func(co *aws.CredentialsCacheOptions) { co.ExpiryWindow = o.Window }),
	}, o.ConfigOptions...)
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if o.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(o.HTTPClient))
	}
	if o.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot load the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set PROMRELAY_SIGV4_REGION or use an aps-workspaces.<region>.amazonaws.com URL")
	}
	observe := func(p aws.CredentialsProvider) aws.CredentialsProvider {
		if o.OnFetch == nil {
			return p
		}
		return observedProvider{p: p, onFetch: o.OnFetch}
	}
	var cache *aws.CredentialsCache
	if cc, ok := cfg.Credentials.(*aws.CredentialsCache); ok && o.OnFetch == nil {
		cache = cc
	} else if cfg.Credentials != nil {
		// Observed, the chain's own cache sits below this one, and
		// observedProvider makes each Retrieve that reaches it a fetch.
		cache = aws.NewCredentialsCache(observe(cfg.Credentials), func(co *aws.CredentialsCacheOptions) { co.ExpiryWindow = o.Window })
	}
	if o.RoleARN != "" {
		client := sts.NewFromConfig(cfg, func(so *sts.Options) {
			if o.STSEndpoint != "" {
				so.BaseEndpoint = aws.String(o.STSEndpoint)
			}
		})
		provider := stscreds.NewAssumeRoleProvider(client, o.RoleARN, func(ao *stscreds.AssumeRoleOptions) {
			if o.ExternalID != "" {
				ao.ExternalID = aws.String(o.ExternalID)
			}
			ao.RoleSessionName = o.SessionName
			if o.Duration > 0 {
				ao.Duration = o.Duration
			}
		})
		cache = aws.NewCredentialsCache(observe(provider), func(co *aws.CredentialsCacheOptions) { co.ExpiryWindow = o.Window })
	}
	if cache == nil {
		return nil, errors.New("no AWS credential provider")
	}
	return &SigV4{region: cfg.Region, creds: cache, signer: v4.NewSigner(), minGap: o.MinForcedRefresh}, nil
}

// NewSDKHTTPClient returns an HTTP client for the AWS SDK's own calls
// (STS) that SigV4Options.HTTPClient can share among signers: the SDK's
// buildable client (it honours AWS_CA_BUNDLE), each call bounded by
// timeout.
func NewSDKHTTPClient(timeout time.Duration) aws.HTTPClient {
	return awshttp.NewBuildableClient().WithTimeout(timeout)
}

// Sign implements Signer: the payload hash is the SHA-256 of the exact
// (compressed) body, and X-Scope-OrgID, which AMP rejects when signed, is
// removed.
func (s *SigV4) Sign(req *http.Request, body []byte) error {
	creds, err := s.creds.Retrieve(req.Context())
	if err != nil {
		return NewCredentialsError(err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Del("X-Scope-OrgID")
	req.Header.Del("Authorization")
	req.Header.Set("X-Amz-Content-Sha256", hash)
	return s.signer.SignHTTP(req.Context(), creds, req, hash, SigV4Service, s.region, time.Now())
}

// Expired implements Signer: AWS answers an expired session token with 403
// and ExpiredToken or ExpiredTokenException (in x-amzn-ErrorType or the
// body).
func (s *SigV4) Expired(_ *http.Request, status int, header http.Header, body []byte) bool {
	if status != http.StatusForbidden {
		return false
	}
	if !strings.Contains(header.Get("X-Amzn-Errortype"), "ExpiredToken") && !strings.Contains(string(body), "ExpiredToken") &&
		!strings.Contains(string(body), "security token included in the request is expired") {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.forced.IsZero() && time.Since(s.forced) < s.minGap {
		return false
	}
	s.forced = time.Now()
	s.creds.Invalidate()
	return true
}
