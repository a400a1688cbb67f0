package relay

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// Version is promrelay's version, sent in the upstream User-Agent.
const Version = "0.1.0"

// FromConfig builds the relay handler and its upstream client from c, which
// must have passed c.Validate. Errors name the setting at fault.
func FromConfig(c config.Config, logger *slog.Logger) (*Handler, error) {
	up, err := newUpstream(c)
	if err != nil {
		return nil, err
	}
	authn, tenants, err := newAuthenticator(c, logger)
	if err != nil {
		return nil, err
	}
	tenantUps := map[string]Upstream{}
	if tenants != nil {
		for _, t := range tenants.All() {
			if t.Upstream == nil {
				continue
			}
			tc := c
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
			if err := tc.Validate(); err != nil {
				return nil, fmt.Errorf("tenant %q upstream: %w", t.Name, err)
			}
			if tenantUps[t.Name], err = newUpstream(tc); err != nil {
				return nil, fmt.Errorf("tenant %q upstream: %w", t.Name, err)
			}
		}
	}
	var store groupstore.Store
	if c.StateURL != "" {
		if store, err = groupstore.Open(context.Background(), c.StateURL, groupstore.ObjectOptions{
			Endpoint: c.StateEndpoint, Region: c.StateRegion, PathStyle: c.StateEndpoint != ""}); err != nil {
			return nil, fmt.Errorf("PROMRELAY_STATE_URL: %w", err)
		}
	}
	return New(Options{
		Store:           store,
		GroupTTL:        c.GroupTTL,
		Inbound:         authn,
		TenantUpstreams: tenantUps,
		Upstream:        up,
		ExternalLabels:  c.ExternalLabels,
		PathPrefix:      c.PathPrefix,
		RequestTimeout:  c.RequestTimeout,
		MaxBodyBytes:    c.MaxBodyBytes,
		MaxDecodedBytes: c.MaxDecodedBytes,
		Limits:          wire.Limits{MaxLabels: c.MaxLabels, MaxLabelBytes: c.MaxLabelBytes},
		Logger:          logger,
	}), nil
}

// NewSigner returns the upstream signer for c's PROMRELAY_UPSTREAM_AUTH mode.
func NewSigner(ctx context.Context, c config.Config) (auth.Signer, error) {
	switch mode := c.AuthMode(); mode {
	case config.AuthNone, config.AuthBasic, config.AuthBearer:
		return &auth.Static{Username: c.UpstreamUsername, Password: c.UpstreamPassword, BearerToken: c.UpstreamBearerToken}, nil
	case config.AuthAliyun:
		return auth.NewAliyun(auth.AliyunOptions{
			RoleARN:     c.AliyunRoleARN,
			ExternalID:  c.AliyunExternalID,
			SessionName: c.AliyunSessionName,
			Duration:    c.AliyunDuration,
			STSEndpoint: c.AliyunSTSEndpoint,
			Form:        auth.AliyunForm(c.AliyunAuthForm),
			Window:      c.RefreshWindow,
		})
	case config.AuthSigV4:
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return auth.NewSigV4(ctx, c.UpstreamURL, auth.SigV4Options{
			Region:      c.SigV4Region,
			RoleARN:     c.SigV4RoleARN,
			ExternalID:  c.SigV4ExternalID,
			STSEndpoint: c.SigV4STSEndpoint,
			Window:      c.RefreshWindow,
		})
	default:
		return nil, fmt.Errorf("PROMRELAY_UPSTREAM_AUTH: unknown mode %q", mode)
	}
}

// newUpstream builds the upstream client and its signer for c.
func newUpstream(c config.Config) (*upstream.Client, error) {
	signer, err := NewSigner(context.Background(), c)
	if err != nil {
		return nil, err
	}
	return upstream.New(upstream.Config{
		URL:             c.UpstreamURL,
		Timeout:         c.UpstreamTimeout,
		MaxRequestBytes: c.MaxRequestBytes,
		UserAgent:       "promrelay/" + Version,
		Transport:       &auth.Transport{Base: upstream.NewTransport(), Signer: signer},
	})
}

// newAuthenticator builds inbound authentication from c; nil when
// PROMRELAY_INBOUND_AUTH is empty or only "none" without a tenants file.
func newAuthenticator(c config.Config, logger *slog.Logger) (*inbound.Authenticator, *inbound.Tenants, error) {
	var tenants *inbound.Tenants
	if c.TenantsFile != "" {
		var err error
		if tenants, err = inbound.LoadTenants(c.TenantsFile); err != nil {
			return nil, nil, fmt.Errorf("PROMRELAY_TENANTS_FILE: %w", err)
		}
	}
	if len(c.InboundAuth) == 0 || (len(c.InboundAuth) == 1 && c.InboundAuth[0] == inbound.ModeNone && tenants == nil) {
		return nil, tenants, nil
	}
	o := inbound.Options{Modes: c.InboundAuth, Tokens: c.InboundTokens, Tenants: tenants, Logger: logger}
	if c.InboundTokensFile != "" {
		more, err := inbound.LoadTokens(c.InboundTokensFile)
		if err != nil {
			return nil, nil, fmt.Errorf("PROMRELAY_INBOUND_TOKENS_FILE: %w", err)
		}
		o.Tokens = append(o.Tokens, more...)
	}
	if c.BasicUsersFile != "" {
		users, err := inbound.LoadBasicUsers(c.BasicUsersFile)
		if err != nil {
			return nil, nil, fmt.Errorf("PROMRELAY_INBOUND_BASIC_USERS_FILE: %w", err)
		}
		o.BasicUsers = users
	}
	if slices.Contains(c.InboundAuth, inbound.ModeJWT) {
		jo := inbound.JWTOptions{Secret: []byte(c.JWTSecret), JWKS: c.JWTJWKS, Issuer: c.JWTIssuer, Audience: c.JWTAudience,
			TenantClaim: c.JWTTenantClaim, TenantLabel: c.JWTTenantLabel, Leeway: 30 * time.Second}
		if c.JWTPublicKeyFile != "" {
			pem, err := os.ReadFile(c.JWTPublicKeyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("PROMRELAY_JWT_PUBLIC_KEY_FILE: %w", err)
			}
			jo.PublicKeyPEM = pem
		}
		v, err := inbound.NewJWTVerifier(jo)
		if err != nil {
			return nil, nil, fmt.Errorf("PROMRELAY_INBOUND_AUTH=jwt: %w", err)
		}
		o.JWT = v
	}
	a, err := inbound.New(o)
	if err != nil {
		return nil, nil, fmt.Errorf("PROMRELAY_INBOUND_AUTH: %w", err)
	}
	return a, tenants, nil
}
