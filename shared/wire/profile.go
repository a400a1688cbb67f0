package wire

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Profile says what an upstream accepts beyond remote write 1.0's floats:
// what ApplyProfile must change in a request before it is sent there. The
// zero Profile changes nothing.
type Profile struct {
	// ASCIIHelp reduces metadata HELP text to printable ASCII (see
	// ASCIIHelp). Alibaba Cloud ARMS (Managed Service for Prometheus) fails
	// a whole push whose HELP has non-ASCII characters ("Metric HELP
	// metadata does not support Chinese characters").
	ASCIIHelp bool
	// ClassicHistograms turns native histogram samples into classic
	// histogram series (name_bucket{le=...}, name_sum, name_count), for
	// Amazon Managed Service for Prometheus (AMP).
	ClassicHistograms bool
	// MaxClassicBuckets bounds the buckets, +Inf included, of the classic
	// histogram one native histogram series becomes; 0 (or less) means 40.
	MaxClassicBuckets int
	// DropExemplars removes every exemplar, for AMP.
	DropExemplars bool
}

// DefaultMaxClassicBuckets is the bucket bound a Profile whose
// MaxClassicBuckets is 0 uses.
const DefaultMaxClassicBuckets = 40

func (p Profile) maxBuckets() int {
	if p.MaxClassicBuckets <= 0 {
		return DefaultMaxClassicBuckets
	}
	return p.MaxClassicBuckets
}

// ProfileCounts says what ApplyProfile changed: metadata entries whose HELP
// was rewritten, native histogram samples converted, exemplars dropped, and
// classic histogram series added.
type ProfileCounts struct{ HelpRewritten, HistogramsConverted, ExemplarsDropped, ClassicSeries int }

// Needed reports, by a scan of raw, an encoded remote write 1.0
// prompb.WriteRequest, whether ApplyProfile with p would change anything in
// it: a series with an exemplar (DropExemplars) or a native histogram
// sample (ClassicHistograms), or metadata whose HELP is not printable ASCII
// (ASCIIHelp). It allocates nothing, and stops at the first such thing; it
// returns an error for a field it cannot read on the way there (the
// request's fields as Unmarshal reads them).
func (p Profile) Needed(raw []byte) (bool, error) {
	it := fields{b: raw}
	for it.next() {
		f := &it.f
		switch {
		case f.num == 1 && (p.ClassicHistograms || p.DropExemplars):
			data, err := f.bytes()
			if err != nil {
				return false, fmt.Errorf("cannot read timeseries: %w", err)
			}
			sit := fields{b: data}
			for sit.next() {
				switch sit.f.num {
				case 3:
					if p.DropExemplars {
						return true, nil
					}
				case 4:
					if p.ClassicHistograms {
						return true, nil
					}
				}
			}
			if sit.err != nil {
				return false, fmt.Errorf("cannot read TimeSeries field: %w", sit.err)
			}
		case f.num == 3 && p.ASCIIHelp:
			data, err := f.bytes()
			if err != nil {
				return false, fmt.Errorf("cannot read metadata: %w", err)
			}
			md, err := unmarshalMetadata(data)
			if err != nil {
				return false, fmt.Errorf("cannot unmarshal metadata: %w", err)
			}
			if !isPrintableASCII(md.Help) {
				return true, nil
			}
		}
	}
	if it.err != nil {
		return false, fmt.Errorf("cannot read WriteRequest field: %w", it.err)
	}
	return false, nil
}

// isPrintableASCII reports whether every byte of s is in 0x20-0x7E.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ASCIIHelp returns s reduced to printable ASCII (bytes 0x20-0x7E), and
// whether it changed. A string that is printable ASCII already is returned
// as it is. Otherwise every maximal run of bytes that are spaces or are
// not printable ASCII — non-ASCII characters (such as Chinese text),
// invalid UTF-8, control characters (tab, newline, ...) and DEL — becomes
// one space, and a space left at the start or the end is removed:
// "CPU 使用率 (%)" becomes "CPU (%)", "延迟 (毫秒)\n" becomes "( )",
// "a\t\tb  c" becomes "a b c", and "中文" becomes "". The result is never
// longer than s.
func ASCIIHelp(s string) (string, bool) {
	if isPrintableASCII(s) {
		return s, false
	}
	return string(appendASCIIHelp(nil, s)), true
}

// appendASCIIHelp appends ASCIIHelp's reduction of s (which is not
// printable ASCII) to dst.
func appendASCIIHelp(dst []byte, s string) []byte {
	start := len(dst)
	space := true // the last byte written is a space, or none was written
	for i := 0; i < len(s); {
		if c := s[i]; c > 0x20 && c < 0x7f {
			dst = append(dst, c)
			space = false
			i++
			continue
		}
		for i < len(s) && (s[i] <= 0x20 || s[i] >= 0x7f) {
			i++
		}
		if !space {
			dst = append(dst, ' ')
			space = true
		}
	}
	if space && len(dst) > start {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// ApplyProfile changes wr (as Unmarshal or UnmarshalV2 left it) in place as
// p says, and returns what changed:
//
//   - ASCIIHelp: each metadata entry's Help is reduced with ASCIIHelp.
//   - DropExemplars: every series loses its exemplars.
//   - ClassicHistograms: every native histogram series name{...} is
//     replaced by the classic histogram series name_bucket{...,le="..."}
//     (one per bucket boundary, ascending, +Inf last), name_count{...} and
//     name_sum{...}, in that order, each with one sample per native
//     histogram sample at its timestamp, in the order of the native
//     samples (described at classicHistograms).
//     The classic series come after the request's other series, in the
//     order of the native histogram series they replace; a native series
//     that also has float samples stays with those. A classic series whose
//     label set equals that of a series already in the request (a
//     classic histogram sent next to the native one) is added all the
//     same: remote write allows a label set more than once in a request,
//     and a receiver appends both series' samples. Metadata is not
//     changed: the family name stays HISTOGRAM (or GAUGEHISTOGRAM).
//
// New strings (HELP text, metric names, le values) live in wr's arena, label
// sets in its label store and samples in its sample store; the decoded
// native histograms take scratch space allocated per call. A native
// histogram sample becomes at most MaxClassicBuckets+2 float samples. lim
// bounds what
// the conversion adds: the float samples of the request after it against
// lim.MaxSamples, and the label sets of the series it adds against
// lim.MaxLabels and lim.MaxLabelBytes; crossing one returns a *LimitError
// and leaves wr partly converted. A native histogram that does not decode
// as a prompb.Histogram, or that Prometheus would reject (a schema outside
// -4..8 and -53, spans that do not match the buckets, custom bounds that
// are not increasing), or a series without a metric name, is an error
// naming the series. The counts returned on error are those up to it.
func (wr *WriteRequest) ApplyProfile(p Profile, lim Limits) (ProfileCounts, error) {
	var c ProfileCounts
	if p.ASCIIHelp {
		for i := range wr.Metadata {
			md := &wr.Metadata[i]
			if isPrintableASCII(md.Help) {
				continue
			}
			start := len(wr.arena)
			wr.arena = appendASCIIHelp(wr.arena, md.Help)
			md.Help = bytesToString(wr.arena[start:len(wr.arena):len(wr.arena)])
			c.HelpRewritten++
		}
	}
	if p.DropExemplars {
		for i := range wr.Series {
			c.ExemplarsDropped += len(wr.Series[i].Exemplars)
			wr.Series[i].Exemplars = nil
		}
	}
	if p.ClassicHistograms {
		if err := wr.classicHistograms(p, &lim, &c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// classicScratch is the scratch space of one classicHistograms call.
type classicScratch struct {
	hs     []nativeSample
	bkts   []nativeBucket // the buckets of every sample, in hs' ranges
	cvals  []float64      // the custom bounds of every sample
	spans  []BucketSpan
	deltas []int64
	counts []float64
	pts    []classicPoint // the classic buckets of every sample, in hs' ranges
	union  []float64      // the boundaries of the series being converted
	exAt   []int          // per exemplar, the index in union (len(union): +Inf) of its bucket
	drop   []int          // series that are gone
}

// nativeSample is one decoded native histogram sample.
type nativeSample struct {
	ts                   int64
	count, sum, zt, zero float64
	schema               int32
	stale                bool
	negStart, negEnd     int // in bkts
	posStart, posEnd     int // in bkts
	cvStart, cvEnd       int // in cvals
	ptsStart, ptsEnd     int // in pts
}

// nativeBucket is one bucket: its index and absolute count.
type nativeBucket struct {
	idx int32
	n   float64
}

// classicPoint is one classic bucket of a sample: its upper bound and the
// cumulative count of observations up to it.
type classicPoint struct{ le, cum float64 }

// staleNaN is the bit pattern of Prometheus' staleness marker
// (model/value.StaleNaN).
const staleNaN = 0x7ff0000000000002

// minReducedSchema is the coarsest exponential schema the conversion
// reduces to: at -9 a bucket spans a factor of 2^512, so the float64 range
// takes at most four buckets on each side of zero.
const minReducedSchema = -9

// classicHistograms converts the native histogram series of wr. Each
// native histogram sample (integer or float counts) of schema s in -4..8
// gives cumulative counts at the upper bounds of its buckets, from the
// negative buckets (le = minus the lower bound of the bucket's absolute
// value) through the zero bucket (le = zero_threshold, always present for
// exponential schemas) to the positive ones (le = the bucket's upper bound,
// computed as Prometheus' model/histogram does), and the +Inf bucket, whose
// count is the sample's count. A sample of custom buckets (schema -53) has
// one boundary per custom value, populated or not, as Prometheus'
// histogram.ConvertNHCBToClassic gives them. le is formatted as Prometheus
// formats it (labels.FormatOpenMetricsFloat: "0.25", "1.0", "+Inf").
//
// The boundaries of a series are the union over its samples, and every
// classic series gets a sample at every timestamp: a sample's cumulative
// count at a boundary it has no bucket for is that of its highest boundary
// below (its buckets there are empty). So that the union stays within
// MaxClassicBuckets, all exponential samples of a series are brought to one
// schema, the finest of theirs that fits, by merging buckets as Prometheus'
// FloatHistogram.ReduceResolution does (bucket i of schema s goes to bucket
// ((i-1) >> (s-t)) + 1 of schema t), down to schema -9 if need be; if the
// union is still over the bound (custom buckets, or a bound under 10), only
// every k-th boundary is kept, the smallest k that fits. A stale marker (sum
// the stale NaN) gives stale markers on every classic series. A sample's
// boundaries that are not increasing (buckets inside the zero bucket) are
// merged into the boundary below, and a negative bucket that reaches into
// the zero bucket ends at -zero_threshold (as Prometheus'
// FloatHistogram.AllBucketIterator bounds it).
func (wr *WriteRequest) classicHistograms(p Profile, lim *Limits, c *ProfileCounts) error {
	n := len(wr.Series)
	i0 := 0
	for i0 < n && len(wr.Series[i0].Histograms) == 0 {
		i0++
	}
	if i0 == n {
		return nil
	}
	bud := newBudget(*lim)
	bud.n = wr.NumFloatSamples()
	var sc classicScratch
	for i := i0; i < n; i++ {
		s := wr.Series[i]
		if len(s.Histograms) == 0 {
			continue
		}
		if err := wr.convertSeries(&sc, &s, p, lim, &bud, c); err != nil {
			return fmt.Errorf("timeseries %d: %w", i, err)
		}
		c.HistogramsConverted += len(s.Histograms)
		wr.Series[i].Histograms = nil
		if len(s.Samples) == 0 {
			sc.drop = append(sc.drop, i)
		}
	}
	j, k := 0, 0
	for i := range wr.Series {
		if k < len(sc.drop) && sc.drop[k] == i {
			k++
			continue
		}
		wr.Series[j] = wr.Series[i]
		j++
	}
	clear(wr.Series[j:])
	wr.Series = wr.Series[:j]
	return nil
}

// convertSeries appends the classic series of native histogram series s to
// wr.Series.
func (wr *WriteRequest) convertSeries(sc *classicScratch, s *Series, p Profile, lim *Limits, bud *budget, c *ProfileCounts) error {
	name := ""
	for _, l := range s.Labels {
		if l.Name == MetricNameLabel {
			name = l.Value
			break
		}
	}
	if name == "" {
		return errors.New("native histogram series without a metric name")
	}
	sc.hs, sc.bkts, sc.cvals = sc.hs[:0], sc.bkts[:0], sc.cvals[:0]
	minSchema, hasExp := int32(math.MaxInt32), false
	for j, raw := range s.Histograms {
		h, err := sc.decode(raw)
		if err != nil {
			return fmt.Errorf("histogram %d: %w", j, err)
		}
		if h.schema != customBucketsSchema {
			hasExp = true
			minSchema = min(minSchema, h.schema)
		}
		sc.hs = append(sc.hs, h)
	}
	max := p.maxBuckets()
	target := minSchema
	for {
		sc.points(target)
		if len(sc.union)+1 <= max || !hasExp || target <= minReducedSchema {
			break
		}
		target--
	}
	if len(sc.union)+1 > max {
		slots := max - 1
		if slots <= 0 {
			sc.union = sc.union[:0]
		} else {
			k := (len(sc.union) + slots - 1) / slots
			kept := sc.union[:0]
			for j, u := range sc.union {
				if (j+1)%k == 0 {
					kept = append(kept, u)
				}
			}
			sc.union = kept
		}
	}
	// Exemplars of a series that goes away go with the bucket of their value.
	moveExemplars := len(s.Samples) == 0 && len(s.Exemplars) > 0
	if moveExemplars {
		sc.exAt = sc.exAt[:0]
		for _, ex := range s.Exemplars {
			v := exemplarValue(ex)
			at, _ := slices.BinarySearch(sc.union, v)
			if math.IsNaN(v) {
				at = len(sc.union)
			}
			sc.exAt = append(sc.exAt, at)
		}
	}
	bucketName := wr.internString(name, "_bucket")
	for b := 0; b <= len(sc.union); b++ {
		le := math.Inf(1)
		if b < len(sc.union) {
			le = sc.union[b]
		}
		start := len(wr.arena)
		wr.arena = AppendOpenMetricsFloat(wr.arena, le)
		leStr := bytesToString(wr.arena[start:len(wr.arena):len(wr.arena)])
		ls, err := wr.classicLabels(s.Labels, bucketName, leStr, lim)
		if err != nil {
			return err
		}
		if err := bud.take(len(sc.hs)); err != nil {
			return err
		}
		smpStart := len(wr.samples)
		for k := range sc.hs {
			h := &sc.hs[k]
			v := h.count
			if b < len(sc.union) {
				v = sc.cumAt(h, le)
			}
			if h.stale {
				v = math.Float64frombits(staleNaN)
			}
			wr.samples = append(wr.samples, Sample{Value: v, Timestamp: h.ts})
		}
		ns := Series{Labels: ls, Samples: wr.samples[smpStart:len(wr.samples):len(wr.samples)]}
		if moveExemplars {
			exStart := len(wr.raw)
			for e, at := range sc.exAt {
				if at == b {
					wr.raw = append(wr.raw, s.Exemplars[e])
				}
			}
			if len(wr.raw) > exStart {
				ns.Exemplars = wr.raw[exStart:len(wr.raw):len(wr.raw)]
			}
		}
		wr.Series = append(wr.Series, ns)
	}
	for _, suffix := range [...]string{"_count", "_sum"} {
		ls, err := wr.classicLabels(s.Labels, wr.internString(name, suffix), "", lim)
		if err != nil {
			return err
		}
		if err := bud.take(len(sc.hs)); err != nil {
			return err
		}
		smpStart := len(wr.samples)
		for k := range sc.hs {
			h := &sc.hs[k]
			v := h.sum
			if suffix == "_count" {
				v = h.count
				if h.stale {
					v = math.Float64frombits(staleNaN)
				}
			}
			wr.samples = append(wr.samples, Sample{Value: v, Timestamp: h.ts})
		}
		wr.Series = append(wr.Series, Series{Labels: ls, Samples: wr.samples[smpStart:len(wr.samples):len(wr.samples)]})
	}
	c.ClassicSeries += len(sc.union) + 3
	return nil
}

// internString returns a+b, interned in wr's arena.
func (wr *WriteRequest) internString(a, b string) string {
	start := len(wr.arena)
	wr.arena = append(wr.arena, a...)
	wr.arena = append(wr.arena, b...)
	return bytesToString(wr.arena[start:len(wr.arena):len(wr.arena)])
}

// classicLabels returns ls with __name__ set to name and, unless le is
// empty, le set to le, in wr's label store, checked against lim.
func (wr *WriteRequest) classicLabels(ls []Label, name, le string, lim *Limits) ([]Label, error) {
	over := [2]Label{{Name: MetricNameLabel, Value: name}, {Name: "le", Value: le}}
	overrides := over[:]
	if le == "" {
		overrides = over[:1]
	}
	for _, o := range overrides {
		if k := lim.labelOver(1, len(o.Name)+len(o.Value)); k != 0 {
			return nil, lim.labelError(k, "label "+strconv.Quote(o.Name))
		}
	}
	start := len(wr.labels)
	wr.labels = MergeLabels(wr.labels, ls, overrides)
	out := wr.labels[start:len(wr.labels):len(wr.labels)]
	if k := lim.labelOver(len(out), 0); k != 0 {
		return nil, lim.labelError(k, strconv.Quote(name))
	}
	return out, nil
}

// exemplarValue returns the value of an encoded prompb.Exemplar, NaN if it
// does not decode.
func exemplarValue(b []byte) float64 {
	v := 0.0
	it := fields{b: b}
	for it.next() {
		if it.f.num == 2 {
			d, err := it.f.double()
			if err != nil {
				return math.NaN()
			}
			v = d
		}
	}
	if it.err != nil {
		return math.NaN()
	}
	return v
}

// customBucketsSchema is the schema of native histograms with custom bucket
// boundaries (Prometheus' histogram.CustomBucketsSchema).
const customBucketsSchema = -53

// decode decodes an encoded prompb.Histogram into a nativeSample whose
// buckets (absolute counts) and custom bounds are appended to sc.
func (sc *classicScratch) decode(b []byte) (nativeSample, error) {
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
	// }
	// The count oneof says whether the histogram is one of integers
	// (deltas) or floats (counts); the buckets and zero count of the
	// other kind are ignored, as prompb's ToIntHistogram and
	// ToFloatHistogram ignore them. The last field of a oneof wins.
	var h nativeSample
	countFloat, zeroFloat := false, false
	it := fields{b: b}
	for it.next() {
		f := &it.f
		var err error
		switch f.num {
		case 1, 6:
			var v uint64
			if v, err = f.varint(); err == nil {
				if f.num == 1 {
					h.count, countFloat = float64(v), false
				} else {
					h.zero, zeroFloat = float64(v), false
				}
			}
		case 2, 3, 5, 7:
			var v float64
			if v, err = f.double(); err == nil {
				switch f.num {
				case 2:
					h.count, countFloat = v, true
				case 3:
					h.sum = v
				case 5:
					h.zt = v
				case 7:
					h.zero, zeroFloat = v, true
				}
			}
		case 10, 13, 16:
			// Checked here, in field order, as well as when gathered:
			// gogo's prompb reads a packed double field of a wrong
			// length past its end, over the fields after it, and the
			// error to report is this field's, not one of theirs.
			err = checkRepeated(f, wireFixed64)
		case 4, 15:
			var v uint64
			if v, err = f.varint(); err == nil {
				if f.num == 4 {
					h.schema = int32(zigzag(v))
				} else {
					h.ts = int64(v)
				}
			}
		}
		if err != nil {
			return h, fmt.Errorf("field %d: %w", f.num, err)
		}
	}
	if it.err != nil {
		return h, it.err
	}
	h.stale = math.Float64bits(h.sum) == staleNaN
	if zeroFloat != countFloat {
		h.zero = 0
	}
	if h.schema != customBucketsSchema && (h.schema < -4 || h.schema > 8) {
		return h, fmt.Errorf("schema %d, not -4..8 or %d", h.schema, customBucketsSchema)
	}
	var err error
	h.negStart = len(sc.bkts)
	if err = sc.buckets(b, 8, 9, 10, countFloat); err != nil {
		return h, fmt.Errorf("negative buckets: %w", err)
	}
	h.negEnd, h.posStart = len(sc.bkts), len(sc.bkts)
	if err = sc.buckets(b, 11, 12, 13, countFloat); err != nil {
		return h, fmt.Errorf("positive buckets: %w", err)
	}
	h.posEnd = len(sc.bkts)
	h.cvStart = len(sc.cvals)
	if sc.cvals, _, err = gather(sc.cvals, b, 16, wireFixed64, math.Float64frombits); err != nil {
		return h, fmt.Errorf("custom_values: %w", err)
	}
	h.cvEnd = len(sc.cvals)
	if h.schema == customBucketsSchema {
		if h.negEnd > h.negStart {
			return h, errors.New("custom buckets with negative buckets")
		}
		cv := sc.cvals[h.cvStart:h.cvEnd]
		for j, v := range cv {
			if math.IsNaN(v) || j > 0 && v <= cv[j-1] {
				return h, fmt.Errorf("custom_values[%d] %v not above the one before", j, v)
			}
		}
		for _, bk := range sc.bkts[h.posStart:h.posEnd] {
			if bk.idx < 0 || int(bk.idx) > len(cv) {
				return h, fmt.Errorf("bucket %d outside the %d custom bounds", bk.idx, len(cv))
			}
		}
	}
	return h, nil
}

// buckets appends to sc.bkts the buckets of the spans field spansNum with
// the deltas of field deltasNum (integer histograms) or, when float, the
// counts of field countsNum (float histograms).
func (sc *classicScratch) buckets(b []byte, spansNum, deltasNum, countsNum uint64, float bool) error {
	var spans []BucketSpan
	var deltas []int64
	var counts []float64
	var err error
	if sc.spans, spans, err = gatherSpans(sc.spans[:0], b, spansNum); err != nil {
		return err
	}
	if !float {
		if sc.deltas, deltas, err = gather(sc.deltas[:0], b, deltasNum, wireVarint, decodeSint64); err != nil {
			return err
		}
	} else if sc.counts, counts, err = gather(sc.counts[:0], b, countsNum, wireFixed64, math.Float64frombits); err != nil {
		return err
	}
	nb := len(deltas) + len(counts)
	idx, j := int64(0), 0
	acc := int64(0)
	for k, sp := range spans {
		if k > 0 && sp.Offset < 0 {
			return fmt.Errorf("span %d has a negative offset", k)
		}
		idx += int64(sp.Offset)
		if int(sp.Length) > nb-j {
			return fmt.Errorf("spans need more than the %d buckets", nb)
		}
		for range sp.Length {
			if idx < math.MinInt32 || idx > math.MaxInt32 {
				return fmt.Errorf("bucket index %d out of range", idx)
			}
			var n float64
			if len(deltas) > 0 {
				acc += deltas[j]
				n = float64(acc)
			} else {
				n = counts[j]
			}
			sc.bkts = append(sc.bkts, nativeBucket{idx: int32(idx), n: n})
			idx++
			j++
		}
	}
	if j != nb {
		return fmt.Errorf("spans need %d buckets, have %d", j, nb)
	}
	return nil
}

// points computes every sample's classic buckets at exponential schema
// target (custom-bucket samples keep theirs) into sc.pts, and their union
// of boundaries, ascending and without +Inf, into sc.union.
func (sc *classicScratch) points(target int32) {
	sc.pts = sc.pts[:0]
	sc.union = sc.union[:0]
	for k := range sc.hs {
		h := &sc.hs[k]
		h.ptsStart = len(sc.pts)
		cum := 0.0
		if h.schema == customBucketsSchema {
			cv := sc.cvals[h.cvStart:h.cvEnd]
			bk := sc.bkts[h.posStart:h.posEnd]
			for i, le := range cv {
				for len(bk) > 0 && int(bk[0].idx) <= i {
					cum += bk[0].n
					bk = bk[1:]
				}
				sc.addPoint(h, le, cum)
			}
		} else {
			shift := h.schema - target
			neg := sc.bkts[h.negStart:h.negEnd]
			for j := len(neg) - 1; j >= 0; {
				t := reducedIdx(neg[j].idx, shift)
				for ; j >= 0 && reducedIdx(neg[j].idx, shift) == t; j-- {
					cum += neg[j].n
				}
				// A bucket that reaches into the zero bucket ends at
				// -zero_threshold, as AllBucketIterator bounds it: by a
				// comparison, so a NaN threshold bounds nothing (seed
				// a568800ef636ef16; math.Min would make the bound NaN).
				le := -exponentialBound(t-1, target)
				if le > -h.zt {
					le = -h.zt
				}
				sc.addPoint(h, le, cum)
			}
			if h.zero > 0 {
				// As AllBucketIterator, which has a zero bucket only
				// for a count above 0: a NaN zero count is none.
				cum += h.zero
			}
			sc.addPoint(h, h.zt, cum)
			pos := sc.bkts[h.posStart:h.posEnd]
			for j := 0; j < len(pos); {
				t := reducedIdx(pos[j].idx, shift)
				for ; j < len(pos) && reducedIdx(pos[j].idx, shift) == t; j++ {
					cum += pos[j].n
				}
				sc.addPoint(h, exponentialBound(t, target), cum)
			}
		}
		h.ptsEnd = len(sc.pts)
		for _, pt := range sc.pts[h.ptsStart:h.ptsEnd] {
			sc.union = append(sc.union, pt.le)
		}
	}
	slices.Sort(sc.union)
	sc.union = slices.Compact(sc.union)
}

// addPoint appends a classic bucket to h's, merging it into the one before
// when its boundary is not above that one's, and leaving out ±Inf (the +Inf
// bucket is the count, and nothing is at most -Inf but -Inf itself, which
// the next boundary counts as well).
func (sc *classicScratch) addPoint(h *nativeSample, le, cum float64) {
	if math.IsInf(le, 0) || math.IsNaN(le) {
		return
	}
	if len(sc.pts) > h.ptsStart && le <= sc.pts[len(sc.pts)-1].le {
		sc.pts[len(sc.pts)-1].cum = cum
		return
	}
	sc.pts = append(sc.pts, classicPoint{le: le, cum: cum})
}

// cumAt returns h's cumulative count at boundary le: that of its highest
// classic bucket at or below le, 0 if none.
func (sc *classicScratch) cumAt(h *nativeSample, le float64) float64 {
	pts := sc.pts[h.ptsStart:h.ptsEnd]
	lo, hi := 0, len(pts) // the first point above le is in [lo, hi]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if pts[m].le <= le {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	return pts[lo-1].cum
}

// reducedIdx is the index at schema s-shift of bucket idx of schema s
// (Prometheus' model/histogram targetIdx).
func reducedIdx(idx, shift int32) int32 {
	return ((idx - 1) >> shift) + 1
}

// exponentialBound returns the upper bound of bucket idx of exponential
// schema schema (-9..8), as Prometheus' model/histogram getBoundExponential
// computes it: math.MaxFloat64 for the last bucket of finite values, +Inf
// beyond.
func exponentialBound(idx, schema int32) float64 {
	if schema < 0 {
		exp := int64(idx) << -schema
		switch {
		case exp == 1024:
			return math.MaxFloat64
		case exp > 1024:
			return math.Inf(1)
		case exp < -1100:
			return 0
		}
		return math.Ldexp(1, int(exp))
	}
	fracIdx := idx & ((1 << schema) - 1)
	frac := exponentialBounds[schema][fracIdx]
	exp := (int(idx) >> schema) + 1
	if frac == 0.5 && exp == 1025 {
		return math.MaxFloat64
	}
	return math.Ldexp(frac, exp)
}

// AppendOpenMetricsFloat appends f as Prometheus' labels.FormatOpenMetricsFloat
// formats a le or quantile value (Prometheus 3's normalisation of classic
// histograms and summaries): "1.0", "0.0", "-1.0", "NaN", "+Inf", "-Inf", or the
// shortest 'g' representation with ".0" added when it has neither a "." nor
// an "e".
func AppendOpenMetricsFloat(dst []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(dst, "1.0"...)
	case f == 0:
		return append(dst, "0.0"...)
	case f == -1:
		return append(dst, "-1.0"...)
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, +1):
		return append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-Inf"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	if !strings.ContainsAny(bytesToString(dst[start:]), "e.") {
		dst = append(dst, '.', '0')
	}
	return dst
}

// exponentialBounds[s][j] is the fraction 2^(j/2^s)/2 of the bucket
// boundaries of exponential schema s (0..8), correctly rounded, copied from
// Prometheus' model/histogram (generic.go, Apache License 2.0) so that the
// le values of converted histograms are exactly Prometheus' bucket
// boundaries (math.Exp2 differs in the last bit for a third of them).
var exponentialBounds = [][]float64{
	// Schema "0":
	{0.5},
	// Schema 1:
	{0.5, 0.7071067811865475},
	// Schema 2:
	{0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144},
	// Schema 3:
	{
		0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
		0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
	},
	// Schema 4:
	{
		0.5, 0.5221368912137069, 0.5452538663326288, 0.5693943173783458,
		0.5946035575013605, 0.620928906036742, 0.6484197773255048, 0.6771277734684463,
		0.7071067811865475, 0.7384130729697496, 0.7711054127039704, 0.805245165974627,
		0.8408964152537144, 0.8781260801866495, 0.9170040432046711, 0.9576032806985735,
	},
	// Schema 5:
	{
		0.5, 0.5109485743270583, 0.5221368912137069, 0.5335702003384117,
		0.5452538663326288, 0.5571933712979462, 0.5693943173783458, 0.5818624293887887,
		0.5946035575013605, 0.6076236799902344, 0.620928906036742, 0.6345254785958666,
		0.6484197773255048, 0.6626183215798706, 0.6771277734684463, 0.6919549409819159,
		0.7071067811865475, 0.7225904034885232, 0.7384130729697496, 0.7545822137967112,
		0.7711054127039704, 0.7879904225539431, 0.805245165974627, 0.8228777390769823,
		0.8408964152537144, 0.8593096490612387, 0.8781260801866495, 0.8973545375015533,
		0.9170040432046711, 0.9370838170551498, 0.9576032806985735, 0.9785720620876999,
	},
	// Schema 6:
	{
		0.5, 0.5054446430258502, 0.5109485743270583, 0.5165124395106142,
		0.5221368912137069, 0.5278225891802786, 0.5335702003384117, 0.5393803988785598,
		0.5452538663326288, 0.5511912916539204, 0.5571933712979462, 0.5632608093041209,
		0.5693943173783458, 0.5755946149764913, 0.5818624293887887, 0.5881984958251406,
		0.5946035575013605, 0.6010783657263515, 0.6076236799902344, 0.6142402680534349,
		0.620928906036742, 0.6276903785123455, 0.6345254785958666, 0.6414350080393891,
		0.6484197773255048, 0.6554806057623822, 0.6626183215798706, 0.6698337620266515,
		0.6771277734684463, 0.6845012114872953, 0.6919549409819159, 0.6994898362691555,
		0.7071067811865475, 0.7148066691959849, 0.7225904034885232, 0.7304588970903234,
		0.7384130729697496, 0.7464538641456323, 0.7545822137967112, 0.762799075372269,
		0.7711054127039704, 0.7795022001189185, 0.7879904225539431, 0.7965710756711334,
		0.805245165974627, 0.8140137109286738, 0.8228777390769823, 0.8318382901633681,
		0.8408964152537144, 0.8500531768592616, 0.8593096490612387, 0.8686669176368529,
		0.8781260801866495, 0.8876882462632604, 0.8973545375015533, 0.9071260877501991,
		0.9170040432046711, 0.9269895625416926, 0.9370838170551498, 0.9472879907934827,
		0.9576032806985735, 0.9680308967461471, 0.9785720620876999, 0.9892280131939752,
	},
	// Schema 7:
	{
		0.5, 0.5027149505564014, 0.5054446430258502, 0.5081891574554764,
		0.5109485743270583, 0.5137229745593818, 0.5165124395106142, 0.5193170509806894,
		0.5221368912137069, 0.5249720429003435, 0.5278225891802786, 0.5306886136446309,
		0.5335702003384117, 0.5364674337629877, 0.5393803988785598, 0.5423091811066545,
		0.5452538663326288, 0.5482145409081883, 0.5511912916539204, 0.5541842058618393,
		0.5571933712979462, 0.5602188762048033, 0.5632608093041209, 0.5663192597993595,
		0.5693943173783458, 0.572486072215902, 0.5755946149764913, 0.5787200368168754,
		0.5818624293887887, 0.585021884841625, 0.5881984958251406, 0.5913923554921704,
		0.5946035575013605, 0.5978321960199137, 0.6010783657263515, 0.6043421618132907,
		0.6076236799902344, 0.6109230164863786, 0.6142402680534349, 0.6175755319684665,
		0.620928906036742, 0.6243004885946023, 0.6276903785123455, 0.6310986751971253,
		0.6345254785958666, 0.637970889198196, 0.6414350080393891, 0.6449179367033329,
		0.6484197773255048, 0.6519406325959679, 0.6554806057623822, 0.659039800633032,
		0.6626183215798706, 0.6662162735415805, 0.6698337620266515, 0.6734708931164728,
		0.6771277734684463, 0.6808045103191123, 0.6845012114872953, 0.688217985377265,
		0.6919549409819159, 0.6957121878859629, 0.6994898362691555, 0.7032879969095076,
		0.7071067811865475, 0.7109463010845827, 0.7148066691959849, 0.718687998724491,
		0.7225904034885232, 0.7265139979245261, 0.7304588970903234, 0.7344252166684908,
		0.7384130729697496, 0.7424225829363761, 0.7464538641456323, 0.7505070348132126,
		0.7545822137967112, 0.7586795205991071, 0.762799075372269, 0.7669409989204777,
		0.7711054127039704, 0.7752924388424999, 0.7795022001189185, 0.7837348199827764,
		0.7879904225539431, 0.7922691326262467, 0.7965710756711334, 0.8008963778413465,
		0.805245165974627, 0.8096175675974316, 0.8140137109286738, 0.8184337248834821,
		0.8228777390769823, 0.8273458838280969, 0.8318382901633681, 0.8363550898207981,
		0.8408964152537144, 0.8454623996346523, 0.8500531768592616, 0.8546688815502312,
		0.8593096490612387, 0.8639756154809185, 0.8686669176368529, 0.8733836930995842,
		0.8781260801866495, 0.8828942179666361, 0.8876882462632604, 0.8925083056594671,
		0.8973545375015533, 0.9022270839033115, 0.9071260877501991, 0.9120516927035263,
		0.9170040432046711, 0.9219832844793128, 0.9269895625416926, 0.9320230241988943,
		0.9370838170551498, 0.9421720895161669, 0.9472879907934827, 0.9524316709088368,
		0.9576032806985735, 0.9628029718180622, 0.9680308967461471, 0.9732872087896164,
		0.9785720620876999, 0.9838856116165875, 0.9892280131939752, 0.9945994234836328,
	},
	// Schema 8:
	{
		0.5, 0.5013556375251013, 0.5027149505564014, 0.5040779490592088,
		0.5054446430258502, 0.5068150424757447, 0.5081891574554764, 0.509566998038869,
		0.5109485743270583, 0.5123338964485679, 0.5137229745593818, 0.5151158188430205,
		0.5165124395106142, 0.5179128468009786, 0.5193170509806894, 0.520725062344158,
		0.5221368912137069, 0.5235525479396449, 0.5249720429003435, 0.526395386502313,
		0.5278225891802786, 0.5292536613972564, 0.5306886136446309, 0.5321274564422321,
		0.5335702003384117, 0.5350168559101208, 0.5364674337629877, 0.5379219445313954,
		0.5393803988785598, 0.5408428074966075, 0.5423091811066545, 0.5437795304588847,
		0.5452538663326288, 0.5467321995364429, 0.5482145409081883, 0.549700901315111,
		0.5511912916539204, 0.5526857228508706, 0.5541842058618393, 0.5556867516724088,
		0.5571933712979462, 0.5587040757836845, 0.5602188762048033, 0.5617377836665098,
		0.5632608093041209, 0.564787964283144, 0.5663192597993595, 0.5678547070789026,
		0.5693943173783458, 0.5709381019847808, 0.572486072215902, 0.5740382394200894,
		0.5755946149764913, 0.5771552102951081, 0.5787200368168754, 0.5802891060137493,
		0.5818624293887887, 0.5834400184762408, 0.585021884841625, 0.5866080400818185,
		0.5881984958251406, 0.5897932637314379, 0.5913923554921704, 0.5929957828304968,
		0.5946035575013605, 0.5962156912915756, 0.5978321960199137, 0.5994530835371903,
		0.6010783657263515, 0.6027080545025619, 0.6043421618132907, 0.6059806996384005,
		0.6076236799902344, 0.6092711149137041, 0.6109230164863786, 0.6125793968185725,
		0.6142402680534349, 0.6159056423670379, 0.6175755319684665, 0.6192499490999082,
		0.620928906036742, 0.622612415087629, 0.6243004885946023, 0.6259931389331581,
		0.6276903785123455, 0.6293922197748583, 0.6310986751971253, 0.6328097572894031,
		0.6345254785958666, 0.6362458516947014, 0.637970889198196, 0.6397006037528346,
		0.6414350080393891, 0.6431741147730128, 0.6449179367033329, 0.6466664866145447,
		0.6484197773255048, 0.6501778216898253, 0.6519406325959679, 0.6537082229673385,
		0.6554806057623822, 0.6572577939746774, 0.659039800633032, 0.6608266388015788,
		0.6626183215798706, 0.6644148621029772, 0.6662162735415805, 0.6680225691020727,
		0.6698337620266515, 0.6716498655934177, 0.6734708931164728, 0.6752968579460171,
		0.6771277734684463, 0.6789636531064505, 0.6808045103191123, 0.6826503586020058,
		0.6845012114872953, 0.6863570825438342, 0.688217985377265, 0.690083933630119,
		0.6919549409819159, 0.6938310211492645, 0.6957121878859629, 0.6975984549830999,
		0.6994898362691555, 0.7013863456101023, 0.7032879969095076, 0.7051948041086352,
		0.7071067811865475, 0.7090239421602076, 0.7109463010845827, 0.7128738720527471,
		0.7148066691959849, 0.7167447066838943, 0.718687998724491, 0.7206365595643126,
		0.7225904034885232, 0.7245495448210174, 0.7265139979245261, 0.7284837772007218,
		0.7304588970903234, 0.7324393720732029, 0.7344252166684908, 0.7364164454346837,
		0.7384130729697496, 0.7404151139112358, 0.7424225829363761, 0.7444354947621984,
		0.7464538641456323, 0.7484777058836176, 0.7505070348132126, 0.7525418658117031,
		0.7545822137967112, 0.7566280937263048, 0.7586795205991071, 0.7607365094544071,
		0.762799075372269, 0.7648672334736434, 0.7669409989204777, 0.7690203869158282,
		0.7711054127039704, 0.7731960915705107, 0.7752924388424999, 0.7773944698885442,
		0.7795022001189185, 0.7816156449856788, 0.7837348199827764, 0.7858597406461707,
		0.7879904225539431, 0.7901268813264122, 0.7922691326262467, 0.7944171921585818,
		0.7965710756711334, 0.7987307989543135, 0.8008963778413465, 0.8030678282083853,
		0.805245165974627, 0.8074284071024302, 0.8096175675974316, 0.8118126635086642,
		0.8140137109286738, 0.8162207259936375, 0.8184337248834821, 0.820652723822003,
		0.8228777390769823, 0.8251087869603088, 0.8273458838280969, 0.8295890460808079,
		0.8318382901633681, 0.8340936325652911, 0.8363550898207981, 0.8386226785089391,
		0.8408964152537144, 0.8431763167241966, 0.8454623996346523, 0.8477546807446661,
		0.8500531768592616, 0.8523579048290255, 0.8546688815502312, 0.8569861239649629,
		0.8593096490612387, 0.8616394738731368, 0.8639756154809185, 0.8663180910111553,
		0.8686669176368529, 0.871022112577578, 0.8733836930995842, 0.8757516765159389,
		0.8781260801866495, 0.8805069215187917, 0.8828942179666361, 0.8852879870317771,
		0.8876882462632604, 0.890095013257712, 0.8925083056594671, 0.8949281411607002,
		0.8973545375015533, 0.8997875124702672, 0.9022270839033115, 0.9046732696855155,
		0.9071260877501991, 0.909585556079304, 0.9120516927035263, 0.9145245157024483,
		0.9170040432046711, 0.9194902933879467, 0.9219832844793128, 0.9244830347552253,
		0.9269895625416926, 0.92950288621441, 0.9320230241988943, 0.9345499949706191,
		0.9370838170551498, 0.93962450902828, 0.9421720895161669, 0.9447265771954693,
		0.9472879907934827, 0.9498563490882775, 0.9524316709088368, 0.9550139751351947,
		0.9576032806985735, 0.9601996065815236, 0.9628029718180622, 0.9654133954938133,
		0.9680308967461471, 0.9706554947643201, 0.9732872087896164, 0.9759260581154889,
		0.9785720620876999, 0.9812252401044634, 0.9838856116165875, 0.9865531961276168,
		0.9892280131939752, 0.9919100824251095, 0.9945994234836328, 0.9972960560854698,
	},
}
