package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Rewriter relays remote-write 1.0 requests at the wire level: it checks
// each series as ValidateSeries does and splices labels into its encoded
// bytes, copying samples, exemplars and histograms as they are, without
// decoding them into a WriteRequest. Its output decodes to exactly what
// Unmarshal, dropping the series ValidateSeries rejects, ApplyLabels and
// AppendWriteRequest give (the tests check this on random and fuzzed input);
// it is that path's fast form for POST /api/v1/write.
//
// The zero value is ready to use; reuse one per goroutine.
type Rewriter struct {
	// Results of the last Rewrite.
	Series       int   // series written
	Samples      int   // samples and histograms written
	SamplesIn    int   // samples and histograms read, invalid series included
	Invalid      int   // series dropped as invalid
	FirstInvalid error // a *ValidationError for the first dropped series

	labels  []labelRef
	others  []span
	set     []Label
	setEnc  []byte
	setOffs []int
}

type labelRef struct {
	field     span  // the whole label field: tag, length and message
	name, val span  // offsets of the name and value in the series bytes
	setBefore int32 // set labels that sort before this label
	replaced  bool  // a set label has this label's name
}

type span struct{ start, end int }

// Rewrite appends to dst the request src with every valid series given the
// labels set (sorted by name; they replace labels of the same name) and
// returns it. It returns an error only for a request that cannot be decoded
// (as Unmarshal would); invalid series are counted in rw.Invalid and
// described by rw.FirstInvalid.
func (rw *Rewriter) Rewrite(dst, src []byte, set []Label, lim Limits) ([]byte, error) {
	rw.Series, rw.Samples, rw.SamplesIn, rw.Invalid, rw.FirstInvalid = 0, 0, 0, 0, nil
	rw.set = set
	rw.setEnc = rw.setEnc[:0]
	rw.setOffs = append(rw.setOffs[:0], 0)
	for _, l := range set {
		rw.setEnc = append(rw.setEnc, 1<<3|wireBytes)
		rw.setEnc = appendVarint(rw.setEnc, uint64(labelSize(l)))
		rw.setEnc = appendString(rw.setEnc, 1, l.Name)
		rw.setEnc = appendString(rw.setEnc, 2, l.Value)
		rw.setOffs = append(rw.setOffs, len(rw.setEnc))
	}
	// One allocation for the whole output: the input plus room for the
	// set labels (short ones, as external and tenant labels are).
	if need := len(dst) + len(src) + len(src)/4 + len(rw.setEnc); cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	var metadata []span
	for i := 0; i < len(src); {
		num, typ, next, err := readTag(src, i)
		if err != nil {
			return dst, fmt.Errorf("cannot read WriteRequest field: %w", err)
		}
		fieldStart := i
		i = next
		switch num {
		case 1:
			data, next, err := readBytesField(src, i, typ)
			if err != nil {
				return dst, fmt.Errorf("cannot read timeseries %d: %w", rw.Series+rw.Invalid, err)
			}
			i = next
			if dst, err = rw.series(dst, data, lim); err != nil {
				return dst, fmt.Errorf("cannot unmarshal timeseries %d: %w", rw.Series+rw.Invalid, err)
			}
		case 3:
			data, next, err := readBytesField(src, i, typ)
			if err != nil {
				return dst, fmt.Errorf("cannot read metadata: %w", err)
			}
			i = next
			var md WriteRequest
			if err := md.unmarshalMetadata(data); err != nil {
				return dst, fmt.Errorf("cannot unmarshal metadata: %w", err)
			}
			// Metadata follow all series in the reference encoding.
			metadata = append(metadata, span{fieldStart, i})
		default:
			if i, err = skipField(src, i, typ); err != nil {
				return dst, fmt.Errorf("cannot skip WriteRequest field %d: %w", num, err)
			}
		}
	}
	for _, m := range metadata {
		dst = append(dst, src[m.start:m.end]...)
	}
	return dst, nil
}

// series checks one encoded TimeSeries and, when valid, appends it with the
// labels set.
func (rw *Rewriter) series(dst, s []byte, lim Limits) ([]byte, error) {
	rw.labels = rw.labels[:0]
	rw.others = rw.others[:0]
	samples, extra := 0, 0
	var lastTS int64
	ordered := true
	for i := 0; i < len(s); {
		num, typ, next, err := readTag(s, i)
		if err != nil {
			return dst, err
		}
		start := i
		i = next
		data, next, err := readBytesField(s, i, typ)
		if err != nil {
			if num != 1 && num != 2 && num != 3 && num != 4 {
				// Unknown fields of other wire types are skipped, as
				// Unmarshal does.
				if i, err = skipField(s, i, typ); err != nil {
					return dst, fmt.Errorf("cannot skip field %d: %w", num, err)
				}
				continue
			}
			return dst, fmt.Errorf("cannot read field %d: %w", num, err)
		}
		i = next
		switch num {
		case 1:
			name, val, err := labelFields(s, i-len(data), i)
			if err != nil {
				return dst, fmt.Errorf("cannot unmarshal label %d: %w", len(rw.labels), err)
			}
			rw.labels = append(rw.labels, labelRef{field: span{start, i}, name: name, val: val})
		case 2:
			ts, err := sampleTimestamp(data)
			if err != nil {
				return dst, fmt.Errorf("cannot unmarshal sample %d: %w", samples, err)
			}
			if samples > 0 && ts < lastTS {
				ordered = false
			}
			lastTS = ts
			samples++
			rw.others = append(rw.others, span{start, i})
		case 3, 4:
			if num == 4 {
				extra++
			} else {
				extra += 1 << 32 // exemplars count for validity, not as samples
			}
			rw.others = append(rw.others, span{start, i})
		}
	}
	rw.SamplesIn += samples + int(uint32(extra))
	if reason := rw.check(s, samples, extra, ordered, lim); reason != "" {
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
	rw.Samples += samples + int(uint32(extra))

	// Body size: kept labels, set labels, other fields.
	size := len(rw.setEnc)
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
	// Merge the sorted input labels with the sorted set labels, at the
	// positions check found.
	k := int32(0)
	if len(rw.set) == 0 {
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
			if r.setBefore > k {
				dst = append(dst, rw.setEnc[rw.setOffs[k]:rw.setOffs[r.setBefore]]...)
				k = r.setBefore
			}
			if !r.replaced {
				dst = append(dst, s[r.field.start:r.field.end]...)
			}
		}
		dst = append(dst, rw.setEnc[rw.setOffs[k]:]...)
	}
	for _, o := range rw.others {
		dst = append(dst, s[o.start:o.end]...)
	}
	return dst, nil
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

// check applies ValidateSeries' rules to the scanned series s and finds
// where the set labels go. It returns the reason the series is invalid, or
// "".
func (rw *Rewriter) check(s []byte, samples, extra int, ordered bool, lim Limits) string {
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
		if len(rw.set) > 0 {
			for k < len(rw.set) && lessName(rw.set[k].Name, name) {
				k++
			}
			r.setBefore = int32(k)
			r.replaced = k < len(rw.set) && rw.set[k].Name[0] == name[0] && rw.set[k].Name == bytesToString(name)
		}
	}
	if !hasName {
		return ErrNoName.Error()
	}
	if lim.MaxLabels > 0 && len(rw.labels) > lim.MaxLabels {
		return fmt.Sprintf("%d labels, more than the limit of %d", len(rw.labels), lim.MaxLabels)
	}
	if samples+extra == 0 {
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
	for i := 0; i < len(b); {
		num, typ, next, err := readTag(b, i)
		if err != nil {
			return name, value, err
		}
		i = next
		switch num {
		case 1, 2:
			data, next, err := readBytesField(b, i, typ)
			if err != nil {
				return name, value, err
			}
			sp := span{start + next - len(data), start + next}
			if num == 1 {
				name = sp
			} else {
				value = sp
			}
			i = next
		default:
			if i, err = skipField(b, i, typ); err != nil {
				return name, value, err
			}
		}
	}
	return name, value, nil
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
	var acc uint64
	i := 0
	for ; i+8 <= len(b); i += 8 {
		acc |= binary.LittleEndian.Uint64(b[i:])
	}
	for ; i < len(b); i++ {
		acc |= uint64(b[i])
	}
	return acc&0x8080808080808080 == 0
}

// lessName reports whether the (non-empty) set label name a sorts before
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
	for i := 0; i < len(raw); {
		start := i
		num, typ, next, err := readTag(raw, i)
		if err != nil {
			return series, metadata, err
		}
		if i, err = skipField(raw, next, typ); err != nil {
			return series, metadata, err
		}
		switch {
		case num == 1 && typ == wireBytes:
			series = append(series, Span{start, i})
		case num == 3 && typ == wireBytes:
			metadata = append(metadata, Span{start, i})
		}
	}
	return series, metadata, nil
}
