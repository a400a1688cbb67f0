package otlp_test

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/wire"
)

// FuzzTranslate checks on arbitrary requests that both promrelay's walker
// and pdata decode that Translate makes the series and metadata
// Prometheus' converter makes, or, where Prometheus rejects the request,
// that Translate rejects or skips some data point (compare). Requests whose
// target_info would span more than 1,000 samples are skipped, as Prometheus
// would generate them all.
func FuzzTranslate(f *testing.F) {
	f.Add(marshal(f, richMetrics()))
	f.Add(marshal(f, deltaMetrics()))
	tiny := pmetric.NewMetrics()
	rm := tiny.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "s")
	rm.Resource().Attributes().PutStr("a", "b")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("m")
	m.SetUnit("s")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	f.Add(marshal(f, tiny))
	for _, b := range sdkExport(f, metricdata.DeltaTemporality)[:1] {
		f.Add(b)
	}
	var tr otlp.Translator
	var req wire.OTLPRequest
	f.Fuzz(func(t *testing.T, raw []byte) {
		if req.Unmarshal(raw, wire.Limits{}) != nil {
			return // the walker's own fuzz target covers decoding
		}
		if pmetricotlp.NewExportRequest().UnmarshalProto(raw) != nil {
			return
		}
		for _, res := range req.Resources {
			lo, hi := ^uint64(0), uint64(0)
			for _, sc := range req.Scopes[res.Scopes.Start:res.Scopes.End] {
				for _, m := range req.Metrics[sc.Metrics.Start:sc.Metrics.End] {
					for _, p := range req.Points[m.Points.Start:m.Points.End] {
						lo, hi = min(lo, p.TimeUnixNano), max(hi, p.TimeUnixNano)
					}
				}
			}
			if lo < hi && (int64(hi)-int64(lo) > 1000*150e9 || int64(hi) < int64(lo)) {
				return
			}
		}
		compare(t, &tr, raw, otlp.Settings{})
		compare(t, &tr, raw, otlp.Settings{DeltaIngest: true, PromoteScopeMetadata: true, PromoteResourceAttributes: []string{"service.version", "a"}})
	})
}
