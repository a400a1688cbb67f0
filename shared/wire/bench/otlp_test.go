package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompbmarshal"
	vmotlp "github.com/VictoriaMetrics/VictoriaMetrics/lib/protoparser/opentelemetry/stream"
	"github.com/golang/snappy"
	colpb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/wire"
)

// otlpExport builds an OTLP export like an instrumented service's: one
// resource with Kubernetes and service attributes, one scope, counters
// and gauges with route/method/status attributes, and explicit-bucket
// histograms of 14 bounds (16 series each: 15 buckets, _sum, _count),
// about n series in all when translated.
func otlpExport(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
		str("service.name", "checkout"), str("service.namespace", "shop"), str("service.instance.id", "checkout-7d9f8-x2k4p"),
		str("service.version", "1.42.0"), str("k8s.namespace.name", "prod"), str("k8s.pod.name", "checkout-7d9f8-x2k4p"),
		str("k8s.node.name", "ip-10-0-3-17.eu-west-1.compute.internal"), str("cloud.region", "eu-west-1"),
		str("telemetry.sdk.language", "go"), str("telemetry.sdk.version", "1.47.0"),
	}}
	now := uint64(1_750_000_000_000_000_000)
	attrs := func(i int) []*commonpb.KeyValue {
		return []*commonpb.KeyValue{
			str("http.route", fmt.Sprintf("/api/v1/items/%d", i%37)),
			str("http.request.method", []string{"GET", "POST", "PUT", "DELETE"}[i%4]),
			{Key: "http.response.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64([]int{200, 201, 404, 500}[i/4%4])}}},
		}
	}
	var metrics []*metricspb.Metric
	series := 0
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	for m := 0; series < n; m++ {
		var dps []*metricspb.NumberDataPoint
		var hps []*metricspb.HistogramDataPoint
		kind := m % 3
		for i := range 40 {
			switch kind {
			case 0, 1:
				dps = append(dps, &metricspb.NumberDataPoint{Attributes: attrs(i), StartTimeUnixNano: now - 3600e9, TimeUnixNano: now + uint64(i),
					Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: r.Float64() * 1000}})
				series++
			case 2:
				counts := make([]uint64, len(bounds)+1)
				total := uint64(0)
				for j := range counts {
					counts[j] = uint64(r.IntN(100))
					total += counts[j]
				}
				sum := r.Float64() * 100
				hps = append(hps, &metricspb.HistogramDataPoint{Attributes: attrs(i), StartTimeUnixNano: now - 3600e9, TimeUnixNano: now,
					Count: total, Sum: &sum, BucketCounts: counts, ExplicitBounds: bounds})
				series += len(bounds) + 3
			}
		}
		name := fmt.Sprintf("app.metric_%d", m)
		switch kind {
		case 0:
			metrics = append(metrics, &metricspb.Metric{Name: name + ".requests", Unit: "{request}", Description: "Requests.",
				Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{DataPoints: dps, AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true}}})
		case 1:
			metrics = append(metrics, &metricspb.Metric{Name: name + ".memory", Unit: "By", Description: "Memory.",
				Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: dps}}})
		case 2:
			metrics = append(metrics, &metricspb.Metric{Name: name + ".duration", Unit: "s", Description: "Latency.",
				Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{DataPoints: hps, AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE}}})
		}
	}
	req := &colpb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: res, ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: &commonpb.InstrumentationScope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.72.0"}, Metrics: metrics}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkOTLP is what the relay does to an OTLP/HTTP export of about
// 2,000 series: decode and translate it to remote write 1.0, encode it and
// snappy-compress it. VictoriaMetrics' OTLP parser
// (lib/protoparser/opentelemetry/stream.ParseStream, which unmarshals into
// its pb types and translates into prompbmarshal.TimeSeries) with its
// prompbmarshal encoder and golang/snappy does the same work; ns/sample is
// per output series of each (each series has one sample).
func BenchmarkOTLP(b *testing.B) {
	raw := otlpExport(42, 2000)
	b.Run("impl=promrelay", func(b *testing.B) {
		var tr otlp.Translator
		var wr wire.WriteRequest
		var out, enc []byte
		samples := 0
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.Translate(&wr, raw, otlp.Settings{}, wire.Limits{}); err != nil {
				b.Fatal(err)
			}
			out = wire.AppendWriteRequest(out[:0], wr.Series, wr.Metadata)
			enc = wire.EncodeSnappy(enc, out)
			samples = len(wr.Series)
		}
		perSample(b, samples)
	})
	b.Run("impl=victoriametrics", func(b *testing.B) {
		var out, enc []byte
		samples := 0
		callback := func(tss []prompbmarshal.TimeSeries) error {
			wr := prompbmarshal.WriteRequest{Timeseries: tss}
			out = wr.MarshalProtobuf(out[:0])
			enc = snappy.Encode(enc[:cap(enc)], out)
			samples = len(tss)
			return nil
		}
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if err := vmotlp.ParseStream(bytes.NewReader(raw), false, nil, callback); err != nil {
				b.Fatal(err)
			}
		}
		perSample(b, samples)
	})
}
