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
// marked Dropped), as the Pushgateway's decoding into a map does. It checks
// what the Pushgateway's consistency check would reject: invalid metric or
// label names, label values that are not UTF-8, duplicate label names, and a
// metric without a value of its family's type.
func (e *Exposition) ParseDelimited(b []byte) error {
	e.Reset()
	for i := 0; i < len(b); {
		n, next, err := readVarint(b, i)
		if err != nil {
			return fmt.Errorf("cannot read length of metric family %d: %w", len(e.Families), err)
		}
		i = next
		if n > uint64(len(b)-i) {
			return fmt.Errorf("metric family %d: length %d exceeds the %d bytes left: %w", len(e.Families), n, len(b)-i, errTruncated)
		}
		if err := e.unmarshalFamily(b[i : i+int(n)]); err != nil {
			return fmt.Errorf("cannot unmarshal metric family %d: %w", len(e.Families), err)
		}
		i += int(n)
	}
	return nil
}

func (e *Exposition) unmarshalFamily(b []byte) error {
	// message MetricFamily {
	//   optional string     name   = 1;
	//   optional string     help   = 2;
	//   optional MetricType type   = 3;
	//   repeated Metric     metric = 4;
	//   optional string     unit   = 5;
	// }
	// The type decides how metrics are read, and it may follow them, so
	// the scalar fields are read first.
	f := Family{HasType: true}
	for i := 0; i < len(b); {
		num, typ, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		i = next
		switch num {
		case 1, 2, 5:
			data, next, err := readBytesField(b, i, typ)
			if err != nil {
				return fmt.Errorf("cannot read field %d: %w", num, err)
			}
			i = next
			switch num {
			case 1:
				f.Name = bytesToString(data)
			case 2:
				f.Help, f.HasHelp = bytesToString(data), true
			case 5:
				f.Unit = bytesToString(data)
			}
		case 3:
			v, next, err := readUvarintField(b, i, typ)
			if err != nil {
				return fmt.Errorf("cannot read type: %w", err)
			}
			i = next
			f.Type = MetricType(int32(v))
		default:
			if i, err = skipField(b, i, typ); err != nil {
				return err
			}
		}
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
		e.Families[prev].Dropped = true
	}
	e.Families = append(e.Families, f)
	fam := int32(len(e.Families) - 1)
	e.byName[f.Name] = fam
	for i := 0; i < len(b); {
		num, typ, next, _ := readTag(b, i)
		i = next
		if num != 4 {
			i, _ = skipField(b, i, typ)
			continue
		}
		data, next, err := readBytesField(b, i, typ)
		if err != nil {
			return fmt.Errorf("cannot read metric: %w", err)
		}
		i = next
		if err := e.unmarshalMetric(fam, data); err != nil {
			return fmt.Errorf("metric family %q: cannot unmarshal metric %d: %w", f.Name, e.Families[fam].Metrics, err)
		}
		e.Families[fam].Metrics++
	}
	return nil
}

func (e *Exposition) unmarshalMetric(fam int32, b []byte) error {
	// message Metric {
	//   repeated LabelPair label        = 1;
	//   optional Gauge     gauge        = 2;
	//   optional Counter   counter      = 3;
	//   optional Summary   summary      = 4;
	//   optional Untyped   untyped      = 5;
	//   optional Histogram histogram    = 7;
	//   optional int64     timestamp_ms = 6;
	// }
	typ := e.Families[fam].Type
	idx := e.newMetric(fam)
	labelsStart := len(e.labels)
	for i := 0; i < len(b); {
		num, wt, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		i = next
		m := &e.Metrics[idx]
		switch num {
		case 1:
			data, next, err := readBytesField(b, i, wt)
			if err != nil {
				return fmt.Errorf("cannot read label: %w", err)
			}
			i = next
			// message LabelPair { optional string name = 1; optional string value = 2; }
			l, err := unmarshalLabel(data)
			if err != nil {
				return fmt.Errorf("cannot unmarshal label: %w", err)
			}
			e.labels = append(e.labels, l)
		case 2, 3, 5:
			data, next, err := readBytesField(b, i, wt)
			if err != nil {
				return fmt.Errorf("cannot read field %d: %w", num, err)
			}
			i = next
			// message Gauge   { optional double value = 1; }
			// message Counter { optional double value = 1; optional Exemplar exemplar = 2; optional Timestamp created_timestamp = 3; }
			// message Untyped { optional double value = 1; }
			v, err := unmarshalValue(data)
			if err != nil {
				return fmt.Errorf("cannot unmarshal field %d: %w", num, err)
			}
			if num == 2 && typ == Gauge || num == 3 && typ == Counter || num == 5 && typ == Untyped {
				m.Value, m.HasValue = v, true
			}
		case 4:
			data, next, err := readBytesField(b, i, wt)
			if err != nil {
				return fmt.Errorf("cannot read summary: %w", err)
			}
			i = next
			if err := e.unmarshalSummary(idx, data); err != nil {
				return fmt.Errorf("cannot unmarshal summary: %w", err)
			}
			e.Metrics[idx].HasValue = e.Metrics[idx].HasValue || typ == Summary
		case 6:
			v, next, err := readUvarintField(b, i, wt)
			if err != nil {
				return fmt.Errorf("cannot read timestamp_ms: %w", err)
			}
			i = next
			m.TimestampMs, m.HasTimestamp = int64(v), true
		case 7:
			data, next, err := readBytesField(b, i, wt)
			if err != nil {
				return fmt.Errorf("cannot read histogram: %w", err)
			}
			i = next
			if err := e.unmarshalHistogram(idx, data); err != nil {
				return fmt.Errorf("cannot unmarshal histogram: %w", err)
			}
			e.Metrics[idx].HasValue = e.Metrics[idx].HasValue || typ == Histogram || typ == GaugeHistogram
		default:
			if i, err = skipField(b, i, wt); err != nil {
				return err
			}
		}
	}
	m := &e.Metrics[idx]
	m.Labels = e.labels[labelsStart:len(e.labels):len(e.labels)]
	for j, l := range m.Labels {
		if !IsValidLabelName(l.Name) || len(l.Name) > 1 && l.Name[0] == '_' && l.Name[1] == '_' {
			return fmt.Errorf("invalid label name %q", l.Name)
		}
		if !utf8.ValidString(l.Value) {
			return fmt.Errorf("value of label %q is not valid UTF-8", l.Name)
		}
		for _, o := range m.Labels[:j] {
			if o.Name == l.Name {
				return fmt.Errorf("duplicate label name %q", l.Name)
			}
		}
	}
	if !m.HasValue {
		return fmt.Errorf("metric has no %s value", typ)
	}
	return nil
}

// unmarshalValue reads field 1 (double value) of Gauge, Counter or Untyped.
func unmarshalValue(b []byte) (float64, error) {
	var v float64
	for i := 0; i < len(b); {
		num, typ, next, err := readTag(b, i)
		if err != nil {
			return 0, err
		}
		i = next
		if num == 1 {
			if v, i, err = readDouble(b, i, typ); err != nil {
				return 0, err
			}
			continue
		}
		if i, err = skipField(b, i, typ); err != nil {
			return 0, err
		}
	}
	return v, nil
}

func (e *Exposition) unmarshalSummary(idx int32, b []byte) error {
	// message Summary {
	//   optional uint64   sample_count = 1;
	//   optional double   sample_sum   = 2;
	//   repeated Quantile quantile     = 3;
	//   optional Timestamp created_timestamp = 4;
	// }
	// message Quantile { optional double quantile = 1; optional double value = 2; }
	for i := 0; i < len(b); {
		num, typ, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		i = next
		m := &e.Metrics[idx]
		switch num {
		case 1:
			if m.Count, i, err = readUvarintField(b, i, typ); err != nil {
				return fmt.Errorf("cannot read sample_count: %w", err)
			}
		case 2:
			if m.Sum, i, err = readDouble(b, i, typ); err != nil {
				return fmt.Errorf("cannot read sample_sum: %w", err)
			}
		case 3:
			data, next, err := readBytesField(b, i, typ)
			if err != nil {
				return fmt.Errorf("cannot read quantile: %w", err)
			}
			i = next
			var pt Point
			for j := 0; j < len(data); {
				qn, qt, next, err := readTag(data, j)
				if err != nil {
					return fmt.Errorf("cannot unmarshal quantile: %w", err)
				}
				j = next
				switch qn {
				case 1:
					pt.Bound, j, err = readDouble(data, j, qt)
				case 2:
					pt.Value, j, err = readDouble(data, j, qt)
				default:
					j, err = skipField(data, j, qt)
				}
				if err != nil {
					return fmt.Errorf("cannot unmarshal quantile: %w", err)
				}
			}
			e.addPoint(m, pt)
		default:
			if i, err = skipField(b, i, typ); err != nil {
				return err
			}
		}
	}
	return nil
}

var errPackedOnly = errors.New("wrong wire type for a repeated scalar")

func (e *Exposition) unmarshalHistogram(idx int32, b []byte) error {
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
	// Repeated native fields are gathered one field at a time so each list
	// is contiguous in the shared stores even when the fields interleave.
	m := &e.Metrics[idx]
	n := &m.Native
	var countFloatSet bool
	for i := 0; i < len(b); {
		num, typ, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		i = next
		switch num {
		case 1:
			m.Count, i, err = readUvarintField(b, i, typ)
		case 2:
			m.Sum, i, err = readDouble(b, i, typ)
		case 4:
			m.CountFloat, i, err = readDouble(b, i, typ)
			countFloatSet = true
		case 3:
			var data []byte
			if data, i, err = readBytesField(b, i, typ); err != nil {
				break
			}
			pt := Point{}
			for j := 0; j < len(data) && err == nil; {
				var bn uint64
				var bt int
				if bn, bt, j, err = readTag(data, j); err != nil {
					break
				}
				switch bn {
				case 1:
					pt.Count, j, err = readUvarintField(data, j, bt)
				case 2:
					pt.Bound, j, err = readDouble(data, j, bt)
				case 4:
					pt.CountFloat, j, err = readDouble(data, j, bt)
					pt.CountIsFloat = true
				default:
					j, err = skipField(data, j, bt)
				}
			}
			if err == nil {
				e.addPoint(m, pt)
			}
		case 5:
			var v uint64
			v, i, err = readUvarintField(b, i, typ)
			n.Schema, n.Present = int32(zigzag(v)), true
		case 6:
			n.ZeroThreshold, i, err = readDouble(b, i, typ)
			n.Present = true
		case 7:
			n.ZeroCount, i, err = readUvarintField(b, i, typ)
			n.Present = true
		case 8:
			n.ZeroCountFloat, i, err = readDouble(b, i, typ)
			n.Present = true
		default:
			i, err = skipField(b, i, typ)
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
	}
	if countFloatSet {
		m.CountIsFloat = true
	}
	var err error
	if n.NegativeSpans, err = e.gatherSpans(b, 9); err != nil {
		return fmt.Errorf("negative_span: %w", err)
	}
	if n.PositiveSpans, err = e.gatherSpans(b, 12); err != nil {
		return fmt.Errorf("positive_span: %w", err)
	}
	if n.NegativeDeltas, err = e.gatherSint64(b, 10); err != nil {
		return fmt.Errorf("negative_delta: %w", err)
	}
	if n.PositiveDeltas, err = e.gatherSint64(b, 13); err != nil {
		return fmt.Errorf("positive_delta: %w", err)
	}
	if n.NegativeCounts, err = e.gatherDoubles(b, 11); err != nil {
		return fmt.Errorf("negative_count: %w", err)
	}
	if n.PositiveCounts, err = e.gatherDoubles(b, 14); err != nil {
		return fmt.Errorf("positive_count: %w", err)
	}
	if len(n.NegativeSpans)+len(n.PositiveSpans) > 0 {
		n.Present = true
	}
	return nil
}

// gatherSpans collects the BucketSpan messages of field num.
func (e *Exposition) gatherSpans(b []byte, num uint64) ([]BucketSpan, error) {
	// message BucketSpan { optional sint32 offset = 1; optional uint32 length = 2; }
	start := len(e.spans)
	for i := 0; i < len(b); {
		fn, typ, next, _ := readTag(b, i)
		i = next
		if fn != num {
			i, _ = skipField(b, i, typ)
			continue
		}
		data, next, err := readBytesField(b, i, typ)
		if err != nil {
			return nil, err
		}
		i = next
		var s BucketSpan
		for j := 0; j < len(data); {
			sn, st, next, err := readTag(data, j)
			if err != nil {
				return nil, err
			}
			j = next
			var v uint64
			switch sn {
			case 1:
				v, j, err = readUvarintField(data, j, st)
				s.Offset = int32(zigzag(v))
			case 2:
				v, j, err = readUvarintField(data, j, st)
				s.Length = uint32(v)
			default:
				j, err = skipField(data, j, st)
			}
			if err != nil {
				return nil, err
			}
		}
		e.spans = append(e.spans, s)
	}
	if len(e.spans) == start {
		return nil, nil
	}
	return e.spans[start:len(e.spans):len(e.spans)], nil
}

// gatherSint64 collects a repeated sint64 field, packed or not.
func (e *Exposition) gatherSint64(b []byte, num uint64) ([]int64, error) {
	start := len(e.ints)
	for i := 0; i < len(b); {
		fn, typ, next, _ := readTag(b, i)
		i = next
		if fn != num {
			i, _ = skipField(b, i, typ)
			continue
		}
		switch typ {
		case wireVarint:
			v, next, err := readVarint(b, i)
			if err != nil {
				return nil, err
			}
			i = next
			e.ints = append(e.ints, zigzag(v))
		case wireBytes:
			data, next, err := readBytes(b, i)
			if err != nil {
				return nil, err
			}
			i = next
			for j := 0; j < len(data); {
				v, next, err := readVarint(data, j)
				if err != nil {
					return nil, err
				}
				j = next
				e.ints = append(e.ints, zigzag(v))
			}
		default:
			return nil, errPackedOnly
		}
	}
	if len(e.ints) == start {
		return nil, nil
	}
	return e.ints[start:len(e.ints):len(e.ints)], nil
}

// gatherDoubles collects a repeated double field, packed or not.
func (e *Exposition) gatherDoubles(b []byte, num uint64) ([]float64, error) {
	start := len(e.floats)
	for i := 0; i < len(b); {
		fn, typ, next, _ := readTag(b, i)
		i = next
		if fn != num {
			i, _ = skipField(b, i, typ)
			continue
		}
		switch typ {
		case wireFixed64:
			v, next, err := readFixed64(b, i)
			if err != nil {
				return nil, err
			}
			i = next
			e.floats = append(e.floats, math.Float64frombits(v))
		case wireBytes:
			data, next, err := readBytes(b, i)
			if err != nil {
				return nil, err
			}
			i = next
			if len(data)%8 != 0 {
				return nil, fmt.Errorf("packed doubles of %d bytes: %w", len(data), errTruncated)
			}
			for j := 0; j < len(data); j += 8 {
				v, _, _ := readFixed64(data, j)
				e.floats = append(e.floats, math.Float64frombits(v))
			}
		default:
			return nil, errPackedOnly
		}
	}
	if len(e.floats) == start {
		return nil, nil
	}
	return e.floats[start:len(e.floats):len(e.floats)], nil
}
