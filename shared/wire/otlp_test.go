package wire_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	colpb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/promrelay/promrelay/shared/wire"
)

// TestOTLPValueString checks AppendValueString against pcommon's AsString
// for every value kind, nested arrays and maps included.
func TestOTLPValueString(t *testing.T) {
	md := pmetric.NewMetrics()
	attrs := md.ResourceMetrics().AppendEmpty().Resource().Attributes()
	attrs.PutStr("s", "a<b>&\"")
	attrs.PutBool("t", true)
	attrs.PutBool("f", false)
	attrs.PutInt("i", -42)
	for i, d := range []float64{0, -0.0, 1.5, 1e21, 1e20, 1e-7, 1e-6, 123456789.125, math.NaN(), math.Inf(1), math.Inf(-1), 5e-324} {
		attrs.PutDouble("d"+string(rune('a'+i)), d)
	}
	attrs.PutEmptyBytes("b").FromRaw([]byte{0, 1, 0xfe, 0xff})
	attrs.PutEmpty("e")
	sl := attrs.PutEmptySlice("arr")
	sl.AppendEmpty().SetStr("x<y")
	sl.AppendEmpty().SetDouble(2.5)
	sl.AppendEmpty()
	sl.AppendEmpty().SetEmptyBytes().FromRaw([]byte("hi"))
	sl.AppendEmpty().SetEmptyMap().PutInt("k", 1)
	m := attrs.PutEmptyMap("map")
	m.PutStr("z", "last")
	m.PutStr("a", "first")
	m.PutEmptySlice("nested").AppendEmpty().SetBool(true)
	attrs.PutEmptySlice("nan").AppendEmpty().SetDouble(math.NaN())
	attrs.PutEmptySlice("empty")
	attrs.PutEmptyMap("emptymap")
	attrs.PutEmptyBytes("emptybytes")
	eb := attrs.PutEmptyMap("nestedemptybytes") // null inside, not "" (FuzzTranslate seed 64bbfc6d193eb522)
	eb.PutEmptyBytes("x")
	eb.PutEmptySlice("y").AppendEmpty().SetEmptyBytes()
	raw, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	var r wire.OTLPRequest
	if err := r.Unmarshal(raw, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	rg := r.Resources[0].Attrs
	if rg.Len() != attrs.Len() {
		t.Fatalf("%d attributes, want %d", rg.Len(), attrs.Len())
	}
	for i := rg.Start; i < rg.End; i++ {
		a := &r.Attrs[i]
		v, _ := attrs.Get(a.Key)
		if got, want := string(r.AppendValueString(nil, &a.Value)), v.AsString(); got != want {
			t.Errorf("%s: %q, AsString %q", a.Key, got, want)
		}
	}
}

// TestOTLPMerge checks protobuf's merge rules: repeated occurrences of a
// singular message merge, and the last oneof member wins.
func TestOTLPMerge(t *testing.T) {
	// ResourceMetrics with two resource fields, each with one attribute,
	// and a metric whose data is gauge, then sum, then sum again.
	kv := func(k, v string) []byte {
		any := append([]byte{0x0a, byte(len(v))}, v...)
		b := append([]byte{0x0a, byte(len(k))}, k...)
		b = append(b, 0x12, byte(len(any)))
		return append(b, any...)
	}
	res := func(k, v string) []byte {
		a := kv(k, v)
		r := append([]byte{0x0a, byte(len(a))}, a...)
		return append([]byte{0x0a, byte(len(r))}, r...)
	}
	point := []byte{0x0a, 0x09, 0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f} // as_double 1
	metric := []byte{0x0a, 0x01, 'm', 0x2a, byte(len(point))}
	metric = append(metric, point...)                             // gauge
	metric = append(metric, 0x3a, byte(len(point)+2), 0x10, 0x02) // sum, cumulative
	metric = append(metric, point...)
	metric = append(metric, 0x3a, byte(len(point)+2), 0x18, 0x01) // sum, monotonic
	metric = append(metric, point...)
	scope := append([]byte{0x12, byte(len(metric))}, metric...)
	rm := append(res("a", "1"), res("b", "2")...)
	rm = append(rm, 0x12, byte(len(scope)))
	rm = append(rm, scope...)
	raw := append([]byte{0x0a, byte(len(rm))}, rm...)
	var ref colpb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	var r wire.OTLPRequest
	checkOTLP(t, &r, raw)
	m := r.Metrics[0]
	if m.Kind != wire.OTLPSum || m.Points.Len() != 2 || m.Temporality != 2 || !m.Monotonic || r.Resources[0].Attrs.Len() != 2 {
		t.Fatalf("decoded %+v, resource %+v", m, r.Resources[0])
	}
}

func TestOTLPLimitsAndErrors(t *testing.T) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "x")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("g")
	dps := g.SetEmptyGauge().DataPoints()
	for i := range 3 {
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("a", strings.Repeat("v", 10*i))
		dp.Attributes().PutStr("b", "1")
	}
	raw, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	var r wire.OTLPRequest
	for _, tc := range []struct {
		lim   wire.Limits
		kind  wire.LimitKind
		where string
	}{
		{wire.Limits{MaxSamples: 2}, wire.LimitSamples, ""},
		{wire.Limits{MaxLabels: 1}, wire.LimitLabels, "2 attributes"},
		{wire.Limits{MaxLabelBytes: 15}, wire.LimitLabelBytes, `attribute "a"`},
	} {
		err := r.Unmarshal(raw, tc.lim)
		var le *wire.LimitError
		if !errors.As(err, &le) || le.Kind != tc.kind || le.Where != tc.where {
			t.Errorf("%+v: %v", tc.lim, err)
		}
	}
	if err := r.Unmarshal(raw, wire.Limits{MaxSamples: 3, MaxLabels: 2, MaxLabelBytes: 21}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		raw  []byte
		want string
	}{
		{[]byte{0x0a, 0x05, 0x1a, 0x03, 0xff, 'a', 'b'}, "resource_metrics[0].schema_url: invalid UTF-8"},
		{[]byte{0x0a, 0x02, 0x12}, "cannot read ExportMetricsServiceRequest field"}, // truncated
		{[]byte{0x08, 0x01}, "wrong wire type"},
		{[]byte{0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0x28, 0x01}, "resource_metrics[0].scope_metrics[0].metrics[0].gauge: wrong wire type"},
	} {
		err := r.Unmarshal(tc.raw, wire.Limits{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%x: %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestOTLPDepth(t *testing.T) {
	v := pcommon.NewValueEmpty()
	cur := v
	for range wire.OTLPMaxDepth + 1 {
		cur = cur.SetEmptySlice().AppendEmpty()
	}
	md := pmetric.NewMetrics()
	v.CopyTo(md.ResourceMetrics().AppendEmpty().Resource().Attributes().PutEmpty("deep"))
	raw, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	var r wire.OTLPRequest
	if err := r.Unmarshal(raw, wire.Limits{}); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("error %v", err)
	}
}

func BenchmarkUnmarshalOTLP(b *testing.B) {
	var raws [][]byte
	for _, m := range otlpSeeds() {
		raw, _ := proto.Marshal(m)
		raws = append(raws, raw)
	}
	var r wire.OTLPRequest
	b.ReportAllocs()
	for range b.N {
		for _, raw := range raws {
			if err := r.Unmarshal(raw, wire.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
