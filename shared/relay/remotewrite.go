package relay

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/golang/snappy"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/wire"
)

// serveRemoteWrite handles POST /api/v1/write: remote write 1.0, snappy
// block-compressed protobuf. Valid series are relayed even when others are
// invalid; the answer is then 400 naming the first invalid series, so the
// sender drops only what could never be stored.
func (h *Handler) serveRemoteWrite(ctx context.Context, r *http.Request, id inbound.Identity) reply {
	if msg := checkRemoteWriteContentType(r.Header.Get("Content-Type")); msg != "" {
		return reply{status: http.StatusUnsupportedMediaType, msg: msg}
	}
	if enc := contentEncoding(r); enc != "" && enc != "snappy" {
		return reply{status: http.StatusUnsupportedMediaType, msg: "unsupported Content-Encoding " + enc + "; remote write uses snappy"}
	}
	return h.withBody(ctx, r, func(st *requestState, c *Reservation) reply { return h.relayRemoteWrite(ctx, st, c, id) })
}

// relayRemoteWrite decodes, rewrites and relays a remote write whose body
// st holds.
func (h *Handler) relayRemoteWrite(ctx context.Context, st *requestState, c *Reservation, id inbound.Identity) reply {
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
	// Validate, set the external and tenant labels and re-encode at the
	// wire level; invalid series are dropped and counted.
	st.out, err = st.rw.Rewrite(st.out[:0], st.decoded, h.overrides(st, id), h.o.Limits)
	if err != nil {
		if le := (*wire.LimitError)(nil); errors.As(err, &le) {
			return decodeReply(err)
		}
		return reply{status: http.StatusBadRequest, msg: "cannot decode remote-write request: " + err.Error()}
	}
	addSamplesIn(ctx, st.rw.FloatSamplesIn+st.rw.HistogramSamplesIn)
	if len(st.out) > 0 {
		res, err := h.o.Upstreams(ownerOf(id).Tenant).WriteEncoded(ctx, st.out)
		record(ctx, res, err, st.rw.FloatSamples+st.rw.HistogramSamples)
		if err != nil {
			return errorReply(err)
		}
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

// checkRemoteWriteContentType returns why a Content-Type cannot be relayed,
// or "" for remote write 1.0 (application/x-protobuf, no proto parameter or
// proto=prometheus.WriteRequest) and a missing header.
func checkRemoteWriteContentType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("cannot parse Content-Type %q: %v", ct, err)
	}
	if mt != "application/x-protobuf" {
		return fmt.Sprintf("unsupported Content-Type %q; remote write 1.0 uses application/x-protobuf", ct)
	}
	switch p := params["proto"]; p {
	case "", "prometheus.WriteRequest":
		return ""
	case "io.prometheus.write.v2.Request":
		return "remote write 2.0 (io.prometheus.write.v2.Request) is not supported yet; configure the sender for remote write 1.0 (protobuf_message: prometheus.WriteRequest)"
	default:
		return fmt.Sprintf("unsupported remote-write message %q; remote write 1.0 uses prometheus.WriteRequest", p)
	}
}
