package relay

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/promrelay/promrelay/shared/wire"
)

// readBody reads r's body into buf (reused), at most max bytes. A larger
// body is a *wire.TooLargeError.
func readBody(r *http.Request, buf []byte, max int) ([]byte, error) {
	if r.ContentLength > int64(max) {
		return buf[:0], &wire.TooLargeError{What: "request body", Size: int(r.ContentLength), Limit: max}
	}
	if r.ContentLength > 0 && cap(buf) < int(r.ContentLength) {
		buf = make([]byte, 0, r.ContentLength)
	}
	return readLimited(r.Body, buf, max, "request body", "cannot read request body")
}

// gunzip decodes a gzip body into dst (reused), at most max bytes.
func gunzip(dst, src []byte, max int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return dst[:0], fmt.Errorf("cannot decode gzip body: %w", err)
	}
	return readLimited(zr, dst, max, "decompressed body", "cannot decode gzip body")
}

// readLimited reads all of src into buf[:0], failing with a
// *wire.TooLargeError (what) past max bytes, or with failure: err.
func readLimited(src io.Reader, buf []byte, max int, what, failure string) ([]byte, error) {
	buf = buf[:0]
	lr := io.LimitReader(src, int64(max)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return buf, fmt.Errorf("%s: %w", failure, err)
		}
	}
	if len(buf) > max {
		return buf, &wire.TooLargeError{What: what, Size: len(buf), Limit: max}
	}
	return buf, nil
}

// bodyStatus maps a body-reading error to its status: 413 for size limits,
// 400 otherwise.
func bodyStatus(err error) int {
	var tl *wire.TooLargeError
	if errors.As(err, &tl) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// contentEncoding returns the request's Content-Encoding, lower-cased.
func contentEncoding(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
}
