package otlp

import (
	"fmt"
	"math"

	"github.com/promrelay/promrelay/shared/wire"
)

// Native histogram schema bounds (Prometheus model/histogram
// ExponentialSchemaMin and ExponentialSchemaMax) and the zero threshold
// Prometheus gives every translated exponential histogram.
const (
	schemaMin            = -4
	schemaMax            = 8
	defaultZeroThreshold = 1e-128
)

// prompb.Histogram.ResetHint values.
const (
	resetUnknown = 0
	resetGauge   = 3
)

type span struct {
	offset int32
	length uint32
}

// expHistogram appends the native histogram series of exponential
// histogram data point p (addExponentialHistogramDataPoints with
// exponentialToNativeHistogram).
func (t *Translator) expHistogram(m *wire.OTLPMetric, p *wire.OTLPPoint, name string, ts int64) error {
	scale := p.Scale
	if scale < schemaMin {
		return pointError(fmt.Sprintf("cannot convert exponential to native histogram. Scale must be >= %d, was %d", schemaMin, scale))
	}
	var scaleDown int32
	if scale > schemaMax {
		scaleDown = scale - schemaMax
		scale = schemaMax
	}
	hint := uint64(resetUnknown)
	if m.Temporality == wire.OTLPTemporalityDelta {
		hint = resetGauge
	}
	count, sum := p.Count, 0.0
	if p.HasSum {
		sum = p.Sum
	}
	if p.Flags&wire.OTLPNoRecordedValue != 0 {
		count, sum = staleNaN, math.Float64frombits(staleNaN)
	}
	if err := t.exemplars(p.Exemplars); err != nil {
		return err
	}
	// message Histogram {                       (prompb/types.proto)
	//   oneof count { uint64 count_int = 1; double count_float = 2; }
	//   double sum = 3;
	//   sint32 schema = 4;
	//   double zero_threshold = 5;
	//   oneof zero_count { uint64 zero_count_int = 6; double zero_count_float = 7; }
	//   repeated BucketSpan negative_spans = 8;
	//   repeated sint64 negative_deltas = 9;
	//   repeated double negative_counts = 10;
	//   repeated BucketSpan positive_spans = 11;
	//   repeated sint64 positive_deltas = 12;
	//   repeated double positive_counts = 13;
	//   ResetHint reset_hint = 14;
	//   int64 timestamp = 15;
	//   repeated double custom_values = 16;
	// }
	// Encoded as gogo-protobuf encodes prompb.FromIntHistogram's result:
	// field order, zero scalars omitted, both oneofs always present.
	b := t.buf[:0]
	b = append(b, 1<<3|0)
	b = appendVarint(b, count)
	if sum != 0 {
		b = append(b, 3<<3|1)
		b = appendFixed64(b, math.Float64bits(sum))
	}
	if scale != 0 {
		b = append(b, 4<<3|0)
		b = appendVarint(b, uint64(uint32((scale<<1)^(scale>>31))))
	}
	b = append(b, 5<<3|1)
	b = appendFixed64(b, math.Float64bits(defaultZeroThreshold))
	b = append(b, 6<<3|0)
	b = appendVarint(b, p.ZeroCount)
	b = t.appendBuckets(b, p.Negative, scaleDown, 8)
	b = t.appendBuckets(b, p.Positive, scaleDown, 11)
	if hint != 0 {
		b = append(b, 14<<3|0)
		b = appendVarint(b, hint)
	}
	if ts != 0 {
		b = append(b, 15<<3|0)
		b = appendVarint(b, uint64(ts))
	}
	t.buf = b
	enc := t.bytes(b)
	exs := t.exemplarRange(t.exs)
	t.raw = append(t.raw, enc)
	hs := t.raw[len(t.raw)-1 : len(t.raw) : len(t.raw)]
	t.wr.Series = append(t.wr.Series, wire.Series{Labels: t.labels(name, "", ""), Histograms: hs, Exemplars: exs})
	if t.s.MaxBytes <= 0 {
		return nil
	}
	return t.charge(wire.SeriesSize(&t.wr.Series[len(t.wr.Series)-1]))
}

// appendBuckets appends the spans (field spanField) and deltas (the next
// field) of bk converted as convertBucketsLayout does.
func (t *Translator) appendBuckets(b []byte, bk wire.OTLPBuckets, scaleDown int32, spanField byte) []byte {
	counts := t.req.Counts[bk.Counts.Start:bk.Counts.End]
	if len(counts) == 0 {
		return b
	}
	t.spans, t.deltas = convertBucketsLayout(t.spans[:0], t.deltas[:0], counts, bk.Offset, scaleDown)
	for _, s := range t.spans {
		// message BucketSpan { sint32 offset = 1; uint32 length = 2; }
		n := 0
		if s.offset != 0 {
			n += 1 + varintSize(uint64(uint32((s.offset<<1)^(s.offset>>31))))
		}
		if s.length != 0 {
			n += 1 + varintSize(uint64(s.length))
		}
		b = append(b, spanField<<3|2)
		b = appendVarint(b, uint64(n))
		if s.offset != 0 {
			b = append(b, 1<<3|0)
			b = appendVarint(b, uint64(uint32((s.offset<<1)^(s.offset>>31))))
		}
		if s.length != 0 {
			b = append(b, 2<<3|0)
			b = appendVarint(b, uint64(s.length))
		}
	}
	if len(t.deltas) > 0 {
		n := 0
		for _, d := range t.deltas {
			n += varintSize(uint64((d << 1) ^ (d >> 63)))
		}
		b = append(b, (spanField+1)<<3|2)
		b = appendVarint(b, uint64(n))
		for _, d := range t.deltas {
			b = appendVarint(b, uint64((d<<1)^(d>>63)))
		}
	}
	return b
}

// convertBucketsLayout is Prometheus' function of that name with
// adjustOffset true: it merges 2^scaleDown adjacent OTLP buckets into one,
// shifts indexes by one (OTLP bucket i covers (base^i, base^(i+1)],
// Prometheus bucket i+1 does), and starts a new span at gaps of more than
// two buckets, filling smaller gaps with empty buckets.
func convertBucketsLayout(spans []span, deltas []int64, bucketCounts []uint64, offset, scaleDown int32) ([]span, []int64) {
	var count, prevCount int64
	appendDelta := func(count int64) {
		spans[len(spans)-1].length++
		deltas = append(deltas, count-prevCount)
		prevCount = count
	}
	bucketIdx := offset>>scaleDown + 1
	lastIdx := bucketIdx - 1
	spans = append(spans, span{offset: offset>>scaleDown + 1})
	appendBucket := func() {
		gap := bucketIdx - lastIdx - 1
		if gap > 2 {
			spans = append(spans, span{offset: gap})
		} else {
			for range gap {
				appendDelta(0)
			}
		}
		appendDelta(count)
		lastIdx = bucketIdx
	}
	for i := range bucketCounts {
		nextBucketIdx := (int32(i)+offset)>>scaleDown + 1
		if bucketIdx == nextBucketIdx {
			count += int64(bucketCounts[i])
			continue
		}
		if count != 0 {
			appendBucket()
		}
		count = int64(bucketCounts[i])
		bucketIdx = nextBucketIdx
	}
	appendBucket()
	return spans, deltas
}
