// Command server runs the promrelay relay as a plain HTTP server: for local
// development (make run), self-hosting, and Function Compute's custom
// runtime. Settings come from PROMRELAY_* environment variables, overridden
// by the flags of the same meaning (-h lists them).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/platform"
	"github.com/promrelay/promrelay/shared/relay"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "promrelay:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("promrelay", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	relayHandler, err := relay.FromConfig(cfg, logger)
	if err != nil {
		return err
	}
	// The custom-runtime wrapper adds POST /invoke (Function Compute's event
	// invocations, timer triggers among them) and the x-fc-request-id.
	adapter := &platform.Adapter{Handler: relayHandler, MaxBodyBytes: cfg.MaxBodyBytes, Logger: logger, Scheduled: relayHandler.Reemit}
	handler := adapter.CustomRuntime(relayHandler, cfg.FCCustomRuntime)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	upstreamURL := cfg.UpstreamURL
	if u, err := url.Parse(upstreamURL); err == nil {
		upstreamURL = u.Redacted()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "upstream", upstreamURL, "version", relay.Version)
	if len(cfg.InboundAuth) == 0 || (len(cfg.InboundAuth) == 1 && cfg.InboundAuth[0] == "none") {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			logger.Warn("anyone who reaches this address may write metrics: set PROMRELAY_INBOUND_AUTH", "addr", ln.Addr().String())
		}
	}

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.StateURL != "" && !cfg.FCCustomRuntime {
		// Stand in for a timer trigger (FC's custom runtime gets POST /invoke).
		go relayHandler.RunReemitter(ctx, cfg.ReemitInterval)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Finish in-flight requests (their retries are bounded by the request
	// timeout), refuse new ones.
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout+5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
