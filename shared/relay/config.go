package relay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// Version is promrelay's version, sent in the upstream User-Agent.
const Version = "0.1.0"

// FromConfig builds the relay handler and its upstream client from c, which
// must have passed c.Validate. Errors name the setting at fault.
func FromConfig(c config.Config, logger *slog.Logger) (*Handler, error) {
	signer, err := NewSigner(context.Background(), c)
	if err != nil {
		return nil, err
	}
	up, err := upstream.New(upstream.Config{
		URL:             c.UpstreamURL,
		Timeout:         c.UpstreamTimeout,
		MaxRequestBytes: c.MaxRequestBytes,
		UserAgent:       "promrelay/" + Version,
		Transport:       &auth.Transport{Base: upstream.NewTransport(), Signer: signer},
	})
	if err != nil {
		return nil, err
	}
	return New(Options{
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
