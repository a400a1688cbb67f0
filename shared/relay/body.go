package relay

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/promrelay/promrelay/shared/wire"
)

// What requests cost in memory, per byte or sample, as TestChargeCoversHeap
// measures it (README, "Memory"). A push of d decoded bytes holds its
// body, the decoded text, the parsed exposition and the converted write
// request with its encoding: pushCost(d). A remote write holds its body,
// the decoded request and the rewritten one, split into upstream parts:
// remoteWriteBytesPerByte per decoded byte.
const (
	pushBytesPerByte        = 3
	pushBytesPerSample      = 512
	minBytesPerSample       = 4 // "a 1\n"
	remoteWriteBytesPerByte = 3
)

// pushCost is the memory a push of decoded bytes costs, at most
// maxSamples samples parsed.
func pushCost(decoded, maxSamples int) int64 {
	samples := min(maxSamples, decoded/minBytesPerSample+1)
	return int64(decoded)*pushBytesPerByte + int64(samples)*pushBytesPerSample
}

// readBody reads r's body into buf (reused), at most max bytes, reserving
// each byte in c before it is read. A larger body is a *wire.TooLargeError.
func readBody(ctx context.Context, r *http.Request, buf []byte, max int, c *charge) ([]byte, error) {
	if r.ContentLength > int64(max) {
		return buf[:0], &wire.TooLargeError{What: "request body", Size: int(r.ContentLength), Limit: max}
	}
	if r.ContentLength > 0 {
		if err := c.grow(ctx, r.ContentLength); err != nil {
			return buf[:0], err
		}
		if cap(buf) < int(r.ContentLength) {
			buf = make([]byte, 0, r.ContentLength)
		}
		return readLimited(r.Body, buf, max, "request body", "cannot read request body", nil)
	}
	// Unknown length (chunked): reserve as the buffer grows.
	charged := 0
	return readLimited(r.Body, buf, max, "request body", "cannot read request body", func(newCap int) error {
		err := c.grow(ctx, int64(newCap-charged))
		charged = newCap
		return err
	})
}

// gunzip decodes a gzip body into dst (reused), at most max bytes,
// reserving each decoded byte's cost (cost of the decoded size so far) in c
// as it is decoded, so that a small body that inflates enormously is
// refused while it inflates.
func gunzip(ctx context.Context, dst, src []byte, max int, c *charge, cost func(decoded int) int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return dst[:0], fmt.Errorf("cannot decode gzip body: %w", err)
	}
	charged := int64(0)
	return readLimited(zr, dst, max, "decompressed body", "cannot decode gzip body", func(newCap int) error {
		want := cost(min(newCap, max+1))
		err := c.grow(ctx, want-charged)
		charged = want
		return err
	})
}

// readChunk is the most readLimited grows its buffer by at a time.
const readChunk = 256 << 10

// readLimited reads all of src into buf[:0], failing with a
// *wire.TooLargeError (what) past max bytes, or with failure: err. Before
// the buffer grows, reserve (when set) is called with the new capacity; its
// error ends the read.
func readLimited(src io.Reader, buf []byte, limit int, what, failure string, reserve func(newCap int) error) ([]byte, error) {
	buf = buf[:0]
	lr := io.LimitReader(src, int64(limit)+1)
	if reserve != nil {
		if err := reserve(cap(buf)); err != nil {
			return buf, err
		}
	}
	for {
		if len(buf) == cap(buf) {
			// Full: grow only if there is more to read (a body of the
			// announced length fits its buffer exactly).
			var probe [1]byte
			n, err := lr.Read(probe[:])
			if n == 0 {
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return buf, fmt.Errorf("%s: %w", failure, err)
				}
				continue
			}
			newCap := max(2*cap(buf), 4096)
			newCap = min(newCap, cap(buf)+readChunk, limit+1)
			if reserve != nil {
				if err := reserve(newCap); err != nil {
					return buf, err
				}
			}
			nb := make([]byte, len(buf), newCap)
			copy(nb, buf)
			buf = append(nb, probe[0])
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return buf, fmt.Errorf("%s: %w", failure, err)
		}
		if len(buf) > limit {
			break
		}
	}
	if len(buf) > limit {
		return buf, &wire.TooLargeError{What: what, Size: len(buf), Limit: limit}
	}
	return buf, nil
}

// contentEncoding returns the request's Content-Encoding, lower-cased.
func contentEncoding(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
}
