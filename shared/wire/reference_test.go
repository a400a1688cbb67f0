package wire_test

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/promrelay/promrelay/shared/wire"
)

// toDTO converts a decoded exposition into the client_model form expfmt
// produces, so the two can be compared with proto.Equal.
func toDTO(e *wire.Exposition) map[string]*dto.MetricFamily {
	out := map[string]*dto.MetricFamily{}
	byIdx := map[int32]*dto.MetricFamily{}
	for i := range e.Families {
		f := &e.Families[i]
		if f.Metrics == 0 || f.Replaced {
			continue
		}
		mf := &dto.MetricFamily{Name: proto.String(f.Name), Type: dto.MetricType(f.Type).Enum()}
		if f.HasHelp {
			mf.Help = proto.String(f.Help)
		}
		if f.Unit != "" {
			mf.Unit = proto.String(f.Unit)
		}
		out[f.Name] = mf
		byIdx[int32(i)] = mf
	}
	for i := range e.Metrics {
		m := &e.Metrics[i]
		mf := byIdx[m.Family]
		if mf == nil {
			continue
		}
		dm := &dto.Metric{}
		for _, l := range m.Labels {
			dm.Label = append(dm.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
		}
		if m.HasTimestamp {
			dm.TimestampMs = proto.Int64(m.TimestampMs)
		}
		switch e.Families[m.Family].Type {
		case wire.Counter:
			dm.Counter = &dto.Counter{Value: proto.Float64(m.Value)}
		case wire.Gauge:
			dm.Gauge = &dto.Gauge{Value: proto.Float64(m.Value)}
		case wire.Untyped:
			dm.Untyped = &dto.Untyped{Value: proto.Float64(m.Value)}
		case wire.Summary:
			s := &dto.Summary{SampleCount: proto.Uint64(m.Count), SampleSum: proto.Float64(m.Sum)}
			for _, q := range m.Quantiles {
				s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(q.Quantile), Value: proto.Float64(q.Value)})
			}
			dm.Summary = s
		case wire.Histogram, wire.GaugeHistogram:
			// Both counts may be set, and the schema keeps both (found by
			// a 15-minute FuzzParseDelimited run: the harness dropped the
			// integer count).
			h := &dto.Histogram{SampleSum: proto.Float64(m.Sum), SampleCount: proto.Uint64(m.Count)}
			if m.CountIsFloat {
				h.SampleCountFloat = proto.Float64(m.CountFloat)
			}
			for _, pt := range m.Buckets {
				b := &dto.Bucket{UpperBound: proto.Float64(pt.UpperBound), CumulativeCount: proto.Uint64(pt.Count)}
				if pt.CountIsFloat {
					b.CumulativeCountFloat = proto.Float64(pt.CountFloat)
				}
				h.Bucket = append(h.Bucket, b)
			}
			if n := e.Native(m); n != nil {
				h.Schema = proto.Int32(n.Schema)
				h.ZeroThreshold = proto.Float64(n.ZeroThreshold)
				// Both may be set; the schema keeps both.
				h.ZeroCount = proto.Uint64(n.ZeroCount)
				if math.Float64bits(n.ZeroCountFloat) != 0 { // -0 too (found by make test's 10 s run)
					h.ZeroCountFloat = proto.Float64(n.ZeroCountFloat)
				}
				for _, s := range n.NegativeSpans {
					h.NegativeSpan = append(h.NegativeSpan, &dto.BucketSpan{Offset: proto.Int32(s.Offset), Length: proto.Uint32(s.Length)})
				}
				for _, s := range n.PositiveSpans {
					h.PositiveSpan = append(h.PositiveSpan, &dto.BucketSpan{Offset: proto.Int32(s.Offset), Length: proto.Uint32(s.Length)})
				}
				h.NegativeDelta, h.PositiveDelta = n.NegativeDeltas, n.PositiveDeltas
				h.NegativeCount, h.PositiveCount = n.NegativeCounts, n.PositiveCounts
			}
			dm.Histogram = h
		}
		mf.Metric = append(mf.Metric, dm)
	}
	return out
}

// canonical renders families in a stable text form that makes presence
// differences of optional zero fields irrelevant and shows float bits.
func canonical(fams map[string]*dto.MetricFamily) string {
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	f64 := func(v float64) string { return fmt.Sprintf("%v(%#x)", v, math.Float64bits(v)) }
	for _, n := range names {
		mf := fams[n]
		fmt.Fprintf(&b, "family %s type=%s help=%q unit=%q\n", mf.GetName(), mf.GetType(), mf.GetHelp(), mf.GetUnit())
		for _, m := range mf.Metric {
			fmt.Fprintf(&b, "  metric")
			for _, l := range m.Label {
				fmt.Fprintf(&b, " %s=%q", l.GetName(), l.GetValue())
			}
			if m.TimestampMs != nil {
				fmt.Fprintf(&b, " @%d", m.GetTimestampMs())
			}
			// The family's type says which value is the metric's, as for
			// expfmt and the Pushgateway: a metric may carry the others
			// too (found by a 15-minute FuzzParseDelimited run: a counter
			// beside a summary's summary).
			typ := mf.GetType()
			switch {
			case typ == dto.MetricType_COUNTER && m.Counter != nil:
				fmt.Fprintf(&b, " counter=%s", f64(m.Counter.GetValue()))
			case typ == dto.MetricType_GAUGE && m.Gauge != nil:
				fmt.Fprintf(&b, " gauge=%s", f64(m.Gauge.GetValue()))
			case typ == dto.MetricType_UNTYPED && m.Untyped != nil:
				fmt.Fprintf(&b, " untyped=%s", f64(m.Untyped.GetValue()))
			case typ == dto.MetricType_SUMMARY && m.Summary != nil:
				s := m.Summary
				fmt.Fprintf(&b, " summary count=%d sum=%s", s.GetSampleCount(), f64(s.GetSampleSum()))
				for _, q := range s.Quantile {
					fmt.Fprintf(&b, " q%s=%s", f64(q.GetQuantile()), f64(q.GetValue()))
				}
			case (typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_GAUGE_HISTOGRAM) && m.Histogram != nil:
				h := m.Histogram
				fmt.Fprintf(&b, " histogram count=%d countf=%s sum=%s", h.GetSampleCount(), f64(h.GetSampleCountFloat()), f64(h.GetSampleSum()))
				for _, bk := range h.Bucket {
					fmt.Fprintf(&b, " le%s=%d/%s", f64(bk.GetUpperBound()), bk.GetCumulativeCount(), f64(bk.GetCumulativeCountFloat()))
				}
				if h.Schema != nil || h.ZeroThreshold != nil || h.ZeroCount != nil || h.ZeroCountFloat != nil || len(h.PositiveSpan)+len(h.NegativeSpan) > 0 {
					fmt.Fprintf(&b, " native schema=%d zt=%s zc=%d zcf=%s", h.GetSchema(), f64(h.GetZeroThreshold()), h.GetZeroCount(), f64(h.GetZeroCountFloat()))
					for _, s := range h.NegativeSpan {
						fmt.Fprintf(&b, " ns(%d,%d)", s.GetOffset(), s.GetLength())
					}
					for _, s := range h.PositiveSpan {
						fmt.Fprintf(&b, " ps(%d,%d)", s.GetOffset(), s.GetLength())
					}
					fmt.Fprintf(&b, " nd%v pd%v nc%v pc%v", h.NegativeDelta, h.PositiveDelta, h.NegativeCount, h.PositiveCount)
				}
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// referenceText parses b with expfmt's text parser (legacy names), the
// parser the Pushgateway uses.
func referenceText(b []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(bytes.NewReader(b))
}

// encodeDelimited writes families as protobuf-delimited MetricFamily
// messages with expfmt's encoder, as client_golang's push client does.
func encodeDelimited(t testing.TB, fams map[string]*dto.MetricFamily) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := enc.Encode(fams[n]); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
