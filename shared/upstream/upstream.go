// Package upstream is promrelay's remote-write client: it encodes series as
// remote-write 1.0 requests (snappy block format, protobuf), splits them on
// series boundaries to stay under a byte budget, sends them over HTTP/1.1
// with bounded retries, and maps the upstream's answer to the status the
// original sender must see (Error.Status):
//
//	upstream 2xx                                → success
//	upstream 3xx                                → 502 "upstream redirected to <host>"; never followed, never retried
//	upstream 401, 403, 407                      → 502 (the relay's credentials, not the data), not retried
//	upstream other 4xx but 408, 413 and 429     → 400, never retried
//	upstream 413                                → the request is split and resent
//	upstream 408                                → retried with backoff, then 504
//	upstream 429                                → retried after Retry-After, then 429 with Retry-After
//	upstream 5xx, connection error              → retried with backoff, then 502
//	attempt timeout                             → retried with backoff, then 504
//	no credentials (a failed STS call)          → retried with backoff, then 503 auth.CredentialsMessage
//
// Retries happen only within the deadline of the caller's context: an
// attempt is not started when the wait before it would leave less than
// MinBackoff before the deadline, and a context without a deadline gets
// exactly one attempt. The upstream's error body reaches the sender only
// for a data rejection (a 4xx other than 401, 403, 407, 408 and 429), cut
// to MaxErrorBodyBytes; otherwise it is in Error.Detail, for the log. The
// upstream URL appears in messages as scheme, host and path only.
//
// Requests are signed by an auth.Transport bound to the upstream's origin,
// so credentials never go to another host.
//
// Spec: https://prometheus.io/docs/specs/prw/remote_write_spec/
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/wire"
)

// Remote-write 1.0 request headers.
const (
	ContentType        = "application/x-protobuf"
	ContentEncoding    = "snappy"
	RemoteWriteVersion = "0.1.0"
	VersionHeader      = "X-Prometheus-Remote-Write-Version"
)

// Remote-write 2.0 request headers (spec 2.0-rc.4, "Protocol").
const (
	ContentTypeV2        = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	RemoteWriteVersionV2 = "2.0.0"
)

// writtenHeaders are the answer headers by which a remote write 2.0
// receiver says what it stored (spec 2.0-rc.4, "Required Written Response
// Headers").
var writtenHeaders = [...]string{
	"X-Prometheus-Remote-Write-Samples-Written",
	"X-Prometheus-Remote-Write-Histograms-Written",
	"X-Prometheus-Remote-Write-Exemplars-Written",
}

// MaxErrorBodyBytes is how much of an upstream's error body is read and
// shown: passed back to the sender in a data rejection's message, or kept
// in Error.Detail.
const MaxErrorBodyBytes = 1 << 10

// Config configures a Client. Timeout, MaxRequestBytes, MinBackoff and
// MaxBackoff are required: New names the first one that is zero.
type Config struct {
	// URL is the remote-write endpoint, an absolute http(s) URL, for
	// example http://127.0.0.1:9090/api/v1/write.
	URL string
	// Timeout bounds one HTTP attempt, within the caller's deadline.
	Timeout time.Duration
	// MaxRequestBytes is the budget for one compressed request body, in
	// bytes (AMP accepts at most 1 MiB).
	MaxRequestBytes int
	// UserAgent is sent with every request when set.
	UserAgent string
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries (jittered between half a step and a step); MinBackoff is
	// also the least time an attempt must have before the deadline.
	MinBackoff, MaxBackoff time.Duration
	// Signer, when set, signs every request, through an auth.Transport
	// bound to URL's origin; nil sends requests unsigned.
	Signer auth.Signer
	// Transport is the base HTTP transport; nil means NewTransport().
	Transport http.RoundTripper
	// Profile changes what is sent into what the upstream accepts
	// (wire.Profile: ARMS' ASCII HELP, AMP's classic histograms and no
	// exemplars); the zero value sends everything as it is.
	Profile wire.Profile
	// V2 sends remote write 2.0 (spec 2.0-rc.4) instead of 1.0. The first
	// 415, or 2xx without X-Prometheus-Remote-Write-*-Written headers (a
	// 1.0 receiver, which skips 2.0's fields and stores nothing), makes the
	// client resend that request as 1.0 and send 1.0 from then on.
	V2 bool
	// Observer is told of every attempt, split and fallback, for the
	// relay's metrics (shared/metrics implements it); optional.
	Observer Observer
}

// Observer is told what a Client does. Its methods must be cheap and safe
// for concurrent use.
type Observer interface {
	// UpstreamAttempt is one HTTP request: the status of its answer (0
	// for none: a transport error, a timeout, a credentials failure),
	// how long it took, and whether it repeated an earlier one.
	// ctx is the write's.
	UpstreamAttempt(ctx context.Context, status int, d time.Duration, retry bool)
	// UpstreamSplit is a body split in two after a 413 or over the
	// request size bound.
	UpstreamSplit(ctx context.Context)
	// UpstreamFallback is a write resent as remote write 1.0 because
	// the upstream takes only 1.0.
	UpstreamFallback(ctx context.Context)
}

// Client sends remote-write requests to one upstream. It never follows a
// redirect. It is safe for concurrent use.
type Client struct {
	url        string
	shown      string // url without user info or query, for messages
	secrets    []string
	httpClient *http.Client
	timeout    time.Duration
	maxBytes   int
	userAgent  string
	minBackoff time.Duration
	maxBackoff time.Duration
	bufs       sync.Pool // *buffers
	profile    wire.Profile
	v2         bool
	v1Since    atomic.Int64 // when a V2 client's upstream turned out to take only 1.0 (Unix ns), 0 if not
	observer   Observer     // nil: none
}

type buffers struct {
	encoded, part, compressed []byte
	series, metadata          []wire.Span
	// For profiles and 2.0: the changed request being built, the chunk
	// being changed, their spans, and the decoded chunk or part.
	shaped, chunk, v2 []byte
	shapeSeries       []wire.Span
	shapeMetadata     []wire.Span
	wr, one           wire.WriteRequest
	batch             []wire.Series
	batchMetadata     []wire.Metadata
	v2enc             wire.V2Encoder
}

// New returns a client for cfg. It returns an error for a URL that is not
// absolute http(s), a required field left zero (naming it), or MaxBackoff
// below MinBackoff.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %s is not an absolute http(s) URL", auth.RedactText(cfg.URL))
	}
	switch {
	case cfg.Timeout <= 0:
		return nil, errors.New("upstream: Config.Timeout is required")
	case cfg.MaxRequestBytes <= 0:
		return nil, errors.New("upstream: Config.MaxRequestBytes is required")
	case cfg.MinBackoff <= 0:
		return nil, errors.New("upstream: Config.MinBackoff is required")
	case cfg.MaxBackoff <= 0:
		return nil, errors.New("upstream: Config.MaxBackoff is required")
	case cfg.MaxBackoff < cfg.MinBackoff:
		return nil, fmt.Errorf("upstream: Config.MaxBackoff %v is below MinBackoff %v", cfg.MaxBackoff, cfg.MinBackoff)
	}
	c := &Client{
		url:        cfg.URL,
		shown:      auth.RedactURL(u),
		timeout:    cfg.Timeout,
		maxBytes:   cfg.MaxRequestBytes,
		userAgent:  cfg.UserAgent,
		minBackoff: cfg.MinBackoff,
		maxBackoff: cfg.MaxBackoff,
		profile:    cfg.Profile,
		v2:         cfg.V2,
		observer:   cfg.Observer,
	}
	// What the redacted URL leaves out must not come back through an
	// upstream's error body either.
	if u.RawQuery != "" {
		c.secrets = append(c.secrets, u.RawQuery)
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 4 {
					c.secrets = append(c.secrets, v)
				}
			}
		}
	}
	if p, ok := u.User.Password(); ok && len(p) >= 4 {
		c.secrets = append(c.secrets, p)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = NewTransport()
	}
	if cfg.Signer != nil {
		if tr, err = auth.NewTransport(cfg.URL, cfg.Signer, tr); err != nil {
			return nil, err
		}
	}
	c.httpClient = &http.Client{
		Transport: tr,
		// A redirect is an error (classify), never followed: a followed
		// 302 would turn the POST into a bodyless GET whose 200 looks like
		// success, and take the credentials along.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// NewTransport returns the HTTP/1.1-only transport promrelay uses upstream:
// ARMS does not speak HTTP/2, and connections are kept alive for reuse
// across invocations of a warm function instance.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
		// A non-nil empty map disables HTTP/2 on TLS connections.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// Result describes what a Write sent.
type Result struct {
	Requests       int // HTTP requests made, retries included
	Batches        int // request bodies the write was split into
	BytesSent      int // compressed bytes of the bodies, counted once each
	UpstreamStatus int // status of the last upstream answer, 0 if none
	// Profile is what Config.Profile changed in the write.
	Profile wire.ProfileCounts
	// FellBack is set when a V2 client found in this write that the
	// upstream takes only remote write 1.0, and FallbackReason says why
	// (the 415 and its body, or a 2xx without Written headers).
	FellBack       bool
	FallbackReason string
	// Written is what a remote write 2.0 upstream said it wrote, summed
	// over the write's requests; see UpstreamWritten.
	Written Written
	v1Parts bool // a V2 client sent a part with series as 1.0
}

// UpstreamWritten returns what the upstream said it wrote, and true, when
// every part of the write that held series went as remote write 2.0 and
// was answered with Written headers; else false (a 1.0 upstream's 2xx
// means it took everything).
func (r Result) UpstreamWritten() (Written, bool) {
	return r.Written, r.Written.Known && !r.v1Parts
}

// Written counts what a remote write 2.0 upstream wrote (its
// X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written
// headers, spec 2.0-rc.4).
type Written struct {
	Known                          bool
	Samples, Histograms, Exemplars int
}

// Error is a write that did not fully succeed. Status and Msg are what the
// relay must answer the original sender; Detail is for the log only.
type Error struct {
	Status         int           // 400, 429, 502, 503 or 504
	UpstreamStatus int           // the upstream's status, 0 for a transport or credentials failure
	RetryAfter     time.Duration // for 429: how long the sender should wait
	// Msg is the message for the sender: no secret, the upstream URL as
	// scheme, host and path, the upstream's body only for a data
	// rejection.
	Msg string
	// Partial is set on a 400 when the request's other series were
	// written (a series a profile cannot convert was dropped).
	Partial bool
	// Dropped counts the values of the series the profile dropped (float
	// samples, histogram samples, exemplars); zero for other errors.
	Dropped [3]int
	// Detail is what the log needs beyond Msg, or "": the upstream's
	// error body (cut to MaxErrorBodyBytes) when Msg leaves it out, or the
	// reason credentials could not be obtained (auth.CredentialsError's
	// Detail). Never a secret.
	Detail string
}

// Error returns Msg.
func (e *Error) Error() string { return e.Msg }

// Write sends the series and metadata of wr upstream and returns when the
// upstream has accepted all of them, or with an *Error. It encodes wr and
// sends it as WriteEncoded does.
func (c *Client) Write(ctx context.Context, wr *wire.WriteRequest) (Result, error) {
	bufs := c.getBuffers()
	defer c.bufs.Put(bufs)
	bufs.encoded = wire.AppendWriteRequest(bufs.encoded[:0], wr.Series, wr.Metadata)
	return c.writeEncoded(ctx, bufs.encoded, bufs)
}

// WriteEncoded sends an encoded (uncompressed) remote-write request, as
// wire.Rewriter produces it. Requests are split on series boundaries, at the
// wire level and without decoding, into parts of at most 4× the byte budget
// uncompressed, and a part that still compresses above the budget, or draws
// a 413, is halved; metadata go with the first part. So memory stays bounded
// by the input plus one compressed part.
func (c *Client) WriteEncoded(ctx context.Context, raw []byte) (Result, error) {
	bufs := c.getBuffers()
	defer c.bufs.Put(bufs)
	return c.writeEncoded(ctx, raw, bufs)
}

func (c *Client) getBuffers() *buffers {
	bufs, _ := c.bufs.Get().(*buffers)
	if bufs == nil {
		bufs = &buffers{}
	}
	return bufs
}

func (c *Client) writeEncoded(ctx context.Context, raw []byte, bufs *buffers) (Result, error) {
	var res Result
	if c.profile != (wire.Profile{}) {
		need, err := c.profile.Needed(raw)
		if err != nil {
			return res, &Error{Status: http.StatusBadRequest, Msg: "cannot read the request: " + err.Error()}
		}
		if need {
			return res, c.writeShaped(ctx, raw, bufs, &res)
		}
	}
	return res, c.writeParts(ctx, raw, bufs, &res)
}

// writeParts sends raw as it is, split into parts that fit the budget.
func (c *Client) writeParts(ctx context.Context, raw []byte, bufs *buffers, res *Result) error {
	partBytes := 4 * c.maxBytes
	if len(raw) <= partBytes {
		tooLarge, err := c.sendPart(ctx, raw, true, bufs, res)
		if !tooLarge {
			return err
		}
		partBytes = len(raw) / 2
	}
	var err error
	bufs.series, bufs.metadata, err = wire.Fields(raw, bufs.series[:0], bufs.metadata[:0])
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "cannot split the request: " + err.Error()}
	}
	if need := partBytes + partBytes/8; cap(bufs.part) < need {
		bufs.part = make([]byte, 0, need) // one allocation, not a doubling chain
	}
	md := bufs.metadata
	start, size := 0, 0
	for i, sp := range bufs.series {
		size += sp.End - sp.Start
		if size >= partBytes || i == len(bufs.series)-1 {
			if err := c.writePart(ctx, raw, bufs.series[start:i+1], md, bufs, res); err != nil {
				return err
			}
			if !c.v2 {
				// 1.0 metadata stand alone: once is enough. A 2.0
				// request carries them on the series of their family,
				// so every part gets them.
				md = nil
			}
			start, size = i+1, 0
		}
	}
	if len(bufs.series) == 0 && len(md) > 0 {
		return c.writePart(ctx, raw, nil, md, bufs, res)
	}
	return nil
}

// writePart sends the series spans of raw (and metadata) as one request,
// halving it while it compresses above the budget or draws a 413.
func (c *Client) writePart(ctx context.Context, raw []byte, series, md []wire.Span, bufs *buffers, res *Result) error {
	bufs.part = bufs.part[:0]
	for _, sp := range series {
		bufs.part = append(bufs.part, raw[sp.Start:sp.End]...)
	}
	for _, sp := range md {
		bufs.part = append(bufs.part, raw[sp.Start:sp.End]...)
	}
	tooLarge, err := c.sendPart(ctx, bufs.part, len(series) > 1, bufs, res)
	if !tooLarge {
		return err
	}
	if len(series) <= 1 {
		var wr wire.WriteRequest
		name := "(metadata)"
		if len(series) == 1 {
			name = fmt.Sprintf("of %d bytes", series[0].End-series[0].Start)
		}
		// Named only when small enough to decode cheaply: an outsized
		// series is what got here, and decoding it whole is not this
		// error message's to pay.
		if len(series) == 1 && series[0].End-series[0].Start <= maxNamedSeriesBytes &&
			wr.Unmarshal(raw[series[0].Start:series[0].End], wire.Limits{}) == nil && len(wr.Series) == 1 {
			name = wire.FormatLabels(wr.Series[0].Labels, 256)
		}
		return &Error{Status: http.StatusBadRequest, UpstreamStatus: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("series %s is too large for the upstream on its own", name)}
	}
	if c.observer != nil {
		c.observer.UpstreamSplit(ctx)
	}
	half := len(series) / 2
	if err := c.writePart(ctx, raw, series[:half], md, bufs, res); err != nil {
		return err
	}
	if !c.v2 {
		md = nil // as in writeParts
	}
	return c.writePart(ctx, raw, series[half:], md, bufs, res)
}

// maxNamedSeriesBytes bounds the encoded series a too-large answer names.
const maxNamedSeriesBytes = 64 << 10

// send posts one compressed body, retrying while the error is transient
// and the context's deadline allows.
func (c *Client) send(ctx context.Context, body []byte, v2 bool, res *Result) error {
	res.Batches++
	res.BytesSent += len(body)
	deadline, hasDeadline := ctx.Deadline()
	for attempt := 0; ; attempt++ {
		start := time.Now()
		a := c.attempt(ctx, body, v2)
		if c.observer != nil {
			c.observer.UpstreamAttempt(ctx, a.status, time.Since(start), attempt > 0)
		}
		res.Requests++
		res.UpstreamStatus = a.status
		if v2 && a.err == nil && a.status == http.StatusUnsupportedMediaType {
			return &notV2{reason: "415 " + a.body}
		}
		if v2 && a.err == nil && a.status/100 == 2 && !a.written {
			return &notV2{reason: fmt.Sprintf("%d without X-Prometheus-Remote-Write-*-Written headers", a.status)}
		}
		if a.err == nil && a.status/100 == 2 {
			if v2 {
				res.Written.Known = true
				res.Written.Samples += a.counts[0]
				res.Written.Histograms += a.counts[1]
				res.Written.Exemplars += a.counts[2]
			}
			return nil
		}
		final, retry := c.classify(a)
		if !retry || !hasDeadline || ctx.Err() != nil {
			return final
		}
		wait := c.backoff(attempt)
		if a.status == http.StatusTooManyRequests && a.retryAfter > 0 {
			wait = a.retryAfter
		}
		if time.Until(deadline) < wait+c.minBackoff {
			// No time left for another attempt: answer in time.
			if final.Status == http.StatusTooManyRequests && final.RetryAfter == 0 {
				final.RetryAfter = wait
			}
			return final
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return final
		case <-t.C:
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.minBackoff << min(attempt, 20)
	if d > c.maxBackoff || d <= 0 {
		d = c.maxBackoff
	}
	// Jitter, at least half the step so retries do not bunch up at zero.
	return d/2 + rand.N(d/2+1)
}

// answer is the outcome of one attempt.
type answer struct {
	status     int           // 0 when err is set
	retryAfter time.Duration // the upstream's Retry-After
	location   string        // the upstream's Location, for a 3xx
	written    bool          // the answer has a remote write 2.0 Written header
	counts     [3]int        // and what they say: samples, histograms, exemplars
	body       string        // the start of an error body
	err        error         // a transport or credentials failure
}

// attempt makes one HTTP request.
func (c *Client) attempt(ctx context.Context, body []byte, v2 bool) answer {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, &bodyReader{b: body})
	if err != nil {
		return answer{err: err}
	}
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return &bodyReader{b: body}, nil }
	h := req.Header
	h.Set("Content-Type", ContentType)
	h.Set("Content-Encoding", ContentEncoding)
	h.Set(VersionHeader, RemoteWriteVersion)
	if v2 {
		h.Set("Content-Type", ContentTypeV2)
		h.Set(VersionHeader, RemoteWriteVersionV2)
	}
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	for i, k := range writtenHeaders {
		if v := resp.Header.Get(k); v != "" {
			a.written = true
			a.counts[i], _ = strconv.Atoi(v)
		}
	}
	if resp.StatusCode/100 == 3 {
		a.location = resp.Header.Get("Location")
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBodyBytes))
		a.body = c.scrub(strings.TrimSpace(strings.ToValidUTF8(string(b), "")))
	}
	// Drain so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return a
}

// scrub removes from text what the client keeps out of its messages: URLs'
// user info and query strings, and the values of the configured URL's.
func (c *Client) scrub(text string) string {
	text = auth.RedactText(text)
	for _, s := range c.secrets {
		text = strings.ReplaceAll(text, s, "…")
	}
	return text
}

// classify maps one failed attempt to the answer for the sender, and
// reports whether another attempt may change it.
func (c *Client) classify(a answer) (*Error, bool) {
	status := a.status
	if a.err != nil {
		var ce *auth.CredentialsError
		if errors.As(a.err, &ce) {
			return &Error{Status: http.StatusServiceUnavailable, Msg: auth.CredentialsMessage, Detail: c.scrub(ce.Detail)}, true
		}
		if errors.Is(a.err, auth.ErrOtherOrigin) {
			return &Error{Status: http.StatusBadGateway, Msg: "refused to send the credentials for " + c.shown + " to another origin",
				Detail: c.scrub(a.err.Error())}, false
		}
		cause := a.err
		var ue *url.Error
		if errors.As(a.err, &ue) {
			cause = ue.Err // its URL would show user info and query
		}
		if errors.Is(a.err, context.DeadlineExceeded) {
			return &Error{Status: http.StatusGatewayTimeout, Msg: "upstream " + c.shown + " did not answer in time"}, true
		}
		return &Error{Status: http.StatusBadGateway, Msg: "cannot reach upstream " + c.shown + ": " + c.scrub(cause.Error())}, true
	}
	e := &Error{UpstreamStatus: status, Detail: a.body}
	switch {
	case status/100 == 3:
		e.Status, e.Msg = http.StatusBadGateway, fmt.Sprintf("upstream redirected to %s (%d); redirects are not followed", c.redirectHost(a.location), status)
		return e, false
	case status == http.StatusTooManyRequests:
		e.Status, e.RetryAfter, e.Msg = http.StatusTooManyRequests, a.retryAfter, "upstream is rate limiting (429)"
		return e, true
	case status == http.StatusRequestTimeout:
		e.Status, e.Msg = http.StatusGatewayTimeout, "upstream timed out (408)"
		return e, true
	case status/100 == 5:
		e.Status, e.Msg = http.StatusBadGateway, fmt.Sprintf("upstream failed with %d", status)
		return e, true
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusProxyAuthRequired:
		// About the relay's credentials, not the data: a fault on the
		// relay's side (credentials expired or rotated), so the sender keeps
		// its data and retries (502) rather than dropping it (400). The body
		// (which may name the account) stays in the log.
		e.Status, e.Msg = http.StatusBadGateway, fmt.Sprintf("upstream refused the relay's credentials with %d", status)
		return e, false
	case status/100 == 4:
		// A data rejection: the sender must not retry it, and the
		// upstream's reason tells it what was wrong.
		e.Status, e.Msg, e.Detail = http.StatusBadRequest, fmt.Sprintf("upstream rejected the data with %d: %s", status, a.body), ""
		return e, false
	default:
		e.Status, e.Msg = http.StatusBadGateway, fmt.Sprintf("upstream answered an unexpected %d", status)
		return e, false
	}
}

// redirectHost returns the host a Location header points to ("" means the
// upstream's own), or "(no Location)".
func (c *Client) redirectHost(location string) string {
	if location == "" {
		return "(no Location)"
	}
	base, _ := url.Parse(c.url)
	u, err := base.Parse(location)
	if err != nil {
		return "(an invalid Location)"
	}
	return u.Host
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// bodyReader is a rewindable reader over a byte slice that, unlike
// bytes.Reader, needs no allocation beyond itself.
type bodyReader struct {
	b []byte
	i int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

func (r *bodyReader) Close() error { return nil }

// Bytes returns the whole body, for signers that hash it (auth.BytesBody).
func (r *bodyReader) Bytes() []byte { return r.b }
