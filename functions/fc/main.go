// Command fc is promrelay for Alibaba Cloud Function Compute 3.0's built-in
// go1 runtime (handler: main). HTTP-trigger events are relayed; timer
// events run the scheduled job. Settings come from PROMRELAY_* environment
// variables (s.yaml sets them).
package main

import (
	"log/slog"
	"os"

	"github.com/aliyun/fc-runtime-go-sdk/fc"

	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/platform"
	"github.com/promrelay/promrelay/shared/relay"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := config.Load(os.Getenv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		logger.Error("invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	h, err := relay.FromConfig(cfg, logger)
	if err != nil {
		logger.Error("invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	a := &platform.Adapter{Handler: h, MaxBodyBytes: cfg.MaxBodyBytes, Logger: logger}
	fc.Start(a.FC)
}
