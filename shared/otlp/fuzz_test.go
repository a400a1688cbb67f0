package otlp_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	colpb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

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
	seeds := [][]byte{marshal(f, richMetrics()), marshal(f, deltaMetrics())}
	tiny := pmetric.NewMetrics()
	rm := tiny.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "s")
	rm.Resource().Attributes().PutStr("a", "b")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("m")
	m.SetUnit("s")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	seeds = append(seeds, marshal(f, tiny))
	seeds = append(seeds, sdkExport(f, metricdata.DeltaTemporality)[:1]...)
	for _, b := range seeds {
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
		for _, s := range []otlp.Settings{{}, {DeltaIngest: true, PromoteScopeMetadata: true, PromoteResourceAttributes: []string{"service.version", "a"}}} {
			if readAsPdataReads(&tr, raw, s) {
				compare(t, &tr, raw, s)
				continue
			}
			// pdata reads it otherwise; protobuf, whose rules the
			// walker follows, must then read it as the walker does:
			// the translation of raw is that of protobuf-go's
			// re-encoding of it.
			var pb colpb.ExportMetricsServiceRequest
			if proto.Unmarshal(raw, &pb) != nil {
				continue // invalid UTF-8 in a string, which protobuf-go refuses
			}
			canon, err := proto.Marshal(&pb)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := translation(&tr, raw, s), translation(&tr, canon, s); got != want {
				t.Fatalf("the translation depends on the encoding (raw, then protobuf-go's re-encoding):\n%s\n---\n%s", got, want)
			}
		}
	})
}

// readAsPdataReads reports whether promrelay's walker reads raw as pdata
// (Prometheus' decoder) reads it, judged by what Translate makes of raw and
// of pdata's own re-encoding of it (back): the same series, metadata and
// counts. They differ on some non-canonical encodings where pdata departs
// from protobuf (which the walker follows, FuzzUnmarshalOTLP): pdata lets a
// packed run of a repeated scalar replace the elements before it, where
// protobuf appends (FuzzTranslate seed 90f7e97b870fb607: an unpacked
// explicit bound before the packed ones). Translation is compared with
// Prometheus' only where the two read the same.
func readAsPdataReads(tr *otlp.Translator, raw []byte, s otlp.Settings) bool {
	ref := pmetricotlp.NewExportRequest()
	if ref.UnmarshalProto(raw) != nil {
		return false
	}
	back, err := ref.MarshalProto()
	if err != nil {
		return false
	}
	return translation(tr, raw, s) == translation(tr, back, s)
}

// translation is what Translate makes of raw with s, as text: its stats,
// or its error, and its series and metadata, sorted.
func translation(tr *otlp.Translator, raw []byte, s otlp.Settings) string {
	var wr wire.WriteRequest
	st, err := tr.Translate(&wr, raw, s, wire.Limits{})
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for i := range wr.Series {
		out = append(out, seriesString(&wr.Series[i]))
	}
	for _, md := range wr.Metadata {
		out = append(out, fmt.Sprintf("%+v", md))
	}
	slices.Sort(out)
	return fmt.Sprintf("%+v\n%s", st, strings.Join(out, "\n"))
}
