// Command lambda is promrelay for AWS Lambda's provided.al2023 runtime
// (built as bootstrap with -tags lambda.norpc). Function URL, API Gateway
// HTTP API v2 and ALB events are relayed; EventBridge schedules run the
// scheduled job. Settings come from PROMRELAY_* environment variables
// (template.yaml sets them).
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

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
	lambda.Start(a.Lambda)
}
