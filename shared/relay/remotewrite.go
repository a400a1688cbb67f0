package relay

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/golang/snappy"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// serveRemoteWrite handles POST /api/v1/write: remote write 1.0 or 2.0, snappy
// block-compressed protobuf. Valid series are relayed even when others are
// invalid; the answer is then 400 naming the first invalid series, so the
// sender drops only what could never be stored.
func (h *Handler) serveRemoteWrite(ctx context.Context, r *http.Request, id inbound.Identity) reply {
	v2, msg := checkRemoteWriteContentType(r.Header.Get("Content-Type"))
	if msg != "" {
		return reply{status: http.StatusUnsupportedMediaType, msg: msg}
	}
	if enc := contentEncoding(r); enc != "" && enc != "snappy" {
		return reply{status: http.StatusUnsupportedMediaType, msg: "unsupported Content-Encoding " + enc + "; remote write uses snappy"}
	}
	return h.withBody(ctx, r, func(st *requestState, c *Reservation) reply {
		if rep := h.unsnappy(ctx, st, c); rep.status != 0 {
			return rep
		}
		if v2 {
			return h.relayRemoteWriteV2(ctx, st, c, id)
		}
		return h.relayRemoteWrite(ctx, st, st.decoded, id)
	})
}

// unsnappy decodes st's body into st.decoded, its cost reserved first.
func (h *Handler) unsnappy(ctx context.Context, st *requestState, c *Reservation) reply {
	// Snappy's block format starts with the decoded length: reserve its
	// cost before decoding.
	n, err := snappy.DecodedLen(st.body)
	if err != nil {
		return reply{status: http.StatusBadRequest, msg: "cannot decode snappy block: " + err.Error()}
	}
	if n > h.o.MaxDecodedBytes {
		return errorReply(&wire.TooLargeError{What: "decompressed body", Size: n, Limit: h.o.MaxDecodedBytes})
	}
	if err := c.Grow(ctx, int64(n)*remoteWriteBytesPerByte); err != nil {
		return errorReply(err)
	}
	st.decoded, err = wire.DecodeSnappy(st.decoded, st.body, h.o.MaxDecodedBytes)
	if err != nil {
		return bodyReply(err)
	}
	return reply{}
}

// relayRemoteWriteV2 relays a remote write 2.0 request (spec 2.0-rc.4)
// whose decoded body st holds: decoded by the codec into 1.0 series and
// metadata (created timestamps dropped), re-encoded as 1.0, then relayed
// as any 1.0 request. The answer carries the
// X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written counts
// of what the upstream took (0 when it took nothing).
func (h *Handler) relayRemoteWriteV2(ctx context.Context, st *requestState, c *Reservation, id inbound.Identity) reply {
	// 2.0 refers to each label string by a short number: the decoded
	// series' label store holds up to remoteWrite2BytesPerByte bytes per
	// decoded byte.
	if err := c.Grow(ctx, int64(len(st.decoded))*remoteWrite2BytesPerByte); err != nil {
		return withWritten(errorReply(err), 0, 0, 0)
	}
	if _, err := st.wr.UnmarshalV2(st.decoded, h.o.Limits); err != nil {
		rep := decodeReply(err)
		if rep.status == http.StatusBadRequest {
			rep.msg = "cannot decode remote-write 2.0 request: " + rep.msg
		}
		return withWritten(rep, 0, 0, 0)
	}
	if len(st.wr.Series) == 0 && len(st.decoded) > 0 {
		// Bytes but no series: most likely a 1.0 body (its fields are
		// 2.0's reserved 1 to 3) sent with the 2.0 Content-Type.
		return withWritten(reply{status: http.StatusBadRequest, msg: "the remote-write 2.0 request holds no time series (a 1.0 body sent as io.prometheus.write.v2.Request?)"}, 0, 0, 0)
	}
	// Its 1.0 encoding writes every label string out again, once per
	// series that refers to it: bounded like a 1.0 body, and reserved,
	// before it is built.
	size := encodedV1Size(&st.wr)
	if size > h.o.MaxDecodedBytes {
		return withWritten(errorReply(&wire.TooLargeError{What: "decompressed body (as remote write 1.0)", Size: size, Limit: h.o.MaxDecodedBytes}), 0, 0, 0)
	}
	if err := c.Grow(ctx, int64(size)*remoteWriteBytesPerByte); err != nil {
		return withWritten(errorReply(err), 0, 0, 0)
	}
	st.body = wire.AppendWriteRequest(st.body[:0], st.wr.Series, st.wr.Metadata)
	st.res = upstream.Result{}
	rep := h.relayRemoteWrite(ctx, st, st.body, id)
	if rep.status/100 == 2 || (rep.status == http.StatusBadRequest && st.rw.Series > 0 && st.written) {
		samples, histograms, exemplars := writtenCounts(st)
		return withWritten(rep, samples, histograms, exemplars)
	}
	return withWritten(rep, 0, 0, 0)
}

// writtenCounts is what the upstream took of st's rewritten request: what
// a 2.0 upstream said it wrote; else what was sent, less the native
// histograms a profile sent as classic ones (written as float samples of
// other series) and the exemplars it dropped.
func writtenCounts(st *requestState) (samples, histograms, exemplars int) {
	if w, ok := st.res.UpstreamWritten(); ok {
		return w.Samples, w.Histograms, w.Exemplars
	}
	p := st.res.Profile
	return st.rw.FloatSamples, max(0, st.rw.HistogramSamples-p.HistogramsConverted), max(0, st.rw.Exemplars-p.ExemplarsDropped)
}

// encodedV1Size is an upper bound of wr's remote write 1.0 encoding, in
// bytes (each field's tag and length counted at their largest).
func encodedV1Size(wr *wire.WriteRequest) int {
	n := 0
	for _, s := range wr.Series {
		n += 12
		for _, l := range s.Labels {
			n += len(l.Name) + len(l.Value) + 18
		}
		n += 24 * len(s.Samples)
		for _, b := range s.Histograms {
			n += len(b) + 6
		}
		for _, b := range s.Exemplars {
			n += len(b) + 6
		}
	}
	for _, m := range wr.Metadata {
		n += len(m.FamilyName) + len(m.Help) + len(m.Unit) + 32
	}
	return n
}

// withWritten adds remote write 2.0's Written headers to rep.
func withWritten(rep reply, samples, histograms, exemplars int) reply {
	rep.header = http.Header{}
	rep.header.Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(samples))
	rep.header.Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.Itoa(histograms))
	rep.header.Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.Itoa(exemplars))
	return rep
}

// relayRemoteWrite validates, rewrites and relays the remote write 1.0
// request src.
func (h *Handler) relayRemoteWrite(ctx context.Context, st *requestState, src []byte, id inbound.Identity) reply {
	var err error
	st.written = false
	// Validate, set the external and tenant labels and re-encode at the
	// wire level; invalid series are dropped and counted.
	st.out, err = st.rw.Rewrite(st.out[:0], src, h.overrides(st, id), h.o.Limits)
	if err != nil {
		if le := (*wire.LimitError)(nil); errors.As(err, &le) {
			return decodeReply(err)
		}
		return reply{status: http.StatusBadRequest, msg: "cannot decode remote-write request: " + err.Error()}
	}
	addIn(ctx, counts{st.rw.FloatSamplesIn, st.rw.HistogramSamplesIn, st.rw.Exemplars})
	if len(st.out) > 0 {
		res, err := h.o.Upstreams(ownerOf(id).Tenant).WriteEncoded(ctx, st.out)
		record(ctx, res, err, counts{st.rw.FloatSamples, st.rw.HistogramSamples, st.rw.Exemplars})
		st.res = res
		if err != nil {
			if ue := (*upstream.Error)(nil); errors.As(err, &ue) && ue.Partial {
				// The upstream's profile dropped a series it cannot
				// convert; the others were written.
				st.written = true
			}
			return errorReply(err)
		}
		st.written = true
	}
	if st.rw.FirstInvalid != nil {
		return reply{status: http.StatusBadRequest,
			msg: fmt.Sprintf("%d of %d series rejected, the others were relayed; first: %v", st.rw.Invalid, st.rw.Invalid+st.rw.Series, st.rw.FirstInvalid)}
	}
	return reply{status: http.StatusNoContent}
}

// overrides returns the external labels with the writer's tenant labels
// merged in (the tenant's win), in st's memory: the one override set the
// Rewriter splices into every series.
func (h *Handler) overrides(st *requestState, id inbound.Identity) []wire.Label {
	if len(id.Labels) == 0 {
		return h.o.ExternalLabels
	}
	st.set = wire.MergeOverrides(st.set[:0], h.o.ExternalLabels, id.Labels)
	return st.set
}

// checkRemoteWriteContentType tells the remote-write version of a
// Content-Type (spec 2.0-rc.4, "Content-Type"): 1.0 for application/x-protobuf
// without a proto parameter or with proto=prometheus.WriteRequest, and for
// a missing header; 2.0 for proto=io.prometheus.write.v2.Request; else why
// it cannot be relayed (a 415).
func checkRemoteWriteContentType(ct string) (v2 bool, msg string) {
	if ct == "" {
		return false, ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, fmt.Sprintf("cannot parse Content-Type %q: %v", ct, err)
	}
	if mt != "application/x-protobuf" {
		return false, fmt.Sprintf("unsupported Content-Type %q; remote write uses application/x-protobuf", ct)
	}
	switch p := params["proto"]; p {
	case "", "prometheus.WriteRequest":
		return false, ""
	case "io.prometheus.write.v2.Request":
		return true, ""
	default:
		return false, fmt.Sprintf("unsupported remote-write message %q; use prometheus.WriteRequest or io.prometheus.write.v2.Request", p)
	}
}
