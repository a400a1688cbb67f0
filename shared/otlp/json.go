package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	colpb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// AppendProtoFromJSON appends to dst the protobuf encoding of body, an
// OTLP/JSON ExportMetricsServiceRequest, and returns the extended buffer.
// It follows the OTLP/HTTP JSON encoding
// (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): the
// protobuf JSON mapping (protojson, over the slim opentelemetry-proto
// v1.11.1 types) with lowerCamelCase or original field names, enums as
// integers, 64-bit integers as strings or numbers, unknown fields ignored —
// except that traceId and spanId are hex strings, not base64. The error
// names the problem: invalid JSON, a traceId or spanId that is not hex, or
// protojson's error for a value of the wrong type.
func AppendProtoFromJSON(dst, body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return dst, fmt.Errorf("invalid OTLP/JSON: %w", err)
	}
	if dec.More() {
		return dst, fmt.Errorf("invalid OTLP/JSON: data after the request object")
	}
	if err := hexIDsToBase64(tree, 0); err != nil {
		return dst, err
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return dst, fmt.Errorf("invalid OTLP/JSON: %w", err)
	}
	var req colpb.ExportMetricsServiceRequest
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &req); err != nil {
		return dst, fmt.Errorf("invalid OTLP/JSON ExportMetricsServiceRequest: %w", err)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, &req)
}

// hexIDsToBase64 rewrites, in the exemplars of every data point of tree,
// the hex traceId and spanId (or trace_id, span_id) strings as the base64
// that protojson reads bytes fields in. Depth follows the path
// resourceMetrics/scopeMetrics/metrics/<kind>/dataPoints/exemplars.
func hexIDsToBase64(tree any, depth int) error {
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil // protojson reports the type error
	}
	children := [...][]string{
		{"resourceMetrics", "resource_metrics"},
		{"scopeMetrics", "scope_metrics"},
		{"metrics"},
		{"gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram", "summary"},
		{"dataPoints", "data_points"},
		{"exemplars"},
	}
	if depth == len(children) {
		for _, k := range [...]string{"traceId", "trace_id", "spanId", "span_id"} {
			v, ok := obj[k]
			if !ok {
				continue
			}
			s, ok := v.(string)
			if !ok {
				continue // protojson reports the type error
			}
			id, err := hex.DecodeString(s)
			if err != nil {
				return fmt.Errorf("invalid OTLP/JSON: exemplar %s %q is not hex: %w", k, s, err)
			}
			obj[k] = base64.StdEncoding.EncodeToString(id)
		}
		return nil
	}
	for _, k := range children[depth] {
		v, ok := obj[k]
		if !ok {
			continue
		}
		if depth == 3 { // a metric's data member: one object
			if err := hexIDsToBase64(v, depth+1); err != nil {
				return err
			}
			continue
		}
		list, ok := v.([]any)
		if !ok {
			continue
		}
		for _, e := range list {
			if err := hexIDsToBase64(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// AppendResponse appends to dst an ExportMetricsServiceResponse, in
// protobuf or, when json is true, in OTLP/JSON, and returns the extended
// buffer. The response holds partial_success {rejected_data_points,
// error_message} when rejected > 0 or msg != "" (OTLP/HTTP partial success,
// https://opentelemetry.io/docs/specs/otlp/#partial-success-1), and is
// empty otherwise. Invalid UTF-8 in msg is replaced by U+FFFD.
func AppendResponse(dst []byte, json bool, rejected int64, msg string) []byte {
	// proto3 strings must be valid UTF-8; a message quoting input may not be.
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	var resp colpb.ExportMetricsServiceResponse
	if rejected > 0 || msg != "" {
		resp.PartialSuccess = &colpb.ExportMetricsPartialSuccess{RejectedDataPoints: rejected, ErrorMessage: msg}
	}
	if json {
		b, err := protojson.Marshal(&resp)
		if err != nil {
			return append(dst, "{}"...)
		}
		return append(dst, b...)
	}
	b, _ := proto.MarshalOptions{}.MarshalAppend(dst, &resp)
	return b
}
