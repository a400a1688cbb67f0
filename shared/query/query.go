// Package query is the upstream side of promrelay's read path: it sends
// PromQL HTTP API requests (Prometheus' /api/v1/query, query_range,
// series, labels, label/<name>/values, metadata, query_exemplars) and
// remote-read requests to the upstream, signed like writes (auth's
// Transport: SigV4 service aps for Amazon Managed Service for Prometheus,
// Alibaba Cloud credentials for ARMS), and passes the upstream's answer
// back: streamed where the platform streams (the server and Function
// Compute's custom runtime), buffered up to the platform's response limit
// where it does not (Lambda, Function Compute's built-in runtime).
//
// The HTTP side (routes, scopes, bounded bodies, tenant enforcement) is
// shared/relay's; enforcing a tenant's labels onto PromQL is
// shared/query/enforce's, so that the write-only builds link no parser.
package query

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/promrelay/promrelay/shared/auth"
)

// Config configures an Upstream. At least one of QueryURL and
// RemoteReadURL is required.
type Config struct {
	// QueryURL is the base of the upstream's Prometheus HTTP API, the part
	// before /api/v1/ ("" for none).
	QueryURL string
	// RemoteReadURL is the upstream's full remote-read URL ("" for none).
	RemoteReadURL string
	// Signer signs every request (nil: none); each URL's origin gets its
	// own auth.Transport, so credentials never leave for another host.
	Signer auth.Signer
	// Transport is the base transport (nil: http.DefaultTransport's
	// settings are not used; pass upstream.NewTransport()).
	Transport http.RoundTripper
	// UserAgent is sent upstream.
	UserAgent string
}

// Upstream is one upstream's read endpoints. It is safe for concurrent
// use.
type Upstream struct {
	api, read             *url.URL
	apiClient, readClient *http.Client
	userAgent             string
	secrets               []string // what must never appear in an answer
}

// New returns the Upstream of cfg. Errors: no URL, a URL that is not
// absolute http(s), no Transport.
func New(cfg Config) (*Upstream, error) {
	if cfg.QueryURL == "" && cfg.RemoteReadURL == "" {
		return nil, errors.New("query: QueryURL or RemoteReadURL is required")
	}
	if cfg.Transport == nil {
		return nil, errors.New("query: Config.Transport is required")
	}
	u := &Upstream{userAgent: cfg.UserAgent}
	for _, e := range []struct {
		raw    string
		url    **url.URL
		client **http.Client
	}{{cfg.QueryURL, &u.api, &u.apiClient}, {cfg.RemoteReadURL, &u.read, &u.readClient}} {
		if e.raw == "" {
			continue
		}
		parsed, err := url.Parse(e.raw)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return nil, fmt.Errorf("read URL %s is not an absolute http(s) URL", auth.RedactText(e.raw))
		}
		tr := cfg.Transport
		if cfg.Signer != nil {
			if tr, err = auth.NewTransport(e.raw, cfg.Signer, tr); err != nil {
				return nil, err
			}
		}
		*e.url = parsed
		*e.client = &http.Client{
			Transport: tr,
			// Never followed: a redirect would take the credentials along,
			// and its Location would show the upstream's URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		u.secrets = append(u.secrets, strings.TrimRight(e.raw, "/"), parsed.Host)
		if parsed.Path != "" && parsed.Path != "/" {
			u.secrets = append(u.secrets, strings.TrimRight(parsed.Path, "/"))
		}
	}
	return u, nil
}

// HasAPI reports whether the upstream has a PromQL HTTP API URL.
func (u *Upstream) HasAPI() bool { return u != nil && u.api != nil }

// HasRemoteRead reports whether the upstream has a remote-read URL.
func (u *Upstream) HasRemoteRead() bool { return u != nil && u.read != nil }

// Error is a read the relay answers itself: the upstream could not be
// reached, had no credentials, redirected, refused the relay's
// credentials, or answered more than the platform can return. Msg is for
// the reader and never holds the upstream's URL; Detail is for the log.
type Error struct {
	Status         int // 502, 503, 504, or 499 when the reader went away
	UpstreamStatus int // the upstream's status, 0 when it gave none
	Msg, Detail    string
}

func (e *Error) Error() string { return e.Msg }

// forwarded are the reader's headers passed upstream: content negotiation
// only (the reader's Authorization is promrelay's, never the upstream's).
var forwarded = []string{"Accept", "Accept-Encoding", "Content-Type", "Content-Encoding", "X-Prometheus-Remote-Read-Version"}

// API sends one PromQL HTTP API request: method GET (params in the query
// string) or POST (params as the form body, which is final before it is
// signed), to QueryURL + "/api/v1/" + endpoint, where endpoint is already
// path-escaped ("query", "label/job/values"). SigV4 canonicalises the query
// string and the request is sent exactly as signed. Errors are *Error.
func (u *Upstream) API(ctx context.Context, method, endpoint string, params url.Values, h http.Header) (*http.Response, error) {
	target := *u.api
	target.RawPath = strings.TrimRight(u.api.EscapedPath(), "/") + "/api/v1/" + endpoint
	target.Path, _ = url.PathUnescape(target.RawPath)
	var body io.Reader
	encoded := params.Encode()
	if method == http.MethodPost {
		body = strings.NewReader(encoded)
	} else {
		target.RawQuery = encoded
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Msg: "cannot build the upstream request", Detail: err.Error()}
	}
	u.header(req, h)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req.Header.Del("Content-Type")
		req.Header.Del("Content-Encoding")
	}
	return u.do(u.apiClient, req)
}

// RemoteRead sends one remote-read request, body being its snappy block of
// a prometheus.ReadRequest. Errors are *Error.
func (u *Upstream) RemoteRead(ctx context.Context, body []byte, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.read.String(), bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Msg: "cannot build the upstream request", Detail: err.Error()}
	}
	u.header(req, h)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	if req.Header.Get("X-Prometheus-Remote-Read-Version") == "" {
		req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	}
	return u.do(u.readClient, req)
}

func (u *Upstream) header(req *http.Request, h http.Header) {
	for _, k := range forwarded {
		if v := h.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	if u.userAgent != "" {
		req.Header.Set("User-Agent", u.userAgent)
	}
}

// do sends req; a failure is an *Error without the URL (net/http's
// errors quote it).
func (u *Upstream) do(c *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := c.Do(req)
	if err == nil {
		return resp, nil
	}
	var ce *auth.CredentialsError
	switch {
	case errors.As(err, &ce):
		return nil, &Error{Status: http.StatusServiceUnavailable, Msg: auth.CredentialsMessage, Detail: ce.Detail}
	case errors.Is(err, context.DeadlineExceeded):
		return nil, &Error{Status: http.StatusGatewayTimeout, Msg: "the upstream did not answer within the request's deadline (PROMRELAY_REQUEST_TIMEOUT)"}
	case errors.Is(err, context.Canceled):
		return nil, &Error{Status: 499, Msg: "client closed the request"}
	}
	return nil, &Error{Status: http.StatusBadGateway, Msg: "cannot reach the upstream", Detail: u.scrub(auth.RedactText(err.Error()))}
}

// scrub replaces the upstream's URLs and hosts in text.
func (u *Upstream) scrub(text string) string {
	for _, s := range u.secrets {
		text = strings.ReplaceAll(text, s, "<upstream>")
	}
	return text
}

// passed are the upstream's response headers passed to the reader.
var passed = []string{"Content-Type", "Content-Encoding", "Cache-Control", "Retry-After", "Vary"}

// setHeaders copies the passed headers of resp to w.
func setHeaders(w http.ResponseWriter, resp *http.Response) {
	for _, k := range passed {
		if v := resp.Header.Values(k); len(v) > 0 {
			w.Header()[k] = v
		}
	}
}

// maxErrorBody bounds the error answer read (and scrubbed) before it is
// passed on.
const maxErrorBody = 64 << 10

// CopyOptions say how an answer reaches the reader.
type CopyOptions struct {
	// Limit is the buffered platform's response limit in bytes, as the
	// platform counts it (after base64 for a binary body, after JSON
	// escaping for a text one); 0 streams the answer, holding one Buffer.
	Limit int
	// Platform names the platform of Limit, for the 502 that says so.
	Platform string
	// Buffer is the copy buffer; required.
	Buffer []byte
}

// StreamError is an answer cut off after its status was sent: the reader
// must see a broken response, not a short one that looks whole (the
// relay aborts the connection).
type StreamError struct{ Err error }

func (e *StreamError) Error() string { return "upstream answer cut off: " + e.Err.Error() }
func (e *StreamError) Unwrap() error { return e.Err }

// Copy passes resp to w and closes its body. The upstream's status and
// body pass through, the API's error JSON included (an error body is
// first read, at most 64 KiB, and the upstream's URL removed from it);
// headers pass through from a short allow-list. It returns the bytes
// written, an *Error the caller answers instead (a redirect, 401/403/407:
// the upstream refused the relay's credentials, an answer over
// o.Limit), or a *StreamError once the answer has started.
func (u *Upstream) Copy(w http.ResponseWriter, resp *http.Response, o CopyOptions) (int64, error) {
	defer resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 300 && s < 400:
		return 0, &Error{Status: http.StatusBadGateway, UpstreamStatus: s, Msg: fmt.Sprintf("the upstream answered a redirect (status %d), which the relay does not follow", s)}
	case s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusProxyAuthRequired:
		peek, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, &Error{Status: http.StatusBadGateway, UpstreamStatus: s,
			Msg:    fmt.Sprintf("the upstream refused the relay's credentials (status %d): check the read permissions of the relay's role", s),
			Detail: u.scrub(string(peek))}
	}
	if resp.StatusCode >= 400 {
		b := u.errorBody(resp)
		setHeaders(w, resp)
		// Passed on decoded, whatever the reader accepted: it was read
		// (and cut, and scrubbed) as text.
		w.Header().Del("Content-Encoding")
		w.WriteHeader(resp.StatusCode)
		n, _ := w.Write(b)
		return int64(n), nil
	}
	if o.Limit > 0 {
		return u.copyBuffered(w, resp, o)
	}
	setHeaders(w, resp)
	w.WriteHeader(resp.StatusCode)
	// No flush per chunk: the server's own buffer goes out whenever it
	// fills, so memory stays at one Buffer, and a flush per upstream read
	// (which chunked answers make small) would cost a write each.
	var n int64
	for {
		m, err := resp.Body.Read(o.Buffer)
		if m > 0 {
			if _, werr := w.Write(o.Buffer[:m]); werr != nil {
				return n, &StreamError{Err: werr}
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, &StreamError{Err: errors.New(u.scrub(err.Error()))}
		}
	}
}

// errorBody is an error answer's body, decoded when gzip-encoded, cut at
// maxErrorBody and scrubbed of the upstream's URL; an encoding it cannot
// decode gives a short text instead.
func (u *Upstream) errorBody(resp *http.Response) []byte {
	var r io.Reader = resp.Body
	switch enc := strings.ToLower(resp.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return []byte("the upstream's error answer could not be decoded\n")
		}
		r = zr
	default:
		return []byte(fmt.Sprintf("the upstream answered status %d (body in %s encoding not shown)\n", resp.StatusCode, enc))
	}
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
	return []byte(u.scrub(string(b)))
}

// copyBuffered reads the whole answer, refusing it with 502 once it is
// over o.Limit as the platform counts it.
func (u *Upstream) copyBuffered(w http.ResponseWriter, resp *http.Response, o CopyOptions) (int64, error) {
	binary := !textual(resp.Header)
	var buf bytes.Buffer
	size := 0
	for {
		m, err := resp.Body.Read(o.Buffer)
		if m > 0 {
			buf.Write(o.Buffer[:m])
			size += EncodedSize(o.Buffer[:m], binary)
			if size > o.Limit {
				return 0, &Error{Status: http.StatusBadGateway, UpstreamStatus: resp.StatusCode,
					Msg: fmt.Sprintf("the upstream's answer is larger than %s's response limit of %d bytes: narrow the query (a shorter range, a larger step, fewer series), or read through the server or Function Compute's custom runtime, which stream", o.Platform, o.Limit)}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, &Error{Status: http.StatusBadGateway, UpstreamStatus: resp.StatusCode, Msg: "the upstream's answer was cut off", Detail: u.scrub(err.Error())}
		}
	}
	setHeaders(w, resp)
	w.WriteHeader(resp.StatusCode)
	// The platform's recorder keeps what it is given; a failure here has
	// nobody left to answer.
	n, _ := w.Write(buf.Bytes())
	return int64(n), nil
}

// textual reports whether a body with these headers travels in a
// platform's JSON response as a string rather than base64 (the rule of
// shared/platform: text/* or application/json, not content-encoded).
func textual(h http.Header) bool {
	if h.Get("Content-Encoding") != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "" || strings.HasPrefix(mt, "text/") || mt == "application/json"
}

// EncodedSize is the size of b inside a platform's JSON response event,
// in bytes: base64 for a binary body (4 per 3 bytes, rounded up; chunks
// are summed, so it overestimates by at most 2 bytes per chunk), else b
// as a JSON string as encoding/json writes it (quote, backslash and
// control bytes escaped; <, > and & as \u003c, which aws-lambda-go's
// json.Marshal does).
func EncodedSize(b []byte, binary bool) int {
	if binary {
		return (len(b) + 2) / 3 * 4
	}
	n := len(b)
	for _, c := range b {
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 5
		}
	}
	return n
}
