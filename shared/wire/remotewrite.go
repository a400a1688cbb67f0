package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sample is one float sample of a series.
type Sample struct {
	Value     float64
	Timestamp int64 // milliseconds since the Unix epoch
}

// Series is one prompb.TimeSeries: a label set and its samples. Exemplars and
// Histograms hold the still-encoded prompb.Exemplar and prompb.Histogram
// messages; promrelay carries them through unchanged.
type Series struct {
	Labels     []Label  // sorted by name for a valid series
	Samples    []Sample // in time order
	Exemplars  [][]byte // encoded prompb.Exemplar messages
	Histograms [][]byte // encoded prompb.Histogram messages
}

// MetadataType is prompb.MetricMetadata.MetricType.
type MetadataType int32

// MetadataType values, as numbered in prompb/types.proto.
const (
	MetadataUnknown        MetadataType = 0
	MetadataCounter        MetadataType = 1
	MetadataGauge          MetadataType = 2
	MetadataHistogram      MetadataType = 3
	MetadataGaugeHistogram MetadataType = 4
	MetadataSummary        MetadataType = 5
	MetadataInfo           MetadataType = 6
	MetadataStateset       MetadataType = 7
)

// Metadata is one prompb.MetricMetadata: the type, help and unit of a metric
// family.
type Metadata struct {
	Type       MetadataType
	FamilyName string
	Help       string
	Unit       string
}

// WriteRequest is a remote-write 1.0 prompb.WriteRequest. The zero value is
// ready to use. Reuse one value across requests (Reset or Unmarshal) so that
// its slices are recycled; results reference the input of Unmarshal and are
// valid until the next Reset or Unmarshal.
type WriteRequest struct {
	Series   []Series
	Metadata []Metadata

	labels  []Label
	samples []Sample
	raw     [][]byte
	arena   []byte
}

// Reset empties wr and keeps its memory for reuse.
func (wr *WriteRequest) Reset() {
	clear(wr.Series)
	wr.Series = wr.Series[:0]
	wr.Metadata = wr.Metadata[:0]
	clear(wr.labels)
	wr.labels = wr.labels[:0]
	wr.samples = wr.samples[:0]
	clear(wr.raw)
	wr.raw = wr.raw[:0]
	wr.arena = wr.arena[:0]
}

// AppendLabels copies ls into wr's label store and returns the copy, for
// building series without allocating per series.
func (wr *WriteRequest) AppendLabels(ls ...Label) []Label {
	start := len(wr.labels)
	wr.labels = append(wr.labels, ls...)
	return wr.labels[start:len(wr.labels):len(wr.labels)]
}

// LabelStore returns wr's label store for a caller that builds a label set in
// place: append to the returned slice and pass it back with CommitLabels.
func (wr *WriteRequest) LabelStore() []Label { return wr.labels }

// CommitLabels takes back the label store grown from LabelStore and returns
// the labels appended since index start.
func (wr *WriteRequest) CommitLabels(store []Label, start int) []Label {
	wr.labels = store
	return store[start:len(store):len(store)]
}

// AppendSample adds one series with a single sample, its labels taken as is.
func (wr *WriteRequest) AppendSample(ls []Label, s Sample) {
	start := len(wr.samples)
	wr.samples = append(wr.samples, s)
	wr.Series = append(wr.Series, Series{Labels: ls, Samples: wr.samples[start : start+1 : start+1]})
}

// Unmarshal decodes a remote-write 1.0 WriteRequest from b into wr, replacing
// its contents. Strings reference b. It returns an error that names the path
// to the first malformed field, or a *LimitError as soon as the request
// crosses lim (every sample, every histogram and every series without
// either counts toward lim.MaxSamples). It does not validate label order or
// content (see ValidateSeries).
func (wr *WriteRequest) Unmarshal(b []byte, lim Limits) error {
	wr.Reset()
	bud := newBudget(lim)
	// message WriteRequest {
	//   repeated prometheus.TimeSeries timeseries = 1;
	//   reserved 2;
	//   repeated prometheus.MetricMetadata metadata = 3;
	// }
	it := fields{b: b}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			data, err := f.bytes()
			if err != nil {
				return fmt.Errorf("cannot read timeseries %d: %w", len(wr.Series), err)
			}
			if err := wr.unmarshalSeries(data, &lim, &bud); err != nil {
				return fmt.Errorf("cannot unmarshal timeseries %d: %w", len(wr.Series), err)
			}
		case 3:
			data, err := f.bytes()
			if err != nil {
				return fmt.Errorf("cannot read metadata %d: %w", len(wr.Metadata), err)
			}
			md, err := unmarshalMetadata(data)
			if err != nil {
				return fmt.Errorf("cannot unmarshal metadata %d: %w", len(wr.Metadata), err)
			}
			wr.Metadata = append(wr.Metadata, md)
		}
	}
	if it.err != nil {
		return fmt.Errorf("cannot read WriteRequest field: %w", it.err)
	}
	return nil
}

func (wr *WriteRequest) unmarshalSeries(b []byte, lim *Limits, bud *budget) error {
	// message TimeSeries {
	//   repeated Label labels = 1;
	//   repeated Sample samples = 2;
	//   repeated Exemplar exemplars = 3;
	//   repeated Histogram histograms = 4;
	// }
	// Fields of one series may interleave, so labels and samples are
	// appended to the shared stores and the series takes the ranges.
	labelsStart, samplesStart, rawStart := len(wr.labels), len(wr.samples), len(wr.raw)
	nExemplars, nHistograms := 0, 0
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if f.num < 1 || f.num > 4 {
			continue
		}
		data, err := f.bytes()
		if err != nil {
			return err
		}
		switch f.num {
		case 1:
			l, err := unmarshalLabel(data)
			if err != nil {
				return fmt.Errorf("cannot unmarshal label %d: %w", len(wr.labels)-labelsStart, err)
			}
			if k := lim.labelOver(len(wr.labels)-labelsStart+1, len(l.Name)+len(l.Value)); k != 0 {
				return lim.labelError(k, "label "+strconv.Quote(l.Name))
			}
			wr.labels = append(wr.labels, l)
		case 2:
			if err := bud.take(1); err != nil {
				return err
			}
			s, err := unmarshalSample(data)
			if err != nil {
				return fmt.Errorf("cannot unmarshal sample %d: %w", len(wr.samples)-samplesStart, err)
			}
			wr.samples = append(wr.samples, s)
		case 3:
			wr.raw = append(wr.raw, data)
			nExemplars++
		case 4:
			// Histograms follow the exemplars in wr.raw, so that both
			// stay contiguous: they are only counted here and appended
			// by a second pass over the series' fields below, which
			// keeps the decode linear however the two interleave.
			if err := bud.take(1); err != nil {
				return err
			}
			nHistograms++
		}
	}
	if it.err != nil {
		return it.err
	}
	if nHistograms > 0 {
		it = fields{b: b}
		for it.next() {
			// The first pass read every field: none fails now.
			if f := &it.f; f.num == 4 {
				wr.raw = append(wr.raw, f.data)
			}
		}
	}
	if len(wr.samples) == samplesStart && nHistograms == 0 {
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
	wr.Series = append(wr.Series, s)
	return nil
}

// unmarshalLabel decodes a prompb.Label or an io.prometheus.client.LabelPair
// (same field numbers).
func unmarshalLabel(b []byte) (Label, error) {
	// message Label {
	//   string name  = 1;
	//   string value = 2;
	// }
	var l Label
	it := fields{b: b}
	for it.next() {
		switch f := &it.f; f.num {
		case 1, 2:
			data, err := f.bytes()
			if err != nil {
				return l, err
			}
			if f.num == 1 {
				l.Name = bytesToString(data)
			} else {
				l.Value = bytesToString(data)
			}
		}
	}
	return l, it.err
}

func unmarshalSample(b []byte) (Sample, error) {
	// message Sample {
	//   double value    = 1;
	//   int64 timestamp = 2; // milliseconds
	// }
	var s Sample
	it := fields{b: b}
	for it.next() {
		var err error
		switch f := &it.f; f.num {
		case 1:
			if s.Value, err = f.double(); err != nil {
				return s, fmt.Errorf("cannot read value: %w", err)
			}
		case 2:
			v, err := f.varint()
			if err != nil {
				return s, fmt.Errorf("cannot read timestamp: %w", err)
			}
			s.Timestamp = int64(v)
		}
	}
	return s, it.err
}

func unmarshalMetadata(b []byte) (Metadata, error) {
	// message MetricMetadata {
	//   MetricType type = 1;
	//   string metric_family_name = 2;
	//   string help = 4;
	//   string unit = 5;
	// }
	var md Metadata
	it := fields{b: b}
	for it.next() {
		switch f := &it.f; f.num {
		case 1:
			v, err := f.varint()
			if err != nil {
				return md, fmt.Errorf("cannot read type: %w", err)
			}
			md.Type = MetadataType(int32(v))
		case 2, 4, 5:
			data, err := f.bytes()
			if err != nil {
				return md, fmt.Errorf("cannot read field %d: %w", f.num, err)
			}
			switch f.num {
			case 2:
				md.FamilyName = bytesToString(data)
			case 4:
				md.Help = bytesToString(data)
			case 5:
				md.Unit = bytesToString(data)
			}
		}
	}
	return md, it.err
}

// ValidationError is a series that a receiver must reject as bad data (the
// sender must not retry it).
type ValidationError struct {
	Series string // the series' label set, as far as it could be rendered
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Series == "" {
		return e.Reason
	}
	return fmt.Sprintf("invalid series %s: %s", e.Series, e.Reason)
}

// ErrNoName is the reason a series without a metric name is rejected.
var ErrNoName = errors.New("missing metric name (__name__ label)")

// ValidateSeries checks one series as the remote-write 1.0 spec requires of a
// sender: label names non-empty and unique, sorted by name, __name__ present,
// names and values valid UTF-8; at least one sample, histogram or exemplar;
// and the limits. It returns a *ValidationError.
func ValidateSeries(s *Series, lim Limits) error {
	if lim.MaxLabels > 0 && len(s.Labels) > lim.MaxLabels {
		// Only the labels up to the limit are rendered, as the Rewriter,
		// which stops keeping labels there, renders them.
		return &ValidationError{Series: FormatLabels(s.Labels[:lim.MaxLabels], 512), Reason: fmt.Sprintf("%d labels, more than the limit of %d", len(s.Labels), lim.MaxLabels)}
	}
	hasName := false
	for i, l := range s.Labels {
		if l.Name == "" {
			return invalid(s, "empty label name")
		}
		if i > 0 {
			switch prev := s.Labels[i-1].Name; {
			case prev == l.Name:
				return invalid(s, fmt.Sprintf("duplicate label name %q", l.Name))
			case prev > l.Name:
				return invalid(s, fmt.Sprintf("labels not sorted by name (%q before %q)", prev, l.Name))
			}
		}
		if !utf8.ValidString(l.Name) {
			return invalid(s, fmt.Sprintf("label name %q is not valid UTF-8", l.Name))
		}
		if !utf8.ValidString(l.Value) {
			return invalid(s, fmt.Sprintf("value of label %q is not valid UTF-8", l.Name))
		}
		if lim.MaxLabelBytes > 0 && len(l.Name)+len(l.Value) > lim.MaxLabelBytes {
			return invalid(s, fmt.Sprintf("label %q is %d bytes long, more than the limit of %d", l.Name, len(l.Name)+len(l.Value), lim.MaxLabelBytes))
		}
		if l.Name == MetricNameLabel {
			if l.Value == "" {
				return invalid(s, ErrNoName.Error())
			}
			hasName = true
		}
	}
	if !hasName {
		return invalid(s, ErrNoName.Error())
	}
	if len(s.Samples)+len(s.Histograms)+len(s.Exemplars) == 0 {
		return invalid(s, "no samples, histograms or exemplars")
	}
	for i := 1; i < len(s.Samples); i++ {
		if s.Samples[i].Timestamp < s.Samples[i-1].Timestamp {
			return invalid(s, "samples not in time order")
		}
	}
	return nil
}

func invalid(s *Series, reason string) error {
	return &ValidationError{Series: FormatLabels(s.Labels, 512), Reason: reason}
}

// FormatLabels renders ls as name{k="v",...} for error messages, cut to at
// most max bytes. It escapes invalid UTF-8 and quotes as %q does.
func FormatLabels(ls []Label, max int) string {
	b := make([]byte, 0, 64)
	name := ""
	for _, l := range ls {
		if l.Name == MetricNameLabel {
			name = l.Value
		}
	}
	b = append(b, strings.ToValidUTF8(name, "\uFFFD")...)
	b = append(b, '{')
	first := true
	for _, l := range ls {
		if l.Name == MetricNameLabel {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, strings.ToValidUTF8(l.Name, "\uFFFD")...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, l.Value)
		if len(b) > max {
			break
		}
	}
	b = append(b, '}')
	if len(b) > max {
		b = append(b[:max-3], "..."...)
	}
	return string(b)
}

// SeriesSize returns the encoded size in bytes of s as a prompb.TimeSeries
// message body (without its tag and length prefix).
func SeriesSize(s *Series) int {
	n := 0
	for _, l := range s.Labels {
		if nl, nv := len(l.Name), len(l.Value); nl > 0 && nv > 0 && nl+nv < 124 {
			n += 6 + nl + nv // tag, length, and a label of one-byte lengths
			continue
		}
		ls := labelSize(l)
		n += 1 + varintSize(uint64(ls)) + ls
	}
	for _, smp := range s.Samples {
		ss := sampleSize(smp)
		n += 1 + varintSize(uint64(ss)) + ss
	}
	for _, e := range s.Exemplars {
		n += 1 + varintSize(uint64(len(e))) + len(e)
	}
	for _, h := range s.Histograms {
		n += 1 + varintSize(uint64(len(h))) + len(h)
	}
	return n
}

func labelSize(l Label) int {
	n := 0
	if len(l.Name) > 0 {
		n += 1 + varintSize(uint64(len(l.Name))) + len(l.Name)
	}
	if len(l.Value) > 0 {
		n += 1 + varintSize(uint64(len(l.Value))) + len(l.Value)
	}
	return n
}

func sampleSize(s Sample) int {
	n := 0
	if math.Float64bits(s.Value) != 0 {
		n += 9
	}
	if s.Timestamp != 0 {
		n += 1 + varintSize(uint64(s.Timestamp))
	}
	return n
}

func metadataSize(md *Metadata) int {
	n := 0
	if md.Type != 0 {
		n += 1 + varintSize(uint64(int64(md.Type)))
	}
	for _, s := range [...]string{md.FamilyName, md.Help, md.Unit} {
		if len(s) > 0 {
			n += 1 + varintSize(uint64(len(s))) + len(s)
		}
	}
	return n
}

// AppendWriteRequest appends the remote-write 1.0 encoding of series and
// metadata (a prompb.WriteRequest) to dst and returns the extended buffer.
// Fields are written in field-number order and zero values are omitted, as
// the reference (gogo-protobuf) encoder does, so the output is byte-identical
// to prompb's Marshal for the same message.
func AppendWriteRequest(dst []byte, series []Series, metadata []Metadata) []byte {
	for i := range series {
		dst = appendSeries(dst, &series[i])
	}
	for i := range metadata {
		md := &metadata[i]
		dst = append(dst, 3<<3|wireBytes)
		dst = appendVarint(dst, uint64(metadataSize(md)))
		if md.Type != 0 {
			dst = append(dst, 1<<3|wireVarint)
			dst = appendVarint(dst, uint64(int64(md.Type)))
		}
		dst = appendString(dst, 2, md.FamilyName)
		dst = appendString(dst, 4, md.Help)
		dst = appendString(dst, 5, md.Unit)
	}
	return dst
}

func appendSeries(dst []byte, s *Series) []byte {
	dst = append(dst, 1<<3|wireBytes)
	dst = appendVarint(dst, uint64(SeriesSize(s)))
	for _, l := range s.Labels {
		if nl, nv := len(l.Name), len(l.Value); nl > 0 && nv > 0 && nl+nv < 124 {
			// The usual label: every length fits in one byte.
			dst = append(dst, 1<<3|wireBytes, byte(4+nl+nv), 1<<3|wireBytes, byte(nl))
			dst = append(dst, l.Name...)
			dst = append(dst, 2<<3|wireBytes, byte(nv))
			dst = append(dst, l.Value...)
			continue
		}
		dst = append(dst, 1<<3|wireBytes)
		dst = appendVarint(dst, uint64(labelSize(l)))
		dst = appendString(dst, 1, l.Name)
		dst = appendString(dst, 2, l.Value)
	}
	for _, smp := range s.Samples {
		dst = appendSample(dst, smp)
	}
	for _, e := range s.Exemplars {
		dst = append(dst, 3<<3|wireBytes)
		dst = appendVarint(dst, uint64(len(e)))
		dst = append(dst, e...)
	}
	for _, h := range s.Histograms {
		dst = append(dst, 4<<3|wireBytes)
		dst = appendVarint(dst, uint64(len(h)))
		dst = append(dst, h...)
	}
	return dst
}

func appendString(dst []byte, field int, s string) []byte {
	if len(s) == 0 {
		return dst
	}
	dst = append(dst, byte(field<<3|wireBytes))
	dst = appendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Intern copies b into wr's string arena and returns it as a string valid
// until the next Reset, for strings a request builds (such as formatted le
// values) rather than references into its input.
func (wr *WriteRequest) Intern(b []byte) string {
	start := len(wr.arena)
	wr.arena = append(wr.arena, b...)
	return bytesToString(wr.arena[start:len(wr.arena)])
}

// NumFloatSamples returns the number of float samples in wr.
func (wr *WriteRequest) NumFloatSamples() int {
	n := 0
	for i := range wr.Series {
		n += len(wr.Series[i].Samples)
	}
	return n
}

// NumHistogramSamples returns the number of native histogram samples in wr.
func (wr *WriteRequest) NumHistogramSamples() int {
	n := 0
	for i := range wr.Series {
		n += len(wr.Series[i].Histograms)
	}
	return n
}

// ApplyLabels applies the override labels overrides (sorted by name, unique)
// to every series of wr as MergeLabels does: each replaces the label of the
// same name or is added, and one with an empty value removes its label. Each
// series' labels stay sorted; the new label sets live in wr's label store.
func (wr *WriteRequest) ApplyLabels(overrides []Label) {
	if len(overrides) == 0 {
		return
	}
	for i := range wr.Series {
		s := &wr.Series[i]
		start := len(wr.labels)
		wr.labels = MergeLabels(wr.labels, s.Labels, overrides)
		s.Labels = wr.labels[start:len(wr.labels):len(wr.labels)]
	}
}

// Retained returns the number of entries wr keeps for reuse after Reset —
// series, metadata, labels, samples, and arena bytes counted 16 to an
// entry — so that a pool of WriteRequests can drop one that an outsized
// request grew.
func (wr *WriteRequest) Retained() int {
	return cap(wr.Series) + cap(wr.Metadata) + cap(wr.labels) + cap(wr.samples) + cap(wr.raw) + cap(wr.arena)/16
}

// appendSample appends smp as field 2 of a time series: the Sample
// message (double value = 1; int64 timestamp = 2), the same in remote
// write 1.0's TimeSeries and 2.0's.
func appendSample(dst []byte, smp Sample) []byte {
	dst = append(dst, 2<<3|wireBytes)
	dst = appendVarint(dst, uint64(sampleSize(smp)))
	if bits := math.Float64bits(smp.Value); bits != 0 {
		dst = append(dst, 1<<3|wireFixed64)
		dst = appendFixed64(dst, bits)
	}
	if smp.Timestamp != 0 {
		dst = append(dst, 2<<3|wireVarint)
		dst = appendVarint(dst, uint64(smp.Timestamp))
	}
	return dst
}
