package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/wire"
)

// What an OTLP request is charged in the budget: its decoded protobuf
// export, otlpBytesPerByte per byte (at least otlpMinCost, at most the
// largest remote write's cost; the decoded export alone takes up to 124
// bytes per byte, for data points without fields, bounded by
// PROMRELAY_MAX_SAMPLES_PER_REQUEST), of which a quarter bounds the remote write
// 1.0 form it is translated into (the decoded export, its label store, the
// 1.0 form and its rewritten copy are held together); and a JSON body
// otlpJSONBytesPerByte per byte for its decoded messages.
const (
	otlpBytesPerByte     = 128
	otlpMinCost          = 1 << 20
	otlpJSONBytesPerByte = 16
)

// OTLP content types (OTLP/HTTP, "Binary Protobuf Encoding" and "JSON
// Protobuf Encoding").
const (
	otlpProtobuf = "application/x-protobuf"
	otlpJSON     = "application/json"
)

// serveOTLP handles POST /v1/metrics and /api/v1/otlp/v1/metrics: an OTLP/HTTP
// ExportMetricsServiceRequest (OTLP 1.x, "OTLP/HTTP"), binary protobuf or
// JSON, gzip or identity, translated as Prometheus' OTLP receiver does
// (otlp.Translator) and relayed as remote write. The answer is an
// ExportMetricsServiceResponse in the request's encoding: partial_success
// counts the data points that could not be translated; a failure is a
// google.rpc.Status with the message, its status what the sender must do
// (400 drop, 413 split, 429/502/503/504 retry). Delta temporality is 400
// naming the metric unless Options.OTLP.DeltaIngest, after the request's
// other points are relayed.
func (h *Handler) serveOTLP(ctx context.Context, r *http.Request, id inbound.Identity) reply {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != otlpProtobuf && mt != otlpJSON) {
		return otlpReply(false, reply{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("unsupported Content-Type %q; OTLP/HTTP uses %s or %s", r.Header.Get("Content-Type"), otlpProtobuf, otlpJSON)})
	}
	isJSON := mt == otlpJSON
	enc := contentEncoding(r)
	if enc != "" && enc != "identity" && enc != "gzip" {
		return otlpReply(isJSON, reply{status: http.StatusUnsupportedMediaType, msg: "unsupported Content-Encoding " + enc + "; OTLP/HTTP uses gzip or none"})
	}
	return h.withBody(ctx, r, func(st *requestState, c *Reservation) reply {
		return otlpReply(isJSON, h.relayOTLP(ctx, st, c, id, isJSON, enc == "gzip"))
	})
}

func (h *Handler) relayOTLP(ctx context.Context, st *requestState, c *Reservation, id inbound.Identity, isJSON, gzipped bool) reply {
	raw := st.body
	if gzipped {
		var err error
		st.decoded, err = gunzip(ctx, st.decoded, st.body, h.o.MaxDecodedBytes, c, func(n int) int64 { return int64(n) })
		if err != nil {
			return bodyReply(err)
		}
		raw = st.decoded
	} else if len(raw) > h.o.MaxDecodedBytes {
		return errorReply(&wire.TooLargeError{What: "decompressed body", Size: len(raw), Limit: h.o.MaxDecodedBytes})
	}
	if isJSON {
		if err := c.Grow(ctx, int64(len(raw))*otlpJSONBytesPerByte); err != nil {
			return errorReply(err)
		}
		var err error
		if st.proto, err = otlp.AppendProtoFromJSON(st.proto[:0], raw); err != nil {
			return reply{status: http.StatusBadRequest, msg: "cannot decode OTLP/JSON request: " + err.Error()}
		}
		raw = st.proto
		if len(raw) > h.o.MaxDecodedBytes {
			return errorReply(&wire.TooLargeError{What: "decompressed body", Size: len(raw), Limit: h.o.MaxDecodedBytes})
		}
	}
	cost := min(max(int64(len(raw))*otlpBytesPerByte, otlpMinCost), int64(h.o.MaxDecodedBytes)*remoteWriteBytesPerByte)
	if err := c.Grow(ctx, cost); err != nil {
		return errorReply(err)
	}
	settings := h.o.OTLP
	settings.MaxBytes = int(min(cost/4, int64(h.o.MaxDecodedBytes)))
	stats, err := st.otlp.Translate(&st.wr, raw, settings, h.o.Limits)
	if err != nil {
		rep := decodeReply(err)
		if tl := (*wire.TooLargeError)(nil); errors.As(err, &tl) {
			return reply{status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("the OTLP request translates to %d bytes or more of remote write, over the %d bytes a request of its size may take (%d times its decoded size, at most PROMRELAY_MAX_DECODED_BYTES); send smaller batches", tl.Size, tl.Limit, otlpBytesPerByte/4)}
		}
		if rep.status == http.StatusBadRequest {
			rep.msg = "cannot decode OTLP request: " + rep.msg
		}
		return rep
	}
	rejected, msg := stats.Rejected, stats.Message
	if len(st.wr.Series) > 0 || len(st.wr.Metadata) > 0 {
		// Gone through the walker and the label store: the 1.0 form is
		// built in a buffer the request no longer reads.
		dst := &st.decoded
		if gzipped {
			dst = &st.body
		}
		*dst = wire.AppendWriteRequest((*dst)[:0], st.wr.Series, st.wr.Metadata)
		rep := h.relayRemoteWrite(ctx, st, *dst, id)
		if rep.status/100 != 2 && !(rep.status == http.StatusBadRequest && st.rw.FirstInvalid != nil) {
			return rep
		}
		if st.rw.FirstInvalid != nil {
			// Series the relay's own checks refused (the external or
			// tenant labels took one over PROMRELAY_MAX_LABELS, say),
			// counted one per series: a refused histogram point counts
			// as many as it has series.
			rejected += st.rw.Invalid
			if msg == "" {
				msg = fmt.Sprintf("%d series rejected: %v", st.rw.Invalid, st.rw.FirstInvalid)
			}
		}
	}
	if stats.DeltaPoints > 0 {
		addIn(ctx, counts{kindSample: stats.DeltaPoints})
		return reply{status: http.StatusBadRequest, reason: metrics.ReasonDelta, msg: fmt.Sprintf(
			"%d data points of delta temporality not stored, first of metric %q (the request's other points were relayed); export cumulative temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative) or set PROMRELAY_OTLP_DELTA=ingest",
			stats.DeltaPoints, stats.DeltaMetric)}
	}
	if rejected > 0 {
		if st := statsFrom(ctx); st != nil {
			st.mu.Lock()
			st.partial += rejected
			st.mu.Unlock()
		}
	}
	return reply{status: http.StatusOK, otlpRejected: int64(rejected), otlpMessage: msg}
}

// otlpReply gives rep the body OTLP/HTTP wants, in the request's encoding:
// an ExportMetricsServiceResponse for a success, a google.rpc.Status
// (code and message) for a failure ("OTLP/HTTP Response", "Failures").
func otlpReply(isJSON bool, rep reply) reply {
	rep.contentType = otlpProtobuf
	if isJSON {
		rep.contentType = otlpJSON
	}
	if rep.status/100 == 2 {
		// Non-nil even when empty: an empty message is a valid answer.
		rep.body = otlp.AppendResponse(make([]byte, 0, 64), isJSON, rep.otlpRejected, rep.otlpMessage)
		if rep.otlpMessage != "" {
			rep.detail = fmt.Sprintf("partial success: %d data points rejected: %s", rep.otlpRejected, rep.otlpMessage)
		}
		return rep
	}
	code := grpcCode(rep.status)
	if isJSON {
		rep.body, _ = json.Marshal(struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		}{code, rep.msg})
		return rep
	}
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(code))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	rep.body = protowire.AppendString(b, rep.msg)
	return rep
}

// grpcCode is the google.rpc.Code of an HTTP failure status, as gRPC maps
// them the other way ("HTTP to gRPC Status Code Mapping").
func grpcCode(status int) int32 {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}
