package relay

import (
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
	buf = buf[:0]
	if r.ContentLength > int64(max) {
		return buf, &wire.TooLargeError{What: "request body", Size: int(r.ContentLength), Limit: max}
	}
	if r.ContentLength > 0 && cap(buf) < int(r.ContentLength) {
		buf = make([]byte, 0, r.ContentLength)
	}
	lr := io.LimitReader(r.Body, int64(max)+1)
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
			return buf, fmt.Errorf("cannot read request body: %w", err)
		}
	}
	if len(buf) > max {
		return buf, &wire.TooLargeError{What: "request body", Size: len(buf), Limit: max}
	}
	return buf, nil
}

// gunzip decodes a gzip body into dst (reused), at most max bytes.
func gunzip(dst, src []byte, max int) ([]byte, error) {
	zr, err := gzip.NewReader(&sliceReader{b: src})
	if err != nil {
		return dst[:0], fmt.Errorf("cannot decode gzip body: %w", err)
	}
	dst = dst[:0]
	lr := io.LimitReader(zr, int64(max)+1)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return dst, fmt.Errorf("cannot decode gzip body: %w", err)
		}
	}
	if len(dst) > max {
		return dst, &wire.TooLargeError{What: "decompressed body", Size: len(dst), Limit: max}
	}
	return dst, nil
}

type sliceReader struct {
	b []byte
	i int
}

func (r *sliceReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
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
