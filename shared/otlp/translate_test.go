package otlp_test

import (
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	colpb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/wire"
)

func TestTranslateLimits(t *testing.T) {
	raw := marshal(t, richMetrics())
	var tr otlp.Translator
	var wr wire.WriteRequest
	for _, tc := range []struct {
		lim  wire.Limits
		kind wire.LimitKind
	}{
		{wire.Limits{MaxSamples: 5}, wire.LimitSamples},
		{wire.Limits{MaxLabels: 4}, wire.LimitLabels},
		{wire.Limits{MaxLabelBytes: 20}, wire.LimitLabelBytes},
	} {
		_, err := tr.Translate(&wr, raw, otlp.Settings{}, tc.lim)
		var le *wire.LimitError
		if !errors.As(err, &le) || le.Kind != tc.kind {
			t.Errorf("%+v: error %v, want a %v LimitError", tc.lim, err, tc.kind)
		}
	}
	// target_info samples count toward MaxSamples: the third resource's
	// 5 target_info samples do not fit when only the points do.
	st, err := tr.Translate(&wr, raw, otlp.Settings{}, wire.Limits{MaxSamples: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var le *wire.LimitError
	if _, err := tr.Translate(&wr, raw, otlp.Settings{}, wire.Limits{MaxSamples: st.Points + 1}); !errors.As(err, &le) || le.Where != "target_info" {
		t.Errorf("target_info over MaxSamples: %v", err)
	}
}

func TestTranslateMaxBytes(t *testing.T) {
	raw := marshal(t, richMetrics())
	var tr otlp.Translator
	var wr wire.WriteRequest
	if _, err := tr.Translate(&wr, raw, otlp.Settings{}, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	size := len(wire.AppendWriteRequest(nil, wr.Series, wr.Metadata))
	if _, err := tr.Translate(&wr, raw, otlp.Settings{MaxBytes: size}, wire.Limits{}); err != nil {
		t.Fatalf("MaxBytes of exactly the size (%d): %v", size, err)
	}
	_, err := tr.Translate(&wr, raw, otlp.Settings{MaxBytes: size - 1}, wire.Limits{})
	var tl *wire.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != size-1 {
		t.Fatalf("MaxBytes %d: %v", size-1, err)
	}
}

func TestTranslateMalformed(t *testing.T) {
	raw := marshal(t, richMetrics())
	var tr otlp.Translator
	var wr wire.WriteRequest
	for _, cut := range []int{1, 7, len(raw) / 2, len(raw) - 1} {
		if _, err := tr.Translate(&wr, raw[:cut], otlp.Settings{}, wire.Limits{}); err == nil {
			t.Errorf("truncated at %d: no error", cut)
		}
	}
	// A metric name that is not UTF-8: the error names the field.
	bad := []byte{0x0a, 0x08, 0x12, 0x06, 0x12, 0x04, 0x0a, 0x02, 0xff, 0xfe}
	_, err := tr.Translate(&wr, bad, otlp.Settings{}, wire.Limits{})
	if err == nil || err.Error() != "resource_metrics[0].scope_metrics[0].metrics[0].name: invalid UTF-8" {
		t.Fatalf("error %v", err)
	}
}

func TestTranslateRejects(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	m := ms.AppendEmpty()
	m.SetName("") // no name
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	m = ms.AppendEmpty()
	m.SetName("unspecified")
	m.SetEmptySum().DataPoints().AppendEmpty().SetIntValue(1)
	m = ms.AppendEmpty()
	m.SetName("lowscale")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	eh.DataPoints().AppendEmpty().SetScale(-5)
	eh.DataPoints().AppendEmpty().SetScale(0)
	m = ms.AppendEmpty()
	m.SetName("badlabel")
	m.SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutStr("___", "x")
	m = ms.AppendEmpty()
	m.SetName("ok")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(pcommon.Timestamp(5e6))
	var tr otlp.Translator
	var wr wire.WriteRequest
	st, err := tr.Translate(&wr, marshal(t, md), otlp.Settings{}, wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Points != 6 || st.Rejected != 4 || !strings.Contains(st.Message, "empty name") || len(wr.Series) != 2 {
		t.Fatalf("%+v, %d series", st, len(wr.Series))
	}
}

func TestAppendProtoFromJSON(t *testing.T) {
	js := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"j"}}]},
	"scopeMetrics":[{"scope":{"name":"s"},"metrics":[{"name":"c","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,
	"dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"42","exemplars":[{"timeUnixNano":1700000000000000000,"asDouble":1.5,
	"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}}],"unknownField":1}]}]}`
	b, err := otlp.AppendProtoFromJSON([]byte("prefix"), []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "prefix" {
		t.Fatal("dst not kept")
	}
	var req colpb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(b[6:], &req); err != nil {
		t.Fatal(err)
	}
	dp := req.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetSum().DataPoints[0]
	ex := dp.Exemplars[0]
	if dp.GetAsInt() != 42 || dp.TimeUnixNano != 1700000000000000000 || ex.TimeUnixNano != 1700000000000000000 ||
		hexString(ex.TraceId) != "5b8efff798038103d269b633813fc60c" || hexString(ex.SpanId) != "eee19b7ec3c1b174" {
		t.Fatalf("decoded %v", &req)
	}
	// The same as pdata's OTLP/JSON decoder makes of it.
	pr := pmetricotlp.NewExportRequest()
	if err := pr.UnmarshalJSON([]byte(js)); err != nil {
		t.Fatal(err)
	}
	want, _ := pr.MarshalProto()
	var wantReq colpb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(want, &wantReq); err != nil || !proto.Equal(&wantReq, &req) {
		t.Fatalf("differs from pdata: %v\n%v", &req, &wantReq)
	}
	for _, bad := range []string{`{`, `{"resourceMetrics":1}`, `{} {}`,
		`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"traceId":"zz"}]}]}}]}]}]}`} {
		if _, err := otlp.AppendProtoFromJSON(nil, []byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestAppendResponse(t *testing.T) {
	var resp colpb.ExportMetricsServiceResponse
	if b := otlp.AppendResponse(nil, false, 0, ""); len(b) != 0 {
		t.Fatalf("empty response %x", b)
	}
	if b := otlp.AppendResponse(nil, true, 0, ""); string(b) != "{}" {
		t.Fatalf("empty JSON response %s", b)
	}
	b := otlp.AppendResponse([]byte("x"), false, 3, "bad \xff point")
	if err := proto.Unmarshal(b[1:], &resp); err != nil {
		t.Fatal(err)
	}
	if ps := resp.PartialSuccess; ps.RejectedDataPoints != 3 || ps.ErrorMessage != "bad \uFFFD point" {
		t.Fatalf("%v", &resp)
	}
	b = otlp.AppendResponse(nil, true, 0, "warning")
	resp.Reset()
	if err := protojson.Unmarshal(b, &resp); err != nil || resp.PartialSuccess.ErrorMessage != "warning" || resp.PartialSuccess.RejectedDataPoints != 0 {
		t.Fatalf("%s: %v", b, err)
	}
}

func TestTranslateSteadyStateAllocatesNothing(t *testing.T) {
	raw := marshal(t, richMetrics())
	var tr otlp.Translator
	var wr wire.WriteRequest
	s := otlp.Settings{PromoteScopeMetadata: true, PromoteResourceAttributes: []string{"k8s.pod.name"}}
	// Drop the array and map attributes, whose rendering allocates.
	md := richMetrics()
	md.ResourceMetrics().At(0).Resource().Attributes().RemoveIf(func(k string, v pcommon.Value) bool {
		return v.Type() == pcommon.ValueTypeSlice || v.Type() == pcommon.ValueTypeMap
	})
	raw = marshal(t, md)
	for range 3 {
		if _, err := tr.Translate(&wr, raw, s, wire.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = tr.Translate(&wr, raw, s, wire.Limits{}) }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// TestTranslatorCachesOutliveRequest: a Translator's name caches keep no
// string that points into an earlier request's bytes. The relay reuses its
// request buffers; a metric name that otlptranslator returns unchanged
// (one token, no suffix: "m" with a unit that cleans to nothing) was cached
// as a substring of the request and read back corrupted by the next
// request of the same name (FuzzTranslate seed c0648cc22161fd0b, with the
// fuzz engine's reused input buffer).
func TestTranslatorCachesOutliveRequest(t *testing.T) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	m := ms.AppendEmpty()
	m.SetName("m")
	m.SetUnit("\x10")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(1)
	dp.Attributes().PutStr("a", "v")
	m = ms.AppendEmpty()
	m.SetName("plain")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(2)
	m = ms.AppendEmpty()
	m.SetName("n")
	m.SetUnit("xyz")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(3)
	raw := marshal(t, md)
	var tr otlp.Translator
	var wr wire.WriteRequest
	first := append([]byte(nil), raw...)
	if _, err := tr.Translate(&wr, first, otlp.Settings{}, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	clear(first) // the caller reuses its buffer
	if _, err := tr.Translate(&wr, raw, otlp.Settings{}, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		`{__name__="m",a="v"} 1(3ff0000000000000)@0`: true,
		`{__name__="plain"} 2(4000000000000000)@0`:   true,
		`{__name__="n_xyz"} 3(4008000000000000)@0`:   true,
	}
	for _, s := range wr.Series {
		if got := seriesString(&s); !want[got] {
			t.Errorf("second request: %s", got)
		}
	}
	for _, md := range wr.Metadata {
		if md.FamilyName != "m" && md.FamilyName != "plain" && md.FamilyName != "n_xyz" {
			t.Errorf("second request: metadata of %q", md.FamilyName)
		}
	}
}
