// Package wire is promrelay's codec: the one place where bytes become samples
// and samples become bytes.
//
// It reads the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), the
// protobuf-delimited io.prometheus.client.MetricFamily format, remote-write
// 1.0 WriteRequest messages (https://prometheus.io/docs/specs/prw/remote_write_spec/)
// and 2.0 io.prometheus.write.v2.Request messages (remotewrite2.go), and
// OTLP ExportMetricsServiceRequest messages (otlp.go); it writes remote-write
// 1.0 and 2.0 requests, and changes them for what an upstream accepts
// (profile.go). Snappy block framing is in snappy.go.
//
// Decoders are reusable values (Exposition, WriteRequest) that own their
// slices and reset them between calls, so that after warm-up decoding
// allocates nothing per sample. Strings in decoded results reference the input
// buffer wherever the input needs no unescaping: they are valid only while the
// input buffer is neither modified nor reused, and only until the next call
// that reuses the decoder.
//
// Every decoder takes Limits and checks them while it decodes: a request over
// a limit stops the decode at that point with a *LimitError, before the work
// the rest of the request would cost. Protobuf messages are read with one
// field iterator (proto.go); label sets are merged and keyed by the helpers
// in labels.go.
package wire

import "unsafe"

// Label is one name/value pair of a label set. Name "__name__" holds the
// metric name in remote-write series.
type Label struct {
	Name  string
	Value string
}

// MetricNameLabel is the label that carries a series' metric name in remote
// write.
const MetricNameLabel = "__name__"

// bytesToString returns a string that shares b's memory. The caller must not
// modify b while the string is in use.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// isValidMetricName reports whether s matches the classic (legacy) metric
// name syntax [a-zA-Z_:][a-zA-Z0-9_:]*, as the text format 0.0.4 and the
// Pushgateway require.
func isValidMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || (c >= '0' && c <= '9' && i > 0)) {
			return false
		}
	}
	return true
}

// IsValidLabelName reports whether s matches the classic label name syntax
// [a-zA-Z_][a-zA-Z0-9_]*, as the text format 0.0.4 and the Pushgateway
// require.
func IsValidLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || (c >= '0' && c <= '9' && i > 0)) {
			return false
		}
	}
	return true
}
