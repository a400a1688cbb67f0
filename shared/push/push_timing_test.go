package push_test

import (
	"bytes"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// BenchmarkTextPushToRequest is the push path's codec work: parse a text
// push of about 2,000 samples, convert it to series with the grouping key,
// encode and snappy-compress the remote-write request.
func BenchmarkTextPushToRequest(b *testing.B) {
	benchmarkPushToRequest(b, corpus.Exposition(42, corpus.Options{Families: 200}), false)
}

// BenchmarkDelimitedPushToRequest is BenchmarkTextPushToRequest for the
// same push as protobuf-delimited MetricFamily messages (expfmt's encoder,
// families in name order).
func BenchmarkDelimitedPushToRequest(b *testing.B) {
	text := corpus.Exposition(42, corpus.Options{Families: 200})
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, n := range names {
		if err := enc.Encode(fams[n]); err != nil {
			b.Fatal(err)
		}
	}
	benchmarkPushToRequest(b, buf.Bytes(), true)
}

func benchmarkPushToRequest(b *testing.B, in []byte, delimited bool) {
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
		var err error
		if delimited {
			err = e.ParseDelimited(in, wire.Limits{})
		} else {
			err = e.ParseText(in, wire.Limits{})
		}
		if err != nil {
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
