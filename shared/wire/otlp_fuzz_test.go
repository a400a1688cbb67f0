package wire_test

import (
	"bytes"
	"math"
	"testing"

	colpb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/promrelay/promrelay/shared/wire"
)

// otlpTolerated are the reasons OTLPRequest.Unmarshal may reject what
// protobuf-go (go.opentelemetry.io/proto/slim/otlp v1.11.1) accepts: a
// known field of the wrong wire type, which protobuf-go keeps as an unknown
// field (a corrupt or foreign message, better rejected than misread);
// groups (wire types 3 and 4, deprecated, used by no OTLP message), which
// the shared field iterator rejects; and attribute values nested deeper than
// wire.OTLPMaxDepth (protobuf-go allows 10,000 levels).
var otlpTolerated = []string{"wrong wire type", "unsupported wire type", "nested more than"}

// FuzzUnmarshalOTLP checks on arbitrary input that OTLPRequest.Unmarshal
// and protobuf-go's proto.Unmarshal into the slim
// ExportMetricsServiceRequest make the same accept/reject decision (bar
// otlpTolerated) and, on acceptance, decode the same request: the decoded
// model is turned back into the slim message and compared, after dropping
// the reference's unknown fields and entity refs (counted, not kept), by
// deterministic encoding, so that NaN payloads compare bit for bit.
func FuzzUnmarshalOTLP(f *testing.F) {
	for _, m := range otlpSeeds() {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var r wire.OTLPRequest
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkOTLP(t, &r, raw)
	})
}

func checkOTLP(t *testing.T, r *wire.OTLPRequest, raw []byte) {
	t.Helper()
	err := r.Unmarshal(raw, wire.Limits{})
	var ref colpb.ExportMetricsServiceRequest
	refErr := proto.Unmarshal(raw, &ref)
	if err == nil && refErr != nil {
		t.Fatalf("Unmarshal accepted %x, which protobuf-go rejects: %v", raw, refErr)
	}
	if err != nil {
		if refErr == nil && !containsAny(err.Error(), otlpTolerated) {
			t.Fatalf("Unmarshal rejected %x, which protobuf-go accepts: %v", raw, err)
		}
		return
	}
	entityRefs := 0
	for _, rm := range ref.ResourceMetrics {
		if rm.Resource != nil {
			entityRefs += len(rm.Resource.EntityRefs)
			rm.Resource.EntityRefs = nil
		}
	}
	gotRefs := 0
	for _, res := range r.Resources {
		gotRefs += res.EntityRefs
	}
	if gotRefs != entityRefs {
		t.Fatalf("%d entity refs, protobuf-go has %d", gotRefs, entityRefs)
	}
	dropUnknown(ref.ProtoReflect())
	got := otlpToSlim(r)
	dropEmpty(ref.ProtoReflect())
	dropEmpty(got.ProtoReflect())
	opts := proto.MarshalOptions{Deterministic: true}
	gb, _ := opts.Marshal(got)
	wb, _ := opts.Marshal(&ref)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("decoded request differs from protobuf-go's\n got %v\nwant %v", got, &ref)
	}
}

// dropUnknown clears the unknown fields of m and of every message in it.
func dropUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				dropUnknown(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			dropUnknown(v.Message())
		}
		return true
	})
}

// dropEmpty clears every singular message field outside a oneof that holds
// an empty message, in m and every message in it: the model does not tell
// an empty resource, scope, attribute value or bucket list from none.
func dropEmpty(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				dropEmpty(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			dropEmpty(v.Message())
			if fd.ContainingOneof() == nil && proto.Size(v.Message().Interface()) == 0 {
				m.Clear(fd)
			}
		}
		return true
	})
}

// otlpToSlim rebuilds the slim message from the decoded model.
func otlpToSlim(r *wire.OTLPRequest) *colpb.ExportMetricsServiceRequest {
	req := &colpb.ExportMetricsServiceRequest{}
	for _, res := range r.Resources {
		rm := &metricspb.ResourceMetrics{SchemaUrl: res.SchemaURL}
		// The reference has a resource message whenever the field was
		// present; the model cannot tell an empty one from none, so an
		// empty one is normalized below.
		rm.Resource = &resourcepb.Resource{Attributes: slimAttrs(r, res.Attrs), DroppedAttributesCount: res.DroppedAttributesCount}
		for _, sc := range r.Scopes[res.Scopes.Start:res.Scopes.End] {
			sm := &metricspb.ScopeMetrics{SchemaUrl: sc.SchemaURL, Scope: &commonpb.InstrumentationScope{
				Name: sc.Name, Version: sc.Version, Attributes: slimAttrs(r, sc.Attrs), DroppedAttributesCount: sc.DroppedAttributesCount,
			}}
			for _, m := range r.Metrics[sc.Metrics.Start:sc.Metrics.End] {
				sm.Metrics = append(sm.Metrics, slimMetric(r, &m))
			}
			rm.ScopeMetrics = append(rm.ScopeMetrics, sm)
		}
		req.ResourceMetrics = append(req.ResourceMetrics, rm)
	}
	return req
}

func slimAttrs(r *wire.OTLPRequest, rg wire.OTLPRange) []*commonpb.KeyValue {
	var kvs []*commonpb.KeyValue
	for i := rg.Start; i < rg.End; i++ {
		kvs = append(kvs, &commonpb.KeyValue{Key: r.Attrs[i].Key, Value: slimValue(r, &r.Attrs[i].Value), KeyStrindex: r.Attrs[i].KeyStrindex})
	}
	return kvs
}

func slimValue(r *wire.OTLPRequest, v *wire.OTLPValue) *commonpb.AnyValue {
	a := &commonpb.AnyValue{}
	switch v.Kind {
	case wire.OTLPString:
		a.Value = &commonpb.AnyValue_StringValue{StringValue: v.Str}
	case wire.OTLPBool:
		a.Value = &commonpb.AnyValue_BoolValue{BoolValue: v.Int != 0}
	case wire.OTLPInt:
		a.Value = &commonpb.AnyValue_IntValue{IntValue: v.Int}
	case wire.OTLPDouble:
		a.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: v.Double}
	case wire.OTLPBytes:
		a.Value = &commonpb.AnyValue_BytesValue{BytesValue: []byte(v.Str)}
	case wire.OTLPStrindex:
		a.Value = &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: int32(v.Int)}
	case wire.OTLPArray:
		arr := &commonpb.ArrayValue{}
		for i := v.Elems.Start; i < v.Elems.End; i++ {
			arr.Values = append(arr.Values, slimValue(r, &r.Attrs[i].Value))
		}
		a.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: arr}
	case wire.OTLPKVList:
		a.Value = &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: slimAttrs(r, v.Elems)}}
	}
	return a
}

func slimMetric(r *wire.OTLPRequest, m *wire.OTLPMetric) *metricspb.Metric {
	out := &metricspb.Metric{Name: m.Name, Description: m.Description, Unit: m.Unit, Metadata: slimAttrs(r, m.Metadata)}
	pts := r.Points[m.Points.Start:m.Points.End]
	opt := func(has bool, v float64) *float64 {
		if !has {
			return nil
		}
		return &v
	}
	switch m.Kind {
	case wire.OTLPGauge, wire.OTLPSum:
		var dps []*metricspb.NumberDataPoint
		for i := range pts {
			p := &pts[i]
			dp := &metricspb.NumberDataPoint{Attributes: slimAttrs(r, p.Attrs), StartTimeUnixNano: p.StartTimeUnixNano, TimeUnixNano: p.TimeUnixNano, Flags: p.Flags, Exemplars: slimExemplars(r, p.Exemplars)}
			switch p.NumberType {
			case wire.OTLPNumberDouble:
				dp.Value = &metricspb.NumberDataPoint_AsDouble{AsDouble: p.Double}
			case wire.OTLPNumberInt:
				dp.Value = &metricspb.NumberDataPoint_AsInt{AsInt: p.Int}
			}
			dps = append(dps, dp)
		}
		if m.Kind == wire.OTLPGauge {
			out.Data = &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: dps}}
		} else {
			out.Data = &metricspb.Metric_Sum{Sum: &metricspb.Sum{DataPoints: dps, AggregationTemporality: metricspb.AggregationTemporality(m.Temporality), IsMonotonic: m.Monotonic}}
		}
	case wire.OTLPHistogram:
		h := &metricspb.Histogram{AggregationTemporality: metricspb.AggregationTemporality(m.Temporality)}
		for i := range pts {
			p := &pts[i]
			h.DataPoints = append(h.DataPoints, &metricspb.HistogramDataPoint{
				Attributes: slimAttrs(r, p.Attrs), StartTimeUnixNano: p.StartTimeUnixNano, TimeUnixNano: p.TimeUnixNano, Count: p.Count,
				Sum: opt(p.HasSum, p.Sum), BucketCounts: r.Counts[p.BucketCounts.Start:p.BucketCounts.End:p.BucketCounts.End],
				ExplicitBounds: r.Floats[p.ExplicitBounds.Start:p.ExplicitBounds.End:p.ExplicitBounds.End],
				Exemplars:      slimExemplars(r, p.Exemplars), Flags: p.Flags, Min: opt(p.HasMin, p.Min), Max: opt(p.HasMax, p.Max),
			})
		}
		out.Data = &metricspb.Metric_Histogram{Histogram: h}
	case wire.OTLPExponentialHistogram:
		h := &metricspb.ExponentialHistogram{AggregationTemporality: metricspb.AggregationTemporality(m.Temporality)}
		bk := func(b wire.OTLPBuckets) *metricspb.ExponentialHistogramDataPoint_Buckets {
			return &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: b.Offset, BucketCounts: r.Counts[b.Counts.Start:b.Counts.End:b.Counts.End]}
		}
		for i := range pts {
			p := &pts[i]
			h.DataPoints = append(h.DataPoints, &metricspb.ExponentialHistogramDataPoint{
				Attributes: slimAttrs(r, p.Attrs), StartTimeUnixNano: p.StartTimeUnixNano, TimeUnixNano: p.TimeUnixNano, Count: p.Count,
				Sum: opt(p.HasSum, p.Sum), Scale: p.Scale, ZeroCount: p.ZeroCount, Positive: bk(p.Positive), Negative: bk(p.Negative),
				Flags: p.Flags, Exemplars: slimExemplars(r, p.Exemplars), Min: opt(p.HasMin, p.Min), Max: opt(p.HasMax, p.Max), ZeroThreshold: p.ZeroThreshold,
			})
		}
		out.Data = &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: h}
	case wire.OTLPSummary:
		s := &metricspb.Summary{}
		for i := range pts {
			p := &pts[i]
			dp := &metricspb.SummaryDataPoint{Attributes: slimAttrs(r, p.Attrs), StartTimeUnixNano: p.StartTimeUnixNano, TimeUnixNano: p.TimeUnixNano, Count: p.Count, Sum: p.Sum, Flags: p.Flags}
			for _, q := range r.Quantiles[p.Quantiles.Start:p.Quantiles.End] {
				dp.QuantileValues = append(dp.QuantileValues, &metricspb.SummaryDataPoint_ValueAtQuantile{Quantile: q.Quantile, Value: q.Value})
			}
			s.DataPoints = append(s.DataPoints, dp)
		}
		out.Data = &metricspb.Metric_Summary{Summary: s}
	}
	return out
}

func slimExemplars(r *wire.OTLPRequest, rg wire.OTLPRange) []*metricspb.Exemplar {
	var out []*metricspb.Exemplar
	for _, e := range r.Exemplars[rg.Start:rg.End] {
		x := &metricspb.Exemplar{FilteredAttributes: slimAttrs(r, e.Attrs), TimeUnixNano: e.TimeUnixNano, SpanId: e.SpanID, TraceId: e.TraceID}
		switch e.NumberType {
		case wire.OTLPNumberDouble:
			x.Value = &metricspb.Exemplar_AsDouble{AsDouble: e.Double}
		case wire.OTLPNumberInt:
			x.Value = &metricspb.Exemplar_AsInt{AsInt: e.Int}
		}
		out = append(out, x)
	}
	return out
}

// otlpSeeds are small requests covering every message and field; what the
// OpenTelemetry Go SDK exports is in testdata/fuzz/FuzzUnmarshalOTLP
// (written by the differential test of package otlp).
func otlpSeeds() []*colpb.ExportMetricsServiceRequest {
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	sum := 3.5
	full := &colpb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			{Key: "service.name", Value: str("api")},
			{Key: "arr", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("x"), {Value: &commonpb.AnyValue_IntValue{IntValue: -3}}}}}}},
			{Key: "kv", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}}}}}},
			{Key: "by", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{1, 2}}}},
			{Key: "d", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}},
			{Key: "e"},
		}, DroppedAttributesCount: 2, EntityRefs: []*commonpb.EntityRef{{Type: "service", IdKeys: []string{"service.name"}}}},
		SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
		ScopeMetrics: []*metricspb.ScopeMetrics{{
			Scope:     &commonpb.InstrumentationScope{Name: "lib", Version: "1.0", Attributes: []*commonpb.KeyValue{{Key: "s", Value: str("v")}}},
			SchemaUrl: "s",
			Metrics: []*metricspb.Metric{
				{Name: "g", Unit: "By", Description: "d", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
					{Attributes: []*commonpb.KeyValue{{Key: "a", Value: str("1")}}, TimeUnixNano: 1e18, StartTimeUnixNano: 9e17, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: math.Inf(-1)}, Flags: 1},
					{Value: &metricspb.NumberDataPoint_AsInt{AsInt: -7}, Exemplars: []*metricspb.Exemplar{{TimeUnixNano: 5, Value: &metricspb.Exemplar_AsInt{AsInt: 3}, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, TraceId: bytes.Repeat([]byte{9}, 16), FilteredAttributes: []*commonpb.KeyValue{{Key: "f", Value: str("x")}}}}},
				}}}, Metadata: []*commonpb.KeyValue{{Key: "m", Value: str("n")}}},
				{Name: "c", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{AggregationTemporality: 2, IsMonotonic: true, DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 2}}}}}},
				{Name: "h", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{AggregationTemporality: 1, DataPoints: []*metricspb.HistogramDataPoint{{Count: 3, Sum: &sum, BucketCounts: []uint64{1, 2, 0}, ExplicitBounds: []float64{0.5, 1}, Min: &sum, Max: &sum, Exemplars: []*metricspb.Exemplar{{Value: &metricspb.Exemplar_AsDouble{AsDouble: 0.7}}}}}}}},
				{Name: "e", Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{AggregationTemporality: 2, DataPoints: []*metricspb.ExponentialHistogramDataPoint{{Count: 4, Scale: -2, ZeroCount: 1, ZeroThreshold: 1e-9, Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: -3, BucketCounts: []uint64{1, 0, 2}}, Negative: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 2, BucketCounts: []uint64{1}}}}}}},
				{Name: "s", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{{Count: 2, Sum: 1, QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: 0.5, Value: 0.25}, {Quantile: 1, Value: 9}}}}}}},
				{Name: "empty"},
			},
		}},
	}}}
	small := &colpb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
		{Name: "m", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsInt{AsInt: 1}}}}}},
	}}}}}}
	seeds := []*colpb.ExportMetricsServiceRequest{full, small, {}}
	return seeds
}
