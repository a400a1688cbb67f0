package wire

import (
	"math"
	"strings"
)

// V2Encoder encodes remote write 1.0 series and metadata as a remote write
// 2.0 request (io.prometheus.write.v2.Request, spec 2.0-rc.4,
// https://prometheus.io/docs/specs/prw/remote_write_spec_2_0/). The zero
// value is ready to use; reuse one value across requests so that its symbols
// table and scratch slices are recycled: after warm-up, Append allocates
// nothing but the growth of dst. A V2Encoder must not be used by two
// goroutines at once.
type V2Encoder struct {
	index    map[string]uint32 // symbol → ref
	symbols  []string          // by ref; symbols[0] is ""
	refs     []uint32          // series and exemplar labels_refs, back to back
	series   []v2SeriesRefs    // per series
	ex       []v2Exemplar      // per exemplar, series by series
	families map[string]int    // metric family name → index into metadata, the first entry wins
	dropped  int
}

// v2SeriesRefs is what the first pass of Append found for one series: the
// end of its labels_refs in V2Encoder.refs, the end of its exemplars in
// V2Encoder.ex, and its metadata as refs.
type v2SeriesRefs struct {
	refsEnd, exEnd     int
	typ                MetadataType
	helpRef, unitRef   uint32
	refsStart, exStart int
}

// v2Exemplar is one decoded 1.0 exemplar: its labels_refs as a range of
// V2Encoder.refs, its value and its timestamp in milliseconds.
type v2Exemplar struct {
	refsStart, refsEnd int
	value              float64
	ts                 int64
}

// AppendWriteRequestV2 appends to dst the remote write 2.0 encoding of series
// and metadata given in promrelay's 1.0 form and returns the extended
// buffer, as V2Encoder.Append does with a fresh encoder (so it allocates
// its symbols table; reuse a V2Encoder to avoid that).
func AppendWriteRequestV2(dst []byte, series []Series, metadata []Metadata) []byte {
	var e V2Encoder
	return e.Append(dst, series, metadata)
}

// Append appends to dst the remote write 2.0 encoding (an
// io.prometheus.write.v2.Request, spec 2.0-rc.4) of series and metadata and
// returns the extended buffer:
//
//   - one symbols table (field 4), its first symbol "", then the other
//     strings in the order first used: each series' label names and values,
//     its exemplars' label names and values, its metadata's help and unit;
//   - one TimeSeries (field 5) per series, in order: labels_refs (packed, in
//     the label order given: pass series sorted by name, as ValidateSeries
//     requires, for a valid request; labels with an empty value are left out,
//     as 2.0 forbids them and Prometheus treats them as absent), samples,
//     histograms, exemplars and metadata.
//
// Histograms: the 1.0 prompb.Histogram and the 2.0 Histogram messages number
// and type fields 1-16 alike (count_int/count_float 1/2, sum 3, schema 4,
// zero_threshold 5, zero_count_int/zero_count_float 6/7, negative spans,
// deltas and counts 8-10, positive ones 11-13, reset_hint 14, timestamp 15,
// custom_values 16; prompb/types.proto and
// prompb/io/prometheus/write/v2/types.proto), so their bytes are copied as
// they are; only a field 17, which 1.0 does not define and 2.0 reads as
// start_timestamp, is dropped. Exemplars are decoded (1.0 label pairs,
// value, timestamp) and re-encoded with labels_refs; one that does not
// decode as a prompb.Exemplar is dropped (DroppedExemplars counts them).
// Unknown fields are carried in histograms only; those of the other
// messages (series, labels, samples, exemplars, metadata) are not, as each
// is re-encoded with 2.0's field numbers.
//
// Metadata: 2.0 carries metadata per series (Prometheus 3 sends each series
// of a metric family its family's type, help and unit). A series named n
// gets the first metadata entry whose family name is n; failing that, the
// first entry of family f where n is f plus a suffix the family's type
// gives its series: _bucket, _sum, _count, _created for HISTOGRAM;
// _bucket, _gcount, _gsum, _sum, _count, _created for GAUGEHISTOGRAM; _sum,
// _count, _created for SUMMARY; _total, _created for COUNTER; _info for
// INFO. Metadata entries that no series matches are not sent (2.0 has no
// metadata without series), and a series without a match has none.
// UnmarshalV2 turns the result back into one metadata entry per series
// name.
func (e *V2Encoder) Append(dst []byte, series []Series, metadata []Metadata) []byte {
	e.reset()
	for i := range metadata {
		if _, ok := e.families[metadata[i].FamilyName]; !ok {
			e.families[metadata[i].FamilyName] = i
		}
	}
	for i := range series {
		s := &series[i]
		sr := v2SeriesRefs{refsStart: len(e.refs), exStart: len(e.ex)}
		name := ""
		for _, l := range s.Labels {
			if l.Value == "" {
				continue
			}
			if l.Name == MetricNameLabel && name == "" {
				name = l.Value
			}
			e.refs = append(e.refs, e.symbol(l.Name), e.symbol(l.Value))
		}
		sr.refsEnd = len(e.refs)
		for _, raw := range s.Exemplars {
			if ex, ok := e.exemplar(raw); ok {
				e.ex = append(e.ex, ex)
			} else {
				e.dropped++
			}
		}
		sr.exEnd = len(e.ex)
		if md := e.familyOf(name, metadata); md != nil {
			sr.typ, sr.helpRef, sr.unitRef = md.Type, e.symbol(md.Help), e.symbol(md.Unit)
		}
		e.series = append(e.series, sr)
	}
	// message Request {
	//   repeated string symbols = 4;
	//   repeated TimeSeries timeseries = 5;
	// }
	for _, sym := range e.symbols {
		dst = append(dst, 4<<3|wireBytes)
		dst = appendVarint(dst, uint64(len(sym)))
		dst = append(dst, sym...)
	}
	for i := range series {
		dst = e.appendSeries(dst, &series[i], &e.series[i])
	}
	e.release()
	return dst
}

// DroppedExemplars returns the number of exemplars the last Append dropped
// because they did not decode as prompb.Exemplar messages.
func (e *V2Encoder) DroppedExemplars() int { return e.dropped }

func (e *V2Encoder) reset() {
	if e.index == nil {
		e.index = make(map[string]uint32)
		e.families = make(map[string]int)
	}
	e.symbols = append(e.symbols[:0], "")
	e.index[""] = 0
	e.refs = e.refs[:0]
	e.series = e.series[:0]
	e.ex = e.ex[:0]
	e.dropped = 0
}

// release drops e's references to the caller's strings, keeping its memory.
func (e *V2Encoder) release() {
	clear(e.index)
	clear(e.families)
	clear(e.symbols)
	e.symbols = e.symbols[:0]
}

// symbol returns the ref of s, adding it to the symbols table if new.
func (e *V2Encoder) symbol(s string) uint32 {
	if r, ok := e.index[s]; ok {
		return r
	}
	r := uint32(len(e.symbols))
	e.symbols = append(e.symbols, s)
	e.index[s] = r
	return r
}

// v2FamilySuffixes are the suffixes a metric family's type gives the names
// of its series (OpenMetrics 1.0, "Metric types"; the text format's _bucket,
// _sum and _count).
var v2FamilySuffixes = [...]struct {
	suffix string
	types  []MetadataType
}{
	{"_bucket", []MetadataType{MetadataHistogram, MetadataGaugeHistogram}},
	{"_sum", []MetadataType{MetadataHistogram, MetadataGaugeHistogram, MetadataSummary}},
	{"_count", []MetadataType{MetadataHistogram, MetadataGaugeHistogram, MetadataSummary}},
	{"_created", []MetadataType{MetadataHistogram, MetadataGaugeHistogram, MetadataSummary, MetadataCounter}},
	{"_gcount", []MetadataType{MetadataGaugeHistogram}},
	{"_gsum", []MetadataType{MetadataGaugeHistogram}},
	{"_total", []MetadataType{MetadataCounter}},
	{"_info", []MetadataType{MetadataInfo}},
}

// familyOf returns the metadata entry of the family series name belongs to,
// or nil.
func (e *V2Encoder) familyOf(name string, metadata []Metadata) *Metadata {
	if name == "" || len(metadata) == 0 {
		return nil
	}
	if i, ok := e.families[name]; ok {
		return &metadata[i]
	}
	for _, fs := range v2FamilySuffixes {
		fam, ok := strings.CutSuffix(name, fs.suffix)
		if !ok || fam == "" {
			continue
		}
		i, ok := e.families[fam]
		if !ok {
			continue
		}
		for _, t := range fs.types {
			if metadata[i].Type == t {
				return &metadata[i]
			}
		}
	}
	return nil
}

// exemplar decodes a 1.0 prompb.Exemplar, symbolizing its labels.
func (e *V2Encoder) exemplar(b []byte) (v2Exemplar, bool) {
	// message Exemplar {
	//   repeated Label labels = 1;
	//   double value = 2;
	//   int64 timestamp = 3; // milliseconds
	// }
	ex := v2Exemplar{refsStart: len(e.refs)}
	it := fields{b: b}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			data, err := f.bytes()
			if err != nil {
				return ex, e.undo(ex)
			}
			l, err := unmarshalLabel(data)
			if err != nil {
				return ex, e.undo(ex)
			}
			e.refs = append(e.refs, e.symbol(l.Name), e.symbol(l.Value))
		case 2:
			v, err := f.double()
			if err != nil {
				return ex, e.undo(ex)
			}
			ex.value = v
		case 3:
			v, err := f.varint()
			if err != nil {
				return ex, e.undo(ex)
			}
			ex.ts = int64(v)
		}
	}
	if it.err != nil {
		return ex, e.undo(ex)
	}
	ex.refsEnd = len(e.refs)
	return ex, true
}

// undo drops the refs of an exemplar that failed to decode and returns
// false. Symbols it added stay in the table, unreferenced but harmless.
func (e *V2Encoder) undo(ex v2Exemplar) bool {
	e.refs = e.refs[:ex.refsStart]
	return false
}

// packedRefsSize returns the size of refs as a packed repeated uint32 body.
func packedRefsSize(refs []uint32) int {
	n := 0
	for _, r := range refs {
		n += varintSize(uint64(r))
	}
	return n
}

// appendPackedRefs appends field num as a packed run of refs, if any.
func appendPackedRefs(dst []byte, num int, refs []uint32) []byte {
	if len(refs) == 0 {
		return dst
	}
	dst = append(dst, byte(num<<3|wireBytes))
	dst = appendVarint(dst, uint64(packedRefsSize(refs)))
	for _, r := range refs {
		dst = appendVarint(dst, uint64(r))
	}
	return dst
}

func lenField(body int) int { return 1 + varintSize(uint64(body)) + body }

func (e *V2Encoder) exemplarSize(ex *v2Exemplar) int {
	n := 0
	if refs := e.refs[ex.refsStart:ex.refsEnd]; len(refs) > 0 {
		n += lenField(packedRefsSize(refs))
	}
	// value = 2 and timestamp = 3 take what a Sample's two fields take.
	return n + sampleSize(Sample{Value: ex.value, Timestamp: ex.ts})
}

func metadataV2Size(sr *v2SeriesRefs) int {
	n := 0
	if sr.typ != 0 {
		n += 1 + varintSize(uint64(int64(sr.typ)))
	}
	if sr.helpRef != 0 {
		n += 1 + varintSize(uint64(sr.helpRef))
	}
	if sr.unitRef != 0 {
		n += 1 + varintSize(uint64(sr.unitRef))
	}
	return n
}

// histogramV2Size returns the size of h without its field-17 occurrences.
// A histogram that does not parse is kept whole.
func histogramV2Size(h []byte) int {
	n := len(h)
	it := fields{b: h}
	for it.next() {
		if it.f.num == 17 {
			n -= it.f.end - it.f.start
		}
	}
	if it.err != nil {
		return len(h)
	}
	return n
}

// appendHistogramV2 appends h without its field-17 occurrences (size is
// histogramV2Size(h)).
func appendHistogramV2(dst, h []byte, size int) []byte {
	if size == len(h) {
		return append(dst, h...)
	}
	it := fields{b: h}
	for it.next() {
		if it.f.num != 17 {
			dst = append(dst, h[it.f.start:it.f.end]...)
		}
	}
	return dst
}

func (e *V2Encoder) appendSeries(dst []byte, s *Series, sr *v2SeriesRefs) []byte {
	// message TimeSeries {
	//   repeated uint32 labels_refs = 1;
	//   repeated Sample samples = 2;
	//   repeated Histogram histograms = 3;
	//   repeated Exemplar exemplars = 4;
	//   Metadata metadata = 5;
	// }
	refs := e.refs[sr.refsStart:sr.refsEnd]
	exs := e.ex[sr.exStart:sr.exEnd]
	size := 0
	if len(refs) > 0 {
		size += lenField(packedRefsSize(refs))
	}
	for _, smp := range s.Samples {
		size += lenField(sampleSize(smp))
	}
	for _, h := range s.Histograms {
		size += lenField(histogramV2Size(h))
	}
	for i := range exs {
		size += lenField(e.exemplarSize(&exs[i]))
	}
	mdSize := metadataV2Size(sr)
	if mdSize > 0 {
		size += lenField(mdSize)
	}
	dst = append(dst, 5<<3|wireBytes)
	dst = appendVarint(dst, uint64(size))
	dst = appendPackedRefs(dst, 1, refs)
	for _, smp := range s.Samples {
		dst = appendSample(dst, smp)
	}
	for _, h := range s.Histograms {
		n := histogramV2Size(h)
		dst = append(dst, 3<<3|wireBytes)
		dst = appendVarint(dst, uint64(n))
		dst = appendHistogramV2(dst, h, n)
	}
	for i := range exs {
		ex := &exs[i]
		// message Exemplar { repeated uint32 labels_refs = 1; double value = 2; int64 timestamp = 3; }
		dst = append(dst, 4<<3|wireBytes)
		dst = appendVarint(dst, uint64(e.exemplarSize(ex)))
		dst = appendPackedRefs(dst, 1, e.refs[ex.refsStart:ex.refsEnd])
		if bits := math.Float64bits(ex.value); bits != 0 {
			dst = append(dst, 2<<3|wireFixed64)
			dst = appendFixed64(dst, bits)
		}
		if ex.ts != 0 {
			dst = append(dst, 3<<3|wireVarint)
			dst = appendVarint(dst, uint64(ex.ts))
		}
	}
	if mdSize > 0 {
		// message Metadata { MetricType type = 1; uint32 help_ref = 3; uint32 unit_ref = 4; }
		dst = append(dst, 5<<3|wireBytes)
		dst = appendVarint(dst, uint64(mdSize))
		if sr.typ != 0 {
			dst = append(dst, 1<<3|wireVarint)
			dst = appendVarint(dst, uint64(int64(sr.typ)))
		}
		if sr.helpRef != 0 {
			dst = append(dst, 3<<3|wireVarint)
			dst = appendVarint(dst, uint64(sr.helpRef))
		}
		if sr.unitRef != 0 {
			dst = append(dst, 4<<3|wireVarint)
			dst = appendVarint(dst, uint64(sr.unitRef))
		}
	}
	return dst
}
