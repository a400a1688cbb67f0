package wire_test

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestDelimitedMatchesReference encodes the expfmt-parsed corpora as
// protobuf-delimited MetricFamily messages and checks that ParseDelimited
// returns the same families.
func TestDelimitedMatchesReference(t *testing.T) {
	var e wire.Exposition
	for seed := uint64(1); seed <= 30; seed++ {
		want, err := referenceText(corpus.Exposition(seed, corpus.Options{Families: 30, Quirks: true, Timestamps: seed%2 == 0}))
		if err != nil {
			t.Fatal(err)
		}
		in := encodeDelimited(t, want)
		if err := e.ParseDelimited(in, wire.Limits{}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if got, w := canonical(toDTO(&e)), canonical(want); got != w {
			t.Fatalf("seed %d: differs from the reference\n%s", seed, firstDiff(got, w))
		}
	}
}

func nativeHistogramFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("rpc_latency_seconds"),
		Help: proto.String("RPC latency."),
		Type: dto.MetricType_HISTOGRAM.Enum(),
		Unit: proto.String("seconds"),
		Metric: []*dto.Metric{{
			Label: []*dto.LabelPair{{Name: proto.String("service"), Value: proto.String("api")}},
			Histogram: &dto.Histogram{
				SampleCount:   proto.Uint64(10),
				SampleSum:     proto.Float64(3.25),
				Schema:        proto.Int32(-2),
				ZeroThreshold: proto.Float64(1e-128),
				ZeroCount:     proto.Uint64(1),
				NegativeSpan:  []*dto.BucketSpan{{Offset: proto.Int32(-3), Length: proto.Uint32(1)}},
				NegativeDelta: []int64{2},
				PositiveSpan:  []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(2)}, {Offset: proto.Int32(5), Length: proto.Uint32(1)}},
				PositiveDelta: []int64{3, -1, -2},
				Bucket: []*dto.Bucket{
					{UpperBound: proto.Float64(0.5), CumulativeCount: proto.Uint64(4)},
					{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(9), Exemplar: &dto.Exemplar{
						Label: []*dto.LabelPair{{Name: proto.String("trace_id"), Value: proto.String("abc")}}, Value: proto.Float64(0.7)}},
				},
			},
		}, {
			Histogram: &dto.Histogram{
				SampleCountFloat: proto.Float64(5.5),
				SampleSum:        proto.Float64(1),
				Schema:           proto.Int32(3),
				ZeroThreshold:    proto.Float64(0.001),
				ZeroCountFloat:   proto.Float64(0.5),
				PositiveSpan:     []*dto.BucketSpan{{Offset: proto.Int32(1), Length: proto.Uint32(2)}},
				PositiveCount:    []float64{2, 3},
			},
		}},
	}
}

func TestDelimitedNativeHistogramsAndSummaries(t *testing.T) {
	fams := map[string]*dto.MetricFamily{
		"rpc_latency_seconds": nativeHistogramFamily(),
		"gc_seconds": {
			Name: proto.String("gc_seconds"), Type: dto.MetricType_SUMMARY.Enum(),
			Metric: []*dto.Metric{{Summary: &dto.Summary{SampleCount: proto.Uint64(3), SampleSum: proto.Float64(0.25),
				Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(0.01)}, {Quantile: proto.Float64(1), Value: proto.Float64(0.2)}}}}},
		},
		"up": {Name: proto.String("up"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}, TimestampMs: proto.Int64(-1)}}},
		"reqs_total": {Name: proto.String("reqs_total"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(7),
			Exemplar: &dto.Exemplar{Value: proto.Float64(1)}}}}},
	}
	var e wire.Exposition
	if err := e.ParseDelimited(encodeDelimited(t, fams), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	// Exemplars are not part of the decoded model.
	fams["rpc_latency_seconds"].Metric[0].Histogram.Bucket[1].Exemplar = nil
	fams["reqs_total"].Metric[0].Counter.Exemplar = nil
	if got, w := canonical(toDTO(&e)), canonical(fams); got != w {
		t.Fatalf("differs from the reference\n%s", firstDiff(got, w))
	}
	// Packed encoding of the repeated scalars (proto3-style senders).
	packed := appendPackedNative(t)
	if err := e.ParseDelimited(packed, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	n := e.Native(&e.Metrics[0])
	if len(n.PositiveDeltas) != 3 || n.PositiveDeltas[1] != -1 || len(n.PositiveCounts) != 2 || n.PositiveCounts[1] != 4.5 {
		t.Fatalf("packed native fields decoded as %+v", n)
	}
}

// appendPackedNative hand-encodes a family whose histogram uses packed
// repeated fields, which golang/protobuf does not emit for proto2.
func appendPackedNative(t *testing.T) []byte {
	t.Helper()
	// Histogram: sample_count=1 (1:varint), schema=0 (5), positive_delta
	// packed [1,-1,2] (13), positive_count packed [1.0, 4.5] (14).
	h := []byte{0x08, 0x01, 0x28, 0x00, 0x6a, 0x03, 0x02, 0x01, 0x04}
	h = append(h, 0x72, 16)
	h = append(h, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f) // 1.0
	h = append(h, 0, 0, 0, 0, 0, 0, 0x12, 0x40) // 4.5
	m := append([]byte{0x3a, byte(len(h))}, h...)
	f := []byte{0x0a, 0x01, 'h', 0x18, 0x04, 0x22, byte(len(m))}
	f = append(f, m...)
	return append([]byte{byte(len(f))}, f...)
}

func TestDelimitedRejects(t *testing.T) {
	good := encodeDelimited(t, map[string]*dto.MetricFamily{"up": {Name: proto.String("up"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}})
	cases := []struct {
		name    string
		fam     *dto.MetricFamily
		raw     []byte
		wantErr string
	}{
		{name: "truncated", raw: good[:len(good)-3], wantErr: "exceeds"},
		{name: "length beyond input", raw: []byte{0x7f, 0x0a}, wantErr: "exceeds"},
		{name: "bad varint", raw: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, wantErr: "cannot read length"},
		{name: "wrong wire type", raw: []byte{0x05, 0x0d, 0x00, 0x00, 0x00, 0x00}, wantErr: "wrong wire type"},
		{name: "truncated fixed32", raw: []byte{0x02, 0x0d, 0x00}, wantErr: "unexpected end"},
		// Found by a random mutator: a field number beyond 2^29-1, which
		// the protobuf schema rejects (testdata/fuzz/FuzzParseDelimited
		// keeps it as a seed).
		{name: "field number beyond 2^29-1", raw: []byte("\x12\n\x01A\xc2\xc2\xc2\xc20\t000000000"), wantErr: "invalid field number"},
		{name: "field number 2^29-1 accepted as unknown", raw: withUnknownField(good), wantErr: ""},
		{name: "field number 0", raw: []byte{0x02, 0x02, 0x00}, wantErr: "invalid field number 0"},
		{name: "empty name", fam: &dto.MetricFamily{Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}, wantErr: "invalid metric name"},
		{name: "invalid name", fam: &dto.MetricFamily{Name: proto.String("a-b"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}, wantErr: "invalid metric name"},
		{name: "value of wrong type", fam: &dto.MetricFamily{Name: proto.String("c"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}, wantErr: "has no counter value"},
		{name: "invalid label name", fam: &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("a.b"), Value: proto.String("x")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}, wantErr: "invalid label name"},
		{name: "reserved label name", fam: &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("__x"), Value: proto.String("x")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}, wantErr: "invalid label name"},
		{name: "duplicate label name", fam: &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("x")}, {Name: proto.String("a"), Value: proto.String("y")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}, wantErr: "duplicate label name"},
		{name: "invalid utf8 value", fam: &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("\xff")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}, wantErr: "not valid UTF-8"},
		{name: "unknown type", fam: &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType(9).Enum()}, wantErr: "unknown type"},
	}
	var e wire.Exposition
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.raw
			if tc.fam != nil {
				var sb strings.Builder
				if _, err := protodelim.MarshalTo(&sb, tc.fam); err != nil {
					t.Fatal(err)
				}
				in = []byte(sb.String())
			}
			err := e.ParseDelimited(in, wire.Limits{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseDelimited error = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseDelimited error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestDelimitedLastFamilyWins mirrors the Pushgateway, which decodes into a
// map by name.
func TestDelimitedLastFamilyWins(t *testing.T) {
	mk := func(v float64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}}}
	}
	var sb strings.Builder
	protodelim.MarshalTo(&sb, mk(1))
	protodelim.MarshalTo(&sb, mk(2))
	var e wire.Exposition
	if err := e.ParseDelimited([]byte(sb.String()), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	got := toDTO(&e)["g"]
	if len(got.Metric) != 1 || got.Metric[0].Gauge.GetValue() != 2 {
		t.Fatalf("got %v, want only the second family", got)
	}
}

// withUnknownField returns the single-family delimited input good with a
// varint field numbered 2^29-1, the largest valid number, appended to the
// family.
func withUnknownField(good []byte) []byte {
	body := append(append([]byte(nil), good[1:]...), 0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00)
	return append([]byte{byte(len(body))}, body...)
}
