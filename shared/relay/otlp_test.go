package relay_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// otlpExport is an export of one resource (service.name "svc") with the
// given metrics.
func otlpExport(metrics ...*metricspb.Metric) *colmetricspb.ExportMetricsServiceRequest {
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "svc"}}}}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: metrics}},
	}}}
}

func gaugeMetric(name string, v float64) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
		{TimeUnixNano: 1_700_000_000_000_000_000, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v}}}}}}
}

func sumMetric(name string, temporality metricspb.AggregationTemporality) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{IsMonotonic: true, AggregationTemporality: temporality,
		DataPoints: []*metricspb.NumberDataPoint{{TimeUnixNano: 1_700_000_000_000_000_000, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 3}}}}}}
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rpcStatus decodes a google.rpc.Status body: code and message.
func rpcStatus(t *testing.T, b []byte) (int64, string) {
	t.Helper()
	var code int64
	var msg string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("not a google.rpc.Status: %q", b)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			code, b = int64(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			msg, b = v, b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				t.Fatalf("not a google.rpc.Status: %q", b)
			}
			b = b[n:]
		}
	}
	return code, msg
}

// TestOTLPRoute: both OTLP paths take protobuf and JSON, gzip or not, and
// answer an ExportMetricsServiceResponse in the request's encoding; the
// series reach the upstream translated.
func TestOTLPRoute(t *testing.T) {
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) { o.MaxBodyBytes, o.MaxDecodedBytes = 1<<20, 1<<20 })
	body := marshal(t, otlpExport(gaugeMetric("room.temperature", 21.5)))
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(body)
	zw.Close()
	jsonBody, err := protojson.Marshal(otlpExport(gaugeMetric("room.temperature", 21.5)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, ct, enc string
		body          []byte
	}{
		{"/v1/metrics", "application/x-protobuf", "", body},
		{"/api/v1/otlp/v1/metrics", "application/x-protobuf", "gzip", zipped.Bytes()},
		{"/v1/metrics", "application/json", "", jsonBody},
	} {
		up.series = nil
		rec := serve(h, "POST", tc.path, tc.body, "Content-Type", tc.ct, "Content-Encoding", tc.enc)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != tc.ct {
			t.Errorf("%s %s %s: %d %s %q", tc.path, tc.ct, tc.enc, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			continue
		}
		var resp colmetricspb.ExportMetricsServiceResponse
		if tc.ct == "application/json" {
			err = protojson.Unmarshal(rec.Body.Bytes(), &resp)
		} else {
			err = proto.Unmarshal(rec.Body.Bytes(), &resp)
		}
		if err != nil || resp.GetPartialSuccess().GetRejectedDataPoints() != 0 {
			t.Errorf("%s %s: response %q: %v", tc.path, tc.ct, rec.Body, err)
		}
		if len(up.series) != 1 || !strings.Contains(up.series[0], `room_temperature`) || !strings.Contains(up.series[0], `job="svc"`) {
			t.Errorf("%s %s: upstream got %v", tc.path, tc.ct, up.series)
		}
	}
}

// TestOTLPFailures: every failure is a google.rpc.Status in the request's
// encoding whose HTTP status tells the exporter whether to retry, and an
// unauthenticated export reaches nothing.
func TestOTLPFailures(t *testing.T) {
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) { o.MaxBodyBytes, o.MaxDecodedBytes = 1<<20, 1<<20 })
	body := marshal(t, otlpExport(gaugeMetric("g", 1)))
	for _, tc := range []struct {
		name     string
		ct, enc  string
		body     []byte
		status   int
		code     int64
		contains string
	}{
		{"text body", "text/plain", "", body, 415, 3, "application/x-protobuf"},
		{"brotli", "application/x-protobuf", "br", body, 415, 3, "gzip"},
		{"garbage", "application/x-protobuf", "", []byte{0x0a, 0xff, 0xff}, 400, 3, "OTLP"},
		{"bad JSON", "application/json", "", []byte(`{"resourceMetrics":[{`), 400, 3, "JSON"},
		{"not gzip", "application/x-protobuf", "gzip", body, 400, 3, "gzip"},
	} {
		rec := serve(h, "POST", "/v1/metrics", tc.body, "Content-Type", tc.ct, "Content-Encoding", tc.enc)
		if rec.Code != tc.status {
			t.Errorf("%s: %d %q, want %d", tc.name, rec.Code, rec.Body, tc.status)
			continue
		}
		if tc.ct == "application/json" {
			if !strings.Contains(rec.Body.String(), `"code":3`) || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("%s: body %q", tc.name, rec.Body)
			}
			continue
		}
		if code, msg := rpcStatus(t, rec.Body.Bytes()); code != tc.code || !strings.Contains(msg, tc.contains) {
			t.Errorf("%s: status %d %q, want code %d naming %q", tc.name, code, msg, tc.code, tc.contains)
		}
	}
	// A gzip bomb: 413 while it inflates.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 4<<20))
	zw.Close()
	if rec := serve(h, "POST", "/v1/metrics", bomb.Bytes(), "Content-Type", "application/x-protobuf", "Content-Encoding", "gzip"); rec.Code != 413 {
		t.Errorf("gzip bomb: %d %q", rec.Code, rec.Body)
	}
	// An upstream fault is retryable: the exporter sees 503 and UNAVAILABLE.
	down := newHandler(&recordingUpstream{err: &upstream.Error{Status: 503, Msg: "no credentials"}}, func(o *relay.Options) { o.MaxBodyBytes, o.MaxDecodedBytes = 1<<20, 1<<20 })
	rec := serve(down, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf")
	if code, _ := rpcStatus(t, rec.Body.Bytes()); rec.Code != 503 || code != 14 {
		t.Errorf("upstream down: %d, code %d", rec.Code, code)
	}
	// Nothing for an unauthenticated caller.
	deny := newHandler(up, func(o *relay.Options) { o.Inbound = denyAll{inbound.ErrMissing} })
	if rec := serve(deny, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf"); rec.Code != 401 {
		t.Errorf("unauthenticated: %d", rec.Code)
	}
	if len(up.series) != 0 {
		t.Errorf("upstream got %v", up.series)
	}
}

// TestOTLPDeltaIsRefusedByName: a delta sum is 400 naming it, after the
// export's other metrics are relayed; with DeltaIngest it is stored.
func TestOTLPDeltaIsRefusedByName(t *testing.T) {
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) { o.MaxBodyBytes, o.MaxDecodedBytes = 1<<20, 1<<20 })
	body := marshal(t, otlpExport(gaugeMetric("g", 1), sumMetric("jobs.done", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA)))
	rec := serve(h, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf")
	if _, msg := rpcStatus(t, rec.Body.Bytes()); rec.Code != http.StatusBadRequest || !strings.Contains(msg, `"jobs.done"`) || !strings.Contains(msg, "PROMRELAY_OTLP_DELTA") {
		t.Errorf("delta: %d %q", rec.Code, msg)
	}
	if len(up.series) != 1 || !strings.HasPrefix(up.series[0], "g{") {
		t.Errorf("the gauge beside the delta sum: upstream got %v", up.series)
	}
	up.series = nil
	h = newHandler(up, func(o *relay.Options) {
		o.MaxBodyBytes, o.MaxDecodedBytes = 1<<20, 1<<20
		o.OTLP.DeltaIngest = true
	})
	if rec := serve(h, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf"); rec.Code != 200 || len(up.series) != 2 {
		t.Errorf("delta ingested: %d %q, upstream got %v", rec.Code, rec.Body, up.series)
	}
}

type asTenant struct{ id inbound.Identity }

func (a asTenant) Authenticate(*http.Request) (inbound.Identity, error) { return a.id, nil }
func (asTenant) Challenge(http.Header)                                  {}

// TestOTLPTenantLabels: a tenant's labels win over the export's, as for
// every write; a reader without the write scope gets 403.
func TestOTLPTenantLabels(t *testing.T) {
	up := &recordingUpstream{}
	id := inbound.Identity{Subject: "t", Tenant: &inbound.Tenant{Name: "team-a"}, Labels: []wire.Label{{Name: "job", Value: "forced"}, {Name: "tenant", Value: "team-a"}}, Scopes: inbound.ScopeWrite}
	h := newHandler(up, func(o *relay.Options) {
		o.MaxBodyBytes, o.MaxDecodedBytes = 1<<20, 1<<20
		o.Inbound = asTenant{id}
	})
	body := marshal(t, otlpExport(gaugeMetric("g", 1)))
	if rec := serve(h, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf"); rec.Code != 200 {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
	if len(up.series) != 1 || up.series[0] != `g{job="forced",tenant="team-a"}` {
		t.Errorf("upstream got %v", up.series)
	}
	id.Scopes = inbound.ScopeRead
	h = newHandler(up, func(o *relay.Options) { o.Inbound = asTenant{id} })
	if rec := serve(h, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf"); rec.Code != 403 {
		t.Errorf("a reader: %d", rec.Code)
	}
}

// TestOTLPPartialSuccessIsCounted: points the translation refuses in a
// request answered 200 (partial_success) count as rejected for invalid,
// and a refused delta metric for delta.
func TestOTLPPartialSuccessIsCounted(t *testing.T) {
	m := metrics.New(nil, nil)
	h := newHandler(&recordingUpstream{}, func(o *relay.Options) { o.MaxBodyBytes, o.MaxDecodedBytes, o.Metrics = 1<<20, 1<<20, m })
	body := marshal(t, otlpExport(gaugeMetric("ok", 1), sumMetric("no_temporality", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED)))
	rec := serve(h, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf")
	var resp colmetricspb.ExportMetricsServiceResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &resp); rec.Code != 200 || err != nil || resp.GetPartialSuccess().GetRejectedDataPoints() != 1 {
		t.Fatalf("%d %v %v", rec.Code, resp.GetPartialSuccess(), err)
	}
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(metrics.KindSample, metrics.ReasonInvalid)); got != 1 {
		t.Errorf("rejected_total{kind=sample,reason=invalid} = %v, want 1", got)
	}
	body = marshal(t, otlpExport(gaugeMetric("ok", 1), sumMetric("delta", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA)))
	if rec := serve(h, "POST", "/v1/metrics", body, "Content-Type", "application/x-protobuf"); rec.Code != 400 {
		t.Fatalf("delta: %d", rec.Code)
	}
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(metrics.KindSample, metrics.ReasonDelta)); got != 1 {
		t.Errorf("rejected_total{kind=sample,reason=delta} = %v, want 1", got)
	}
}
