package platform

import (
	"errors"
	"log/slog"
	"os"

	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/relay"
)

// FromEnv builds the Adapter a function entry point starts: the settings
// from getenv (os.Getenv), validated, a JSON logger on stderr at the
// configured level, and the relay handler. An error names the setting at
// fault; the caller logs it and exits, so a misconfigured function fails
// its first invocation with one clear line.
func FromEnv(getenv func(string) string) (*Adapter, config.Config, error) {
	cfg, err := config.Load(getenv)
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil && len(cfg.InboundAuth) == 0 {
		// A function's HTTP trigger or URL is public: who may write must be
		// a decision, not a default.
		err = errors.New("PROMRELAY_INBOUND_AUTH is required on Function Compute and Lambda: set bearer, basic or jwt (several with commas), or none to accept any writer")
	}
	if err != nil {
		return nil, cfg, err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	h, err := relay.FromConfig(cfg, logger)
	if err != nil {
		return nil, cfg, err
	}
	return &Adapter{Handler: h, MaxBodyBytes: cfg.MaxBodyBytes, Logger: logger, Scheduled: h.Reemit}, cfg, nil
}

// Fatal logs a start-up error as one JSON line and exits with status 1.
func Fatal(err error) {
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("invalid configuration", "error", err.Error())
	os.Exit(1)
}
