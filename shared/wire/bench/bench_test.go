package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	vmprompb "github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompbmarshal"
	vmtext "github.com/VictoriaMetrics/VictoriaMetrics/lib/protoparser/prometheus"
	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/prompb"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

type rwCorpus struct {
	raw, compressed []byte
	series          int
}

func remoteWrite(n int) rwCorpus {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 42, n)
	raw := wire.AppendWriteRequest(nil, wr.Series, nil)
	return rwCorpus{raw: raw, compressed: snappy.Encode(nil, raw), series: n}
}

func perSample(b *testing.B, samples int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}

var extLabels = []wire.Label{{Name: "relay", Value: "r1"}, {Name: "tenant", Value: "t1"}}

// BenchmarkRemoteWriteDecode is snappy decode + unmarshal of a batch.
func BenchmarkRemoteWriteDecode(b *testing.B) {
	for _, n := range []int{500, 2000} {
		c := remoteWrite(n)
		b.Run(fmt.Sprintf("series=%d/impl=promrelay", n), func(b *testing.B) {
			var wr wire.WriteRequest
			var buf []byte
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = wire.DecodeSnappy(buf, c.compressed, 64<<20); err != nil {
					b.Fatal(err)
				}
				if err := wr.Unmarshal(buf, wire.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, n)
		})
		b.Run(fmt.Sprintf("series=%d/impl=prompb", n), func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = snappy.Decode(buf[:cap(buf)], c.compressed); err != nil {
					b.Fatal(err)
				}
				var wr prompb.WriteRequest
				if err := wr.Unmarshal(buf); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, n)
		})
		b.Run(fmt.Sprintf("series=%d/impl=victoriametrics", n), func(b *testing.B) {
			var wr vmprompb.WriteRequest
			var buf []byte
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = snappy.Decode(buf[:cap(buf)], c.compressed); err != nil {
					b.Fatal(err)
				}
				if err := wr.UnmarshalProtobuf(buf); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, n)
		})
	}
}

// BenchmarkRemoteWriteRoundTrip is what a relay does to a batch: snappy
// decode, unmarshal, validate, add two labels, marshal, snappy encode.
func BenchmarkRemoteWriteRoundTrip(b *testing.B) {
	for _, n := range []int{500, 2000} {
		c := remoteWrite(n)
		b.Run(fmt.Sprintf("series=%d/impl=promrelay", n), func(b *testing.B) {
			var rw wire.Rewriter
			var dec, out, enc []byte
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dec, err = wire.DecodeSnappy(dec, c.compressed, 64<<20); err != nil {
					b.Fatal(err)
				}
				if out, err = rw.Rewrite(out[:0], dec, extLabels, wire.Limits{MaxLabels: 256, MaxLabelBytes: 8192}); err != nil {
					b.Fatal(err)
				}
				enc = wire.EncodeSnappy(enc, out)
			}
			perSample(b, n)
		})
		b.Run(fmt.Sprintf("series=%d/impl=prompb", n), func(b *testing.B) {
			var dec, out, enc []byte
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dec, err = snappy.Decode(dec[:cap(dec)], c.compressed); err != nil {
					b.Fatal(err)
				}
				var wr prompb.WriteRequest
				if err := wr.Unmarshal(dec); err != nil {
					b.Fatal(err)
				}
				for i := range wr.Timeseries {
					ts := &wr.Timeseries[i]
					ts.Labels = append(ts.Labels, prompb.Label{Name: "relay", Value: "r1"}, prompb.Label{Name: "tenant", Value: "t1"})
				}
				if out, err = wr.Marshal(); err != nil {
					b.Fatal(err)
				}
				enc = snappy.Encode(enc[:cap(enc)], out)
			}
			perSample(b, n)
		})
		b.Run(fmt.Sprintf("series=%d/impl=victoriametrics", n), func(b *testing.B) {
			var wr vmprompb.WriteRequest
			var mwr prompbmarshal.WriteRequest
			var lbls []prompbmarshal.Label
			var dec, out, enc []byte
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dec, err = snappy.Decode(dec[:cap(dec)], c.compressed); err != nil {
					b.Fatal(err)
				}
				if err := wr.UnmarshalProtobuf(dec); err != nil {
					b.Fatal(err)
				}
				mwr.Reset()
				lbls = lbls[:0]
				for i := range wr.Timeseries {
					ts := &wr.Timeseries[i]
					start := len(lbls)
					for _, l := range ts.Labels {
						lbls = append(lbls, prompbmarshal.Label{Name: l.Name, Value: l.Value})
					}
					lbls = append(lbls, prompbmarshal.Label{Name: "relay", Value: "r1"}, prompbmarshal.Label{Name: "tenant", Value: "t1"})
					samples := make([]prompbmarshal.Sample, 0, len(ts.Samples))
					for _, s := range ts.Samples {
						samples = append(samples, prompbmarshal.Sample{Value: s.Value, Timestamp: s.Timestamp})
					}
					mwr.Timeseries = append(mwr.Timeseries, prompbmarshal.TimeSeries{Labels: lbls[start:], Samples: samples})
				}
				out = mwr.MarshalProtobuf(out[:0])
				enc = snappy.Encode(enc[:cap(enc)], out)
			}
			perSample(b, n)
		})
	}
}

func textCorpus() ([]byte, int) {
	in := corpus.Exposition(42, corpus.Options{Families: 200})
	var e wire.Exposition
	if err := e.ParseText(in, wire.Limits{}); err != nil {
		panic(err)
	}
	return in, e.NumSamples()
}

// BenchmarkTextParse is text format 0.0.4 parsing alone.
func BenchmarkTextParse(b *testing.B) {
	in, n := textCorpus()
	b.Run("impl=promrelay", func(b *testing.B) {
		var e wire.Exposition
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if err := e.ParseText(in, wire.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		perSample(b, n)
	})
	b.Run("impl=expfmt", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			p := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := p.TextToMetricFamilies(bytes.NewReader(in)); err != nil {
				b.Fatal(err)
			}
		}
		perSample(b, n)
	})
	b.Run("impl=textparse", func(b *testing.B) {
		st := labels.NewSymbolTable()
		var lset labels.Labels
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			p := textparse.NewPromParser(in, st, false)
			for {
				et, err := p.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if et == textparse.EntrySeries {
					p.Labels(&lset)
				}
			}
		}
		perSample(b, n)
	})
	b.Run("impl=victoriametrics", func(b *testing.B) {
		var rows vmtext.Rows
		s := string(in)
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			rows.UnmarshalWithErrLogger(s, func(string) { b.Fatal("parse error") })
		}
		perSample(b, n)
	})
}

// BenchmarkPushToRequest is the whole push path's codec work: parse, apply
// the grouping key, encode and snappy-compress the remote-write request.
func BenchmarkPushToRequest(b *testing.B) {
	text, n := textCorpus()
	tp := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		b.Fatal(err)
	}
	var dbuf bytes.Buffer
	for _, f := range fams {
		expfmt.NewEncoder(&dbuf, expfmt.NewFormat(expfmt.TypeProtoDelim)).Encode(f)
	}
	delimited := dbuf.Bytes()
	key, _ := push.ParseGroupingKey("job/node/instance/host1", 0)
	now := time.Unix(1_763_000_000, 0)
	for _, f := range []struct {
		name  string
		in    []byte
		parse func(*wire.Exposition, []byte, wire.Limits) error
	}{
		{"format=text", text, (*wire.Exposition).ParseText},
		{"format=delimited", delimited, (*wire.Exposition).ParseDelimited},
	} {
		b.Run(f.name+"/impl=promrelay", func(b *testing.B) {
			var e wire.Exposition
			var wr wire.WriteRequest
			var c push.Converter
			var out, enc []byte
			b.SetBytes(int64(len(f.in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := f.parse(&e, f.in, wire.Limits{}); err != nil {
					b.Fatal(err)
				}
				wr.Reset()
				if err := c.Convert(&wr, &e, key, now, wire.Limits{}); err != nil {
					b.Fatal(err)
				}
				out = wire.AppendWriteRequest(out[:0], wr.Series, wr.Metadata)
				enc = wire.EncodeSnappy(enc, out)
			}
			perSample(b, n)
		})
	}
	b.Run("format=delimited/impl=expfmt", func(b *testing.B) {
		b.SetBytes(int64(len(delimited)))
		b.ReportAllocs()
		for b.Loop() {
			dec := expfmt.NewDecoder(bytes.NewReader(delimited), expfmt.NewFormat(expfmt.TypeProtoDelim))
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
		perSample(b, n)
	})
	b.Run("format=delimited/impl=textparse", func(b *testing.B) {
		st := labels.NewSymbolTable()
		var lset labels.Labels
		b.SetBytes(int64(len(delimited)))
		b.ReportAllocs()
		for b.Loop() {
			p := textparse.NewProtobufParser(delimited, false, true, false, false, st)
			for {
				et, err := p.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if et == textparse.EntrySeries || et == textparse.EntryHistogram {
					p.Labels(&lset)
				}
			}
		}
		perSample(b, n)
	})
}

// BenchmarkSnappy compares golang/snappy with klauspost/compress s2's
// snappy-compatible block functions on the 2,000-series batch.
func BenchmarkSnappy(b *testing.B) {
	c := remoteWrite(2000)
	s2c := s2.EncodeSnappy(nil, c.raw)
	if out, err := snappy.Decode(nil, s2c); err != nil || !bytes.Equal(out, c.raw) {
		b.Fatalf("s2 output is not snappy-compatible: %v", err)
	}
	dst := make([]byte, snappy.MaxEncodedLen(len(c.raw)))
	out := make([]byte, len(c.raw))
	for _, tc := range []struct {
		name string
		run  func()
	}{
		{"op=encode/impl=golang-snappy", func() { snappy.Encode(dst, c.raw) }},
		{"op=encode/impl=s2", func() { s2.EncodeSnappy(dst, c.raw) }},
		{"op=decode/impl=golang-snappy", func() { snappy.Decode(out, c.compressed) }},
		{"op=decode/impl=s2", func() { s2.Decode(out, c.compressed) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			for b.Loop() {
				tc.run()
			}
			perSample(b, c.series)
		})
	}
	b.Logf("compressed sizes: golang/snappy %d bytes, s2 %d bytes (of %d)", len(c.compressed), len(s2c), len(c.raw))
}

// BenchmarkRelayPeakHeap relays a remote-write batch of about 10 MB
// decoded through the relay's path and reports the peak heap in use, as a
// multiple of the decoded size (the target is ≤ 3×).
func BenchmarkRelayPeakHeap(b *testing.B) {
	c := remoteWrite(36000) // ≈ 10 MB decoded
	b.Logf("decoded batch: %d bytes, compressed %d", len(c.raw), len(c.compressed))
	var rw wire.Rewriter
	var dec, out []byte
	up, err := upstream.New(upstream.Config{URL: "http://upstream.invalid/api/v1/write", Transport: nullTransport{},
		Timeout: 10 * time.Second, MaxRequestBytes: 1 << 20, MinBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// With GOGC=10 the heap in use tracks the live working set instead of
	// garbage awaiting a collection (deployments bound that with
	// GOMEMLIMIT).
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	for b.Loop() {
		var err error
		if dec, err = wire.DecodeSnappy(dec, c.compressed, 64<<20); err != nil {
			b.Fatal(err)
		}
		if out, err = rw.Rewrite(out[:0], dec, extLabels, wire.Limits{}); err != nil {
			b.Fatal(err)
		}
		if _, err := up.WriteEncoded(context.Background(), out); err != nil {
			b.Fatal(err)
		}
	}
	close(stop)
	<-done
	// The relay's working set: the request body it holds plus what the
	// path allocated above the heap in use before (the corpus included).
	extra := float64(peak.Load()-min(peak.Load(), before.HeapInuse)) + float64(len(c.compressed))
	b.ReportMetric(extra/float64(len(c.raw)), "peakheap/decoded")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peakheap-MiB")
}

// nullTransport accepts every request without I/O.
type nullTransport struct{}

func (nullTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: 204, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}
