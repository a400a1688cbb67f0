// Package upstream is promrelay's remote-write client: it encodes series as
// remote-write 1.0 requests (snappy block format, protobuf), splits them on
// series boundaries to stay under a byte budget, sends them over HTTP/1.1
// with bounded retries, and maps the upstream's answer to the status the
// original sender must see (DESIGN.md §3):
//
//	upstream 2xx                              → success
//	upstream 4xx other than 413 and 429       → 400, never retried
//	upstream 413                              → the request is split and resent
//	upstream 429                              → retried after Retry-After while the deadline allows, then 429
//	upstream 5xx, timeout, connection error   → retried with backoff, then 502 or 504
//	no credentials (a failed STS call)        → retried with backoff, then 503
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
	"time"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/wire"
)

// Remote-write 1.0 request headers.
const (
	ContentType            = "application/x-protobuf"
	ContentEncoding        = "snappy"
	RemoteWriteVersion     = "0.1.0"
	VersionHeader          = "X-Prometheus-Remote-Write-Version"
	DefaultMaxRequestBytes = 1 << 20 // AMP's limit on one compressed request
)

// Config configures a Client.
type Config struct {
	// URL is the remote-write endpoint, for example
	// http://127.0.0.1:9090/api/v1/write.
	URL string
	// Timeout bounds one HTTP attempt; 0 means 10 s.
	Timeout time.Duration
	// MaxRequestBytes is the budget for one compressed request body, in
	// bytes; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int
	// UserAgent is sent with every request.
	UserAgent string
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries (full jitter); 0 means 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// Transport replaces the default HTTP/1.1 transport (tests).
	Transport http.RoundTripper
}

// Client sends remote-write requests to one upstream. It is safe for
// concurrent use.
type Client struct {
	url        string
	httpClient *http.Client
	timeout    time.Duration
	maxBytes   int
	userAgent  string
	minBackoff time.Duration
	maxBackoff time.Duration
	bufs       sync.Pool // *buffers
}

type buffers struct {
	encoded, part, compressed []byte
	series, metadata          []wire.Span
}

// New returns a client for cfg. It returns an error for a URL that is not
// absolute http(s). Credentials are the transport's business: pass an
// *auth.Transport as cfg.Transport.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q is not an absolute http(s) URL", cfg.URL)
	}
	c := &Client{
		url:        cfg.URL,
		timeout:    cfg.Timeout,
		maxBytes:   cfg.MaxRequestBytes,
		userAgent:  cfg.UserAgent,
		minBackoff: cfg.MinBackoff,
		maxBackoff: cfg.MaxBackoff,
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxRequestBytes
	}
	if c.minBackoff <= 0 {
		c.minBackoff = 50 * time.Millisecond
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = 5 * time.Second
	}
	tr := cfg.Transport
	if tr == nil {
		tr = NewTransport()
	}
	c.httpClient = &http.Client{Transport: tr}
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
}

// Error is a write that did not fully succeed. Status is what the relay must
// answer the original sender.
type Error struct {
	Status         int           // 400, 429, 502, 503 or 504
	UpstreamStatus int           // the upstream's status, 0 for a transport failure
	RetryAfter     time.Duration // for 429: how long the sender should wait
	Msg            string
}

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
	partBytes := 4 * c.maxBytes
	if len(raw) <= partBytes {
		bufs.compressed = wire.EncodeSnappy(bufs.compressed, raw)
		if len(bufs.compressed) <= c.maxBytes {
			err := c.send(ctx, bufs.compressed, &res)
			var e *Error
			if !errors.As(err, &e) || e.UpstreamStatus != http.StatusRequestEntityTooLarge {
				return res, err
			}
		}
		partBytes = len(raw) / 2
	}
	var err error
	bufs.series, bufs.metadata, err = wire.Fields(raw, bufs.series[:0], bufs.metadata[:0])
	if err != nil {
		return res, &Error{Status: http.StatusBadRequest, Msg: "cannot split the request: " + err.Error()}
	}
	if need := partBytes + partBytes/8; cap(bufs.part) < need {
		bufs.part = make([]byte, 0, need) // one allocation, not a doubling chain
	}
	md := bufs.metadata
	start, size := 0, 0
	for i, sp := range bufs.series {
		size += sp.End - sp.Start
		if size >= partBytes || i == len(bufs.series)-1 {
			if err := c.writePart(ctx, raw, bufs.series[start:i+1], md, bufs, &res); err != nil {
				return res, err
			}
			md = nil
			start, size = i+1, 0
		}
	}
	if len(bufs.series) == 0 && len(md) > 0 {
		return res, c.writePart(ctx, raw, nil, md, bufs, &res)
	}
	return res, nil
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
	bufs.compressed = wire.EncodeSnappy(bufs.compressed, bufs.part)
	tooLarge := len(bufs.compressed) > c.maxBytes
	var err error
	if !tooLarge || len(series) <= 1 {
		err = c.send(ctx, bufs.compressed, res)
		var e *Error
		tooLarge = errors.As(err, &e) && e.UpstreamStatus == http.StatusRequestEntityTooLarge
	}
	if !tooLarge {
		return err
	}
	if len(series) <= 1 {
		var wr wire.WriteRequest
		name := "(metadata)"
		if len(series) == 1 && wr.Unmarshal(raw[series[0].Start:series[0].End]) == nil && len(wr.Series) == 1 {
			name = wire.FormatLabels(wr.Series[0].Labels, 256)
		}
		return &Error{Status: http.StatusBadRequest, UpstreamStatus: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("series %s is too large for the upstream on its own", name)}
	}
	half := len(series) / 2
	if err := c.writePart(ctx, raw, series[:half], md, bufs, res); err != nil {
		return err
	}
	return c.writePart(ctx, raw, series[half:], nil, bufs, res)
}

// send posts one compressed body, retrying while the error is transient
// and the context's deadline allows.
func (c *Client) send(ctx context.Context, body []byte, res *Result) error {
	res.Batches++
	res.BytesSent += len(body)
	for attempt := 0; ; attempt++ {
		status, retryAfter, msg, err := c.attempt(ctx, body)
		res.Requests++
		res.UpstreamStatus = status
		if err == nil && status/100 == 2 {
			return nil
		}
		final := classify(status, retryAfter, msg, err)
		if final.Status == http.StatusBadRequest {
			return final
		}
		wait := c.backoff(attempt)
		if status == http.StatusTooManyRequests && retryAfter > 0 {
			wait = retryAfter
		}
		deadline, hasDeadline := ctx.Deadline()
		if !hasDeadline && attempt >= 4 {
			return final
		}
		if hasDeadline && time.Until(deadline) < wait+c.minBackoff {
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
	// Full jitter, at least half the step so retries do not bunch up at zero.
	return d/2 + rand.N(d/2+1)
}

// attempt makes one HTTP request and returns the upstream status, its
// Retry-After, and the start of its body for error messages.
func (c *Client) attempt(ctx context.Context, body []byte) (int, time.Duration, string, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, &bodyReader{b: body})
	if err != nil {
		return 0, 0, "", err
	}
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return &bodyReader{b: body}, nil }
	h := req.Header
	h.Set("Content-Type", ContentType)
	h.Set("Content-Encoding", ContentEncoding)
	h.Set(VersionHeader, RemoteWriteVersion)
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	var msg string
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		msg = strings.TrimSpace(string(b))
	}
	// Drain so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After")), msg, nil
}

// classify maps one failed attempt to the answer for the sender.
func classify(status int, retryAfter time.Duration, msg string, err error) *Error {
	switch {
	case err != nil:
		var ce *auth.CredentialsError
		if errors.As(err, &ce) {
			return &Error{Status: http.StatusServiceUnavailable, Msg: ce.Error()}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Status: http.StatusGatewayTimeout, Msg: "upstream did not answer in time: " + err.Error()}
		}
		return &Error{Status: http.StatusBadGateway, Msg: "cannot reach upstream: " + err.Error()}
	case status == http.StatusTooManyRequests:
		return &Error{Status: http.StatusTooManyRequests, UpstreamStatus: status, RetryAfter: retryAfter,
			Msg: fmt.Sprintf("upstream is rate limiting (429): %s", msg)}
	case status/100 == 5:
		return &Error{Status: http.StatusBadGateway, UpstreamStatus: status,
			Msg: fmt.Sprintf("upstream failed with %d: %s", status, msg)}
	case status == http.StatusRequestTimeout:
		return &Error{Status: http.StatusGatewayTimeout, UpstreamStatus: status,
			Msg: fmt.Sprintf("upstream timed out (408): %s", msg)}
	default:
		// Any other 4xx (and unexpected 1xx/3xx) is about the data or the
		// request: the sender must not retry it.
		return &Error{Status: http.StatusBadRequest, UpstreamStatus: status,
			Msg: fmt.Sprintf("upstream rejected the data with %d: %s", status, msg)}
	}
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
