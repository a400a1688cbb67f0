package upstream

import (
	"context"
	"errors"
	"net/http"

	"github.com/promrelay/promrelay/shared/wire"
)

// errNotV2 is an answer that shows the upstream takes only remote write
// 1.0: a 415 to a 2.0 request, or a 2xx without Written headers.
var errNotV2 = errors.New("upstream takes only remote write 1.0")

// sendPart sends part (an encoded remote write 1.0 request) compressed, as
// 2.0 when the client speaks it. When the compressed body is over the
// budget and the caller can halve the part (mayHalve), or the upstream
// answers 413, it reports tooLarge (and, for the 413, the error).
func (c *Client) sendPart(ctx context.Context, part []byte, mayHalve bool, bufs *buffers, res *Result) (tooLarge bool, err error) {
	for {
		v2 := c.v2 && !c.v1Only.Load()
		body := part
		if v2 {
			if err := bufs.wr.Unmarshal(part, wire.Limits{}); err != nil {
				return false, &Error{Status: http.StatusBadRequest, Msg: "cannot read the request: " + err.Error()}
			}
			bufs.v2 = bufs.v2enc.Append(bufs.v2[:0], bufs.wr.Series, bufs.wr.Metadata)
			body = bufs.v2
		}
		bufs.compressed = wire.EncodeSnappy(bufs.compressed, body)
		if len(bufs.compressed) > c.maxBytes && mayHalve {
			return true, nil
		}
		err := c.send(ctx, bufs.compressed, v2, res)
		if errors.Is(err, errNotV2) {
			// The same part again, as 1.0; and from now on.
			c.v1Only.Store(true)
			res.FellBack = true
			continue
		}
		var e *Error
		return errors.As(err, &e) && e.UpstreamStatus == http.StatusRequestEntityTooLarge, err
	}
}

// shapeChunkBytes is how much of a request (whole series, in bytes as
// received) a profile changes at a time: a classic histogram multiplies a
// native one's bytes by up to its bucket count, so the changed form is
// built, and sent, a chunk at a time.
const shapeChunkBytes = 64 << 10

// writeShaped sends raw changed as c.profile says. Series are changed a
// chunk at a time (a chunk that needs no change is copied as it is) into a
// request that is sent, split as writeParts splits, whenever it reaches
// four times the byte budget; metadata are changed first and go with the
// first request. So memory stays bounded by the input, one built request
// and one changed chunk.
func (c *Client) writeShaped(ctx context.Context, raw []byte, bufs *buffers, res *Result) error {
	var err error
	bufs.shapeSeries, bufs.shapeMetadata, err = wire.Fields(raw, bufs.shapeSeries[:0], bufs.shapeMetadata[:0])
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "cannot read the request: " + err.Error()}
	}
	send := c.getBuffers()
	defer c.bufs.Put(send)
	bufs.shaped = bufs.shaped[:0]
	if bufs.shaped, err = c.shapeChunk(bufs.shaped, raw, bufs.shapeMetadata, bufs, res); err != nil {
		return err
	}
	spans := bufs.shapeSeries
	for len(spans) > 0 {
		n, size := 0, 0
		for n < len(spans) && (n == 0 || size+spans[n].End-spans[n].Start <= shapeChunkBytes) {
			size += spans[n].End - spans[n].Start
			n++
		}
		if bufs.shaped, err = c.shapeChunk(bufs.shaped, raw, spans[:n], bufs, res); err != nil {
			return err
		}
		spans = spans[n:]
		if len(bufs.shaped) >= 4*c.maxBytes || len(spans) == 0 {
			if err := c.writeParts(ctx, bufs.shaped, send, res); err != nil {
				return err
			}
			bufs.shaped = bufs.shaped[:0]
		}
	}
	if len(bufs.shaped) > 0 {
		// Metadata only.
		return c.writeParts(ctx, bufs.shaped, send, res)
	}
	return nil
}

// shapeChunk appends to dst the fields of raw at spans, changed as
// c.profile says, and adds what changed to res.
func (c *Client) shapeChunk(dst, raw []byte, spans []wire.Span, bufs *buffers, res *Result) ([]byte, error) {
	if len(spans) == 0 {
		return dst, nil
	}
	bufs.chunk = bufs.chunk[:0]
	for _, sp := range spans {
		bufs.chunk = append(bufs.chunk, raw[sp.Start:sp.End]...)
	}
	need, err := c.profile.Needed(bufs.chunk)
	if err == nil && !need {
		return append(dst, bufs.chunk...), nil
	}
	if err == nil {
		err = bufs.wr.Unmarshal(bufs.chunk, wire.Limits{})
	}
	var n wire.ProfileCounts
	if err == nil {
		n, err = bufs.wr.ApplyProfile(c.profile, wire.Limits{})
	}
	if err != nil {
		return dst, &Error{Status: http.StatusBadRequest, Msg: "cannot change the request for the upstream: " + err.Error()}
	}
	res.Profile.HelpRewritten += n.HelpRewritten
	res.Profile.HistogramsConverted += n.HistogramsConverted
	res.Profile.ExemplarsDropped += n.ExemplarsDropped
	res.Profile.ClassicSeries += n.ClassicSeries
	return wire.AppendWriteRequest(dst, bufs.wr.Series, bufs.wr.Metadata), nil
}
