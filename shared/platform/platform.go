// Package platform adapts the serverless platforms' invocation events to
// the relay's http.Handler and back: Function Compute 3.0
// HTTP-trigger and timer events, Lambda Function URL, API Gateway HTTP API
// v2 and ALB target-group events and EventBridge schedules, and Function
// Compute's custom-runtime HTTP contract. Every HTTP event becomes an
// *http.Request served by the same handler, so all platforms behave alike by
// construction.
package platform

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/promrelay/promrelay/shared/requestid"
	"github.com/promrelay/promrelay/shared/wire"
)

// ScheduledFunc is the job a timer trigger, an EventBridge schedule or a
// custom-runtime /invoke runs. It must finish before ctx's deadline.
type ScheduledFunc func(ctx context.Context) error

// Adapter turns platform events into requests for Handler. It is safe for
// concurrent invocations.
type Adapter struct {
	Handler      http.Handler
	MaxBodyBytes int           // largest request body, after the event's base64; required
	Scheduled    ScheduledFunc // nil: timer events only log that no job is configured
	Logger       *slog.Logger  // nil means slog.Default()
	// SelfWrite, when set, writes the relay's own metrics upstream if
	// they are due (app.App.WriteSelf); it bounds itself and never
	// fails. An HTTP event starts it beside the request, on a context
	// without the event's cancellation, and does not wait for it, so
	// that no answer is delayed; a timer event runs it after the job and
	// waits.
	SelfWrite func(ctx context.Context)
	// Refused, when set, is told of every event the adapter answered
	// itself because it could not become a request (413 for an
	// oversized body, 400 for a malformed one or a bad path), so that it
	// is logged and counted as requests are (relay.Handler.LogRefused).
	Refused func(ctx context.Context, method string, status int, msg string)
}

// refuse answers an event that cannot become a request, and reports it.
func (a *Adapter) refuse(ctx context.Context, method string, status int, msg string) response {
	if a.Refused != nil {
		a.Refused(ctx, method, status, msg)
	}
	return textResponse(status, msg)
}

// selfWriteBeside starts SelfWrite beside an HTTP event with ctx's values
// (Function Compute's per-invocation credentials) but not its end.
func (a *Adapter) selfWriteBeside(ctx context.Context) {
	if a.SelfWrite != nil {
		go a.SelfWrite(context.WithoutCancel(ctx))
	}
}

func (a *Adapter) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.Default()
	}
	return a.Logger
}

func (a *Adapter) maxBody() int { return a.MaxBodyBytes }

// httpEvent is the platform-neutral form of an HTTP invocation.
type httpEvent struct {
	method, host, path, rawQuery string
	header                       http.Header
	body                         string
	base64                       bool
	requestID                    string
}

// response is what the handler answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// serveEvent runs one HTTP event through the handler. Problems with the
// event itself (an oversized or malformed body, a bad path) are answered as
// the handler would answer them: 4xx with the reason.
func (a *Adapter) serveEvent(ctx context.Context, ev httpEvent) response {
	if ev.requestID != "" {
		ctx = requestid.With(ctx, ev.requestID)
	}
	a.selfWriteBeside(ctx)
	var body []byte
	if ev.base64 {
		if n := base64.StdEncoding.DecodedLen(len(ev.body)); n > a.maxBody()+3 {
			return a.refuse(ctx, ev.method, http.StatusRequestEntityTooLarge, (&wire.TooLargeError{What: "request body", Size: n, Limit: a.maxBody()}).Error())
		}
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.body); err != nil {
			return a.refuse(ctx, ev.method, http.StatusBadRequest, "cannot decode the event's base64 body: "+err.Error())
		}
	} else {
		body = []byte(ev.body)
	}
	if len(body) > a.maxBody() {
		return a.refuse(ctx, ev.method, http.StatusRequestEntityTooLarge, (&wire.TooLargeError{What: "request body", Size: len(body), Limit: a.maxBody()}).Error())
	}
	if ev.method == "" {
		ev.method = http.MethodGet
	}
	host := ev.host
	if host == "" {
		host = "localhost"
	}
	u := &url.URL{Scheme: "https", Host: host, RawQuery: ev.rawQuery}
	p, err := url.PathUnescape(ev.path)
	if err != nil || !strings.HasPrefix(ev.path, "/") {
		return a.refuse(ctx, ev.method, http.StatusBadRequest, fmt.Sprintf("invalid request path %q", ev.path))
	}
	u.Path, u.RawPath = p, ev.path
	req, err := http.NewRequestWithContext(ctx, ev.method, u.String(), bytes.NewReader(body))
	if err != nil {
		return a.refuse(ctx, ev.method, http.StatusBadRequest, "invalid request: "+err.Error())
	}
	req.RequestURI = u.RequestURI()
	if ev.header != nil {
		req.Header = ev.header
	}
	req.Host = host
	req.ContentLength = int64(len(body))
	rec := &recorder{header: http.Header{}}
	a.Handler.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return response{status: rec.status, header: rec.header, body: rec.body.Bytes()}
}

func textResponse(status int, msg string) response {
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	return response{status: status, header: h, body: []byte(msg + "\n")}
}

// encodeBody returns the body for a JSON response event: as is for text,
// base64 for anything else.
func encodeBody(header http.Header, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	textual := mt == "" || strings.HasPrefix(mt, "text/") || mt == "application/json"
	if textual && utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

// singleValueHeaders joins repeated header values with commas, as Function
// Compute and Lambda's single-value header maps expect.
func singleValueHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return out
}

// headerFromMap builds an http.Header from a single-value map whose
// repeated values arrive comma-joined (as Function Compute and Lambda send
// them); a comma-joined value is a valid field value for list headers.
func headerFromMap(m map[string]string) http.Header {
	h := make(http.Header, len(m))
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// runScheduled runs the scheduled job for a timer event.
func (a *Adapter) runScheduled(ctx context.Context, source string) error {
	if requestid.From(ctx) == "" {
		ctx = requestid.With(ctx, requestid.New())
	}
	if a.SelfWrite != nil {
		defer a.SelfWrite(ctx)
	}
	if a.Scheduled == nil {
		a.logger().InfoContext(ctx, "no scheduled job configured", "trigger", source)
		return nil
	}
	if err := a.Scheduled(ctx); err != nil {
		a.logger().ErrorContext(ctx, "scheduled job failed", "trigger", source, "error", err.Error())
		return err
	}
	return nil
}

// recorder is a minimal http.ResponseWriter that keeps the response.
type recorder struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
