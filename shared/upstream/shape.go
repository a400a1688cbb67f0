package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/wire"
)

// notV2 is an answer that shows the upstream takes only remote write 1.0:
// a 415 to a 2.0 request, or a 2xx without Written headers.
type notV2 struct{ reason string }

func (e *notV2) Error() string { return "upstream takes only remote write 1.0: " + e.reason }

// reprobeV2 is how long a V2 client that fell back to 1.0 sends 1.0
// before it tries 2.0 again (a 415 may have come from a proxy in front of
// the upstream, for a reason of its own).
const reprobeV2 = 10 * time.Minute

// speaksV2 reports whether the next part goes as 2.0.
func (c *Client) speaksV2() bool {
	if !c.v2 {
		return false
	}
	since := c.v1Since.Load()
	return since == 0 || time.Since(time.Unix(0, since)) >= reprobeV2
}

// sendPart sends part (an encoded remote write 1.0 request) compressed, as
// 2.0 when the client speaks it (speaksV2) and the part holds series (2.0
// has no standalone metadata: a metadata-only part goes as 1.0). When the
// compressed body is over the budget and the caller can halve the part
// (mayHalve), or the upstream answers 413, it reports tooLarge (and, for
// the 413, the error).
func (c *Client) sendPart(ctx context.Context, part []byte, mayHalve bool, bufs *buffers, res *Result) (tooLarge bool, err error) {
	for {
		v2 := c.speaksV2()
		body := part
		if v2 {
			if err := bufs.wr.Unmarshal(part, wire.Limits{}); err != nil {
				return false, &Error{Status: http.StatusBadRequest, Msg: "cannot read the request: " + err.Error()}
			}
			if v2 = len(bufs.wr.Series) > 0; v2 {
				bufs.v2 = bufs.v2enc.Append(bufs.v2[:0], bufs.wr.Series, bufs.wr.Metadata)
				body = bufs.v2
			}
		} else if c.v2 {
			res.v1Parts = true
		}
		bufs.compressed = wire.EncodeSnappy(bufs.compressed, body)
		if len(bufs.compressed) > c.maxBytes && mayHalve {
			return true, nil
		}
		err := c.send(ctx, bufs.compressed, v2, res)
		var nv *notV2
		if errors.As(err, &nv) {
			// The same part again, as 1.0; and so until reprobeV2 has
			// passed.
			c.v1Since.Store(time.Now().UnixNano())
			res.FellBack, res.FallbackReason = true, nv.reason
			if c.observer != nil {
				c.observer.UpstreamFallback(ctx)
			}
			continue
		}
		if v2 && err == nil {
			c.v1Since.Store(0)
		}
		var e *Error
		return errors.As(err, &e) && e.UpstreamStatus == http.StatusRequestEntityTooLarge, err
	}
}

// shapeChunkBytes is how much of a request (whole series, in bytes as
// received) a profile reads at a time, and shapeBatchSamples how many
// samples one conversion may make: a classic histogram multiplies a native
// one's samples by up to its bucket count, so the changed form is built,
// and sent, a batch at a time (a series with more native histogram samples
// than a batch takes is converted in several).
const (
	shapeChunkBytes   = 64 << 10
	shapeBatchSamples = 1 << 14
)

// shapeCost is what changing a request for a profile holds beside it, in
// bytes, reserved in the memory budget of the caller's context
// (groupstore.ReservationFrom) before it starts: the request being built
// (up to four times the byte budget, plus one batch), a chunk, and one
// batch's decoded and converted series (labels shared, a sample and a
// label set header per classic sample).
func shapeCost(maxBytes int) int64 {
	return int64(8*maxBytes) + 2*shapeChunkBytes + shapeBatchSamples*512
}

// shaper changes one request for a profile, batch by batch, and sends the
// changed form whenever it reaches four times the byte budget.
type shaper struct {
	c        *Client
	ctx      context.Context
	raw      []byte
	bufs     *buffers
	send     *buffers // writeParts' buffers
	res      *Result
	sent     bool   // some of the request went upstream
	rejected int    // series the profile cannot convert, dropped
	dropped  [3]int // their float samples, histogram samples, exemplars
	first    string // why the first was dropped
}

// writeShaped sends raw changed as c.profile says. Series are read a chunk
// at a time (a chunk that needs no change is copied as it is) and changed a
// batch at a time into a request that is sent, split as writeParts splits,
// whenever it reaches four times the byte budget; metadata are changed
// first and go with the first request. So memory stays bounded by the
// input and shapeCost. A series the profile cannot convert (a native
// histogram of a schema it does not know, say) is dropped and the rest is
// sent: the answer is then a 400 naming it, with Partial set when the
// others went upstream.
func (c *Client) writeShaped(ctx context.Context, raw []byte, bufs *buffers, res *Result) error {
	if r := groupstore.ReservationFrom(ctx); r != nil {
		if err := r.Grow(ctx, shapeCost(c.maxBytes)); err != nil {
			return err
		}
	}
	var err error
	bufs.shapeSeries, bufs.shapeMetadata, err = wire.Fields(raw, bufs.shapeSeries[:0], bufs.shapeMetadata[:0])
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "cannot read the request: " + err.Error()}
	}
	send := c.getBuffers()
	defer c.bufs.Put(send)
	sh := &shaper{c: c, ctx: ctx, raw: raw, bufs: bufs, send: send, res: res}
	bufs.shaped = bufs.shaped[:0]
	if err := sh.chunk(bufs.shapeMetadata); err != nil {
		return err
	}
	spans := bufs.shapeSeries
	for len(spans) > 0 {
		n, size := 0, 0
		for n < len(spans) && (n == 0 || size+spans[n].End-spans[n].Start <= shapeChunkBytes) {
			size += spans[n].End - spans[n].Start
			n++
		}
		if err := sh.chunk(spans[:n]); err != nil {
			return err
		}
		spans = spans[n:]
	}
	if err := sh.flush(0); err != nil {
		return err
	}
	if sh.rejected > 0 {
		return &Error{Status: http.StatusBadRequest, Partial: sh.sent, Dropped: sh.dropped,
			Msg: fmt.Sprintf("%d series cannot be converted for the upstream's profile and were dropped (the others were relayed); first: %s", sh.rejected, sh.first)}
	}
	return nil
}

// flush sends the changed request built so far once it holds at least
// min bytes (0: whatever it holds).
func (sh *shaper) flush(min int) error {
	b := sh.bufs
	if len(b.shaped) == 0 || len(b.shaped) < min {
		return nil
	}
	err := sh.c.writeParts(sh.ctx, b.shaped, sh.send, sh.res)
	b.shaped = b.shaped[:0]
	if err == nil {
		sh.sent = true
	}
	return err
}

// chunk changes the fields of raw at spans and adds them to the request
// being built.
func (sh *shaper) chunk(spans []wire.Span) error {
	if len(spans) == 0 {
		return nil
	}
	b := sh.bufs
	b.chunk = b.chunk[:0]
	for _, sp := range spans {
		b.chunk = append(b.chunk, sh.raw[sp.Start:sp.End]...)
	}
	need, err := sh.c.profile.Needed(b.chunk)
	if err == nil && !need {
		b.shaped = append(b.shaped, b.chunk...)
		return sh.flush(4 * sh.c.maxBytes)
	}
	if err == nil {
		err = b.wr.Unmarshal(b.chunk, wire.Limits{})
	}
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "cannot read the request: " + err.Error()}
	}
	// Batches of whole series, or of part of one series' histograms, of
	// at most shapeBatchSamples samples once converted.
	per := 1
	if sh.c.profile.ClassicHistograms {
		per = sh.c.profile.MaxClassicBuckets + 2
		if sh.c.profile.MaxClassicBuckets <= 0 {
			per = wire.DefaultMaxClassicBuckets + 2
		}
	}
	one := &b.one
	one.Reset()
	one.Metadata = append(one.Metadata, b.wr.Metadata...)
	size := 0
	for i := range b.wr.Series {
		s := b.wr.Series[i]
		hs := s.Histograms
		for first := true; first || len(hs) > 0; first = false {
			take := len(hs)
			if room := max(1, (shapeBatchSamples-size)/per); take > room {
				take = room
			}
			part := wire.Series{Labels: s.Labels, Histograms: hs[:take]}
			if first {
				part.Samples, part.Exemplars = s.Samples, s.Exemplars
			}
			hs = hs[take:]
			one.Series = append(one.Series, part)
			size += len(part.Samples) + len(part.Exemplars) + take*per
			if size >= shapeBatchSamples {
				if err := sh.convert(one); err != nil {
					return err
				}
				one.Reset()
				size = 0
			}
		}
	}
	return sh.convert(one)
}

// convert changes the batch one, appends it to the request being built,
// and sends that when it is full. A batch the profile refuses is converted
// series by series, and the series it refuses are dropped and counted.
func (sh *shaper) convert(one *wire.WriteRequest) error {
	if len(one.Series) == 0 && len(one.Metadata) == 0 {
		return nil
	}
	b := sh.bufs
	// The batch as it came: a failed ApplyProfile may have changed one in
	// part.
	b.batch = append(b.batch[:0], one.Series...)
	b.batchMetadata = append(b.batchMetadata[:0], one.Metadata...)
	n, err := one.ApplyProfile(sh.c.profile, wire.Limits{})
	if err != nil {
		// Again, one series at a time.
		md := b.batchMetadata
		for i, s := range b.batch {
			var single wire.WriteRequest
			single.Series = []wire.Series{s}
			if i == 0 {
				single.Metadata = md
			}
			n, err := single.ApplyProfile(sh.c.profile, wire.Limits{})
			if err != nil {
				if sh.rejected == 0 {
					sh.first = fmt.Sprintf("%s: %v", wire.FormatLabels(s.Labels, 256), strings.TrimPrefix(err.Error(), "timeseries 0: "))
				}
				sh.rejected++
				sh.dropped[0] += len(s.Samples)
				sh.dropped[1] += len(s.Histograms)
				sh.dropped[2] += len(s.Exemplars)
				continue
			}
			sh.count(n)
			b.shaped = wire.AppendWriteRequest(b.shaped, single.Series, single.Metadata)
		}
		return sh.flush(4 * sh.c.maxBytes)
	}
	sh.count(n)
	b.shaped = wire.AppendWriteRequest(b.shaped, one.Series, one.Metadata)
	return sh.flush(4 * sh.c.maxBytes)
}

func (sh *shaper) count(n wire.ProfileCounts) {
	p := &sh.res.Profile
	p.HelpRewritten += n.HelpRewritten
	p.HistogramsConverted += n.HistogramsConverted
	p.ExemplarsDropped += n.ExemplarsDropped
	p.ClassicSeries += n.ClassicSeries
}
