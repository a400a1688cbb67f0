package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// OTLP metrics (https://opentelemetry.io/docs/specs/otlp/, the schema in
// opentelemetry-proto v1.x: collector/metrics/v1/metrics_service.proto,
// metrics/v1/metrics.proto, common/v1/common.proto and
// resource/v1/resource.proto) are decoded here into OTLPRequest, a flat,
// reusable model of an ExportMetricsServiceRequest. Translating it into
// remote-write series is the job of package otlp.
//
// Protobuf semantics are kept as protobuf-go applies them: the occurrences
// of a singular message field (a resource, a scope, a metric's gauge, an
// attribute's value, a histogram's positive buckets) merge into one message
// — repeated fields concatenate, the last scalar wins — and of a oneof (a
// metric's data, an AnyValue, a data point's value) the last member set
// wins, a message member merging only the occurrences since another member
// was last set. Packed and unpacked repeated scalars are both accepted.

// OTLPRange is the half-open range [Start, End) of entries in one of
// OTLPRequest's slices.
type OTLPRange struct{ Start, End int }

// Len returns the number of entries in r.
func (r OTLPRange) Len() int { return r.End - r.Start }

// OTLPValueKind is which value of a common.v1.AnyValue is set.
type OTLPValueKind uint8

// OTLPValueKind values, one per AnyValue oneof member; OTLPEmpty is an
// AnyValue with none set (pcommon.ValueTypeEmpty).
const (
	OTLPEmpty  OTLPValueKind = iota
	OTLPString               // string_value, in Str
	OTLPBool                 // bool_value, in Int (0 or 1)
	OTLPInt                  // int_value, in Int
	OTLPDouble               // double_value, in Double
	OTLPBytes                // bytes_value, the raw bytes in Str
	OTLPArray                // array_value, its values in Elems (Key "")
	OTLPKVList               // kvlist_value, its key/value pairs in Elems
	// OTLPStrindex is string_value_strindex, an index into a dictionary
	// that only profiles have; its value is in Int. pcommon has no value
	// type for it and it renders as the empty string.
	OTLPStrindex
)

// OTLPValue is one common.v1.AnyValue. Str references the input.
type OTLPValue struct {
	Kind   OTLPValueKind
	Str    string
	Int    int64
	Double float64
	Elems  OTLPRange // into OTLPRequest.Attrs, for OTLPArray and OTLPKVList
}

// OTLPAttr is one common.v1.KeyValue (an attribute), or with an empty Key
// one element of an array value.
type OTLPAttr struct {
	Key   string
	Value OTLPValue
	// KeyStrindex is KeyValue.key_strindex, an index into a dictionary
	// only profiles have (pdata ignores it for metrics).
	KeyStrindex int32
}

// OTLPResource is one ResourceMetrics with its resource.v1.Resource.
type OTLPResource struct {
	Attrs                  OTLPRange // into OTLPRequest.Attrs
	DroppedAttributesCount uint32
	EntityRefs             int       // the number of entity_refs (checked, not kept)
	SchemaURL              string    // ResourceMetrics.schema_url
	Scopes                 OTLPRange // into OTLPRequest.Scopes
}

// OTLPScope is one ScopeMetrics with its common.v1.InstrumentationScope.
type OTLPScope struct {
	Name, Version          string
	Attrs                  OTLPRange // into OTLPRequest.Attrs
	DroppedAttributesCount uint32
	SchemaURL              string    // ScopeMetrics.schema_url
	Metrics                OTLPRange // into OTLPRequest.Metrics
}

// OTLPMetricKind is which data member of a metrics.v1.Metric is set.
type OTLPMetricKind uint8

// OTLPMetricKind values; OTLPNoData is a metric without data (pmetric's
// MetricTypeEmpty).
const (
	OTLPNoData OTLPMetricKind = iota
	OTLPGauge
	OTLPSum
	OTLPHistogram
	OTLPExponentialHistogram
	OTLPSummary
)

// AggregationTemporality values of metrics.v1.AggregationTemporality.
const (
	OTLPTemporalityUnspecified = 0
	OTLPTemporalityDelta       = 1
	OTLPTemporalityCumulative  = 2
)

// OTLPNoRecordedValue is the DataPointFlags bit FLAG_NO_RECORDED_VALUE.
const OTLPNoRecordedValue = 1

// OTLPMetric is one metrics.v1.Metric. Temporality and Monotonic are those
// of a sum, histogram or exponential histogram (0 and false otherwise).
type OTLPMetric struct {
	Name, Description, Unit string
	Kind                    OTLPMetricKind
	Temporality             int32 // an AggregationTemporality value
	Monotonic               bool  // Sum.is_monotonic
	Points                  OTLPRange
	Metadata                OTLPRange // Metric.metadata, into OTLPRequest.Attrs
}

// OTLPNumberType is which value of a NumberDataPoint or Exemplar is set.
type OTLPNumberType uint8

// OTLPNumberType values.
const (
	OTLPNumberNone OTLPNumberType = iota
	OTLPNumberDouble
	OTLPNumberInt
)

// OTLPBuckets is one ExponentialHistogramDataPoint.Buckets.
type OTLPBuckets struct {
	Offset int32
	Counts OTLPRange // into OTLPRequest.Counts
}

// OTLPQuantile is one SummaryDataPoint.ValueAtQuantile.
type OTLPQuantile struct{ Quantile, Value float64 }

// OTLPPoint is one data point of any kind (its metric's Kind says which):
// the fields common to all kinds, then those of NumberDataPoint (gauge and
// sum), HistogramDataPoint, ExponentialHistogramDataPoint and
// SummaryDataPoint. Times are nanoseconds since the Unix epoch.
type OTLPPoint struct {
	Attrs             OTLPRange // into OTLPRequest.Attrs
	StartTimeUnixNano uint64
	TimeUnixNano      uint64
	Flags             uint32
	Exemplars         OTLPRange // into OTLPRequest.Exemplars

	NumberType OTLPNumberType // NumberDataPoint: as_double or as_int
	Double     float64
	Int        int64

	Count          uint64    // histogram, exponential histogram, summary
	Sum            float64   // histogram, exponential histogram (if HasSum), summary
	HasSum         bool      // the optional sum is set (always true for a summary)
	Min, Max       float64   // histogram and exponential histogram, if HasMin/HasMax
	HasMin, HasMax bool      //
	BucketCounts   OTLPRange // HistogramDataPoint.bucket_counts, into Counts
	ExplicitBounds OTLPRange // HistogramDataPoint.explicit_bounds, into Floats

	Scale              int32 // exponential histogram
	ZeroCount          uint64
	ZeroThreshold      float64
	Positive, Negative OTLPBuckets

	Quantiles OTLPRange // SummaryDataPoint.quantile_values, into Quantiles
}

// OTLPExemplar is one metrics.v1.Exemplar. SpanID and TraceID reference the
// input and may have any length, as the schema allows.
type OTLPExemplar struct {
	Attrs           OTLPRange // filtered_attributes, into OTLPRequest.Attrs
	TimeUnixNano    uint64
	NumberType      OTLPNumberType
	Double          float64
	Int             int64
	SpanID, TraceID []byte
}

// OTLPRequest is a decoded collector.metrics.v1.ExportMetricsServiceRequest,
// flattened: each message kind lives in one slice and refers to its children
// by OTLPRange, so that one value reused across requests (Unmarshal resets
// it) decodes without allocating once its slices have grown. The resource
// metrics are Resources in order; each resource's scopes, each scope's
// metrics, each metric's points, and so on, are contiguous ranges in input
// order. Strings and byte slices reference the input of Unmarshal: they are
// valid while it is neither modified nor reused, until the next Unmarshal.
//
// A hostile input cannot make it allocate more than a constant times its
// size: every entry of every slice is at least two bytes of input, and an
// entry is at most 248 bytes (an OTLPPoint; an OTLPAttr is 80), so the
// worst case, a request of empty data points, takes 124 times its size,
// and Limits.MaxSamples bounds the data points.
type OTLPRequest struct {
	Resources []OTLPResource
	Scopes    []OTLPScope
	Metrics   []OTLPMetric
	Points    []OTLPPoint
	Exemplars []OTLPExemplar
	Attrs     []OTLPAttr
	Counts    []uint64  // bucket counts of histograms and exponential histograms
	Floats    []float64 // explicit bounds of histograms
	Quantiles []OTLPQuantile
}

// Reset empties r and keeps its memory for reuse.
func (r *OTLPRequest) Reset() {
	clear(r.Resources)
	r.Resources = r.Resources[:0]
	clear(r.Scopes)
	r.Scopes = r.Scopes[:0]
	clear(r.Metrics)
	r.Metrics = r.Metrics[:0]
	r.Points = r.Points[:0]
	clear(r.Exemplars)
	r.Exemplars = r.Exemplars[:0]
	clear(r.Attrs)
	r.Attrs = r.Attrs[:0]
	r.Counts = r.Counts[:0]
	r.Floats = r.Floats[:0]
	r.Quantiles = r.Quantiles[:0]
}

// OTLPMaxDepth bounds how deeply AnyValue arrays and key/value lists may nest
// inside one attribute value (protobuf-go's bound is 10,000 messages deep
// for the whole request).
const OTLPMaxDepth = 64

var errOTLPDepth = fmt.Errorf("values nested more than %d deep", OTLPMaxDepth)

// reserve grows s by n zero entries and returns it with the index of the
// first.
func reserve[T any](s []T, n int) ([]T, int) {
	start := len(s)
	s = slices.Grow(s, n)[:start+n]
	clear(s[start:])
	return s, start
}

// source is the message that is the merge of the occurrences of field num of
// message b from offset from on (num 0: b itself), as protobuf merges the
// occurrences of a singular message field.
type source struct {
	b        []byte
	num      uint64
	from, to int // to 0: the end of b
}

func single(b []byte) source { return source{b: b} }

// mergedFields iterates over the fields of a source, occurrence after
// occurrence.
type mergedFields struct {
	src     source
	parent  fields
	cur     fields
	started bool
	err     error
}

func (s source) iter() mergedFields {
	return mergedFields{src: s, parent: fields{b: s.b, i: s.from}}
}

func (m *mergedFields) next() bool {
	for {
		if m.cur.next() {
			return true
		}
		if m.cur.err != nil {
			m.err = m.cur.err
			return false
		}
		if m.src.num == 0 {
			if m.started {
				return false
			}
			m.started = true
			m.cur = fields{b: m.src.b}
			continue
		}
		found := false
		for m.parent.next() {
			if m.src.to > 0 && m.parent.f.start >= m.src.to {
				break
			}
			if m.parent.f.num == m.src.num {
				found = true
				break
			}
		}
		if !found {
			m.err = m.parent.err
			return false
		}
		if m.parent.f.typ != wireBytes {
			m.err = m.parent.f.wrongType("a length-delimited")
			return false
		}
		m.cur = fields{b: m.parent.f.data}
	}
}

// count returns the number of occurrences of message field num in src,
// checking their wire type and the framing of src.
func (s source) count(num uint64) (int, error) {
	n := 0
	it := s.iter()
	for it.next() {
		if f := &it.cur.f; f.num == num {
			if f.typ != wireBytes {
				return 0, f.wrongType("a length-delimited")
			}
			n++
		}
	}
	return n, it.err
}

// otlpDecoder is the state of one OTLPRequest.Unmarshal.
type otlpDecoder struct {
	r   *OTLPRequest
	lim Limits
	bud budget
}

// Unmarshal decodes raw, an uncompressed protobuf
// collector.metrics.v1.ExportMetricsServiceRequest, into r (Reset first).
//
// It returns the first error, which names the path to the field
// ("resource_metrics[0].scope_metrics[1].metrics[2].sum.data_points[3].attributes[0].key: invalid UTF-8"):
// malformed protobuf, a known field of the wrong wire type, a string that is
// not valid UTF-8 (as proto3 requires), values nested deeper than
// OTLPMaxDepth; or, as soon as the request crosses lim, a *LimitError:
// every data point counts one toward lim.MaxSamples, lim.MaxLabels bounds
// the attributes of each data point, resource, scope and exemplar, and
// lim.MaxLabelBytes each attribute's key plus value (a string's bytes; the
// encoded bytes of any other value).
func (r *OTLPRequest) Unmarshal(raw []byte, lim Limits) error {
	r.Reset()
	d := otlpDecoder{r: r, lim: lim, bud: newBudget(lim)}
	// message ExportMetricsServiceRequest {
	//   repeated ResourceMetrics resource_metrics = 1;
	// }
	n, err := single(raw).count(1)
	if err != nil {
		return fmt.Errorf("cannot read ExportMetricsServiceRequest field: %w", err)
	}
	var start int
	r.Resources, start = reserve(r.Resources, n)
	i := 0
	it := fields{b: raw}
	for it.next() {
		if it.f.num != 1 {
			continue
		}
		res, err := d.resourceMetrics(it.f.data)
		if err != nil {
			return fmt.Errorf("resource_metrics[%d].%w", i, err)
		}
		r.Resources[start+i] = res
		i++
	}
	return nil
}

func otlpString(f *field, name string) (string, error) {
	data, err := f.bytes()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("%s: invalid UTF-8", name)
	}
	return bytesToString(data), nil
}

func otlpVarint(f *field, name string) (uint64, error) {
	v, err := f.varint()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

func otlpFixed64(f *field, name string) (uint64, error) {
	if f.typ != wireFixed64 {
		return 0, fmt.Errorf("%s: %w", name, f.wrongType("a fixed64"))
	}
	return f.u, nil
}

// sint32 decodes a sint32 varint as protobuf-go does: the low 32 bits,
// zigzag-decoded.
func sint32(v uint64) int32 {
	u := uint32(v)
	return int32(u>>1) ^ -int32(u&1)
}

// containerFields checks the fields of a ResourceMetrics or ScopeMetrics
// message b (msg), which share a shape: 1 its resource or scope (one), 2
// its repeated children (many), 3 its schema_url. It returns the
// schema_url and the number of children.
func containerFields(b []byte, one, many, msg string) (string, int, error) {
	var schemaURL string
	n := 0
	it := fields{b: b}
	for it.next() {
		f := &it.f
		switch f.num {
		case 1:
			if _, err := f.bytes(); err != nil {
				return "", 0, fmt.Errorf("%s: %w", one, err)
			}
		case 2:
			if _, err := f.bytes(); err != nil {
				return "", 0, fmt.Errorf("%s[%d]: %w", many, n, err)
			}
			n++
		case 3:
			var err error
			if schemaURL, err = otlpString(f, "schema_url"); err != nil {
				return "", 0, err
			}
		}
	}
	if it.err != nil {
		return "", 0, fmt.Errorf("cannot read %s field: %w", msg, it.err)
	}
	return schemaURL, n, nil
}

func (d *otlpDecoder) resourceMetrics(b []byte) (OTLPResource, error) {
	// message ResourceMetrics {
	//   Resource resource = 1;
	//   repeated ScopeMetrics scope_metrics = 2;
	//   string schema_url = 3;
	// }
	var res OTLPResource
	schemaURL, nScopes, err := containerFields(b, "resource", "scope_metrics", "ResourceMetrics")
	if err != nil {
		return res, err
	}
	res.SchemaURL = schemaURL
	// message Resource {
	//   repeated KeyValue attributes = 1;
	//   uint32 dropped_attributes_count = 2;
	//   repeated EntityRef entity_refs = 3;
	// }
	src := source{b: b, num: 1}
	mit := src.iter()
	for mit.next() {
		f := &mit.cur.f
		switch f.num {
		case 2:
			v, err := otlpVarint(f, "resource.dropped_attributes_count")
			if err != nil {
				return res, err
			}
			res.DroppedAttributesCount = uint32(v)
		case 3:
			data, err := f.bytes()
			if err == nil {
				err = checkEntityRef(data)
			}
			if err != nil {
				return res, fmt.Errorf("resource.entity_refs[%d].%w", res.EntityRefs, err)
			}
			res.EntityRefs++
		}
	}
	if mit.err != nil {
		return res, fmt.Errorf("resource: %w", mit.err)
	}
	if res.Attrs, err = d.attrs(src, 1, "attributes", true, 0); err != nil {
		return res, fmt.Errorf("resource.%w", err)
	}
	var start int
	d.r.Scopes, start = reserve(d.r.Scopes, nScopes)
	res.Scopes = OTLPRange{start, start + nScopes}
	i := 0
	it := fields{b: b}
	for it.next() {
		if it.f.num != 2 {
			continue
		}
		sc, err := d.scopeMetrics(it.f.data)
		if err != nil {
			return res, fmt.Errorf("scope_metrics[%d].%w", i, err)
		}
		d.r.Scopes[start+i] = sc
		i++
	}
	return res, nil
}

func checkEntityRef(b []byte) error {
	// message EntityRef {
	//   string schema_url = 1;
	//   string type = 2;
	//   repeated string id_keys = 3;
	//   repeated string description_keys = 4;
	// }
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if f.num >= 1 && f.num <= 4 {
			if _, err := otlpString(f, [...]string{"", "schema_url", "type", "id_keys", "description_keys"}[f.num]); err != nil {
				return err
			}
		}
	}
	if it.err != nil {
		return fmt.Errorf("cannot read EntityRef field: %w", it.err)
	}
	return nil
}

// attrs decodes the attributes (repeated KeyValue field num) of the message
// src into a range of d.r.Attrs; bounded says whether they count as labels
// for lim.MaxLabels and lim.MaxLabelBytes.
func (d *otlpDecoder) attrs(src source, num uint64, name string, bounded bool, depth int) (OTLPRange, error) {
	n, err := src.count(num)
	if err != nil {
		return OTLPRange{}, fmt.Errorf("%s: %w", name, err)
	}
	if n == 0 {
		return OTLPRange{}, nil
	}
	if bounded && d.lim.MaxLabels > 0 && n > d.lim.MaxLabels {
		return OTLPRange{}, &LimitError{Kind: LimitLabels, Limit: d.lim.MaxLabels, Where: fmt.Sprintf("%d %s", n, name)}
	}
	var start int
	d.r.Attrs, start = reserve(d.r.Attrs, n)
	i := 0
	it := src.iter()
	for it.next() {
		if it.cur.f.num != num {
			continue
		}
		kv, size, err := d.keyValue(it.cur.f.data, depth)
		if err != nil {
			return OTLPRange{}, fmt.Errorf("%s[%d].%w", name, i, err)
		}
		if bounded && d.lim.MaxLabelBytes > 0 && len(kv.Key)+size > d.lim.MaxLabelBytes {
			return OTLPRange{}, &LimitError{Kind: LimitLabelBytes, Limit: d.lim.MaxLabelBytes, Where: "attribute " + quoteShort(kv.Key)}
		}
		d.r.Attrs[start+i] = kv
		i++
	}
	return OTLPRange{start, start + n}, nil
}

// keyValue decodes a KeyValue and returns it with its value's size in bytes
// (a string's length, otherwise its encoded length).
func (d *otlpDecoder) keyValue(b []byte, depth int) (OTLPAttr, int, error) {
	// message KeyValue {
	//   string key = 1;
	//   AnyValue value = 2;
	//   int32 key_strindex = 3;
	// }
	var kv OTLPAttr
	size, nValues := 0, 0
	var value []byte
	it := fields{b: b}
	for it.next() {
		f := &it.f
		var err error
		switch f.num {
		case 1:
			kv.Key, err = otlpString(f, "key")
		case 2:
			if _, err = f.bytes(); err != nil {
				err = fmt.Errorf("value: %w", err)
			}
			size += len(f.data)
			value = f.data
			nValues++
		case 3:
			var u uint64
			u, err = otlpVarint(f, "key_strindex")
			kv.KeyStrindex = int32(u)
		}
		if err != nil {
			return kv, 0, err
		}
	}
	if it.err != nil {
		return kv, 0, fmt.Errorf("cannot read KeyValue field: %w", it.err)
	}
	src := source{b: b, num: 2}
	if nValues == 1 {
		src = single(value) // the common case: no occurrences to merge
	}
	v, err := d.anyValue(src, depth)
	if err != nil {
		return kv, 0, fmt.Errorf("value.%w", err)
	}
	kv.Value = v
	if v.Kind == OTLPString {
		size = len(v.Str)
	}
	return kv, size, nil
}

// anyValue decodes the AnyValue src.
func (d *otlpDecoder) anyValue(src source, depth int) (OTLPValue, error) {
	// message AnyValue {
	//   oneof value {
	//     string string_value = 1;
	//     bool bool_value = 2;
	//     int64 int_value = 3;
	//     double double_value = 4;
	//     ArrayValue array_value = 5;
	//     KeyValueList kvlist_value = 6;
	//     bytes bytes_value = 7;
	//     int32 string_value_strindex = 8;
	//   }
	// }
	var v OTLPValue
	var kind uint64
	seq, runStart := 0, 0
	replaced := false // an array or kvlist run was replaced by another member
	it := src.iter()
	for it.next() {
		f := &it.cur.f
		if f.num < 1 || f.num > 8 {
			seq++
			continue
		}
		if f.num != kind {
			replaced = replaced || kind == 5 || kind == 6
			kind, runStart = f.num, seq
		}
		seq++
		v = OTLPValue{}
		var err error
		switch f.num {
		case 1:
			v.Kind = OTLPString
			v.Str, err = otlpString(f, "string_value")
		case 2, 3, 8:
			var u uint64
			u, err = otlpVarint(f, [...]string{2: "bool_value", 3: "int_value", 8: "string_value_strindex"}[f.num])
			switch f.num {
			case 2:
				v.Kind = OTLPBool
				if u != 0 {
					v.Int = 1
				}
			case 3:
				v.Kind, v.Int = OTLPInt, int64(u)
			default:
				v.Kind, v.Int = OTLPStrindex, int64(int32(u))
			}
		case 4:
			v.Kind = OTLPDouble
			if v.Double, err = f.double(); err != nil {
				err = fmt.Errorf("double_value: %w", err)
			}
		case 5, 6:
			v.Kind = OTLPArray
			if f.num == 6 {
				v.Kind = OTLPKVList
			}
			if _, err = f.bytes(); err != nil {
				err = fmt.Errorf("%s: %w", [...]string{5: "array_value", 6: "kvlist_value"}[f.num], err)
			}
		case 7:
			v.Kind = OTLPBytes
			var data []byte
			if data, err = f.bytes(); err != nil {
				err = fmt.Errorf("bytes_value: %w", err)
			}
			v.Str = bytesToString(data)
		}
		if err != nil {
			return v, err
		}
	}
	if it.err != nil {
		return v, fmt.Errorf("cannot read AnyValue field: %w", it.err)
	}
	// protobuf-go decodes every occurrence of a message member, also those
	// a later member replaces: they are decoded here, and dropped.
	seq = 0
	it = src.iter()
	for replaced && it.next() {
		f := &it.cur.f
		if seq++; (f.num == 5 || f.num == 6) && (seq-1 < runStart || f.num != kind) {
			n := len(d.r.Attrs)
			_, err := d.elems(source{}, f.num, 0, f.data, depth)
			clear(d.r.Attrs[n:])
			d.r.Attrs = d.r.Attrs[:n]
			if err != nil {
				return v, err
			}
		}
	}
	if kind != 5 && kind != 6 {
		return v, nil
	}
	// The occurrences of the last run merge.
	var err error
	v.Elems, err = d.elems(src, kind, runStart, nil, depth)
	return v, err
}

// elems decodes the elements (field 1) of the ArrayValue (kind 5) or
// KeyValueList (kind 6) that is the merge of the occurrences of field kind
// of src from its fromSeq-th field on — or, when body is not nil, of that
// one body — into a range of d.r.Attrs.
func (d *otlpDecoder) elems(src source, kind uint64, fromSeq int, body []byte, depth int) (OTLPRange, error) {
	// message ArrayValue { repeated AnyValue values = 1; }
	// message KeyValueList { repeated KeyValue values = 1; }
	if depth >= OTLPMaxDepth {
		return OTLPRange{}, errOTLPDepth
	}
	var rg OTLPRange
	n, i, start := 0, 0, 0
	for pass := 0; pass < 2; pass++ {
		if pass == 1 {
			d.r.Attrs, start = reserve(d.r.Attrs, n)
			rg = OTLPRange{start, start + n}
		}
		if body != nil {
			if err := d.elemsOf(body, kind, pass, &n, &i, start, depth); err != nil {
				return rg, err
			}
			continue
		}
		seq := 0
		it := src.iter()
		for it.next() {
			f := &it.cur.f
			if seq++; seq-1 < fromSeq || f.num != kind {
				continue
			}
			if err := d.elemsOf(f.data, kind, pass, &n, &i, start, depth); err != nil {
				return rg, err
			}
		}
	}
	return rg, nil
}

// elemsOf counts (pass 0) or decodes into d.r.Attrs[start+*i:] (pass 1) the
// elements of one ArrayValue or KeyValueList body.
func (d *otlpDecoder) elemsOf(body []byte, kind uint64, pass int, n, i *int, start, depth int) error {
	field := [...]string{5: "array_value", 6: "kvlist_value"}[kind]
	vit := fields{b: body}
	for vit.next() {
		g := &vit.f
		if g.num != 1 {
			continue
		}
		if g.typ != wireBytes {
			return fmt.Errorf("%s.values: %w", field, g.wrongType("a length-delimited"))
		}
		if pass == 0 {
			*n++
			continue
		}
		var e OTLPAttr
		var err error
		if kind == 5 {
			e.Value, err = d.anyValue(single(g.data), depth+1)
		} else {
			e, _, err = d.keyValue(g.data, depth+1)
		}
		if err != nil {
			return fmt.Errorf("%s.values[%d].%w", field, *i, err)
		}
		d.r.Attrs[start+*i] = e
		*i++
	}
	if vit.err != nil {
		return fmt.Errorf("%s: cannot read field: %w", field, vit.err)
	}
	return nil
}

func (d *otlpDecoder) scopeMetrics(b []byte) (OTLPScope, error) {
	// message ScopeMetrics {
	//   InstrumentationScope scope = 1;
	//   repeated Metric metrics = 2;
	//   string schema_url = 3;
	// }
	var sc OTLPScope
	schemaURL, nMetrics, err := containerFields(b, "scope", "metrics", "ScopeMetrics")
	if err != nil {
		return sc, err
	}
	sc.SchemaURL = schemaURL
	// message InstrumentationScope {
	//   string name = 1;
	//   string version = 2;
	//   repeated KeyValue attributes = 3;
	//   uint32 dropped_attributes_count = 4;
	// }
	src := source{b: b, num: 1}
	mit := src.iter()
	for mit.next() {
		f := &mit.cur.f
		var err error
		switch f.num {
		case 1:
			sc.Name, err = otlpString(f, "scope.name")
		case 2:
			sc.Version, err = otlpString(f, "scope.version")
		case 4:
			var v uint64
			v, err = otlpVarint(f, "scope.dropped_attributes_count")
			sc.DroppedAttributesCount = uint32(v)
		}
		if err != nil {
			return sc, err
		}
	}
	if mit.err != nil {
		return sc, fmt.Errorf("scope: %w", mit.err)
	}
	if sc.Attrs, err = d.attrs(src, 3, "attributes", true, 0); err != nil {
		return sc, fmt.Errorf("scope.%w", err)
	}
	var start int
	d.r.Metrics, start = reserve(d.r.Metrics, nMetrics)
	sc.Metrics = OTLPRange{start, start + nMetrics}
	i := 0
	it := fields{b: b}
	for it.next() {
		if it.f.num != 2 {
			continue
		}
		m, err := d.metric(it.f.data)
		if err != nil {
			return sc, fmt.Errorf("metrics[%d].%w", i, err)
		}
		d.r.Metrics[start+i] = m
		i++
	}
	return sc, nil
}

// otlpKinds maps Metric's data field numbers to kinds and names.
var otlpKinds = [...]struct {
	kind OTLPMetricKind
	name string
}{5: {OTLPGauge, "gauge"}, 7: {OTLPSum, "sum"}, 9: {OTLPHistogram, "histogram"}, 10: {OTLPExponentialHistogram, "exponential_histogram"}, 11: {OTLPSummary, "summary"}}

func (d *otlpDecoder) metric(b []byte) (OTLPMetric, error) {
	// message Metric {
	//   string name = 1;
	//   string description = 2;
	//   string unit = 3;
	//   oneof data {
	//     Gauge gauge = 5;
	//     Sum sum = 7;
	//     Histogram histogram = 9;
	//     ExponentialHistogram exponential_histogram = 10;
	//     Summary summary = 11;
	//   }
	//   repeated KeyValue metadata = 12;
	// }
	var m OTLPMetric
	var kindNum uint64
	runStart := 0
	replaced := false // a data member was replaced by another
	it := fields{b: b}
	for it.next() {
		f := &it.f
		var err error
		switch f.num {
		case 1:
			m.Name, err = otlpString(f, "name")
		case 2:
			m.Description, err = otlpString(f, "description")
		case 3:
			m.Unit, err = otlpString(f, "unit")
		case 5, 7, 9, 10, 11:
			if _, err = f.bytes(); err != nil {
				err = fmt.Errorf("%s: %w", otlpKinds[f.num].name, err)
			}
			if f.num != kindNum {
				replaced = replaced || kindNum != 0
				kindNum, runStart = f.num, f.start
			}
		case 12:
			if _, err = f.bytes(); err != nil {
				err = fmt.Errorf("metadata: %w", err)
			}
		}
		if err != nil {
			return m, err
		}
	}
	if it.err != nil {
		return m, fmt.Errorf("cannot read Metric field: %w", it.err)
	}
	var err error
	if m.Metadata, err = d.attrs(single(b), 12, "metadata", false, 0); err != nil {
		return m, err
	}
	if kindNum == 0 {
		return m, nil
	}
	// protobuf-go decodes every occurrence of a data member, also those a
	// later member replaces: each replaced run is decoded, and dropped.
	runFrom, runNum := 0, uint64(0)
	it = fields{b: b}
	for replaced && it.next() {
		f := &it.f
		if f.num >= uint64(len(otlpKinds)) || otlpKinds[f.num].name == "" || f.num == runNum {
			continue
		}
		if runNum != 0 && runFrom < runStart {
			if err := d.dropped(source{b: b, num: runNum, from: runFrom, to: f.start}, runNum); err != nil {
				return m, err
			}
		}
		runFrom, runNum = f.start, f.num
	}
	m.Kind = otlpKinds[kindNum].kind
	return m, d.metricData(&m, source{b: b, num: kindNum, from: runStart})
}

// dropped decodes a replaced run of a metric's data member and drops what
// it decoded.
func (d *otlpDecoder) dropped(src source, num uint64) error {
	r := d.r
	nPoints, nEx, nAttrs, nCounts, nFloats, nQ := len(r.Points), len(r.Exemplars), len(r.Attrs), len(r.Counts), len(r.Floats), len(r.Quantiles)
	m := OTLPMetric{Kind: otlpKinds[num].kind}
	err := d.metricData(&m, src)
	r.Points = r.Points[:nPoints]
	clear(r.Exemplars[nEx:])
	r.Exemplars = r.Exemplars[:nEx]
	clear(r.Attrs[nAttrs:])
	r.Attrs = r.Attrs[:nAttrs]
	r.Counts, r.Floats, r.Quantiles = r.Counts[:nCounts], r.Floats[:nFloats], r.Quantiles[:nQ]
	return err
}

// metricData decodes the data member src of kind m.Kind into m.
func (d *otlpDecoder) metricData(m *OTLPMetric, src source) error {
	name := otlpKinds[src.num].name
	// message Gauge { repeated NumberDataPoint data_points = 1; }
	// message Sum {
	//   repeated NumberDataPoint data_points = 1;
	//   AggregationTemporality aggregation_temporality = 2;
	//   bool is_monotonic = 3;
	// }
	// message Histogram {                // and ExponentialHistogram
	//   repeated HistogramDataPoint data_points = 1;
	//   AggregationTemporality aggregation_temporality = 2;
	// }
	// message Summary { repeated SummaryDataPoint data_points = 1; }
	n := 0
	mit := src.iter()
	for mit.next() {
		f := &mit.cur.f
		switch {
		case f.num == 1:
			if _, err := f.bytes(); err != nil {
				return fmt.Errorf("%s.data_points[%d]: %w", name, n, err)
			}
			n++
		case f.num == 2 && m.Kind != OTLPGauge && m.Kind != OTLPSummary:
			v, err := f.varint()
			if err != nil {
				return fmt.Errorf("%s.aggregation_temporality: %w", name, err)
			}
			m.Temporality = int32(v)
		case f.num == 3 && m.Kind == OTLPSum:
			v, err := f.varint()
			if err != nil {
				return fmt.Errorf("%s.is_monotonic: %w", name, err)
			}
			m.Monotonic = v != 0
		}
	}
	if mit.err != nil {
		return fmt.Errorf("%s: cannot read field: %w", name, mit.err)
	}
	if err := d.bud.take(n); err != nil {
		return fmt.Errorf("%s.data_points: %w", name, err)
	}
	var start int
	d.r.Points, start = reserve(d.r.Points, n)
	m.Points = OTLPRange{start, start + n}
	i := 0
	mit = src.iter()
	for mit.next() {
		f := &mit.cur.f
		if f.num != 1 {
			continue
		}
		var p OTLPPoint
		var err error
		switch m.Kind {
		case OTLPGauge, OTLPSum:
			p, err = d.numberPoint(f.data)
		case OTLPHistogram:
			p, err = d.histogramPoint(f.data)
		case OTLPExponentialHistogram:
			p, err = d.expHistogramPoint(f.data)
		case OTLPSummary:
			p, err = d.summaryPoint(f.data)
		}
		if err != nil {
			return fmt.Errorf("%s.data_points[%d].%w", name, i, err)
		}
		d.r.Points[start+i] = p
		i++
	}
	return nil
}

// pointTimes handles the fields every data point kind numbers alike:
// start_time_unix_nano (2) and time_unix_nano (3).
func pointTimes(f *field, p *OTLPPoint) (bool, error) {
	switch f.num {
	case 2:
		v, err := otlpFixed64(f, "start_time_unix_nano")
		p.StartTimeUnixNano = v
		return true, err
	case 3:
		v, err := otlpFixed64(f, "time_unix_nano")
		p.TimeUnixNano = v
		return true, err
	}
	return false, nil
}

func otlpDouble(f *field, name string) (float64, error) {
	v, err := f.double()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

func (d *otlpDecoder) numberPoint(b []byte) (OTLPPoint, error) {
	// message NumberDataPoint {
	//   repeated KeyValue attributes = 7;
	//   fixed64 start_time_unix_nano = 2;
	//   fixed64 time_unix_nano = 3;
	//   oneof value { double as_double = 4; sfixed64 as_int = 6; }
	//   repeated Exemplar exemplars = 5;
	//   uint32 flags = 8;
	// }
	var p OTLPPoint
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if ok, err := pointTimes(f, &p); ok {
			if err != nil {
				return p, err
			}
			continue
		}
		var err error
		switch f.num {
		case 4:
			p.NumberType = OTLPNumberDouble
			p.Double, err = otlpDouble(f, "as_double")
		case 6:
			var u uint64
			u, err = otlpFixed64(f, "as_int")
			p.NumberType, p.Int = OTLPNumberInt, int64(u)
		case 8:
			var u uint64
			u, err = otlpVarint(f, "flags")
			p.Flags = uint32(u)
		}
		if err != nil {
			return p, err
		}
	}
	if it.err != nil {
		return p, fmt.Errorf("cannot read NumberDataPoint field: %w", it.err)
	}
	return p, d.pointLists(b, &p, 7, 5)
}

// pointLists decodes a data point's attributes (field attrNum) and
// exemplars (field exNum, 0: none).
func (d *otlpDecoder) pointLists(b []byte, p *OTLPPoint, attrNum, exNum uint64) error {
	var err error
	if p.Attrs, err = d.attrs(single(b), attrNum, "attributes", true, 0); err != nil {
		return err
	}
	if exNum == 0 {
		return nil
	}
	n, err := single(b).count(exNum)
	if err != nil {
		return fmt.Errorf("exemplars: %w", err)
	}
	var start int
	d.r.Exemplars, start = reserve(d.r.Exemplars, n)
	p.Exemplars = OTLPRange{start, start + n}
	i := 0
	it := fields{b: b}
	for it.next() {
		if it.f.num != exNum {
			continue
		}
		e, err := d.exemplar(it.f.data)
		if err != nil {
			return fmt.Errorf("exemplars[%d].%w", i, err)
		}
		d.r.Exemplars[start+i] = e
		i++
	}
	return nil
}

func (d *otlpDecoder) exemplar(b []byte) (OTLPExemplar, error) {
	// message Exemplar {
	//   repeated KeyValue filtered_attributes = 7;
	//   fixed64 time_unix_nano = 2;
	//   oneof value { double as_double = 3; sfixed64 as_int = 6; }
	//   bytes span_id = 4;
	//   bytes trace_id = 5;
	// }
	var e OTLPExemplar
	it := fields{b: b}
	for it.next() {
		f := &it.f
		var err error
		switch f.num {
		case 2:
			e.TimeUnixNano, err = otlpFixed64(f, "time_unix_nano")
		case 3:
			e.NumberType = OTLPNumberDouble
			e.Double, err = otlpDouble(f, "as_double")
		case 6:
			var u uint64
			u, err = otlpFixed64(f, "as_int")
			e.NumberType, e.Int = OTLPNumberInt, int64(u)
		case 4:
			if e.SpanID, err = f.bytes(); err != nil {
				err = fmt.Errorf("span_id: %w", err)
			}
		case 5:
			if e.TraceID, err = f.bytes(); err != nil {
				err = fmt.Errorf("trace_id: %w", err)
			}
		}
		if err != nil {
			return e, err
		}
	}
	if it.err != nil {
		return e, fmt.Errorf("cannot read Exemplar field: %w", it.err)
	}
	var err error
	e.Attrs, err = d.attrs(single(b), 7, "filtered_attributes", true, 0)
	return e, err
}

func (d *otlpDecoder) histogramPoint(b []byte) (OTLPPoint, error) {
	// message HistogramDataPoint {
	//   repeated KeyValue attributes = 9;
	//   fixed64 start_time_unix_nano = 2;
	//   fixed64 time_unix_nano = 3;
	//   fixed64 count = 4;
	//   optional double sum = 5;
	//   repeated fixed64 bucket_counts = 6;
	//   repeated double explicit_bounds = 7;
	//   repeated Exemplar exemplars = 8;
	//   uint32 flags = 10;
	//   optional double min = 11;
	//   optional double max = 12;
	// }
	var p OTLPPoint
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if ok, err := pointTimes(f, &p); ok {
			if err != nil {
				return p, err
			}
			continue
		}
		var err error
		switch f.num {
		case 4:
			p.Count, err = otlpFixed64(f, "count")
		case 5:
			p.HasSum = true
			p.Sum, err = otlpDouble(f, "sum")
		case 10:
			var u uint64
			u, err = otlpVarint(f, "flags")
			p.Flags = uint32(u)
		case 11:
			p.HasMin = true
			p.Min, err = otlpDouble(f, "min")
		case 12:
			p.HasMax = true
			p.Max, err = otlpDouble(f, "max")
		}
		if err != nil {
			return p, err
		}
	}
	if it.err != nil {
		return p, fmt.Errorf("cannot read HistogramDataPoint field: %w", it.err)
	}
	start := len(d.r.Counts)
	var err error
	if d.r.Counts, _, err = gather(d.r.Counts, b, 6, wireFixed64, func(u uint64) uint64 { return u }); err != nil {
		return p, fmt.Errorf("bucket_counts: %w", err)
	}
	p.BucketCounts = OTLPRange{start, len(d.r.Counts)}
	start = len(d.r.Floats)
	if d.r.Floats, _, err = gather(d.r.Floats, b, 7, wireFixed64, math.Float64frombits); err != nil {
		return p, fmt.Errorf("explicit_bounds: %w", err)
	}
	p.ExplicitBounds = OTLPRange{start, len(d.r.Floats)}
	return p, d.pointLists(b, &p, 9, 8)
}

func (d *otlpDecoder) expHistogramPoint(b []byte) (OTLPPoint, error) {
	// message ExponentialHistogramDataPoint {
	//   repeated KeyValue attributes = 1;
	//   fixed64 start_time_unix_nano = 2;
	//   fixed64 time_unix_nano = 3;
	//   fixed64 count = 4;
	//   optional double sum = 5;
	//   sint32 scale = 6;
	//   fixed64 zero_count = 7;
	//   Buckets positive = 8;
	//   Buckets negative = 9;
	//   uint32 flags = 10;
	//   repeated Exemplar exemplars = 11;
	//   optional double min = 12;
	//   optional double max = 13;
	//   double zero_threshold = 14;
	// }
	var p OTLPPoint
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if ok, err := pointTimes(f, &p); ok {
			if err != nil {
				return p, err
			}
			continue
		}
		var err error
		switch f.num {
		case 4:
			p.Count, err = otlpFixed64(f, "count")
		case 5:
			p.HasSum = true
			p.Sum, err = otlpDouble(f, "sum")
		case 6:
			var u uint64
			u, err = otlpVarint(f, "scale")
			p.Scale = sint32(u)
		case 7:
			p.ZeroCount, err = otlpFixed64(f, "zero_count")
		case 8, 9:
			if _, err = f.bytes(); err != nil {
				err = fmt.Errorf("%s: %w", [...]string{8: "positive", 9: "negative"}[f.num], err)
			}
		case 10:
			var u uint64
			u, err = otlpVarint(f, "flags")
			p.Flags = uint32(u)
		case 12:
			p.HasMin = true
			p.Min, err = otlpDouble(f, "min")
		case 13:
			p.HasMax = true
			p.Max, err = otlpDouble(f, "max")
		case 14:
			p.ZeroThreshold, err = otlpDouble(f, "zero_threshold")
		}
		if err != nil {
			return p, err
		}
	}
	if it.err != nil {
		return p, fmt.Errorf("cannot read ExponentialHistogramDataPoint field: %w", it.err)
	}
	var err error
	if p.Positive, err = d.buckets(b, 8); err != nil {
		return p, fmt.Errorf("positive.%w", err)
	}
	if p.Negative, err = d.buckets(b, 9); err != nil {
		return p, fmt.Errorf("negative.%w", err)
	}
	return p, d.pointLists(b, &p, 1, 11)
}

// buckets decodes the merged occurrences of Buckets field num of b.
func (d *otlpDecoder) buckets(b []byte, num uint64) (OTLPBuckets, error) {
	// message Buckets {
	//   sint32 offset = 1;
	//   repeated uint64 bucket_counts = 2;
	// }
	var bk OTLPBuckets
	start := len(d.r.Counts)
	it := fields{b: b}
	for it.next() {
		if it.f.num != num {
			continue
		}
		body := it.f.data
		bit := fields{b: body}
		for bit.next() {
			if f := &bit.f; f.num == 1 {
				u, err := otlpVarint(f, "offset")
				if err != nil {
					return bk, err
				}
				bk.Offset = sint32(u)
			}
		}
		if bit.err != nil {
			return bk, fmt.Errorf("cannot read Buckets field: %w", bit.err)
		}
		var err error
		if d.r.Counts, _, err = gather(d.r.Counts, body, 2, wireVarint, func(u uint64) uint64 { return u }); err != nil {
			return bk, fmt.Errorf("bucket_counts: %w", err)
		}
	}
	bk.Counts = OTLPRange{start, len(d.r.Counts)}
	return bk, nil
}

func (d *otlpDecoder) summaryPoint(b []byte) (OTLPPoint, error) {
	// message SummaryDataPoint {
	//   repeated KeyValue attributes = 7;
	//   fixed64 start_time_unix_nano = 2;
	//   fixed64 time_unix_nano = 3;
	//   fixed64 count = 4;
	//   double sum = 5;
	//   repeated ValueAtQuantile quantile_values = 6;
	//   uint32 flags = 8;
	// }
	// message ValueAtQuantile { double quantile = 1; double value = 2; }
	p := OTLPPoint{HasSum: true}
	start := len(d.r.Quantiles)
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if ok, err := pointTimes(f, &p); ok {
			if err != nil {
				return p, err
			}
			continue
		}
		var err error
		switch f.num {
		case 4:
			p.Count, err = otlpFixed64(f, "count")
		case 5:
			p.Sum, err = otlpDouble(f, "sum")
		case 6:
			var data []byte
			if data, err = f.bytes(); err == nil {
				var q OTLPQuantile
				qit := fields{b: data}
				for qit.next() && err == nil {
					switch g := &qit.f; g.num {
					case 1:
						q.Quantile, err = otlpDouble(g, "quantile")
					case 2:
						q.Value, err = otlpDouble(g, "value")
					}
				}
				if err == nil && qit.err != nil {
					err = fmt.Errorf("cannot read ValueAtQuantile field: %w", qit.err)
				}
				d.r.Quantiles = append(d.r.Quantiles, q)
			}
			if err != nil {
				err = fmt.Errorf("quantile_values[%d].%w", len(d.r.Quantiles)-start, err)
			}
		case 8:
			var u uint64
			u, err = otlpVarint(f, "flags")
			p.Flags = uint32(u)
		}
		if err != nil {
			return p, err
		}
	}
	if it.err != nil {
		return p, fmt.Errorf("cannot read SummaryDataPoint field: %w", it.err)
	}
	p.Quantiles = OTLPRange{start, len(d.r.Quantiles)}
	return p, d.pointLists(b, &p, 7, 0)
}

// AppendValueString appends v rendered as pcommon.Value.AsString renders it
// (go.opentelemetry.io/collector/pdata v1.69.0), the form Prometheus' OTLP
// translator gives attribute values as label values: a string as is, a
// bool as true or false, an int in decimal, a double as an ES6 number
// string (NaN, Infinity and -Infinity spelled out), bytes in standard
// base64, arrays and key/value lists as JSON (keys sorted, later duplicate
// keys winning, no HTML escaping, bytes in base64, empty values and empty
// bytes as null; the empty string when a double inside is not finite, as
// encoding/json fails there), empty and strindex values as the empty string. Arrays and key/value
// lists allocate; every other kind appends only.
func (r *OTLPRequest) AppendValueString(dst []byte, v *OTLPValue) []byte {
	switch v.Kind {
	case OTLPString:
		return append(dst, v.Str...)
	case OTLPBool:
		return strconv.AppendBool(dst, v.Int != 0)
	case OTLPInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case OTLPDouble:
		return appendES6Float(dst, v.Double)
	case OTLPBytes:
		return base64.StdEncoding.AppendEncode(dst, unsafe.Slice(unsafe.StringData(v.Str), len(v.Str)))
	case OTLPArray, OTLPKVList:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if enc.Encode(r.raw(v)) != nil {
			return dst
		}
		return append(dst, bytes.TrimRight(buf.Bytes(), "\n")...)
	}
	return dst
}

// raw returns v as pcommon.Value.AsRaw does.
func (r *OTLPRequest) raw(v *OTLPValue) any {
	switch v.Kind {
	case OTLPString:
		return v.Str
	case OTLPBool:
		return v.Int != 0
	case OTLPInt:
		return v.Int
	case OTLPDouble:
		return v.Double
	case OTLPBytes:
		if v.Str == "" {
			return []byte(nil) // pcommon's copy of no bytes is nil: JSON null
		}
		return []byte(v.Str)
	case OTLPArray:
		a := make([]any, 0, v.Elems.Len())
		for i := v.Elems.Start; i < v.Elems.End; i++ {
			a = append(a, r.raw(&r.Attrs[i].Value))
		}
		return a
	case OTLPKVList:
		m := make(map[string]any, v.Elems.Len())
		for i := v.Elems.Start; i < v.Elems.End; i++ {
			m[r.Attrs[i].Key] = r.raw(&r.Attrs[i].Value)
		}
		return m
	}
	return nil
}

// appendES6Float appends f as pcommon renders a double (its
// float64AsString): like encoding/json, with NaN and infinities spelled out.
func appendES6Float(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	start := len(dst)
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(dst) - start; n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}
