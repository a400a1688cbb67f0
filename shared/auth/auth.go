// Package auth signs promrelay's outgoing requests: static basic or bearer
// credentials, Alibaba Cloud credentials for Managed Service for Prometheus
// (ARMS), and AWS SigV4 for Amazon Managed Service for Prometheus (AMP).
//
// A Signer is wrapped in a Transport, an http.RoundTripper bound to one
// upstream origin (scheme, host and port), so that any outgoing request to
// that upstream (remote write today, signed queries later) is signed the
// same way and no request to another origin is ever signed: a redirect
// followed by some other http.Client, or a mistaken URL, gets
// ErrOtherOrigin instead of the credentials.
//
// Credentials are cached and refreshed before they expire, with one refresh
// in flight at a time (Cache); an answer that says the credentials expired
// makes the Transport drop them and re-sign the request once. A failure to
// obtain credentials is a *CredentialsError, whose message is the same for
// every cause ("cannot obtain upstream credentials"); the cause, with URLs
// cut to scheme, host and path, is in its Detail for the log.
package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Signer adds credentials to outgoing requests.
type Signer interface {
	// Sign adds credentials to req, whose complete body is body. An error
	// means no credentials could be had; the Transport turns any error
	// into a *CredentialsError.
	Sign(req *http.Request, body []byte) error
	// Expired reports whether the upstream's answer (its status, headers
	// and the start of its body) to the signed request req says the
	// credentials used were stale. When it returns true the signer has
	// dropped them, and the Transport signs the request once more.
	Expired(req *http.Request, status int, header http.Header, body []byte) bool
}

// CredentialsMessage is the message of every *CredentialsError: what the
// relay answers the sender, with status 503, whatever the cause.
const CredentialsMessage = "cannot obtain upstream credentials"

// CredentialsError means credentials could not be obtained (a failed STS
// call, say). The relay answers 503 CredentialsMessage so that the sender
// retries. Error returns CredentialsMessage only; Detail holds the cause
// for the log: the STS error answer (which may name account ids and roles,
// never a secret) with every URL in it cut to scheme, host and path, so
// that signed STS query strings (AccessKeyId, SecurityToken, Signature) do
// not appear.
type CredentialsError struct {
	Detail string
	err    error
}

// NewCredentialsError wraps err, the reason credentials could not be
// obtained. Detail is err's message with URLs redacted (RedactText).
func NewCredentialsError(err error) *CredentialsError {
	return &CredentialsError{Detail: RedactText(err.Error()), err: err}
}

// Error returns CredentialsMessage.
func (e *CredentialsError) Error() string { return CredentialsMessage }

// Unwrap returns the cause, for errors.Is (context.DeadlineExceeded, say).
// Log Detail, not the cause's message.
func (e *CredentialsError) Unwrap() error { return e.err }

// ErrOtherOrigin is returned (wrapped) by Transport.RoundTrip for a request
// whose origin (scheme, host, port) is not the one the Transport is bound
// to: credentials never leave for another host.
var ErrOtherOrigin = errors.New("refusing to sign a request for another origin than the upstream's")

// Transport is an http.RoundTripper that signs each request for its
// upstream's origin with a Signer before passing it to the base transport,
// and re-signs it once when the answer says the credentials expired. A
// request for any other origin is refused with ErrOtherOrigin, unsent.
// Requests must be rewindable: a body implementing BytesBody, or GetBody
// set (as http.NewRequest does for in-memory bodies).
type Transport struct {
	origin                 string // for messages
	scheme, hostname, port string // lower case, port explicit
	base                   http.RoundTripper
	signer                 Signer
}

// NewTransport returns a Transport that signs requests for the origin of
// upstreamURL (an absolute http or https URL) with signer and sends them
// with base. It returns an error for a URL without an http(s) scheme or a
// host, or a nil signer or base.
func NewTransport(upstreamURL string, signer Signer, base http.RoundTripper) (*Transport, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %s is not an absolute http(s) URL", RedactText(upstreamURL))
	}
	if signer == nil || base == nil {
		return nil, errors.New("auth.NewTransport needs a signer and a base transport")
	}
	scheme, hostname, port := originParts(u)
	return &Transport{origin: Origin(u), scheme: scheme, hostname: hostname, port: port, base: base, signer: signer}, nil
}

// Origin returns u's origin as "scheme://host:port", scheme and host in
// lower case and the port explicit (80 for http, 443 for https), as RFC
// 6454 §4 compares origins.
func Origin(u *url.URL) string {
	scheme, hostname, port := originParts(u)
	return scheme + "://" + net.JoinHostPort(hostname, port)
}

func originParts(u *url.URL) (scheme, hostname, port string) {
	scheme, hostname, port = strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	return scheme, hostname, explicitPort(scheme, port)
}

func explicitPort(scheme, port string) string {
	if port == "" {
		switch scheme {
		case "http":
			return "80"
		case "https":
			return "443"
		}
	}
	return port
}

// sameOrigin reports whether u has t's origin, without allocating.
func (t *Transport) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, t.scheme) && strings.EqualFold(u.Hostname(), t.hostname) &&
		explicitPort(t.scheme, u.Port()) == t.port
}

// maxPeek bounds how much of an error answer is read to recognise an
// expired-token message.
const maxPeek = 4 << 10

// RoundTrip implements http.RoundTripper. Errors: ErrOtherOrigin (wrapped)
// for a request to another origin, a *CredentialsError when the signer has
// no credentials, else the base transport's.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.sameOrigin(req.URL) {
		closeBody(req)
		return nil, fmt.Errorf("%w: %s (signing for %s)", ErrOtherOrigin, Origin(req.URL), t.origin)
	}
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	signed, resp, err := t.send(req, body)
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		return resp, err
	}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, maxPeek))
	if !t.signer.Expired(signed, resp.StatusCode, resp.Header, peek) {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	_, resp, err = t.send(req, body)
	return resp, err
}

// send signs a copy of req and sends it; it returns the signed copy too.
func (t *Transport) send(req *http.Request, body []byte) (*http.Request, *http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if err := t.signer.Sign(r, body); err != nil {
		var ce *CredentialsError
		if !errors.As(err, &ce) {
			err = NewCredentialsError(err)
		}
		return r, nil, err
	}
	resp, err := t.base.RoundTrip(r)
	return r, resp, err
}

// closeBody closes a request body, as a RoundTripper must even on error.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// BytesBody is implemented by request bodies that can hand over their
// complete content without a copy (promrelay's upstream client does).
type BytesBody interface {
	Bytes() []byte
}

// readBody returns the request's complete body without consuming the
// original, so that it can be signed and sent more than once.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if bb, ok := req.Body.(BytesBody); ok {
		return bb.Bytes(), nil
	}
	rc := req.Body
	if req.GetBody != nil {
		var err error
		if rc, err = req.GetBody(); err != nil {
			return nil, fmt.Errorf("cannot rewind the request body: %w", err)
		}
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Static signs with fixed credentials: a bearer token if set, else basic
// auth if a user name or password is set, else nothing.
type Static struct {
	Username, Password string
	BearerToken        string
}

// Sign implements Signer; it never fails.
func (s *Static) Sign(req *http.Request, _ []byte) error {
	switch {
	case s.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+s.BearerToken)
	case s.Username != "" || s.Password != "":
		req.SetBasicAuth(s.Username, s.Password)
	}
	return nil
}

// Expired implements Signer: static credentials never refresh.
func (s *Static) Expired(*http.Request, int, http.Header, []byte) bool { return false }
