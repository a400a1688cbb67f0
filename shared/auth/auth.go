// Package auth signs promrelay's outgoing requests: static basic or bearer
// credentials, Alibaba Cloud credentials for Managed Service for Prometheus
// (ARMS), and AWS SigV4 for Amazon Managed Service for Prometheus (AMP).
//
// A Signer is wrapped in a Transport, an http.RoundTripper, so that any
// outgoing request (remote write today, signed queries later) is signed the
// same way. Credentials are cached and refreshed before they expire, with
// one refresh in flight at a time; an answer that says the credentials
// expired makes the Transport refresh them once and re-sign the request
// once (DESIGN.md §4).
package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Signer adds credentials to outgoing requests.
type Signer interface {
	// Sign adds credentials to req, whose complete body is body. An error
	// means no credentials could be had; it is a *CredentialsError.
	Sign(req *http.Request, body []byte) error
	// Expired reports whether the upstream's answer (its status, headers
	// and the start of its body) to the signed request req says the
	// credentials used were stale. When it returns true the signer has dropped them, and the
	// Transport signs the request once more with fresh ones.
	Expired(req *http.Request, status int, header http.Header, body []byte) bool
}

// CredentialsError means credentials could not be obtained (a failed STS
// call, say). The relay answers 503 so that the sender retries.
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string { return "cannot get upstream credentials: " + e.Err.Error() }
func (e *CredentialsError) Unwrap() error { return e.Err }

// Transport is an http.RoundTripper that signs each request with Signer
// before passing it to Base, and re-signs it once when the answer says the
// credentials expired. Requests must be rewindable (GetBody set, as
// http.NewRequest does for in-memory bodies).
type Transport struct {
	Base   http.RoundTripper
	Signer Signer
}

// maxPeek bounds how much of an error answer is read to recognise an
// expired-token message.
const maxPeek = 4 << 10

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	signed, resp, err := t.send(req, body)
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		return resp, err
	}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, maxPeek))
	if !t.Signer.Expired(signed, resp.StatusCode, resp.Header, peek) {
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
	if err := t.Signer.Sign(r, body); err != nil {
		var ce *CredentialsError
		if !errors.As(err, &ce) {
			err = &CredentialsError{Err: err}
		}
		return r, nil, err
	}
	resp, err := t.base().RoundTrip(r)
	return r, resp, err
}

func (t *Transport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
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

// Static signs with fixed credentials: basic auth or a bearer token.
type Static struct {
	Username, Password string
	BearerToken        string
}

// Sign implements Signer.
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
