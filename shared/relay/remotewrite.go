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
	if err := st.wr.Unmarshal(st.decoded); err != nil {
		out.status, out.msg = http.StatusBadRequest, "cannot decode remote-write request: "+err.Error()
		return
	}
	out.samplesIn = st.wr.NumSamples()

	// Keep the valid series; remember the first invalid one.
	var firstInvalid error
	valid := st.wr.Series[:0]
	for i := range st.wr.Series {
		if err := wire.ValidateSeries(&st.wr.Series[i], h.o.Limits); err != nil {
			if firstInvalid == nil {
				firstInvalid = err
			}
			out.invalid++
			continue
		}
		valid = append(valid, st.wr.Series[i])
	}
	st.wr.Series = valid

	if len(st.wr.Series) > 0 || len(st.wr.Metadata) > 0 {
		h.relay(r.Context(), &st.wr, out, http.StatusNoContent)
		if out.status != http.StatusNoContent {
			return
		}
	} else {
		out.status = http.StatusNoContent
	}
	if firstInvalid != nil {
		out.status = http.StatusBadRequest
		out.msg = fmt.Sprintf("%d of %d series rejected, the others were relayed; first: %v", out.invalid, out.invalid+len(st.wr.Series), firstInvalid)
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
