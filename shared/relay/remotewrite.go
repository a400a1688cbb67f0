package relay

import (
	"fmt"
	"mime"
	"net/http"

	"github.com/promrelay/promrelay/shared/wire"
)

// serveRemoteWrite handles POST /api/v1/write: remote write 1.0, snappy
// block-compressed protobuf. Valid series are relayed even when others are
// invalid; the answer is then 400 naming the first invalid series, so the
// sender drops only what could never be stored.
func (h *Handler) serveRemoteWrite(r *http.Request, out *outcome) {
	if msg := checkRemoteWriteContentType(r.Header.Get("Content-Type")); msg != "" {
		out.status, out.msg = http.StatusUnsupportedMediaType, msg
		return
	}
	if enc := contentEncoding(r); enc != "" && enc != "snappy" {
		out.status, out.msg = http.StatusUnsupportedMediaType, "unsupported Content-Encoding "+enc+"; remote write uses snappy"
		return
	}
	st := h.getState()
	defer h.putState(st)

	var err error
	st.body, err = readBody(r, st.body, h.o.MaxBodyBytes)
	out.bytesIn = len(st.body)
	if err != nil {
		out.status, out.msg = bodyStatus(err), err.Error()
		return
	}
	st.decoded, err = wire.DecodeSnappy(st.decoded, st.body, h.o.MaxDecodedBytes)
	if err != nil {
		out.status, out.msg = bodyStatus(err), err.Error()
		return
	}
	// Validate, set the external and tenant labels and re-encode at the
	// wire level; invalid series are dropped and counted.
	st.out, err = st.rw.Rewrite(st.out[:0], st.decoded, h.labelsToSet(st, out.identity), h.o.Limits)
	if err != nil {
		out.status, out.msg = http.StatusBadRequest, "cannot decode remote-write request: "+err.Error()
		return
	}
	out.samplesIn = st.rw.SamplesIn
	out.invalid = st.rw.Invalid
	if len(st.out) > 0 {
		ctx, cancel := h.deadline(r.Context())
		defer cancel()
		res, err := h.upstreamFor(out.identity).WriteEncoded(ctx, st.out)
		out.up = res
		if err != nil {
			h.upstreamError(err, out)
			return
		}
		out.samplesOut = st.rw.Samples
	}
	out.status = http.StatusNoContent
	if st.rw.FirstInvalid != nil {
		out.status = http.StatusBadRequest
		out.msg = fmt.Sprintf("%d of %d series rejected, the others were relayed; first: %v", st.rw.Invalid, st.rw.Invalid+st.rw.Series, st.rw.FirstInvalid)
	}
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
