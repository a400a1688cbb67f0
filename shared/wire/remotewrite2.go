package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Remote write 2.0 (https://prometheus.io/docs/specs/prw/remote_write_spec_2_0/,
// version 2.0-rc.4; the schema is io.prometheus.write.v2 in
// prometheus/prompb/io/prometheus/write/v2/types.proto) is decoded here into
// the remote-write 1.0 WriteRequest the rest of promrelay forwards. The
// TimeSeries.created_timestamp of earlier release candidates (field 6, now
// reserved) is skipped like any unknown field.

// V2Counts are what a remote-write 2.0 request holds, as the
// X-Prometheus-Remote-Write-*-Written headers count them: float samples,
// native histogram samples and exemplars.
type V2Counts struct{ Samples, Histograms, Exemplars int }

// v2State is the per-call scratch space of UnmarshalV2, pooled so that a
// steady stream of requests allocates nothing: the symbols table, the refs of
// one series' and one exemplar's labels_refs, one series' histograms, whether each symbol is valid
// UTF-8 (checked once, when first used in a label), and the metric family
// names that already have metadata.
type v2State struct {
	symbols  []string
	valid    []uint8 // per symbol: 0 not checked yet, 1 valid UTF-8, 2 not
	refs     []uint32
	exRefs   []uint32
	hists    [][]byte // the histograms of the series being decoded
	families map[string]struct{}
}

var v2States = sync.Pool{New: func() any { return &v2State{families: map[string]struct{}{}} }}

// release drops st's references into the request and returns it to the pool.
func (st *v2State) release() {
	clear(st.symbols)
	st.symbols = st.symbols[:0]
	st.refs = st.refs[:0]
	st.exRefs = st.exRefs[:0]
	clear(st.hists)
	st.hists = st.hists[:0]
	if cap(st.symbols) > v2MaxPooled || len(st.families) > v2MaxPooled {
		return // an outsized request's memory is not kept
	}
	clear(st.families)
	v2States.Put(st)
}

// v2MaxPooled bounds the symbols and metric families whose room a pooled
// v2State keeps.
const v2MaxPooled = 1 << 16

// v2ArenaSlack is the re-encoding room UnmarshalV2 allows beyond
// v2ArenaFactor times the request's size: exemplars are re-encoded with their
// labels resolved, and a few bytes of refs can name long symbols many times.
const (
	v2ArenaFactor = 4
	v2ArenaSlack  = 64 << 10
)

// errV2Amplified is the error for a request whose exemplars would re-encode to
// far more bytes than the request itself.
var errV2Amplified = errors.New("exemplar labels re-encode to more than 4 times the request's size")

// UnmarshalV2 decodes raw, an uncompressed io.prometheus.write.v2.Request, into
// wr (Reset first) as remote write 1.0: each TimeSeries becomes a Series with
// its labels resolved from the symbols table (in the order sent), its samples,
// its histograms as 1.0 prompb.Histogram messages (Series.Histograms; the two
// schemas agree on fields 1-16, so the bytes are kept, without
// start_timestamp, field 17, when it is present), and its exemplars re-encoded
// as 1.0 prompb.Exemplar messages with resolved labels (Series.Exemplars). Its
// metadata (type, help_ref, unit_ref), when any is set, becomes one Metadata
// entry per metric family name, the series' __name__ (the first series of a
// name wins). Start timestamps are dropped. Strings reference raw; results are
// valid until the next Reset, Unmarshal or UnmarshalV2 of wr.
//
// It returns the request's counts (on error, those of the series before the
// failing one) and the first error, which names the field
// ("timeseries[3].labels_refs: ref 17 out of range (12 symbols)"): malformed
// protobuf; what the 2.0 specification says a request MUST (NOT) hold —
// symbols that do not start with the empty string, a ref out of range, an
// odd number of label refs, an empty, invalid UTF-8, duplicate or unsorted
// label name, an empty label value, a series with both samples and
// histograms or with none of samples, histograms and exemplars; or, as soon
// as the request crosses lim, a *LimitError (every sample, every histogram
// and every series with only exemplars counts toward lim.MaxSamples, as in
// Unmarshal; MaxLabels and MaxLabelBytes bound series and exemplar labels).
// A metric name is not required (the specification says SHOULD).
func (wr *WriteRequest) UnmarshalV2(raw []byte, lim Limits) (V2Counts, error) {
	wr.Reset()
	var c V2Counts
	st := v2States.Get().(*v2State)
	defer st.release()
	// message Request {
	//   reserved 1 to 3;
	//   repeated string symbols = 4;
	//   repeated TimeSeries timeseries = 5;
	// }
	// The symbols may come after the series that reference them, so they
	// are read in a pass of their own.
	nSeries := 0
	it := fields{b: raw}
	for it.next() {
		switch f := &it.f; f.num {
		case 4:
			data, err := f.bytes()
			if err != nil {
				return c, fmt.Errorf("symbols[%d]: %w", len(st.symbols), err)
			}
			st.symbols = append(st.symbols, bytesToString(data))
		case 5:
			if _, err := f.bytes(); err != nil {
				return c, fmt.Errorf("timeseries[%d]: %w", nSeries, err)
			}
			nSeries++
		}
	}
	if it.err != nil {
		return c, fmt.Errorf("cannot read Request field: %w", it.err)
	}
	if len(st.symbols) > 0 && st.symbols[0] != "" {
		return c, fmt.Errorf("symbols[0]: %s, must be the empty string", quoteShort(st.symbols[0]))
	}
	if len(st.symbols) == 0 && nSeries > 0 {
		return c, errors.New("symbols: empty, must start with the empty string")
	}
	st.valid = append(st.valid[:0], make([]uint8, len(st.symbols))...)
	maxArena := v2ArenaFactor*len(raw) + v2ArenaSlack
	bud := newBudget(lim)
	i := 0
	it = fields{b: raw}
	for it.next() {
		if it.f.num != 5 {
			continue
		}
		if err := wr.unmarshalSeriesV2(it.f.data, st, &lim, &bud, &c, maxArena); err != nil {
			return c, fmt.Errorf("timeseries[%d].%w", i, err)
		}
		i++
	}
	return c, nil
}

// v2Error is an error of a series' field, printed after "timeseries[i].".
func v2Error(format string, args ...any) error { return fmt.Errorf(format, args...) }

func (wr *WriteRequest) unmarshalSeriesV2(b []byte, st *v2State, lim *Limits, bud *budget, c *V2Counts, maxArena int) error {
	// message TimeSeries {
	//   repeated uint32 labels_refs = 1;
	//   repeated Sample samples = 2;
	//   repeated Histogram histograms = 3;
	//   repeated Exemplar exemplars = 4;
	//   Metadata metadata = 5;
	//   reserved 6;
	// }
	samplesStart, rawStart := len(wr.samples), len(wr.raw)
	nExemplars, nHistograms := 0, 0
	clear(st.hists) // left over when the previous series failed
	st.hists = st.hists[:0]
	var mdType, mdHelp, mdUnit uint64
	hasMetadata := false
	st.refs = st.refs[:0]
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if f.num == 1 {
			var err error
			if st.refs, err = appendRefs(st.refs, f); err != nil {
				return v2Error("labels_refs: %w", err)
			}
			continue
		}
		if f.num < 2 || f.num > 5 {
			continue
		}
		data, err := f.bytes()
		if err != nil {
			return v2Error("%s: %w", v2SeriesField[f.num], err)
		}
		switch f.num {
		case 2:
			if err := bud.take(1); err != nil {
				return err
			}
			s, err := unmarshalSampleV2(data)
			if err != nil {
				return v2Error("samples[%d]: %w", len(wr.samples)-samplesStart, err)
			}
			wr.samples = append(wr.samples, s)
		case 3:
			if err := bud.take(1); err != nil {
				return err
			}
			h, err := wr.histogramV2(data)
			if err != nil {
				return v2Error("histograms[%d]: %w", nHistograms, err)
			}
			// Histograms wait in st.hists and follow the exemplars
			// into wr.raw at the end, so that both stay contiguous
			// without moving entries at every exemplar.
			st.hists = append(st.hists, h)
			nHistograms++
		case 4:
			e, err := wr.exemplarV2(data, st, lim, maxArena)
			if err != nil {
				return v2Error("exemplars[%d].%w", nExemplars, err)
			}
			wr.raw = append(wr.raw, e)
			nExemplars++
		case 5:
			// Occurrences of a message field merge; the last value of
			// each scalar wins.
			hasMetadata = true
			if err := unmarshalMetadataV2(data, &mdType, &mdHelp, &mdUnit); err != nil {
				return v2Error("metadata.%w", err)
			}
		}
	}
	if it.err != nil {
		return it.err
	}
	wr.raw = append(wr.raw, st.hists...)
	clear(st.hists)
	st.hists = st.hists[:0]
	labelsStart := len(wr.labels)
	if err := wr.resolveLabels(st.refs, st, lim, true); err != nil {
		return err
	}
	nSamples := len(wr.samples) - samplesStart
	switch {
	case nSamples > 0 && nHistograms > 0:
		return v2Error("samples: %d samples and %d histograms, a series must not have both", nSamples, nHistograms)
	case nSamples == 0 && nHistograms == 0:
		if nExemplars == 0 {
			return v2Error("samples: no samples, histograms or exemplars")
		}
		if err := bud.take(1); err != nil {
			return err
		}
	}
	s := Series{
		Labels:  wr.labels[labelsStart:len(wr.labels):len(wr.labels)],
		Samples: wr.samples[samplesStart:len(wr.samples):len(wr.samples)],
	}
	if nExemplars > 0 {
		s.Exemplars = wr.raw[rawStart : rawStart+nExemplars : rawStart+nExemplars]
	}
	if nHistograms > 0 {
		s.Histograms = wr.raw[rawStart+nExemplars : len(wr.raw) : len(wr.raw)]
	}
	if hasMetadata {
		for _, r := range [...]struct {
			name string
			ref  uint64
		}{{"help_ref", mdHelp}, {"unit_ref", mdUnit}} {
			if r.ref >= uint64(len(st.symbols)) {
				return v2Error("metadata.%s: ref %d out of range (%d symbols)", r.name, r.ref, len(st.symbols))
			}
		}
		if mdType != 0 || mdHelp != 0 || mdUnit != 0 {
			wr.addMetadataV2(st, s.Labels, MetadataType(int32(mdType)), st.symbols[mdHelp], st.symbols[mdUnit])
		}
	}
	wr.Series = append(wr.Series, s)
	c.Samples += nSamples
	c.Histograms += nHistograms
	c.Exemplars += nExemplars
	return nil
}

// v2SeriesField names the length-delimited fields of a v2 TimeSeries.
var v2SeriesField = [...]string{2: "samples", 3: "histograms", 4: "exemplars", 5: "metadata"}

// addMetadataV2 adds the metadata of the family named by ls' __name__, unless
// the family has some already or ls has no name.
func (wr *WriteRequest) addMetadataV2(st *v2State, ls []Label, typ MetadataType, help, unit string) {
	name := ""
	for _, l := range ls {
		if l.Name == MetricNameLabel {
			name = l.Value
			break
		}
	}
	if name == "" {
		return
	}
	if _, ok := st.families[name]; ok {
		return
	}
	st.families[name] = struct{}{}
	wr.Metadata = append(wr.Metadata, Metadata{Type: typ, FamilyName: name, Help: help, Unit: unit})
}

// resolveLabels appends to wr.labels the label pairs that refs name.
// For a series (series true) it checks what the 2.0 specification requires
// of a label set — label names non-empty, valid UTF-8, unique and sorted,
// values non-empty and valid UTF-8 — and for an exemplar only the refs.
// Both are bounded by lim.
func (wr *WriteRequest) resolveLabels(refs []uint32, st *v2State, lim *Limits, series bool) error {
	syms := st.symbols
	if len(refs)%2 != 0 {
		return v2Error("labels_refs: odd number of refs (%d)", len(refs))
	}
	for i := 0; i < len(refs); i += 2 {
		for _, r := range refs[i : i+2] {
			if int(r) >= len(syms) {
				return v2Error("labels_refs: ref %d out of range (%d symbols)", r, len(syms))
			}
		}
		l := Label{Name: syms[refs[i]], Value: syms[refs[i+1]]}
		if k := lim.labelOver(i/2+1, len(l.Name)+len(l.Value)); k != 0 {
			return lim.labelError(k, "label "+quoteShort(l.Name))
		}
		if series {
			switch {
			case l.Name == "":
				return v2Error("labels_refs[%d]: empty label name", i)
			case l.Value == "":
				return v2Error("labels_refs[%d]: label %s has an empty value", i+1, quoteShort(l.Name))
			case !st.validUTF8(refs[i]):
				return v2Error("labels_refs[%d]: label name %s is not valid UTF-8", i, quoteShort(l.Name))
			case !st.validUTF8(refs[i+1]):
				return v2Error("labels_refs[%d]: value of label %s is not valid UTF-8", i+1, quoteShort(l.Name))
			}
			if i > 0 {
				switch prev := wr.labels[len(wr.labels)-1].Name; {
				case prev == l.Name:
					return v2Error("labels_refs[%d]: duplicate label name %s", i, quoteShort(l.Name))
				case prev > l.Name:
					return v2Error("labels_refs[%d]: labels not sorted by name (%s before %s)", i, quoteShort(prev), quoteShort(l.Name))
				}
			}
		}
		wr.labels = append(wr.labels, l)
	}
	return nil
}

func unmarshalSampleV2(b []byte) (Sample, error) {
	// message Sample {
	//   double value = 1;
	//   int64 timestamp = 2;
	//   int64 start_timestamp = 3; // dropped
	// }
	var s Sample
	it := fields{b: b}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			v, err := f.double()
			if err != nil {
				return s, fmt.Errorf("value: %w", err)
			}
			s.Value = v
		case 2:
			v, err := f.varint()
			if err != nil {
				return s, fmt.Errorf("timestamp: %w", err)
			}
			s.Timestamp = int64(v)
		case 3:
			if _, err := f.varint(); err != nil {
				return s, fmt.Errorf("start_timestamp: %w", err)
			}
		}
	}
	return s, it.err
}

func unmarshalMetadataV2(b []byte, typ, help, unit *uint64) error {
	// message Metadata {
	//   MetricType type = 1;
	//   uint32 help_ref = 3;
	//   uint32 unit_ref = 4;
	// }
	it := fields{b: b}
	for it.next() {
		f := &it.f
		var dst *uint64
		name := ""
		switch f.num {
		case 1:
			dst, name = typ, "type"
		case 3:
			dst, name = help, "help_ref"
		case 4:
			dst, name = unit, "unit_ref"
		default:
			continue
		}
		v, err := f.varint()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// uint32 and enum (int32) values are truncated to 32 bits, as
		// protobuf parsers do.
		*dst = uint64(uint32(v))
	}
	return it.err
}

// histogramV2 checks a v2 Histogram message and returns it as a 1.0
// prompb.Histogram: the two schemas number and type fields 1-16 alike
// (types.proto of both), so the bytes are kept as they are unless they hold
// start_timestamp (field 17, 2.0 only), which is dropped in a copy in
// wr.arena.
func (wr *WriteRequest) histogramV2(b []byte) ([]byte, error) {
	// message Histogram {
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
	//   int64 start_timestamp = 17;
	// }
	strip := false
	it := fields{b: b}
	for it.next() {
		f := &it.f
		var err error
		switch f.num {
		case 1, 4, 6, 14, 15, 17:
			_, err = f.varint()
			strip = strip || f.num == 17
		case 2, 3, 5, 7:
			_, err = f.double()
		case 8, 11:
			var data []byte
			if data, err = f.bytes(); err == nil {
				err = checkBucketSpan(data)
			}
		case 9, 12:
			err = checkRepeated(f, wireVarint)
		case 10, 13, 16:
			err = checkRepeated(f, wireFixed64)
		}
		if err != nil {
			return nil, fmt.Errorf("field %d: %w", f.num, err)
		}
	}
	if it.err != nil {
		return nil, it.err
	}
	if !strip {
		return b, nil
	}
	start := len(wr.arena)
	it = fields{b: b}
	for it.next() {
		if it.f.num != 17 {
			wr.arena = append(wr.arena, b[it.f.start:it.f.end]...)
		}
	}
	return wr.arena[start:len(wr.arena):len(wr.arena)], nil
}

// checkBucketSpan checks a BucketSpan message.
func checkBucketSpan(b []byte) error {
	// message BucketSpan {
	//   sint32 offset = 1;
	//   uint32 length = 2;
	// }
	it := fields{b: b}
	for it.next() {
		if f := &it.f; f.num == 1 || f.num == 2 {
			if _, err := f.varint(); err != nil {
				return err
			}
		}
	}
	return it.err
}

// checkRepeated checks one occurrence of a repeated scalar field whose
// values have wire type scalar, packed or not.
func checkRepeated(f *field, scalar int) error {
	switch f.typ {
	case scalar:
		return nil
	case wireBytes:
		if scalar == wireFixed64 {
			if len(f.data)%8 != 0 {
				return fmt.Errorf("packed fixed64 values of %d bytes: %w", len(f.data), errTruncated)
			}
			return nil
		}
		for j := 0; j < len(f.data); {
			_, next, err := readVarint(f.data, j)
			if errors.Is(err, errTruncated) {
				// gogo's decoders read such a varint on into the bytes after
				// the run; the run's own length says it ends here.
				return fmt.Errorf("packed varint cut off at the end of its run: %w", err)
			}
			if err != nil {
				return err
			}
			j = next
		}
		return nil
	}
	return f.wrongType("a repeated scalar")
}

// exemplarV2 decodes a v2 Exemplar and re-encodes it in wr.arena as a 1.0
// prompb.Exemplar with its labels resolved; the arena may not grow past
// maxArena bytes.
func (wr *WriteRequest) exemplarV2(b []byte, st *v2State, lim *Limits, maxArena int) ([]byte, error) {
	// message Exemplar {
	//   repeated uint32 labels_refs = 1;
	//   double value = 2;
	//   int64 timestamp = 3;
	// }
	var err error
	var value float64
	var ts int64
	st.exRefs = st.exRefs[:0]
	it := fields{b: b}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			if st.exRefs, err = appendRefs(st.exRefs, f); err != nil {
				return nil, v2Error("labels_refs: %w", err)
			}
		case 2:
			if value, err = f.double(); err != nil {
				return nil, v2Error("value: %w", err)
			}
		case 3:
			v, err := f.varint()
			if err != nil {
				return nil, v2Error("timestamp: %w", err)
			}
			ts = int64(v)
		}
	}
	if it.err != nil {
		return nil, it.err
	}
	labelsStart := len(wr.labels)
	if err := wr.resolveLabels(st.exRefs, st, lim, false); err != nil {
		return nil, err
	}
	ls := wr.labels[labelsStart:]
	// message Exemplar {       (1.0, prompb/types.proto)
	//   repeated Label labels = 1;
	//   double value = 2;
	//   int64 timestamp = 3;
	// }
	size := 0
	for _, l := range ls {
		n := labelSize(l)
		size += 1 + varintSize(uint64(n)) + n
	}
	if len(wr.arena)+size+20 > maxArena {
		return nil, v2Error("labels_refs: %w", errV2Amplified)
	}
	start := len(wr.arena)
	for _, l := range ls {
		wr.arena = append(wr.arena, 1<<3|wireBytes)
		wr.arena = appendVarint(wr.arena, uint64(labelSize(l)))
		wr.arena = appendString(wr.arena, 1, l.Name)
		wr.arena = appendString(wr.arena, 2, l.Value)
	}
	if bits := math.Float64bits(value); bits != 0 {
		wr.arena = append(wr.arena, 2<<3|wireFixed64)
		wr.arena = appendFixed64(wr.arena, bits)
	}
	if ts != 0 {
		wr.arena = append(wr.arena, 3<<3|wireVarint)
		wr.arena = appendVarint(wr.arena, uint64(ts))
	}
	// The exemplar's labels live only in its encoding.
	clear(ls)
	wr.labels = wr.labels[:labelsStart]
	return wr.arena[start:len(wr.arena):len(wr.arena)], nil
}

// validUTF8 reports whether symbol ref (in range) is valid UTF-8, checking
// each symbol once per request.
func (st *v2State) validUTF8(ref uint32) bool {
	switch st.valid[ref] {
	case 1:
		return true
	case 2:
		return false
	}
	ok := utf8.ValidString(st.symbols[ref])
	st.valid[ref] = 2
	if ok {
		st.valid[ref] = 1
	}
	return ok
}

// appendRefs appends the refs of one occurrence of a labels_refs field
// (repeated uint32, packed or not) to dst. Values are truncated to 32 bits,
// as protobuf parsers do.
func appendRefs(dst []uint32, f *field) ([]uint32, error) {
	switch f.typ {
	case wireVarint:
		return append(dst, uint32(f.u)), nil
	case wireBytes:
		for j := 0; j < len(f.data); {
			if c := f.data[j]; c < 0x80 {
				dst = append(dst, uint32(c))
				j++
				continue
			}
			v, next, err := readVarint(f.data, j)
			if err != nil {
				return dst, err
			}
			dst, j = append(dst, uint32(v)), next
		}
		return dst, nil
	}
	return dst, f.wrongType("a repeated scalar")
}

// quoteShort quotes s for an error message, cut to its first 64 bytes: a
// symbol may be as long as the request.
func quoteShort(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:64]) + "..."
}
