package bench

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promrelay/promrelay/shared/wire"
)

// BenchmarkRemoteWrite1To2 translates a remote write 1.0 batch (floats) into
// a 2.0 request: promrelay's Unmarshal and V2Encoder.Append against
// prompb's Unmarshal, writev2's SymbolsTable and Marshal (how Prometheus'
// queue manager builds 2.0 requests).
func BenchmarkRemoteWrite1To2(b *testing.B) {
	for _, n := range []int{500, 2000} {
		c := remoteWrite(n)
		b.Run(fmt.Sprintf("series=%d/impl=promrelay", n), func(b *testing.B) {
			var wr wire.WriteRequest
			var e wire.V2Encoder
			var out []byte
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if err := wr.Unmarshal(c.raw, wire.Limits{}); err != nil {
					b.Fatal(err)
				}
				out = e.Append(out[:0], wr.Series, wr.Metadata)
			}
			perSample(b, n)
		})
		b.Run(fmt.Sprintf("series=%d/impl=prometheus", n), func(b *testing.B) {
			st := writev2.NewSymbolTable()
			var sb labels.ScratchBuilder
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				var req prompb.WriteRequest
				if err := req.Unmarshal(c.raw); err != nil {
					b.Fatal(err)
				}
				st.Reset()
				out := writev2.Request{Timeseries: make([]writev2.TimeSeries, len(req.Timeseries))}
				for i, ts := range req.Timeseries {
					o := &out.Timeseries[i]
					o.LabelsRefs = st.SymbolizeLabels(ts.ToLabels(&sb, nil), nil)
					for _, s := range ts.Samples {
						o.Samples = append(o.Samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp})
					}
				}
				out.Symbols = st.Symbols()
				if _, err := out.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, n)
		})
	}
}

// BenchmarkRemoteWrite2To1 translates a remote write 2.0 request (floats)
// into a 1.0 batch: promrelay's UnmarshalV2 and AppendWriteRequest against
// writev2's Unmarshal, label resolution and prompb's Marshal.
func BenchmarkRemoteWrite2To1(b *testing.B) {
	for _, n := range []int{500, 2000} {
		c := remoteWrite(n)
		var wr wire.WriteRequest
		if err := wr.Unmarshal(c.raw, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
		raw2 := wire.AppendWriteRequestV2(nil, wr.Series, wr.Metadata)
		b.Run(fmt.Sprintf("series=%d/impl=promrelay", n), func(b *testing.B) {
			var wr wire.WriteRequest
			var out []byte
			b.SetBytes(int64(len(raw2)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wr.UnmarshalV2(raw2, wire.Limits{}); err != nil {
					b.Fatal(err)
				}
				out = wire.AppendWriteRequest(out[:0], wr.Series, wr.Metadata)
			}
			perSample(b, n)
		})
		b.Run(fmt.Sprintf("series=%d/impl=prometheus", n), func(b *testing.B) {
			b.SetBytes(int64(len(raw2)))
			b.ReportAllocs()
			for b.Loop() {
				var req writev2.Request
				if err := req.Unmarshal(raw2); err != nil {
					b.Fatal(err)
				}
				out := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, len(req.Timeseries))}
				for i, ts := range req.Timeseries {
					o := &out.Timeseries[i]
					o.Labels = make([]prompb.Label, 0, len(ts.LabelsRefs)/2)
					for j := 0; j+1 < len(ts.LabelsRefs); j += 2 {
						o.Labels = append(o.Labels, prompb.Label{Name: req.Symbols[ts.LabelsRefs[j]], Value: req.Symbols[ts.LabelsRefs[j+1]]})
					}
					for _, s := range ts.Samples {
						o.Samples = append(o.Samples, prompb.Sample{Value: s.Value, Timestamp: s.Timestamp})
					}
				}
				if _, err := out.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, n)
		})
	}
}
