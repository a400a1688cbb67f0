package wire_test

import (
	"testing"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// The corpora: a node_exporter-like exposition of 200 families (about 2,000
// samples), the same as protobuf-delimited, and a 2,000-series remote-write
// batch of 10.7 labels per series.

func textCorpus(b *testing.B) ([]byte, int) {
	in := corpus.Exposition(42, corpus.Options{Families: 200})
	var e wire.Exposition
	if err := e.ParseText(in, wire.Limits{}); err != nil {
		b.Fatal(err)
	}
	return in, e.NumSamples()
}

func reportPerSample(b *testing.B, samples int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}

func BenchmarkParseText(b *testing.B) {
	in, n := textCorpus(b)
	var e wire.Exposition
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ParseText(in, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSample(b, n)
}

func BenchmarkParseDelimited(b *testing.B) {
	text, n := textCorpus(b)
	fams, err := referenceText(text)
	if err != nil {
		b.Fatal(err)
	}
	in := encodeDelimited(b, fams)
	var e wire.Exposition
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ParseDelimited(in, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSample(b, n)
}

func remoteWriteCorpus(n int) ([]byte, []byte) {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 42, n)
	raw := wire.AppendWriteRequest(nil, wr.Series, nil)
	return raw, wire.EncodeSnappy(nil, raw)
}

func BenchmarkDecodeWriteRequest(b *testing.B) {
	raw, compressed := remoteWriteCorpus(2000)
	var wr wire.WriteRequest
	var buf []byte
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = wire.DecodeSnappy(buf, compressed, 1<<26); err != nil {
			b.Fatal(err)
		}
		if err := wr.Unmarshal(buf, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSample(b, 2000)
}

func BenchmarkEncodeWriteRequest(b *testing.B) {
	raw, _ := remoteWriteCorpus(2000)
	var wr wire.WriteRequest
	if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
		b.Fatal(err)
	}
	var out, compressed []byte
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		out = wire.AppendWriteRequest(out[:0], wr.Series, wr.Metadata)
		compressed = wire.EncodeSnappy(compressed, out)
	}
	reportPerSample(b, 2000)
}

// BenchmarkRelayRoundTrip is what POST /api/v1/write does to a batch:
// snappy decode, unmarshal, validate, add external labels, encode, snappy
// encode.
func BenchmarkRelayRoundTrip(b *testing.B) {
	_, compressed := remoteWriteCorpus(2000)
	ext := []wire.Label{{Name: "relay", Value: "r1"}, {Name: "tenant", Value: "t1"}}
	var wr wire.WriteRequest
	var buf, out, enc []byte
	b.SetBytes(int64(len(compressed)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = wire.DecodeSnappy(buf, compressed, 1<<26); err != nil {
			b.Fatal(err)
		}
		if err := wr.Unmarshal(buf, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
		for i := range wr.Series {
			if err := wire.ValidateSeries(&wr.Series[i], wire.Limits{MaxLabels: 256, MaxLabelBytes: 8192}); err != nil {
				b.Fatal(err)
			}
		}
		wr.ApplyLabels(ext)
		out = wire.AppendWriteRequest(out[:0], wr.Series, wr.Metadata)
		enc = wire.EncodeSnappy(enc, out)
	}
	reportPerSample(b, 2000)
}

// BenchmarkAppendWriteRequest is the remote-write 1.0 encoding alone,
// without snappy, of 2,000 single-sample series.
func BenchmarkAppendWriteRequest(b *testing.B) {
	raw, _ := remoteWriteCorpus(2000)
	var wr wire.WriteRequest
	if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
		b.Fatal(err)
	}
	var out []byte
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		out = wire.AppendWriteRequest(out[:0], wr.Series, wr.Metadata)
	}
	reportPerSample(b, 2000)
}
