package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Rewriter relays remote-write 1.0 requests at the wire level: it checks
// each series as ValidateSeries does and splices override labels into its
// encoded bytes, copying samples, exemplars and histograms as they are,
// without decoding them into a WriteRequest. Its output decodes to exactly
// what Unmarshal, dropping the series ValidateSeries rejects, ApplyLabels and
// AppendWriteRequest give (the tests check this on random and fuzzed input);
// it is that path's fast form for POST /api/v1/write.
//
// The zero value is ready to use; reuse one per goroutine.
type Rewriter struct {
	// Results of the last Rewrite.
	Series             int   // series written
	FloatSamples       int   // float samples written
	HistogramSamples   int   // histogram samples written
	Exemplars          int   // exemplars written
	FloatSamplesIn     int   // float samples read, invalid series included
	HistogramSamplesIn int   // histogram samples read, invalid series included
	Invalid            int   // series dropped as invalid
	FirstInvalid       error // a *ValidationError for the first dropped series

	labels       []labelRef
	others       []span
	overrides    []Label
	overridesEnc []byte
	overrideOffs []int
	places       []place
}

type labelRef struct {
	field           span  // the whole label field: tag, length and message
	name, val       span  // offsets of the name and value in the series bytes
	overridesBefore int32 // overrides that sort before this label
	replaced        bool  // an override has this label's name
}

type span struct{ start, end int }

// Rewrite appends to dst the request src with every valid series given the
// override labels overrides (sorted by name, unique; each replaces the label
// of the same name or is added, and one with an empty value removes its
// label, as MergeLabels does) and returns it. It returns a *LimitError as
// soon as src crosses lim.MaxSamples (counted as Unmarshal counts) and an
// error for a request that cannot be decoded (as Unmarshal would). A series
// over lim.MaxLabels or lim.MaxLabelBytes, or otherwise invalid, is dropped,
// counted in rw.Invalid and described by rw.FirstInvalid.
func (rw *Rewriter) Rewrite(dst, src []byte, overrides []Label, lim Limits) ([]byte, error) {
	rw.Series, rw.FloatSamples, rw.HistogramSamples, rw.FloatSamplesIn, rw.HistogramSamplesIn, rw.Invalid, rw.FirstInvalid = 0, 0, 0, 0, 0, 0, nil
	rw.Exemplars = 0
	rw.overrides = overrides
	rw.overridesEnc = rw.overridesEnc[:0]
	rw.overrideOffs = append(rw.overrideOffs[:0], 0)
	for _, l := range overrides {
		if l.Value != "" {
			rw.overridesEnc = append(rw.overridesEnc, 1<<3|wireBytes)
			rw.overridesEnc = appendVarint(rw.overridesEnc, uint64(labelSize(l)))
			rw.overridesEnc = appendString(rw.overridesEnc, 1, l.Name)
			rw.overridesEnc = appendString(rw.overridesEnc, 2, l.Value)
		}
		rw.overrideOffs = append(rw.overrideOffs, len(rw.overridesEnc))
	}
	// One allocation for the whole output: the input plus room for the
	// override labels (short ones, as external and tenant labels are).
	if need := len(dst) + len(src) + len(src)/4 + len(rw.overridesEnc); cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	bud := newBudget(lim)
	var metadata []span
	it := fields{b: src}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			data, err := f.bytes()
			if err != nil {
				return dst, fmt.Errorf("cannot read timeseries %d: %w", rw.Series+rw.Invalid, err)
			}
			if dst, err = rw.series(dst, data, lim, &bud); err != nil {
				var le *LimitError
				if errors.As(err, &le) {
					return dst, le
				}
				return dst, fmt.Errorf("cannot unmarshal timeseries %d: %w", rw.Series+rw.Invalid, err)
			}
		case 3:
			data, err := f.bytes()
			if err != nil {
				return dst, fmt.Errorf("cannot read metadata: %w", err)
			}
			if _, err := unmarshalMetadata(data); err != nil {
				return dst, fmt.Errorf("cannot unmarshal metadata: %w", err)
			}
			// Metadata follow all series in the reference encoding.
			metadata = append(metadata, span{f.start, f.end})
		}
	}
	if it.err != nil {
		return dst, fmt.Errorf("cannot read WriteRequest field: %w", it.err)
	}
	for _, m := range metadata {
		dst = append(dst, src[m.start:m.end]...)
	}
	return dst, nil
}

// series checks one encoded TimeSeries and, when valid, appends it with the
// override labels.
func (rw *Rewriter) series(dst, s []byte, lim Limits, bud *budget) ([]byte, error) {
	if out, ok := rw.fastSeries(dst, s, lim, bud); ok {
		return out, nil
	}
	rw.labels = rw.labels[:0]
	rw.others = rw.others[:0]
	samples, histograms, exemplars, nLabels := 0, 0, 0, 0
	var lastTS int64
	ordered := true
	it := fields{b: s}
	for it.next() {
		f := &it.f
		if f.num < 1 || f.num > 4 {
			continue // unknown fields are dropped, as Unmarshal does
		}
		data, err := f.bytes()
		if err != nil {
			return dst, fmt.Errorf("cannot read field %d: %w", f.num, err)
		}
		switch f.num {
		case 1:
			name, val, err := labelFields(s, f.end-len(data), f.end)
			if err != nil {
				return dst, fmt.Errorf("cannot unmarshal label %d: %w", len(rw.labels), err)
			}
			// Past MaxLabels the series is invalid whatever else it
			// holds: its labels are counted, not kept.
			if nLabels++; lim.MaxLabels <= 0 || nLabels <= lim.MaxLabels {
				rw.labels = append(rw.labels, labelRef{field: span{f.start, f.end}, name: name, val: val})
			}
		case 2:
			if err := bud.take(1); err != nil {
				return dst, err
			}
			ts, err := sampleTimestamp(data)
			if err != nil {
				return dst, fmt.Errorf("cannot unmarshal sample %d: %w", samples, err)
			}
			if samples > 0 && ts < lastTS {
				ordered = false
			}
			lastTS = ts
			samples++
			rw.others = append(rw.others, span{f.start, f.end})
		case 3:
			exemplars++ // exemplars count for validity, not as samples
			rw.others = append(rw.others, span{f.start, f.end})
		case 4:
			if err := bud.take(1); err != nil {
				return dst, err
			}
			histograms++
			rw.others = append(rw.others, span{f.start, f.end})
		}
	}
	if it.err != nil {
		return dst, it.err
	}
	if samples+histograms == 0 {
		if err := bud.take(1); err != nil {
			return dst, err
		}
	}
	rw.FloatSamplesIn += samples
	rw.HistogramSamplesIn += histograms
	if reason := rw.check(s, nLabels, samples+histograms+exemplars, ordered, lim); reason != "" {
		rw.Invalid++
		if rw.FirstInvalid == nil {
			ls := make([]Label, len(rw.labels))
			for i, r := range rw.labels {
				ls[i] = Label{Name: string(s[r.name.start:r.name.end]), Value: string(s[r.val.start:r.val.end])}
			}
			rw.FirstInvalid = &ValidationError{Series: FormatLabels(ls, 512), Reason: reason}
		}
		return dst, nil
	}
	rw.Series++
	rw.FloatSamples += samples
	rw.HistogramSamples += histograms
	rw.Exemplars += exemplars

	return rw.appendSeries(dst, s), nil
}

// fastSeries relays the series s in one pass when it is valid and in the
// canonical encoding Prometheus and AppendWriteRequest write: its labels
// first, each a Label message of name then value with one-byte lengths,
// then only float samples of value then timestamp, none of them out of
// order, and room for them in the sample budget. It appends the series with
// the override labels spliced in, exactly as series does, and reports true;
// for anything else (an invalid series included) it appends nothing,
// charges nothing and reports false, and series takes the general path.
func (rw *Rewriter) fastSeries(dst, s []byte, lim Limits, bud *budget) ([]byte, bool) {
	labelsEnd, ok := rw.fastLabels(s, lim)
	if !ok {
		return dst, false
	}
	samples, ok := fastSamples(s[labelsEnd:])
	if !ok || bud.max > 0 && bud.n+samples > bud.max {
		return dst, false
	}
	// Valid: write it, the override labels spliced in where fastLabels
	// placed them.
	enc := rw.overridesEnc
	upper := len(s) + len(enc)
	if cap(dst)-len(dst) < 1+10+upper {
		dst = append(make([]byte, 0, 2*cap(dst)+1+10+upper), dst...)
	}
	out := dst[:cap(dst)]
	lenSize := varintSize(uint64(upper))
	start := len(dst) + 1 + lenSize // where the series' body goes
	p := start
	run, k := 0, 0 // the label bytes not yet copied start at run; overrides placed: k
	for _, pl := range rw.places {
		p += copy(out[p:], s[run:pl.at])
		p += copy(out[p:], enc[rw.overrideOffs[k]:rw.overrideOffs[pl.k]])
		run, k = pl.resume, pl.k
	}
	if k < len(rw.overrides) {
		p += copy(out[p:], s[run:labelsEnd])
		p += copy(out[p:], enc[rw.overrideOffs[k]:])
		run = labelsEnd
	}
	p += copy(out[p:], s[run:])
	size := p - start
	if n := varintSize(uint64(size)); n < lenSize {
		// Replaced labels made the length shorter: close the gap.
		copy(out[start-(lenSize-n):], out[start:p])
		p -= lenSize - n
	}
	dst = append(dst, 1<<3|wireBytes)
	dst = appendVarint(dst, uint64(size))
	dst = dst[:p]
	_ = bud.take(samples)
	rw.Series++
	rw.FloatSamples += samples
	rw.FloatSamplesIn += samples
	return dst, true
}

// place is where fastLabels puts override labels: the overrides up to k
// (from the previous place's) go before the label at offset at, and the
// series' bytes resume at resume (past the label when one replaces it).
type place struct{ at, resume, k int }

// fastLabels checks the run of label fields that starts s, in the
// canonical encoding (0x0a L 0x0a N name 0x12 V value, L = N + V + 4 <
// 0x80, which bounds N and V below 0x80 too), as check does, records in
// rw.places where the overrides go, and returns where the run ends. It
// reports false for anything else, or an invalid label set.
func (rw *Rewriter) fastLabels(s []byte, lim Limits) (labelsEnd int, ok bool) {
	maxLabels, maxLabelBytes := lim.MaxLabels, lim.MaxLabelBytes
	if maxLabels <= 0 {
		maxLabels = math.MaxInt
	}
	if maxLabelBytes <= 0 {
		maxLabelBytes = math.MaxInt
	}
	rw.places = rw.places[:0]
	// The first byte of the next override's name (256 past the last): a
	// label whose name starts below it comes before every override left.
	nextFirst := 256
	if len(rw.overrides) > 0 {
		nextFirst = int(rw.overrides[0].Name[0])
	}
	i, nLabels := 0, 0
	prevStart, prevEnd := 0, 0 // the previous label's name
	hasName := false
	for i+1 < len(s) && s[i] == 1<<3|wireBytes {
		l := int(s[i+1])
		end := i + 2 + l
		if l >= 0x80 || l < 4 || end > len(s) {
			return 0, false
		}
		b := s[i+2 : end : end] // 0x0a N name 0x12 V value
		n := int(b[1])
		if b[0] != 1<<3|wireBytes || n == 0 || n+4 > len(b) || b[n+2] != 2<<3|wireBytes || n+4+int(b[n+3]) != len(b) {
			return 0, false
		}
		ns, ne := i+4, i+4+n
		if nLabels++; nLabels > maxLabels || l-4 > maxLabelBytes {
			return 0, false
		}
		if prevEnd > 0 && (s[prevStart] > s[ns] || s[prevStart] == s[ns] && bytesToString(s[prevStart:prevEnd]) >= bytesToString(s[ns:ne])) {
			return 0, false
		}
		if ne-ns == len(MetricNameLabel) && bytesToString(s[ns:ne]) == MetricNameLabel {
			if end == ne+2 {
				return 0, false // an empty metric name
			}
			hasName = true
		}
		if int(s[ns]) >= nextFirst {
			nextFirst = rw.place(i, end, s[ns:ne])
		}
		prevStart, prevEnd = ns, ne
		i = end
	}
	return i, hasName && isASCII(s[:i])
}

// place records the overrides that go before, or replace, the label
// s[at:end] of name name, unless none does, and returns the first byte of
// the next override's name (256 when none is left).
func (rw *Rewriter) place(at, end int, name []byte) int {
	ovs := rw.overrides
	k := 0
	if n := len(rw.places); n > 0 {
		k = rw.places[n-1].k
	}
	k0 := k
	for k < len(ovs) && lessName(ovs[k].Name, name) {
		k++
	}
	resume := at
	if k < len(ovs) && ovs[k].Name == bytesToString(name) {
		k++
		resume = end
	}
	if k > k0 {
		rw.places = append(rw.places, place{at: at, resume: resume, k: k})
	}
	if k == len(ovs) {
		return 256
	}
	return int(ovs[k].Name[0])
}

// fastSamples checks that s is float samples only, each 0x12 L 0x09
// value(8) 0x10 timestamp(varint of at most 9 bytes: no overflow), in time
// order, and counts them; false for anything else or none.
func fastSamples(s []byte) (int, bool) {
	samples := 0
	var last int64
	for i := 0; i < len(s); {
		if i+12 >= len(s) || s[i] != 2<<3|wireBytes {
			return 0, false
		}
		end := i + 2 + int(s[i+1])
		if s[i+1] >= 0x80 || end > len(s) || end < i+13 || end > i+21 || s[i+2] != 1<<3|wireFixed64 || s[i+11] != 2<<3|wireVarint {
			return 0, false
		}
		var ts uint64
		for j := i + 12; j < end; j++ {
			c := s[j]
			ts |= uint64(c&0x7f) << (7 * uint(j-i-12))
			if (c < 0x80) != (j == end-1) {
				return 0, false
			}
		}
		if samples > 0 && int64(ts) < last {
			return 0, false
		}
		last = int64(ts)
		samples++
		i = end
	}
	return samples, samples > 0
}

// appendSeries appends the scanned series s, checked valid, with the
// override labels spliced in at the positions check found.
func (rw *Rewriter) appendSeries(dst, s []byte) []byte {
	// Body size: kept labels, override labels, other fields.
	size := len(rw.overridesEnc)
	for j := range rw.labels {
		if !rw.labels[j].replaced {
			size += rw.labels[j].field.end - rw.labels[j].field.start
		}
	}
	for _, o := range rw.others {
		size += o.end - o.start
	}
	dst = append(dst, 1<<3|wireBytes)
	dst = appendVarint(dst, uint64(size))
	// Merge the sorted input labels with the sorted override labels, at
	// the positions check found.
	k := int32(0)
	if len(rw.overrides) == 0 {
		// Nothing to splice: the labels go out as one run.
		if n := len(rw.labels); n > 0 && rw.contiguous() {
			dst = append(dst, s[rw.labels[0].field.start:rw.labels[n-1].field.end]...)
		} else {
			for j := range rw.labels {
				dst = append(dst, s[rw.labels[j].field.start:rw.labels[j].field.end]...)
			}
		}
	} else {
		for j := range rw.labels {
			r := &rw.labels[j]
			if r.overridesBefore > k {
				dst = append(dst, rw.overridesEnc[rw.overrideOffs[k]:rw.overrideOffs[r.overridesBefore]]...)
				k = r.overridesBefore
			}
			if !r.replaced {
				dst = append(dst, s[r.field.start:r.field.end]...)
			}
		}
		dst = append(dst, rw.overridesEnc[rw.overrideOffs[k]:]...)
	}
	for _, o := range rw.others {
		dst = append(dst, s[o.start:o.end]...)
	}
	return dst
}

// contiguous reports whether the series' labels are one run of bytes.
func (rw *Rewriter) contiguous() bool {
	for j := 1; j < len(rw.labels); j++ {
		if rw.labels[j].field.start != rw.labels[j-1].field.end {
			return false
		}
	}
	return true
}

// check applies ValidateSeries' rules to the scanned series s (values is
// its count of samples, histograms and exemplars) and finds where the
// override labels go. It returns the reason the series is invalid, or
// "".
func (rw *Rewriter) check(s []byte, nLabels, values int, ordered bool, lim Limits) string {
	if lim.MaxLabels > 0 && nLabels > lim.MaxLabels {
		return fmt.Sprintf("%d labels, more than the limit of %d", nLabels, lim.MaxLabels)
	}
	hasName := false
	k := 0
	var prev []byte
	// One ASCII check over the whole run of label fields covers every name
	// and value (tags and short lengths are ASCII too); only when it finds
	// a high byte are the strings checked one by one.
	perString := true
	if n := len(rw.labels); n > 0 && rw.contiguous() {
		perString = !isASCII(s[rw.labels[0].field.start:rw.labels[n-1].field.end])
	}
	for j := range rw.labels {
		r := &rw.labels[j]
		name, val := s[r.name.start:r.name.end], s[r.val.start:r.val.end]
		if len(name) == 0 {
			return "empty label name"
		}
		if j > 0 && (prev[0] >= name[0]) {
			switch c := bytes.Compare(prev, name); {
			case c == 0:
				return fmt.Sprintf("duplicate label name %q", name)
			case c > 0:
				return fmt.Sprintf("labels not sorted by name (%q before %q)", prev, name)
			}
		}
		prev = name
		if perString {
			if !utf8.Valid(name) {
				return fmt.Sprintf("label name %q is not valid UTF-8", name)
			}
			if !utf8.Valid(val) {
				return fmt.Sprintf("value of label %q is not valid UTF-8", name)
			}
		}
		if lim.MaxLabelBytes > 0 && len(name)+len(val) > lim.MaxLabelBytes {
			return fmt.Sprintf("label %q is %d bytes long, more than the limit of %d", name, len(name)+len(val), lim.MaxLabelBytes)
		}
		if len(name) == len(MetricNameLabel) && string(name) == MetricNameLabel {
			if len(val) == 0 {
				return ErrNoName.Error()
			}
			hasName = true
		}
		if len(rw.overrides) > 0 {
			for k < len(rw.overrides) && lessName(rw.overrides[k].Name, name) {
				k++
			}
			r.overridesBefore = int32(k)
			r.replaced = k < len(rw.overrides) && rw.overrides[k].Name[0] == name[0] && rw.overrides[k].Name == bytesToString(name)
		}
	}
	if !hasName {
		return ErrNoName.Error()
	}
	if values == 0 {
		return "no samples, histograms or exemplars"
	}
	if !ordered {
		return "samples not in time order"
	}
	return ""
}

// labelFields returns the offsets in s of the name and value of the Label
// message s[start:end].
func labelFields(s []byte, start, end int) (name, value span, err error) {
	b := s[start:end]
	// Fast path: the canonical encoding, name then value, each present.
	if len(b) > 2 && b[0] == 1<<3|wireBytes && b[1] < 0x80 {
		n := int(b[1])
		if 3+n < len(b) && b[2+n] == 2<<3|wireBytes && b[3+n] < 0x80 && 4+n+int(b[3+n]) == len(b) {
			return span{start + 2, start + 2 + n}, span{start + 4 + n, end}, nil
		}
	}
	// General path: fields in any order, repeated (last wins), or absent.
	name, value = span{start, start}, span{start, start}
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if f.num != 1 && f.num != 2 {
			continue
		}
		data, err := f.bytes()
		if err != nil {
			return name, value, err
		}
		sp := span{start + f.end - len(data), start + f.end}
		if f.num == 1 {
			name = sp
		} else {
			value = sp
		}
	}
	return name, value, it.err
}

// sampleTimestamp checks an encoded Sample and returns its timestamp.
func sampleTimestamp(b []byte) (int64, error) {
	// Fast path: the canonical encoding, value then timestamp.
	if len(b) >= 11 && b[0] == 1<<3|wireFixed64 && b[9] == 2<<3|wireVarint {
		if v, next, err := readVarint(b, 10); err == nil && next == len(b) {
			return int64(v), nil
		}
	}
	s, err := unmarshalSample(b)
	return s.Timestamp, err
}

// isASCII reports whether b has no byte above 0x7f, eight bytes at a time.
func isASCII(b []byte) bool {
	var a0, a1 uint64
	for len(b) >= 32 {
		a0 |= binary.LittleEndian.Uint64(b[0:8]) | binary.LittleEndian.Uint64(b[16:24])
		a1 |= binary.LittleEndian.Uint64(b[8:16]) | binary.LittleEndian.Uint64(b[24:32])
		b = b[32:]
	}
	for len(b) >= 8 {
		a0 |= binary.LittleEndian.Uint64(b[0:8])
		b = b[8:]
	}
	for _, c := range b {
		a1 |= uint64(c)
	}
	return (a0|a1)&0x8080808080808080 == 0
}

// lessName reports whether the (non-empty) override label name a sorts before
// b, deciding on the first byte where it can.
func lessName(a string, b []byte) bool {
	if a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < bytesToString(b)
}

// Span is a byte range [Start, End) of an encoded request.
type Span struct{ Start, End int }

// Fields appends the byte ranges of the top-level fields of an encoded
// WriteRequest to series (field 1, timeseries) and metadata (field 3),
// so that a request can be split on series boundaries without decoding it.
// Other fields are skipped. Errors are for bytes that are not a valid
// sequence of fields.
func Fields(raw []byte, series, metadata []Span) ([]Span, []Span, error) {
	it := fields{b: raw}
	for it.next() {
		switch f := &it.f; {
		case f.num == 1 && f.typ == wireBytes:
			series = append(series, Span{f.start, f.end})
		case f.num == 3 && f.typ == wireBytes:
			metadata = append(metadata, Span{f.start, f.end})
		}
	}
	return series, metadata, it.err
}
