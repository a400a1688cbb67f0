package push_test

import (
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// BenchmarkTextPushToRequest is the push path's codec work: parse a text
// push of about 2,000 samples, convert it to series with the grouping key,
// encode and snappy-compress the remote-write request.
func BenchmarkTextPushToRequest(b *testing.B) {
	in := corpus.Exposition(42, corpus.Options{Families: 200})
	key, _ := push.ParseGroupingKey("job/node/instance/host1", 0)
	var e wire.Exposition
	var wr wire.WriteRequest
	var c push.Converter
	var out, enc []byte
	now := time.Unix(1_763_000_000, 0)
	samples := 0
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ParseText(in, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
		wr.Reset()
		if err := c.Convert(&wr, &e, key, now, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
		out = wire.AppendWriteRequest(out[:0], wr.Series, wr.Metadata)
		enc = wire.EncodeSnappy(enc, out)
		samples = e.NumSamples()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}
