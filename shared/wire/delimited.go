package wire

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// DelimitedContentType is the media type of protobuf-delimited
// io.prometheus.client.MetricFamily messages, as client_golang's push client
// sends it.
const DelimitedContentType = `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited`

// ParseDelimited decodes b as a sequence of varint-length-delimited
// io.prometheus.client.MetricFamily messages into e, replacing its contents.
// A later family with the same name replaces an earlier one (the earlier is
// marked Replaced), as the Pushgateway's decoding into a map does. It checks
// what the Pushgateway's consistency check would reject: invalid metric or
// label names, label values that are not UTF-8, duplicate label names, and a
// metric without a value of its family's type. It returns a *LimitError as
// soon as the exposition crosses lim: each family, each metric, each
// quantile and bucket, and the _sum and _count of each summary or histogram
// count toward lim.MaxSamples.
func (e *Exposition) ParseDelimited(b []byte, lim Limits) error {
	e.Reset()
	d := delimitedDecoder{e: e, lim: lim, bud: newBudget(lim)}
	for i := 0; i < len(b); {
		n, next, err := readVarint(b, i)
		if err != nil {
			return fmt.Errorf("cannot read length of metric family %d: %w", len(e.Families), err)
		}
		i = next
		if n > uint64(len(b)-i) {
			return fmt.Errorf("metric family %d: length %d exceeds the %d bytes left: %w", len(e.Families), n, len(b)-i, errTruncated)
		}
		if err := d.bud.take(1); err != nil {
			return err
		}
		if err := d.family(b[i : i+int(n)]); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				return le
			}
			return fmt.Errorf("cannot unmarshal metric family %d: %w", len(e.Families), err)
		}
		i += int(n)
	}
	return nil
}

// delimitedDecoder holds the state of one ParseDelimited call.
type delimitedDecoder struct {
	e   *Exposition
	lim Limits
	bud budget
}

func (d *delimitedDecoder) family(b []byte) error {
	// message MetricFamily {
	//   optional string     name   = 1;
	//   optional string     help   = 2;
	//   optional MetricType type   = 3;
	//   repeated Metric     metric = 4;
	//   optional string     unit   = 5;
	// }
	// The type decides how metrics are read, and it may follow them, so
	// the scalar fields are read first.
	e := d.e
	f := Family{HasType: true}
	it := fields{b: b}
	for it.next() {
		switch fl := &it.f; fl.num {
		case 1, 2, 5:
			data, err := fl.bytes()
			if err != nil {
				return err
			}
			switch fl.num {
			case 1:
				f.Name = bytesToString(data)
			case 2:
				f.Help, f.HasHelp = bytesToString(data), true
			case 5:
				f.Unit = bytesToString(data)
			}
		case 3:
			v, err := fl.varint()
			if err != nil {
				return fmt.Errorf("cannot read type: %w", err)
			}
			f.Type = MetricType(int32(v))
		case 4:
			if _, err := fl.bytes(); err != nil {
				return fmt.Errorf("cannot read metric: %w", err)
			}
		}
	}
	if it.err != nil {
		return it.err
	}
	if !isValidMetricName(f.Name) {
		return fmt.Errorf("invalid metric name %q", f.Name)
	}
	if f.Type < Counter || f.Type > GaugeHistogram {
		return fmt.Errorf("metric family %q has unknown type %d", f.Name, f.Type)
	}
	if !utf8.ValidString(f.Help) {
		return fmt.Errorf("help of metric family %q is not valid UTF-8", f.Name)
	}
	if prev, ok := e.byName[f.Name]; ok {
		e.Families[prev].Replaced = true
	}
	e.Families = append(e.Families, f)
	fam := int32(len(e.Families) - 1)
	e.byName[f.Name] = fam
	// The first pass checked every field, so this one cannot fail.
	it = fields{b: b}
	for it.next() {
		if it.f.num != 4 {
			continue
		}
		if err := d.metric(fam, it.f.data); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				return err
			}
			return fmt.Errorf("metric family %q: cannot unmarshal metric %d: %w", f.Name, e.Families[fam].Metrics, err)
		}
		e.Families[fam].Metrics++
	}
	return nil
}

func (d *delimitedDecoder) metric(fam int32, b []byte) error {
	// message Metric {
	//   repeated LabelPair label        = 1;
	//   optional Gauge     gauge        = 2;
	//   optional Counter   counter      = 3;
	//   optional Summary   summary      = 4;
	//   optional Untyped   untyped      = 5;
	//   optional Histogram histogram    = 7;
	//   optional int64     timestamp_ms = 6;
	// }
	e := d.e
	typ := e.Families[fam].Type
	if err := d.bud.take(1); err != nil {
		return err
	}
	if typ == Summary || typ == Histogram || typ == GaugeHistogram {
		// _sum and _count
		if err := d.bud.take(2); err != nil {
			return err
		}
	}
	idx := e.newMetric(fam)
	labelsStart := len(e.labels)
	qStart, bStart := len(e.quantiles), len(e.buckets)
	it := fields{b: b}
	for it.next() {
		f := &it.f
		m := &e.Metrics[idx]
		switch f.num {
		case 1:
			// message LabelPair { optional string name = 1; optional string value = 2; }
			data, err := f.bytes()
			if err != nil {
				return fmt.Errorf("cannot read label: %w", err)
			}
			l, err := unmarshalLabel(data)
			if err != nil {
				return fmt.Errorf("cannot unmarshal label: %w", err)
			}
			// The metric name counts as a label of the series.
			if k := d.lim.labelOver(len(e.labels)-labelsStart+2, len(l.Name)+len(l.Value)); k != 0 {
				return d.lim.labelError(k, fmt.Sprintf("metric family %q, label %q", e.Families[fam].Name, l.Name))
			}
			e.labels = append(e.labels, l)
		case 2, 3, 5:
			// message Gauge   { optional double value = 1; }
			// message Counter { optional double value = 1; optional Exemplar exemplar = 2; optional Timestamp created_timestamp = 3; }
			// message Untyped { optional double value = 1; }
			data, err := f.bytes()
			if err != nil {
				return fmt.Errorf("cannot read field %d: %w", f.num, err)
			}
			v, err := unmarshalValue(data, f.num == 3)
			if err != nil {
				return fmt.Errorf("cannot unmarshal field %d: %w", f.num, err)
			}
			if f.num == 2 && typ == Gauge || f.num == 3 && typ == Counter || f.num == 5 && typ == Untyped {
				m.Value, m.HasValue = v, true
			}
		case 4:
			data, err := f.bytes()
			if err != nil {
				return fmt.Errorf("cannot read summary: %w", err)
			}
			if err := d.summary(m, data); err != nil {
				return fmt.Errorf("cannot unmarshal summary: %w", err)
			}
			m.HasValue = m.HasValue || typ == Summary
		case 6:
			v, err := f.varint()
			if err != nil {
				return fmt.Errorf("cannot read timestamp_ms: %w", err)
			}
			m.TimestampMs, m.HasTimestamp = int64(v), true
		case 7:
			data, err := f.bytes()
			if err != nil {
				return fmt.Errorf("cannot read histogram: %w", err)
			}
			if err := d.histogram(m, data); err != nil {
				return fmt.Errorf("cannot unmarshal histogram: %w", err)
			}
			m.HasValue = m.HasValue || typ == Histogram || typ == GaugeHistogram
		}
	}
	if it.err != nil {
		return it.err
	}
	m := &e.Metrics[idx]
	m.Labels = e.labels[labelsStart:len(e.labels):len(e.labels)]
	// A summary's quantiles and a histogram's buckets are decoded in one
	// piece here, so each metric's list is contiguous; only the list of
	// the family's type is kept.
	if typ == Summary && len(e.quantiles) > qStart {
		m.Quantiles = e.quantiles[qStart:len(e.quantiles):len(e.quantiles)]
	} else {
		e.quantiles = e.quantiles[:qStart]
	}
	if (typ == Histogram || typ == GaugeHistogram) && len(e.buckets) > bStart {
		m.Buckets = e.buckets[bStart:len(e.buckets):len(e.buckets)]
	} else {
		e.buckets = e.buckets[:bStart]
	}
	if err := checkLabelPairs(m.Labels); err != nil {
		return err
	}
	if !m.HasValue {
		return fmt.Errorf("metric has no %s value", typ)
	}
	return nil
}

// checkLabelPairs applies the Pushgateway's checks to a metric's labels:
// legacy names not starting with "__", UTF-8 values, no name twice.
func checkLabelPairs(ls []Label) error {
	for j, l := range ls {
		if !IsValidLabelName(l.Name) || len(l.Name) > 1 && l.Name[0] == '_' && l.Name[1] == '_' {
			return fmt.Errorf("invalid label name %q", l.Name)
		}
		if !utf8.ValidString(l.Value) {
			return fmt.Errorf("value of label %q is not valid UTF-8", l.Name)
		}
		for _, o := range ls[:j] {
			if o.Name == l.Name {
				return fmt.Errorf("duplicate label name %q", l.Name)
			}
		}
	}
	return nil
}

// unmarshalValue reads field 1 (double value) of Gauge, Counter or Untyped.
// A Counter's exemplar and created timestamp are checked, not kept.
func unmarshalValue(b []byte, counter bool) (float64, error) {
	var v float64
	it := fields{b: b}
	for it.next() {
		var err error
		switch f := &it.f; {
		case f.num == 1:
			v, err = f.double()
		case counter && f.num == 2:
			err = checkExemplar(f)
		case counter && f.num == 3:
			err = checkTimestamp(f)
		}
		if err != nil {
			return 0, err
		}
	}
	return v, it.err
}

// checkTimestamp checks that a google.protobuf.Timestamp field, which
// promrelay does not keep, is well-formed, as the schema does.
func checkTimestamp(f *field) error {
	// message Timestamp { int64 seconds = 1; int32 nanos = 2; }
	data, err := f.bytes()
	if err != nil {
		return err
	}
	it := fields{b: data}
	for it.next() {
		if it.f.num == 1 || it.f.num == 2 {
			if _, err := it.f.varint(); err != nil {
				return err
			}
		}
	}
	return it.err
}

// checkExemplar checks that an io.prometheus.client.Exemplar field, which
// promrelay does not keep, is well-formed, as the schema does.
func checkExemplar(f *field) error {
	// message Exemplar {
	//   repeated LabelPair label = 1;
	//   optional double value = 2;
	//   optional google.protobuf.Timestamp timestamp = 3;
	// }
	data, err := f.bytes()
	if err != nil {
		return err
	}
	it := fields{b: data}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			var l []byte
			if l, err = f.bytes(); err == nil {
				_, err = unmarshalLabel(l)
			}
		case 2:
			_, err = f.double()
		case 3:
			err = checkTimestamp(f)
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (d *delimitedDecoder) summary(m *Metric, b []byte) error {
	// message Summary {
	//   optional uint64   sample_count = 1;
	//   optional double   sample_sum   = 2;
	//   repeated Quantile quantile     = 3;
	//   optional Timestamp created_timestamp = 4;
	// }
	// message Quantile { optional double quantile = 1; optional double value = 2; }
	e := d.e
	it := fields{b: b}
	for it.next() {
		var err error
		switch f := &it.f; f.num {
		case 1:
			if m.Count, err = f.varint(); err != nil {
				return fmt.Errorf("cannot read sample_count: %w", err)
			}
		case 2:
			if m.Sum, err = f.double(); err != nil {
				return fmt.Errorf("cannot read sample_sum: %w", err)
			}
		case 3:
			data, err := f.bytes()
			if err != nil {
				return fmt.Errorf("cannot read quantile: %w", err)
			}
			if err := d.bud.take(1); err != nil {
				return err
			}
			var q Quantile
			qi := fields{b: data}
			for qi.next() {
				switch qf := &qi.f; qf.num {
				case 1:
					q.Quantile, err = qf.double()
				case 2:
					q.Value, err = qf.double()
				}
				if err != nil {
					return fmt.Errorf("cannot unmarshal quantile: %w", err)
				}
			}
			if qi.err != nil {
				return fmt.Errorf("cannot unmarshal quantile: %w", qi.err)
			}
			e.quantiles = append(e.quantiles, q)
		case 4:
			if err := checkTimestamp(f); err != nil {
				return fmt.Errorf("cannot read created_timestamp: %w", err)
			}
		}
	}
	return it.err
}

func (d *delimitedDecoder) histogram(m *Metric, b []byte) error {
	// message Histogram {
	//   optional uint64 sample_count       = 1;
	//   optional double sample_count_float = 4;
	//   optional double sample_sum         = 2;
	//   repeated Bucket bucket             = 3; // ordered by upper_bound
	//   optional Timestamp created_timestamp = 15;
	//   optional sint32 schema             = 5;
	//   optional double zero_threshold     = 6;
	//   optional uint64 zero_count         = 7;
	//   optional double zero_count_float   = 8;
	//   repeated BucketSpan negative_span  = 9;
	//   repeated sint64 negative_delta     = 10;
	//   repeated double negative_count     = 11;
	//   repeated BucketSpan positive_span  = 12;
	//   repeated sint64 positive_delta     = 13;
	//   repeated double positive_count     = 14;
	//   repeated Exemplar exemplars        = 16;
	// }
	// message Bucket {
	//   optional uint64 cumulative_count       = 1;
	//   optional double cumulative_count_float = 4;
	//   optional double upper_bound            = 2;
	//   optional Exemplar exemplar             = 3;
	// }
	e := d.e
	var n NativeHistogram
	if m.native > 0 {
		n = e.natives[m.native-1] // a repeated histogram field merges
	}
	it := fields{b: b}
	for it.next() {
		f := &it.f
		var err error
		switch f.num {
		case 1:
			m.Count, err = f.varint()
		case 2:
			m.Sum, err = f.double()
		case 4:
			m.CountFloat, err = f.double()
			m.CountIsFloat = true
		case 3:
			err = d.bucket(f)
		case 5:
			var v uint64
			v, err = f.varint()
			n.Schema, n.Present = int32(zigzag(v)), true
		case 6:
			n.ZeroThreshold, err = f.double()
			n.Present = true
		case 7:
			n.ZeroCount, err = f.varint()
			n.Present = true
		case 8:
			n.ZeroCountFloat, err = f.double()
			n.Present = true
		case 15:
			err = checkTimestamp(f)
		case 16:
			err = checkExemplar(f)
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", f.num, err)
		}
	}
	if it.err != nil {
		return it.err
	}
	if err := d.gatherNative(&n, b); err != nil {
		return err
	}
	switch {
	case m.native > 0:
		e.natives[m.native-1] = n
	case n.Present:
		e.natives = append(e.natives, n)
		m.native = int32(len(e.natives))
	}
	return nil
}

// bucket decodes one Bucket field of a histogram.
func (d *delimitedDecoder) bucket(f *field) error {
	data, err := f.bytes()
	if err != nil {
		return err
	}
	if err := d.bud.take(1); err != nil {
		return err
	}
	var bk Bucket
	it := fields{b: data}
	for it.next() {
		switch bf := &it.f; bf.num {
		case 1:
			bk.Count, err = bf.varint()
		case 2:
			bk.UpperBound, err = bf.double()
		case 3:
			err = checkExemplar(bf)
		case 4:
			bk.CountFloat, err = bf.double()
			bk.CountIsFloat = true
		}
		if err != nil {
			return err
		}
	}
	if it.err != nil {
		return it.err
	}
	d.e.buckets = append(d.e.buckets, bk)
	return nil
}

// gatherNative collects the repeated fields of a native histogram b into
// n. Each is gathered over the whole message, so each list is contiguous
// in the shared stores even when the fields interleave.
func (d *delimitedDecoder) gatherNative(n *NativeHistogram, b []byte) error {
	e := d.e
	var err error
	if e.spans, n.NegativeSpans, err = gatherSpans(e.spans, b, 9); err != nil {
		return fmt.Errorf("negative_span: %w", err)
	}
	if e.spans, n.PositiveSpans, err = gatherSpans(e.spans, b, 12); err != nil {
		return fmt.Errorf("positive_span: %w", err)
	}
	if e.ints, n.NegativeDeltas, err = gather(e.ints, b, 10, wireVarint, decodeSint64); err != nil {
		return fmt.Errorf("negative_delta: %w", err)
	}
	if e.ints, n.PositiveDeltas, err = gather(e.ints, b, 13, wireVarint, decodeSint64); err != nil {
		return fmt.Errorf("positive_delta: %w", err)
	}
	if e.floats, n.NegativeCounts, err = gather(e.floats, b, 11, wireFixed64, math.Float64frombits); err != nil {
		return fmt.Errorf("negative_count: %w", err)
	}
	if e.floats, n.PositiveCounts, err = gather(e.floats, b, 14, wireFixed64, math.Float64frombits); err != nil {
		return fmt.Errorf("positive_count: %w", err)
	}
	if len(n.NegativeSpans)+len(n.PositiveSpans) > 0 {
		n.Present = true
	}
	return nil
}

func decodeSint64(v uint64) int64 { return zigzag(v) }

func unmarshalSpan(b []byte) (BucketSpan, error) {
	// message BucketSpan { optional sint32 offset = 1; optional uint32 length = 2; }
	var s BucketSpan
	it := fields{b: b}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			v, err := f.varint()
			if err != nil {
				return s, err
			}
			s.Offset = int32(zigzag(v))
		case 2:
			v, err := f.varint()
			if err != nil {
				return s, err
			}
			s.Length = uint32(v)
		}
	}
	return s, it.err
}

// gatherSpans appends to dst the BucketSpan messages of field num of the
// (already checked) message b, and returns dst and the new spans.
func gatherSpans(dst []BucketSpan, b []byte, num uint64) ([]BucketSpan, []BucketSpan, error) {
	start := len(dst)
	it := fields{b: b}
	for it.next() {
		if it.f.num != num {
			continue
		}
		data, err := it.f.bytes()
		if err != nil {
			return dst, nil, err
		}
		s, err := unmarshalSpan(data)
		if err != nil {
			return dst, nil, err
		}
		dst = append(dst, s)
	}
	if len(dst) == start {
		return dst, nil, it.err
	}
	return dst, dst[start:len(dst):len(dst)], it.err
}
