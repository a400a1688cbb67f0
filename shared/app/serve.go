package app

import (
	"context"
	"flag"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/promrelay/promrelay/shared/config"
)

// Serve runs the relay as an HTTP server on ln until ctx ends, then stops
// taking connections and lets the requests in flight finish (each is
// bounded by PROMRELAY_REQUEST_TIMEOUT). The server bounds every
// connection: PROMRELAY_MAX_CONNECTIONS at once, a body read within
// PROMRELAY_SERVER_READ_TIMEOUT, the answer written within the request
// timeout plus a margin, idle keep-alives closed after
// PROMRELAY_SERVER_IDLE_TIMEOUT, headers of at most
// PROMRELAY_SERVER_MAX_HEADER_BYTES. In Function Compute's custom runtime,
// POST /invoke runs the scheduled job for the timer that carries
// PROMRELAY_INVOKE_SECRET; elsewhere, with a group store, a ticker runs it
// every PROMRELAY_REEMIT_INTERVAL. It returns the listener's error, or nil
// after a clean shutdown.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	cfg := a.Config
	var handler http.Handler = a.Handler
	if cfg.FCCustomRuntime {
		handler = a.Adapter.CustomRuntime(a.Handler, cfg.InvokeSecret)
	}
	upstreamURL := cfg.UpstreamURL
	if u, err := url.Parse(upstreamURL); err == nil {
		upstreamURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	a.Logger.Info("listening", "addr", ln.Addr().String(), "upstream", upstreamURL, "version", Version,
		"memory_limit_bytes", cfg.MemoryLimit)
	if len(cfg.InboundAuth) == 0 || (len(cfg.InboundAuth) == 1 && cfg.InboundAuth[0] == "none") {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			a.Logger.Warn("anyone who reaches this address may write metrics: set PROMRELAY_INBOUND_AUTH", "addr", ln.Addr().String())
		}
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: config.ReadHeaderTimeout,
		ReadTimeout:       cfg.ServerReadTimeout,
		WriteTimeout:      cfg.RequestTimeout + config.ServerWriteMargin,
		IdleTimeout:       cfg.ServerIdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(ln, cfg.MaxConnections)) }()
	if a.State.Stateful() && !cfg.FCCustomRuntime {
		// Stand in for a timer trigger.
		go a.tick(ctx, cfg.ReemitInterval)
	}
	if d := cfg.SelfMetricsInterval(false); d > 0 && a.Self != nil && !cfg.FCCustomRuntime {
		// PROMRELAY_SELF_METRICS_INTERVAL on the server: a ticker of its
		// own (the custom runtime writes beside its invocations).
		go a.selfTick(ctx, d)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout+config.ServerWriteMargin)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	return err
}

// tick runs the scheduled job every interval until ctx ends; each run is
// bounded by the interval.
func (a *App) tick(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		rctx, cancel := context.WithTimeout(ctx, interval)
		_ = a.Scheduled(rctx)
		cancel()
	})
}

// selfTick writes the relay's own metrics every interval until ctx ends.
func (a *App) selfTick(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		wctx, cancel := context.WithTimeout(ctx, config.SelfWriteTimeout)
		a.Self.WriteNow(wctx)
		cancel()
	})
}

// every runs fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// RunServer is the server command: settings from env overridden by the
// flags in args, the App built, listening on PROMRELAY_LISTEN until SIGINT
// or SIGTERM. It returns flag.ErrHelp for -h.
func RunServer(args []string, env Env) error {
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("promrelay", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	kind := Server
	if cfg.FCCustomRuntime {
		// Its HTTP trigger is as public as the go1 runtime's.
		kind = FunctionCompute
	}
	a, err := New(kind, cfg, env)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Serve(ctx, ln)
}
