package otlp_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	prw "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/wire"
)

// captureAppender is a storage.AppenderV2 that renders every appended
// sample as the remote-write series promrelay would forward, in the
// canonical form seriesString gives.
type captureAppender struct {
	series   []string
	metadata map[string]wire.Metadata
}

func (a *captureAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, ts int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	var s wire.Series
	ls.Range(func(l labels.Label) { s.Labels = append(s.Labels, wire.Label{Name: l.Name, Value: l.Value}) })
	switch {
	case fh != nil:
		return 0, fmt.Errorf("unexpected float histogram")
	case h != nil:
		ph := prompb.FromIntHistogram(ts, h)
		b, err := ph.Marshal()
		if err != nil {
			return 0, err
		}
		s.Histograms = [][]byte{b}
	default:
		s.Samples = []wire.Sample{{Value: v, Timestamp: ts}}
	}
	for _, e := range opts.Exemplars {
		pe := prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts}
		b, err := pe.Marshal()
		if err != nil {
			return 0, err
		}
		s.Exemplars = append(s.Exemplars, b)
	}
	a.series = append(a.series, seriesString(&s))
	if _, ok := a.metadata[opts.MetricFamilyName]; !ok {
		a.metadata[opts.MetricFamilyName] = wire.Metadata{Type: metadataType(opts.Metadata.Type), FamilyName: opts.MetricFamilyName, Help: opts.Metadata.Help, Unit: opts.Metadata.Unit}
	}
	return 1, nil
}

func (a *captureAppender) Commit() error   { return nil }
func (a *captureAppender) Rollback() error { return nil }

func metadataType(t model.MetricType) wire.MetadataType {
	switch t {
	case model.MetricTypeCounter:
		return wire.MetadataCounter
	case model.MetricTypeGauge:
		return wire.MetadataGauge
	case model.MetricTypeHistogram:
		return wire.MetadataHistogram
	case model.MetricTypeGaugeHistogram:
		return wire.MetadataGaugeHistogram
	case model.MetricTypeSummary:
		return wire.MetadataSummary
	case model.MetricTypeInfo:
		return wire.MetadataInfo
	case model.MetricTypeStateset:
		return wire.MetadataStateset
	}
	return wire.MetadataUnknown
}

// seriesString renders a series with its label set, sample value bits and
// timestamps, and encoded histograms and exemplars in hex.
func seriesString(s *wire.Series) string {
	var b strings.Builder
	b.WriteString("{")
	for i, l := range s.Labels {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteString("}")
	for _, smp := range s.Samples {
		fmt.Fprintf(&b, " %v(%x)@%d", smp.Value, math.Float64bits(smp.Value), smp.Timestamp)
	}
	for _, h := range s.Histograms {
		var ph prompb.Histogram
		_ = ph.Unmarshal(h)
		fmt.Fprintf(&b, " h:%x %v", h, ph.String())
	}
	for _, e := range s.Exemplars {
		var pe prompb.Exemplar
		_ = pe.Unmarshal(e)
		fmt.Fprintf(&b, " ex:%x %v", e, pe.String())
	}
	return b.String()
}

// reference translates raw with Prometheus' PrometheusConverter, with the
// settings Prometheus' OTLP write handler derives from the default
// configuration and s.
func reference(t testing.TB, raw []byte, s otlp.Settings) (series []string, md map[string]wire.Metadata, err error) {
	t.Helper()
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		return nil, nil, fmt.Errorf("pdata: %w", err)
	}
	app := &captureAppender{metadata: map[string]wire.Metadata{}}
	c := prw.NewPrometheusConverter(app)
	otlpCfg := config.DefaultOTLPConfig
	otlpCfg.PromoteResourceAttributes = s.PromoteResourceAttributes
	otlpCfg.PromoteScopeMetadata = s.PromoteScopeMetadata
	_, err = c.FromMetrics(context.Background(), req.Metrics(), prw.Settings{
		AddMetricSuffixes:                    otlpCfg.TranslationStrategy.ShouldAddSuffixes(),
		AllowUTF8:                            !otlpCfg.TranslationStrategy.ShouldEscape(),
		PromoteResourceAttributes:            prw.NewPromoteResourceAttributes(otlpCfg),
		KeepIdentifyingResourceAttributes:    otlpCfg.KeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:              otlpCfg.ConvertHistogramsToNHCB,
		PromoteScopeMetadata:                 otlpCfg.PromoteScopeMetadata,
		AllowDeltaTemporality:                s.DeltaIngest,
		LookbackDelta:                        5 * time.Minute,
		LabelNameUnderscoreSanitization:      otlpCfg.LabelNameUnderscoreSanitization,
		LabelNamePreserveMultipleUnderscores: otlpCfg.LabelNamePreserveMultipleUnderscores,
	})
	slices.Sort(app.series)
	return app.series, app.metadata, err
}

// compare translates raw with promrelay and Prometheus and fails on any
// difference in series or metadata; when Prometheus rejects the request,
// promrelay must reject or skip some data point.
func compare(t testing.TB, tr *otlp.Translator, raw []byte, s otlp.Settings) (wire.WriteRequest, otlp.Stats) {
	t.Helper()
	var wr wire.WriteRequest
	st, err := tr.Translate(&wr, raw, s, wire.Limits{})
	want, wantMD, refErr := reference(t, raw, s)
	if err != nil {
		if refErr == nil {
			t.Fatalf("Translate: %v; Prometheus accepts the request", err)
		}
		return wr, st
	}
	if refErr != nil {
		if st.Points == 0 && len(wr.Series) == 0 && strings.Contains(refErr.Error(), "invalid temporality and type combination") {
			// No data point anywhere: neither writes a sample. Prometheus
			// fails a request whose delta metric has no points (without
			// delta ingestion); promrelay has nothing to reject
			// (FuzzTranslate seed 2fcb3a10d9060b1f).
			return wr, st
		}
		if st.Rejected == 0 && st.DeltaPoints == 0 && st.Message == "" {
			t.Fatalf("Prometheus rejects the request (%v); Translate translated it all: %+v", refErr, st)
		}
		return wr, st
	}
	if st.Rejected != 0 || st.DeltaPoints != 0 {
		t.Fatalf("Translate rejected points Prometheus accepts: %+v", st)
	}
	var got []string
	for i := range wr.Series {
		got = append(got, seriesString(&wr.Series[i]))
	}
	slices.Sort(got)
	if d := diffLines(got, want); d != "" {
		t.Fatalf("series differ from Prometheus' (- promrelay, + Prometheus):\n%s", d)
	}
	gotMD := map[string]wire.Metadata{}
	for _, md := range wr.Metadata {
		if _, dup := gotMD[md.FamilyName]; dup {
			t.Fatalf("metadata of %q twice", md.FamilyName)
		}
		gotMD[md.FamilyName] = md
	}
	for name, md := range wantMD {
		if gotMD[name] != md {
			t.Errorf("metadata of %q: %+v, Prometheus %+v", name, gotMD[name], md)
		}
	}
	for name := range gotMD {
		if _, ok := wantMD[name]; !ok {
			t.Errorf("metadata of %q, which Prometheus has none of", name)
		}
	}
	// The encoding of the whole request must decode back to the same.
	enc := wire.AppendWriteRequest(nil, wr.Series, wr.Metadata)
	var back prompb.WriteRequest
	if err := back.Unmarshal(enc); err != nil || len(back.Timeseries) != len(wr.Series) {
		t.Fatalf("encoded request does not decode: %v", err)
	}
	return wr, st
}

func diffLines(got, want []string) string {
	var b strings.Builder
	gi, wi := 0, 0
	for gi < len(got) || wi < len(want) {
		switch {
		case wi == len(want) || (gi < len(got) && got[gi] < want[wi]):
			fmt.Fprintf(&b, "- %s\n", got[gi])
			gi++
		case gi == len(got) || want[wi] < got[gi]:
			fmt.Fprintf(&b, "+ %s\n", want[wi])
			wi++
		default:
			gi++
			wi++
		}
	}
	return b.String()
}

func marshal(t testing.TB, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// richMetrics builds a request with every metric kind and the features the
// translation has rules for.
func richMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("service.namespace", "shop")
	ra.PutStr("service.instance.id", "pod-1")
	ra.PutStr("k8s.pod.name", "pod-1")
	ra.PutInt("host.cpus", 8)
	ra.PutDouble("ratio", 0.25)
	ra.PutBool("on", true)
	ra.PutEmptyBytes("raw").FromRaw([]byte{0xde, 0xad})
	arr := ra.PutEmptySlice("tags")
	arr.AppendEmpty().SetStr("a<b>")
	arr.AppendEmpty().SetInt(3)
	arr.AppendEmpty().SetDouble(1e-7)
	kv := ra.PutEmptyMap("labels")
	kv.PutStr("z", "1")
	kv.PutBool("a", false)
	kv.PutEmptyMap("nested").PutEmptySlice("x")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("github.com/shop/checkout")
	sm.Scope().SetVersion("v1.2.3")
	sm.Scope().Attributes().PutStr("scope.attr", "s")
	sm.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	ts := pcommon.Timestamp(1_700_000_000_123_456_789)
	start := pcommon.Timestamp(1_699_999_000_000_000_000)
	ms := sm.Metrics()

	m := ms.AppendEmpty()
	m.SetName("http.server.requests")
	m.SetUnit("{requests}")
	m.SetDescription("Requests served.")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, route := range []string{"/", "/cart", "/ünïcode"} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts + pcommon.Timestamp(i))
		dp.SetStartTimestamp(start)
		dp.SetIntValue(int64(100 * (i + 1)))
		dp.Attributes().PutStr("http.route", route)
		dp.Attributes().PutInt("http.status_code", 200)
		dp.Attributes().PutStr("http_status_code", "dup") // collides with http.status_code
		if i == 0 {
			ex := dp.Exemplars().AppendEmpty()
			ex.SetDoubleValue(0.5)
			ex.SetTimestamp(ts - 5)
			ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			ex.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
			ex.FilteredAttributes().PutStr("user", "u1")
			ex2 := dp.Exemplars().AppendEmpty()
			ex2.SetIntValue(3)
			ex2.SetTimestamp(ts - 9)
			ex2.FilteredAttributes().PutStr("long", strings.Repeat("x", 200))
		}
	}
	m = ms.AppendEmpty()
	m.SetName("queue.depth")
	m.SetUnit("1")
	sum = m.SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(-3.5)

	m = ms.AppendEmpty()
	m.SetName("process.memory.usage")
	m.SetUnit("By")
	g := m.SetEmptyGauge()
	dp = g.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(1 << 30)
	dp.Exemplars().AppendEmpty().SetDoubleValue(1) // gauges drop exemplars
	dp = g.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts + 1e9)
	dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	dp.Attributes().PutStr("__name__", "ignored")
	dp.Attributes().PutStr("_private", "x")
	dp.Attributes().PutStr("a.b-c", "y")
	dp.Attributes().PutStr("empty", "")

	m = ms.AppendEmpty()
	m.SetName("cpu.utilization")
	m.SetUnit("1")
	g = m.SetEmptyGauge()
	dp = g.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(0.7)

	m = ms.AppendEmpty()
	m.SetName("network.io")
	m.SetUnit("By/s")
	g = m.SetEmptyGauge()
	dp = g.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(12)

	m = ms.AppendEmpty()
	m.SetName("http.server.duration")
	m.SetUnit("s")
	m.SetDescription("Latency.")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetStartTimestamp(start)
	hp.SetCount(10)
	hp.SetSum(4.5)
	hp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1, math.Inf(1)})
	hp.BucketCounts().FromRaw([]uint64{2, 3, 4, 1, 0})
	hp.Attributes().PutStr("le", "user-le")
	for i, v := range []float64{0.05, 0.3, 0.2, 2} {
		ex := hp.Exemplars().AppendEmpty()
		ex.SetDoubleValue(v)
		ex.SetTimestamp(ts - pcommon.Timestamp(1e6*(10-i)))
		ex.SetTraceID(pcommon.TraceID{byte(i + 1)})
	}
	hp = h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetCount(1)
	hp.Attributes().PutStr("nosum", "1")
	hp.ExplicitBounds().FromRaw([]float64{1})
	hp.BucketCounts().FromRaw([]uint64{1})
	hp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))

	m = ms.AppendEmpty()
	m.SetName("rpc.latency")
	m.SetUnit("ms")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, scale := range []int32{3, 10, -4, 0} {
		ep := eh.DataPoints().AppendEmpty()
		ep.SetTimestamp(ts)
		ep.SetScale(scale)
		ep.SetCount(30)
		ep.SetSum(123.25)
		ep.SetZeroCount(2)
		ep.Attributes().PutInt("i", int64(i))
		ep.Positive().SetOffset(-5)
		ep.Positive().BucketCounts().FromRaw([]uint64{1, 0, 3, 0, 0, 0, 0, 4, 5, 0, 1, 2, 3, 4})
		ep.Negative().SetOffset(7)
		ep.Negative().BucketCounts().FromRaw([]uint64{0, 2, 1})
		ex := ep.Exemplars().AppendEmpty()
		ex.SetIntValue(int64(i))
		ex.SetTimestamp(ts)
		if i == 3 {
			ep.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		}
	}

	m = ms.AppendEmpty()
	m.SetName("rpc.payload")
	m.SetUnit("KiBy")
	sq := m.SetEmptySummary()
	sp := sq.DataPoints().AppendEmpty()
	sp.SetTimestamp(ts)
	sp.SetCount(7)
	sp.SetSum(70)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		qv := sp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		qv.SetValue(q * 10)
	}
	sp.Attributes().PutStr("quantile", "user-q")

	m = ms.AppendEmpty()
	m.SetName("empty.gauge")
	m.SetEmptyGauge()

	// A second resource with only service.name (no target_info) and a
	// scope without a name, timestamps spanning 10 minutes.
	rm = md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "worker")
	sm = rm.ScopeMetrics().AppendEmpty()
	m = sm.Metrics().AppendEmpty()
	m.SetName("jobs_total")
	sum = m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sum.DataPoints().AppendEmpty().SetTimestamp(ts)
	sum.DataPoints().AppendEmpty().SetTimestamp(ts + 600e9)

	// A third resource with attributes besides the service ones and
	// timestamps spanning 10 minutes: target_info every 2.5 minutes.
	rm = md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.instance.id", "i-9")
	rm.Resource().Attributes().PutStr("cloud.region", "eu-1")
	sm = rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("other")
	m = sm.Metrics().AppendEmpty()
	m.SetName("temperature")
	m.SetUnit("Cel")
	g = m.SetEmptyGauge()
	g.DataPoints().AppendEmpty().SetTimestamp(ts)
	g.DataPoints().AppendEmpty().SetTimestamp(ts + 600e9 + 1)
	return md
}

func deltaMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "d")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.Timestamp(1_700_000_000_000_000_000)
	m := ms.AppendEmpty()
	m.SetName("events")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := s.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(5)
	m = ms.AppendEmpty()
	m.SetName("lat")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetCount(2)
	hp.ExplicitBounds().FromRaw([]float64{1})
	hp.BucketCounts().FromRaw([]uint64{1, 1})
	m = ms.AppendEmpty()
	m.SetName("elat")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts)
	ep.SetCount(1)
	ep.Positive().BucketCounts().FromRaw([]uint64{1})
	return md
}

func TestTranslateMatchesPrometheus(t *testing.T) {
	var tr otlp.Translator
	raw := marshal(t, richMetrics())
	for _, s := range []otlp.Settings{
		{},
		{PromoteResourceAttributes: []string{"k8s.pod.name", "host.cpus", "tags", "missing"}},
		{PromoteScopeMetadata: true},
		{PromoteScopeMetadata: true, PromoteResourceAttributes: []string{"cloud.region"}},
	} {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			wr, st := compare(t, &tr, raw, s)
			if len(wr.Series) < 30 || st.Points == 0 {
				t.Fatalf("only %d series from %d points", len(wr.Series), st.Points)
			}
		})
	}
	t.Run("delta", func(t *testing.T) {
		raw := marshal(t, deltaMetrics())
		wr, st := compare(t, &tr, raw, otlp.Settings{DeltaIngest: true})
		if len(wr.Series) == 0 {
			t.Fatal("no series")
		}
		var wr2 wire.WriteRequest
		st, err := tr.Translate(&wr2, raw, otlp.Settings{}, wire.Limits{})
		if err != nil || st.DeltaPoints != 3 || st.DeltaMetric != "events" || len(wr2.Series) != 0 {
			t.Fatalf("without DeltaIngest: %+v, %v, %d series", st, err, len(wr2.Series))
		}
	})
}

// sdkExport records every instrument kind with the OpenTelemetry Go SDK
// and returns the bodies its OTLP/HTTP exporter sends for two collections,
// with the given temporality.
func sdkExport(t testing.TB, temporality metricdata.Temporality) [][]byte {
	t.Helper()
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(otlp.AppendResponse(nil, false, 0, ""))
	}))
	defer srv.Close()
	ctx := context.Background()
	sel := func(sdkmetric.InstrumentKind) metricdata.Temporality { return temporality }
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+"/v1/metrics"), otlpmetrichttp.WithTemporalitySelector(sel))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(sel))
	res := resource.NewSchemaless(attribute.String("service.name", "sdk-app"), attribute.String("service.version", "1.0"),
		attribute.String("deployment.environment", "test"), attribute.String("telemetry.sdk.language", "go"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "rpc.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
	meter := mp.Meter("example.com/instrumented", metric.WithInstrumentationVersion("0.1.0"))
	counter, _ := meter.Int64Counter("http.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests."))
	updown, _ := meter.Int64UpDownCounter("queue.items", metric.WithUnit("{item}"))
	gauge, _ := meter.Float64Gauge("cpu.temperature", metric.WithUnit("Cel"))
	hist, _ := meter.Float64Histogram("http.duration", metric.WithUnit("s"))
	bytesHist, _ := meter.Int64Histogram("payload.size", metric.WithUnit("By"))
	expHist, _ := meter.Float64Histogram("rpc.duration", metric.WithUnit("ms"))
	obs, _ := meter.Float64ObservableCounter("cpu.time", metric.WithUnit("s"))
	_, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(obs, 12.5, metric.WithAttributes(attribute.String("cpu", "0")))
		return nil
	}, obs)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xa1, 2, 3}, SpanID: trace.SpanID{0xb1, 2}, TraceFlags: trace.FlagsSampled})
	tctx := trace.ContextWithSpanContext(ctx, sc)
	for round := range 2 {
		for i := range 20 {
			attrs := metric.WithAttributes(attribute.String("route", []string{"/", "/a", "/ü"}[i%3]), attribute.Int("code", 200+i%2))
			counter.Add(tctx, int64(i+1), attrs)
			updown.Add(ctx, int64(i%5-2), attrs)
			gauge.Record(ctx, float64(i)/3, attrs)
			hist.Record(tctx, float64(i)*0.37, attrs)
			bytesHist.Record(ctx, int64(i*1000), attrs)
			expHist.Record(tctx, math.Pow(1.7, float64(i-5)), attrs)
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		if err := exp.Export(ctx, &rm); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	return bodies
}

func TestTranslateSDKExportMatchesPrometheus(t *testing.T) {
	var tr otlp.Translator
	for _, temp := range []metricdata.Temporality{metricdata.CumulativeTemporality, metricdata.DeltaTemporality} {
		bodies := sdkExport(t, temp)
		if len(bodies) != 2 {
			t.Fatalf("%d bodies", len(bodies))
		}
		for i, raw := range bodies {
			if dir := os.Getenv("OTLP_WRITE_SEEDS"); dir != "" {
				name := filepath.Join(dir, fmt.Sprintf("sdk-%s-%d", strings.ToLower(temp.String()), i))
				if err := os.WriteFile(name, []byte("go test fuzz v1\n[]byte("+strconv.Quote(string(raw))+")\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := otlp.Settings{DeltaIngest: temp == metricdata.DeltaTemporality}
			wr, _ := compare(t, &tr, raw, s)
			if len(wr.Series) < 50 {
				t.Fatalf("%s export %d: %d series", temp, i, len(wr.Series))
			}
			_, _ = compare(t, &tr, raw, otlp.Settings{DeltaIngest: s.DeltaIngest, PromoteScopeMetadata: true, PromoteResourceAttributes: []string{"service.version"}})
		}
	}
}
