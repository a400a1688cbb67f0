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

// What requests cost in memory, as TestChargeCoversHeap measures it (peak
// heap above the heap before the request, garbage not yet collected
// included; README "Security"). A push is charged in two steps. Before it
// is parsed: the decoded text and the parsed exposition, measured at most
// 24.3 bytes per decoded byte (one-line series, gzip), and bounded by the
// sample limit whatever the input (a metric and its family cost at most
// pushParseBytesPerSample); charged pushBytesPerByte per decoded byte, at
// most the decoded bytes plus the sample limit's worth. After it is parsed,
// per sample found: the write request, its encoding and the upstream's
// parts, measured about 1.3 KB per sample for one-line series and 1.6 KB
// for a node_exporter-like exposition; charged pushBytesPerSample. A
// remote write holds its body, the decoded request and the rewritten one,
// split into upstream parts: measured 2.4 bytes per decoded byte here, 3.6
// for an 8.6 MB batch (BenchmarkRelayPeakHeap in shared/wire/bench), charged
// remoteWriteBytesPerByte.
const (
	pushBytesPerByte        = 32
	pushParseBytesPerSample = 1024
	pushBytesPerSample      = 2048
	remoteWriteBytesPerByte = 4
	// remoteWrite2BytesPerByte covers a 2.0 request's decoded label store
	// (a Label is 32 bytes; its two refs can take 2 bytes of the body).
	remoteWrite2BytesPerByte = 16
)

// pushCost is what a push of decoded bytes costs before it is parsed, when
// its parse stops at maxSamples.
func pushCost(decoded, maxSamples int) int64 {
	return min(int64(decoded)*pushBytesPerByte, int64(decoded)+int64(maxSamples)*pushParseBytesPerSample)
}

// readBody reads r's body into buf (reused), at most max bytes, reserving
// each byte in c before it is read. A larger body is a *wire.TooLargeError.
func readBody(ctx context.Context, r *http.Request, buf []byte, max int, c *Reservation) ([]byte, error) {
	if r.ContentLength > int64(max) {
		return buf[:0], &wire.TooLargeError{What: "request body", Size: int(r.ContentLength), Limit: max}
	}
	if r.ContentLength > 0 {
		if err := c.Grow(ctx, r.ContentLength); err != nil {
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
		err := c.Grow(ctx, int64(newCap-charged))
		charged = newCap
		return err
	})
}

// gunzip decodes a gzip body into dst (reused), at most max bytes,
// reserving each decoded byte's cost (cost of the decoded size so far) in c
// as it is decoded, so that a small body that inflates enormously is
// refused while it inflates.
func gunzip(ctx context.Context, dst, src []byte, max int, c *Reservation, cost func(decoded int) int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return dst[:0], fmt.Errorf("cannot decode gzip body: %w", err)
	}
	charged := int64(0)
	return readLimited(zr, dst, max, "decompressed body", "cannot decode gzip body", func(newCap int) error {
		want := cost(min(newCap, max+1))
		err := c.Grow(ctx, want-charged)
		charged = want
		return err
	})
}

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
			newCap := min(max(2*cap(buf), 4096), limit+1)
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

// LargestCosts returns what the largest push and the largest remote write
// that o's limits allow would reserve in the budget, in bytes: a request
// above the budget's size gets 413, whatever else runs.
func (o Options) LargestCosts() (push, remoteWrite int64) {
	push = int64(min(o.MaxBodyBytes, o.MaxPushDecodedBytes)) + pushCost(o.MaxPushDecodedBytes, o.Limits.MaxSamples) +
		int64(o.Limits.MaxSamples)*pushBytesPerSample
	remoteWrite = int64(o.MaxBodyBytes) + int64(o.MaxDecodedBytes)*remoteWriteBytesPerByte
	return push, remoteWrite
}
