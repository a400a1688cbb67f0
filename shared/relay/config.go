package relay

import (
	"log/slog"

	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// Version is promrelay's version, sent in the upstream User-Agent.
const Version = "0.1.0"

// FromConfig builds the relay handler and its upstream client from c, which
// must have passed c.Validate. Errors name the setting at fault.
func FromConfig(c config.Config, logger *slog.Logger) (*Handler, error) {
	up, err := upstream.New(upstream.Config{
		URL:             c.UpstreamURL,
		Timeout:         c.UpstreamTimeout,
		MaxRequestBytes: c.MaxRequestBytes,
		Username:        c.UpstreamUsername,
		Password:        c.UpstreamPassword,
		BearerToken:     c.UpstreamBearerToken,
		UserAgent:       "promrelay/" + Version,
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
