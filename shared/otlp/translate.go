// Package otlp translates OTLP/HTTP metrics exports
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp) into promrelay's
// remote-write 1.0 model, as Prometheus' OTLP receiver does with its default
// settings: Prometheus v0.316.0, storage/remote/otlptranslator/prometheusremotewrite
// (PrometheusConverter.FromMetrics) with the settings its OTLP write handler
// derives from the default otlp configuration — translation strategy
// UnderscoreEscapingWithSuffixes, label_name_underscore_sanitization and
// label_name_preserve_multiple_underscores on, no namespace, no external
// labels, target_info on, identifying resource attributes not kept,
// classic histograms (not NHCB), no type and unit labels, a 5 minute
// lookback delta — and metric, label and unit names built by
// github.com/prometheus/otlptranslator v1.0.0, the version it uses.
//
// The input is decoded by wire.OTLPRequest; it also converts OTLP/JSON to
// protobuf (AppendProtoFromJSON) and encodes the export response
// (AppendResponse).
package otlp

import (
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/otlptranslator"

	"github.com/promrelay/promrelay/shared/wire"
)

// Settings are the translation options promrelay exposes.
type Settings struct {
	// PromoteResourceAttributes are the resource attribute names whose
	// values are copied onto every series of the resource (under their
	// translated label names, unless a data point attribute of that name
	// is set), as Prometheus' otlp.promote_resource_attributes.
	PromoteResourceAttributes []string
	// PromoteScopeMetadata adds otel_scope_name, otel_scope_version,
	// otel_scope_schema_url and otel_scope_<attribute> labels to every
	// series of a scope with a name, as Prometheus'
	// otlp.promote_scope_metadata.
	PromoteScopeMetadata bool
	// DeltaIngest translates delta-temporality sums, histograms and
	// exponential histograms as raw deltas, as Prometheus'
	// otlp-native-delta-ingestion feature flag does: same series as a
	// cumulative metric would make, metadata type unknown, native
	// histograms with the gauge reset hint. Off, their data points are not
	// translated and counted in Stats.DeltaPoints.
	DeltaIngest bool
	// MaxBytes bounds the remote-write 1.0 encoding of the result
	// (wire.AppendWriteRequest of its series and metadata), in bytes; 0
	// means no bound. Translate checks it as it builds each series and
	// returns a *wire.TooLargeError once the result would exceed it.
	MaxBytes int
}

// Stats describe one translated request.
type Stats struct {
	Points int // data points read
	// Rejected counts the data points not translated as invalid — a metric
	// without a name, of unknown type, of unspecified temporality, whose
	// name or an attribute's name does not translate, an exponential
	// histogram below scale -4, an exemplar without a value or with a
	// trace or span id of the wrong length — for the response's
	// partial_success.rejected_data_points.
	Rejected int
	// Message says why the first data point was rejected, or why a
	// metric without data points or a target_info series could not be
	// translated; "" when none.
	Message string
	// DeltaPoints counts the delta-temporality data points not translated
	// because Settings.DeltaIngest is off; DeltaMetric is the OTLP name of
	// the first such metric.
	DeltaPoints int
	DeltaMetric string
}

// Translator translates OTLP metrics exports. The zero value is ready to
// use; a Translator is not safe for concurrent use (use one per goroutine).
// It keeps its decoded request, its scratch buffers and caches of translated
// metric, label and unit names between calls, so that steady translation of
// similar requests allocates nothing.
type Translator struct {
	req wire.OTLPRequest
	wr  *wire.WriteRequest
	s   Settings
	bud int // target_info samples left
	lim wire.Limits

	metricNames map[metricKey]cached
	labelNames  map[string]cached
	scopeNames  map[string]cached // attribute key → label name of otel_scope_<key>
	units       map[string]string

	families map[string]struct{}
	targets  map[targetKey]struct{}
	seed     maphash.Seed

	set      []wire.Label // the label set being built, unsorted
	base     []wire.Label // a data point's labels without __name__, sorted
	kvs      []wire.Label // a data point's attributes, sorted by key
	promoted []wire.Label // the resource's promoted labels, sorted
	scope    []wire.Label // the scope's labels, in the order they are set
	job      string
	instance string

	sumName, countName, bucketName string // of the histogram or summary being translated

	buf      []byte
	raw      [][]byte // exemplar and histogram encodings of the series
	exs      []exemplar
	exLabels []wire.Label
	spans    []span
	deltas   []int64
	size     int // bytes of the encoding so far
	stats    Stats
}

type metricKey struct {
	name, unit string
	typ        otlptranslator.MetricType
}

// cached is a translated name, or the reason it does not translate.
type cached struct {
	name string
	err  string
}

type targetKey struct {
	hash uint64
	ts   int64
}

type exemplar struct {
	enc    []byte
	value  float64
	ts     int64
	labels []wire.Label // in t.exLabels
}

// targetInfoPerByte bounds the target_info samples of a request without
// Limits.MaxSamples, per byte of the request.
const targetInfoPerByte = 16

// maxCached bounds each name cache; a full cache is emptied.
const maxCached = 4096

// staleNaN is Prometheus' staleness marker (model/value.StaleNaN).
const staleNaN uint64 = 0x7ff0000000000002

// lookbackInterval is the spacing of target_info samples: half of
// Prometheus' default 5 minute lookback delta, in nanoseconds.
const lookbackInterval = int64(150e9)

// Translate decodes raw (a protobuf ExportMetricsServiceRequest, see
// wire.OTLPRequest.Unmarshal, bounded by lim) and fills wr (Reset first)
// with the series and metadata Prometheus' OTLP receiver would store:
//
//   - gauges and sums as one float series per data point, named by
//     otlptranslator (unit suffixes, _total for monotonic sums, _ratio for
//     gauges of unit 1); sums carry their exemplars;
//   - explicit-bucket histograms as _sum (when set), _count and cumulative
//     _bucket{le} series, +Inf last (an explicit +Inf bound is skipped),
//     each exemplar on the first bucket whose bound is not below it;
//   - exponential histograms as native histograms (wire.Series.Histograms
//     holds the encoded prompb.Histogram, scale clamped to 8 by merging
//     buckets, zero threshold 1e-128, reset hint unknown, or gauge for
//     delta), with their exemplars;
//   - summaries as _sum, _count and {quantile} series;
//   - exemplars as encoded prompb.Exemplar messages (trace_id and span_id
//     labels in hex, filtered attributes added when all fit in 128 runes),
//     in time order;
//   - data points flagged FLAG_NO_RECORDED_VALUE as staleness markers;
//   - data point attributes as labels (names sanitized; attributes whose
//     names collide are joined with ';' in key order), job from
//     service.namespace/service.name, instance from service.instance.id,
//     Settings.PromoteResourceAttributes and PromoteScopeMetadata labels;
//   - per resource with attributes other than the service ones, a
//     target_info gauge of them, one sample of 1 every 2.5 minutes from its
//     earliest data point to its latest and one at its latest;
//   - one wire.Metadata per metric family (type, help from the
//     description, unit translated), the first metric of a name winning.
//
// Timestamps are milliseconds (nanoseconds divided by 10^6); start times are
// dropped. Strings of wr reference raw or wr's arena; they and the encoded
// messages are valid until the next Translate with t or Reset of wr.
//
// Invalid data points are not translated and counted in Stats, as are
// delta points without Settings.DeltaIngest; the rest of the request is
// translated (Prometheus instead rejects the whole request). The errors are
// a *wire.LimitError (from decoding, or when target_info samples would
// exceed lim.MaxSamples together with the data points — or, without
// lim.MaxSamples, 16 per byte of raw), a
// *wire.TooLargeError (Settings.MaxBytes), or a decode error naming the
// malformed field.
func (t *Translator) Translate(wr *wire.WriteRequest, raw []byte, s Settings, lim wire.Limits) (Stats, error) {
	wr.Reset()
	t.reset(wr, s, lim)
	if err := t.req.Unmarshal(raw, lim); err != nil {
		return t.stats, err
	}
	t.stats.Points = len(t.req.Points)
	// target_info samples are bounded by what lim.MaxSamples leaves;
	// without it, by targetInfoPerByte samples per byte of input (a
	// resource whose data points span years would make millions).
	t.bud = targetInfoPerByte*len(raw) + 1024
	if lim.MaxSamples > 0 {
		t.bud = max(lim.MaxSamples-len(t.req.Points), 0)
	}
	for i := range t.req.Resources {
		if err := t.resource(&t.req.Resources[i]); err != nil {
			return t.stats, err
		}
	}
	return t.stats, nil
}

func (t *Translator) reset(wr *wire.WriteRequest, s Settings, lim wire.Limits) {
	t.wr, t.s, t.lim, t.bud = wr, s, lim, -1
	t.stats, t.size = Stats{}, 0
	if t.families == nil {
		t.families = map[string]struct{}{}
		t.targets = map[targetKey]struct{}{}
		t.metricNames = map[metricKey]cached{}
		t.labelNames = map[string]cached{}
		t.scopeNames = map[string]cached{}
		t.units = map[string]string{}
		t.seed = maphash.MakeSeed()
	}
	clear(t.families)
	clear(t.targets)
	clear(t.raw)
	t.raw = t.raw[:0]
}

// reject counts n data points as rejected for reason.
func (t *Translator) reject(n int, reason string) {
	t.stats.Rejected += n
	if t.stats.Message == "" {
		t.stats.Message = reason
	}
}

// note records reason as the message when there is none yet.
func (t *Translator) note(reason string) {
	if t.stats.Message == "" {
		t.stats.Message = reason
	}
}

// str returns the string of v as pcommon.Value.AsString renders it, in the
// request or wr's arena.
func (t *Translator) str(v *wire.OTLPValue) string {
	if v.Kind == wire.OTLPString {
		return v.Str
	}
	t.buf = t.req.AppendValueString(t.buf[:0], v)
	return t.intern(t.buf)
}

func (t *Translator) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return t.wr.Intern(b)
}

// labelName translates an attribute name as otlptranslator.LabelNamer
// does with Prometheus' default settings.
func (t *Translator) labelName(key string) (string, error) {
	if c, ok := t.labelNames[key]; ok {
		return c.name, c.errOrNil()
	}
	ln := otlptranslator.LabelNamer{UnderscoreLabelSanitization: true, PreserveMultipleUnderscores: true}
	name, err := ln.Build(key)
	c := cached{name: strings.Clone(name)} // as in metricName
	if err != nil {
		c.err = err.Error()
	}
	if len(t.labelNames) >= maxCached {
		clear(t.labelNames)
	}
	t.labelNames[strings.Clone(key)] = c
	return c.name, c.errOrNil()
}

func (t *Translator) scopeLabelName(key string) (string, error) {
	if c, ok := t.scopeNames[key]; ok {
		return c.name, c.errOrNil()
	}
	name, err := t.labelName("otel_scope_" + key)
	c := cached{name: name}
	if err != nil {
		c.err = err.Error()
	}
	if len(t.scopeNames) >= maxCached {
		clear(t.scopeNames)
	}
	t.scopeNames[strings.Clone(key)] = c
	return name, err
}

type nameError string

func (e nameError) Error() string { return string(e) }

func (c cached) errOrNil() error {
	if c.err == "" {
		return nil
	}
	return nameError(c.err)
}

func (t *Translator) metricName(m *wire.OTLPMetric) (string, error) {
	k := metricKey{name: m.Name, unit: m.Unit, typ: translatorType(m)}
	if c, ok := t.metricNames[k]; ok {
		return c.name, c.errOrNil()
	}
	namer := otlptranslator.MetricNamer{WithMetricSuffixes: true}
	name, err := namer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: k.typ})
	// Build may return m.Name itself (one token, no suffix), which points
	// into the request's bytes; the cache outlives the request.
	c := cached{name: strings.Clone(name)}
	if err != nil {
		c.err = err.Error()
	}
	if len(t.metricNames) >= maxCached {
		clear(t.metricNames)
	}
	k.name, k.unit = strings.Clone(k.name), strings.Clone(k.unit)
	t.metricNames[k] = c
	return c.name, c.errOrNil()
}

func (t *Translator) unit(u string) string {
	if u == "" {
		return ""
	}
	if s, ok := t.units[u]; ok {
		return s
	}
	un := otlptranslator.UnitNamer{}
	s := strings.Clone(un.Build(u)) // as in metricName
	if len(t.units) >= maxCached {
		clear(t.units)
	}
	t.units[strings.Clone(u)] = s
	return s
}

// translatorType is prometheusremotewrite.TranslatorMetricFromOtelMetric's
// type mapping.
func translatorType(m *wire.OTLPMetric) otlptranslator.MetricType {
	switch m.Kind {
	case wire.OTLPGauge:
		return otlptranslator.MetricTypeGauge
	case wire.OTLPSum:
		if m.Monotonic {
			return otlptranslator.MetricTypeMonotonicCounter
		}
		return otlptranslator.MetricTypeNonMonotonicCounter
	case wire.OTLPSummary:
		return otlptranslator.MetricTypeSummary
	case wire.OTLPHistogram:
		return otlptranslator.MetricTypeHistogram
	case wire.OTLPExponentialHistogram:
		return otlptranslator.MetricTypeExponentialHistogram
	}
	return otlptranslator.MetricTypeUnknown
}

// metadataType is otelMetricTypeToPromMetricType: delta metrics are of
// unknown type.
func metadataType(m *wire.OTLPMetric) wire.MetadataType {
	delta := m.Temporality == wire.OTLPTemporalityDelta
	switch m.Kind {
	case wire.OTLPGauge:
		return wire.MetadataGauge
	case wire.OTLPSum:
		switch {
		case delta:
			return wire.MetadataUnknown
		case m.Monotonic:
			return wire.MetadataCounter
		}
		return wire.MetadataGauge
	case wire.OTLPHistogram, wire.OTLPExponentialHistogram:
		if delta {
			return wire.MetadataUnknown
		}
		return wire.MetadataHistogram
	case wire.OTLPSummary:
		return wire.MetadataSummary
	}
	return wire.MetadataUnknown
}

// firstAttr returns the value of the first attribute named key in rg.
func (t *Translator) firstAttr(rg wire.OTLPRange, key string) (*wire.OTLPValue, bool) {
	for i := rg.Start; i < rg.End; i++ {
		if t.req.Attrs[i].Key == key {
			return &t.req.Attrs[i].Value, true
		}
	}
	return nil, false
}

const (
	serviceName       = "service.name"
	serviceNamespace  = "service.namespace"
	serviceInstanceID = "service.instance.id"
)

func (t *Translator) resource(res *wire.OTLPResource) error {
	// setResourceContext: job, instance and the promoted labels.
	t.job, t.instance = "", ""
	if v, ok := t.firstAttr(res.Attrs, serviceName); ok {
		job := t.str(v)
		if ns, ok := t.firstAttr(res.Attrs, serviceNamespace); ok {
			t.buf = t.req.AppendValueString(t.buf[:0], ns)
			t.buf = append(t.buf, '/')
			t.buf = append(t.buf, job...)
			job = t.intern(t.buf)
		}
		t.job = job
	}
	if v, ok := t.firstAttr(res.Attrs, serviceInstanceID); ok {
		t.instance = t.str(v)
	}
	t.set = t.set[:0]
	if len(t.s.PromoteResourceAttributes) > 0 {
		for i := res.Attrs.Start; i < res.Attrs.End; i++ {
			a := &t.req.Attrs[i]
			if !slices.Contains(t.s.PromoteResourceAttributes, a.Key) {
				continue
			}
			name, err := t.labelName(a.Key)
			if err != nil {
				t.reject(t.resourcePoints(res), err.Error())
				return nil
			}
			t.setLabel(name, t.str(&a.Value))
		}
	}
	t.promoted = sortLabels(append(t.promoted[:0], t.set...))

	minTS, maxTS := uint64(math.MaxUint64), uint64(0)
	for si := res.Scopes.Start; si < res.Scopes.End; si++ {
		sc := &t.req.Scopes[si]
		if err := t.setScope(sc); err != nil {
			t.reject(t.scopePoints(sc), err.Error())
			continue
		}
		for mi := sc.Metrics.Start; mi < sc.Metrics.End; mi++ {
			m := &t.req.Metrics[mi]
			if m.Kind != wire.OTLPNoData {
				for _, p := range t.req.Points[m.Points.Start:m.Points.End] {
					minTS, maxTS = min(minTS, p.TimeUnixNano), max(maxTS, p.TimeUnixNano)
				}
			}
			if err := t.metric(m); err != nil {
				return err
			}
		}
	}
	if minTS < math.MaxUint64 {
		return t.targetInfo(res, minTS, maxTS)
	}
	return nil
}

func (t *Translator) scopePoints(sc *wire.OTLPScope) int {
	n := 0
	for _, m := range t.req.Metrics[sc.Metrics.Start:sc.Metrics.End] {
		n += m.Points.Len()
	}
	return n
}

func (t *Translator) resourcePoints(res *wire.OTLPResource) int {
	n := 0
	for si := res.Scopes.Start; si < res.Scopes.End; si++ {
		n += t.scopePoints(&t.req.Scopes[si])
	}
	return n
}

// setScope prepares the scope labels (setScopeContext).
func (t *Translator) setScope(sc *wire.OTLPScope) error {
	t.scope = t.scope[:0]
	if !t.s.PromoteScopeMetadata || sc.Name == "" {
		return nil
	}
	t.set = t.set[:0]
	for i := sc.Attrs.Start; i < sc.Attrs.End; i++ {
		a := &t.req.Attrs[i]
		name, err := t.scopeLabelName(a.Key)
		if err != nil {
			return err
		}
		t.setLabel(name, t.str(&a.Value))
	}
	t.scope = append(sortLabels(append(t.scope, t.set...)),
		wire.Label{Name: "otel_scope_name", Value: sc.Name},
		wire.Label{Name: "otel_scope_version", Value: sc.Version},
		wire.Label{Name: "otel_scope_schema_url", Value: sc.SchemaURL})
	return nil
}

// setLabel sets name to value in t.set as labels.Builder.Set does: an
// empty value deletes the label.
func (t *Translator) setLabel(name, value string) {
	for i := range t.set {
		if t.set[i].Name == name {
			if value == "" {
				t.set = slices.Delete(t.set, i, i+1)
			} else {
				t.set[i].Value = value
			}
			return
		}
	}
	if value != "" {
		t.set = append(t.set, wire.Label{Name: name, Value: value})
	}
}

func (t *Translator) getLabel(name string) string {
	for i := range t.set {
		if t.set[i].Name == name {
			return t.set[i].Value
		}
	}
	return ""
}

func sortLabels(ls []wire.Label) []wire.Label {
	slices.SortStableFunc(ls, func(a, b wire.Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// attributes builds the labels of a data point (or target_info) without
// __name__ into t.base, as createAttributes does: the attributes but those
// ignored, sorted by key, names translated, colliding ones joined with ';';
// promoted resource labels where unset; job and instance; scope labels.
func (t *Translator) attributes(rg wire.OTLPRange, targetInfo bool) error {
	t.kvs = t.kvs[:0]
	for i := rg.Start; i < rg.End; i++ {
		a := &t.req.Attrs[i]
		if targetInfo {
			if a.Key == serviceName || a.Key == serviceNamespace || a.Key == serviceInstanceID {
				continue
			}
		} else if a.Key == wire.MetricNameLabel {
			continue
		}
		t.kvs = append(t.kvs, wire.Label{Name: a.Key, Value: t.str(&a.Value)})
	}
	sortLabels(t.kvs)
	t.set = t.set[:0]
	for _, kv := range t.kvs {
		name, err := t.labelName(kv.Name)
		if err != nil {
			return err
		}
		if old := t.getLabel(name); old != "" {
			t.buf = append(append(append(t.buf[:0], old...), ';'), kv.Value...)
			t.setLabel(name, t.intern(t.buf))
		} else {
			t.setLabel(name, kv.Value)
		}
	}
	if !targetInfo {
		for _, l := range t.promoted {
			if t.getLabel(l.Name) == "" {
				t.setLabel(l.Name, l.Value)
			}
		}
	}
	if t.job != "" {
		t.setLabel("job", t.job)
	}
	if t.instance != "" {
		t.setLabel("instance", t.instance)
	}
	if !targetInfo {
		for _, l := range t.scope {
			t.setLabel(l.Name, l.Value)
		}
	}
	t.base = sortLabels(append(t.base[:0], t.set...))
	return nil
}

// labels stores t.base with __name__ = name and, when extra is not empty,
// extra = value in wr's label store, sorted, the extras replacing labels of
// their names.
func (t *Translator) labels(name, extra, value string) []wire.Label {
	store := t.wr.LabelStore()
	start := len(store)
	ins := [2]wire.Label{{Name: wire.MetricNameLabel, Value: name}, {Name: extra, Value: value}}
	extras := ins[:1]
	if extra != "" {
		extras = ins[:2]
	}
	j := 0
	for _, l := range t.base {
		for j < len(extras) && extras[j].Name <= l.Name {
			store = append(store, extras[j])
			j++
		}
		if (len(extras) > 0 && l.Name == extras[0].Name) || (len(extras) > 1 && l.Name == extras[1].Name) {
			continue
		}
		store = append(store, l)
	}
	store = append(store, extras[j:]...)
	return t.wr.CommitLabels(store, start)
}

// add appends a float series of one sample and charges its size.
func (t *Translator) add(ls []wire.Label, ts int64, v float64, exs [][]byte) error {
	t.wr.AppendSample(ls, wire.Sample{Value: v, Timestamp: ts})
	s := &t.wr.Series[len(t.wr.Series)-1]
	s.Exemplars = exs
	if t.s.MaxBytes <= 0 {
		return nil
	}
	return t.charge(wire.SeriesSize(s))
}

func (t *Translator) charge(n int) error {
	if t.s.MaxBytes <= 0 {
		return nil
	}
	t.size += 1 + varintSize(uint64(n)) + n
	if t.s.MaxBytes > 0 && t.size > t.s.MaxBytes {
		return &wire.TooLargeError{What: "translated remote write request", Size: t.size, Limit: t.s.MaxBytes}
	}
	return nil
}

func varintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// addMetadata adds the family's metadata unless it has some.
func (t *Translator) addMetadata(md wire.Metadata) error {
	if _, ok := t.families[md.FamilyName]; ok {
		return nil
	}
	t.families[md.FamilyName] = struct{}{}
	t.wr.Metadata = append(t.wr.Metadata, md)
	n := 0
	if md.Type != 0 {
		n += 1 + varintSize(uint64(md.Type))
	}
	for _, s := range [...]string{md.FamilyName, md.Help, md.Unit} {
		if s != "" {
			n += 1 + varintSize(uint64(len(s))) + len(s)
		}
	}
	return t.charge(n)
}

// msTime converts OTLP nanoseconds to milliseconds as convertTimeStamp does.
func msTime(ns uint64) int64 { return int64(ns) / 1e6 }

// pointError is a data point that cannot be translated.
type pointError string

func (e pointError) Error() string { return string(e) }

func (t *Translator) metric(m *wire.OTLPMetric) error {
	n := m.Points.Len()
	if m.Kind == wire.OTLPNoData {
		t.note(fmt.Sprintf("metric %q has no data (unsupported metric type)", m.Name))
		return nil
	}
	switch m.Kind {
	case wire.OTLPSum, wire.OTLPHistogram, wire.OTLPExponentialHistogram:
		switch {
		case m.Temporality == wire.OTLPTemporalityCumulative:
		case m.Temporality == wire.OTLPTemporalityDelta && t.s.DeltaIngest:
		case m.Temporality == wire.OTLPTemporalityDelta:
			t.stats.DeltaPoints += n
			if t.stats.DeltaMetric == "" && n > 0 {
				t.stats.DeltaMetric = m.Name
			}
			return nil
		default:
			t.reject(n, fmt.Sprintf("invalid temporality and type combination for metric %q", m.Name))
			return nil
		}
	}
	name, err := t.metricName(m)
	if err != nil {
		t.reject(n, err.Error())
		return nil
	}
	if n == 0 {
		return nil
	}
	if m.Kind == wire.OTLPHistogram || m.Kind == wire.OTLPSummary {
		t.buf = append(append(t.buf[:0], name...), "_sum"...)
		t.sumName = t.intern(t.buf)
		t.buf = append(append(t.buf[:0], name...), "_count"...)
		t.countName = t.intern(t.buf)
		t.buf = append(append(t.buf[:0], name...), "_bucket"...)
		t.bucketName = t.intern(t.buf)
	}
	emitted := false
	for pi := m.Points.Start; pi < m.Points.End; pi++ {
		p := &t.req.Points[pi]
		series, size, raw := len(t.wr.Series), t.size, len(t.raw)
		err := t.point(m, p, name)
		if err == nil {
			emitted = emitted || len(t.wr.Series) > series
			continue
		}
		if _, ok := err.(pointError); !ok {
			if _, ok := err.(nameError); !ok {
				return err
			}
		}
		clear(t.wr.Series[series:])
		t.wr.Series = t.wr.Series[:series]
		t.size = size
		clear(t.raw[raw:])
		t.raw = t.raw[:raw]
		t.reject(1, err.Error())
	}
	if emitted {
		return t.addMetadata(wire.Metadata{Type: metadataType(m), FamilyName: name, Help: m.Description, Unit: t.unit(m.Unit)})
	}
	return nil
}

func (t *Translator) point(m *wire.OTLPMetric, p *wire.OTLPPoint, name string) error {
	if err := t.attributes(p.Attrs, false); err != nil {
		return err
	}
	stale := p.Flags&wire.OTLPNoRecordedValue != 0
	val := func(v float64) float64 {
		if stale {
			return math.Float64frombits(staleNaN)
		}
		return v
	}
	ts := msTime(p.TimeUnixNano)
	switch m.Kind {
	case wire.OTLPGauge, wire.OTLPSum:
		var v float64
		switch p.NumberType {
		case wire.OTLPNumberInt:
			v = float64(p.Int)
		case wire.OTLPNumberDouble:
			v = p.Double
		}
		var exs [][]byte
		if m.Kind == wire.OTLPSum {
			if err := t.exemplars(p.Exemplars); err != nil {
				return err
			}
			exs = t.exemplarRange(t.exs)
		}
		return t.add(t.labels(name, "", ""), ts, val(v), exs)
	case wire.OTLPHistogram:
		return t.histogram(p, name, ts, val)
	case wire.OTLPExponentialHistogram:
		return t.expHistogram(m, p, name, ts)
	case wire.OTLPSummary:
		if err := t.add(t.labels(t.sumName, "", ""), ts, val(p.Sum), nil); err != nil {
			return err
		}
		if err := t.add(t.labels(t.countName, "", ""), ts, val(float64(p.Count)), nil); err != nil {
			return err
		}
		for _, q := range t.req.Quantiles[p.Quantiles.Start:p.Quantiles.End] {
			t.buf = strconv.AppendFloat(t.buf[:0], q.Quantile, 'f', -1, 64)
			if err := t.add(t.labels(name, "quantile", t.intern(t.buf)), ts, val(q.Value), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Translator) histogram(p *wire.OTLPPoint, name string, ts int64, val func(float64) float64) error {
	if p.HasSum {
		if err := t.add(t.labels(t.sumName, "", ""), ts, val(p.Sum), nil); err != nil {
			return err
		}
	}
	if err := t.add(t.labels(t.countName, "", ""), ts, val(float64(p.Count)), nil); err != nil {
		return err
	}
	if err := t.exemplars(p.Exemplars); err != nil {
		return err
	}
	bucket := t.bucketName
	bounds := t.req.Floats[p.ExplicitBounds.Start:p.ExplicitBounds.End]
	counts := t.req.Counts[p.BucketCounts.Start:p.BucketCounts.End]
	next := 0
	var cum uint64
	for i := 0; i < len(bounds) && i < len(counts); i++ {
		bound := bounds[i]
		cum += counts[i]
		if math.IsInf(bound, 1) {
			continue
		}
		first := next
		for ; next < len(t.exs); next++ {
			if t.exs[next].value > bound {
				break
			}
		}
		t.buf = strconv.AppendFloat(t.buf[:0], bound, 'f', -1, 64)
		if err := t.add(t.labels(bucket, "le", t.intern(t.buf)), ts, val(float64(cum)), t.exemplarRange(t.exs[first:next])); err != nil {
			return err
		}
	}
	return t.add(t.labels(bucket, "le", "+Inf"), ts, val(float64(p.Count)), t.exemplarRange(t.exs[next:]))
}

// compareExemplars orders exemplars as Prometheus' exemplar.Compare: by
// timestamp, value, then labels (labels.Compare).
func compareExemplars(a, b exemplar) int {
	switch {
	case a.ts < b.ts:
		return -1
	case a.ts > b.ts:
		return 1
	case a.value < b.value:
		return -1
	case a.value > b.value:
		return 1
	}
	for i := 0; i < len(a.labels) && i < len(b.labels); i++ {
		if c := strings.Compare(a.labels[i].Name, b.labels[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.labels[i].Value, b.labels[i].Value); c != 0 {
			return c
		}
	}
	return len(a.labels) - len(b.labels)
}

// exemplarRange sorts exs as Prometheus does (compareExemplars) and returns their
// encodings, stored in t.raw.
func (t *Translator) exemplarRange(exs []exemplar) [][]byte {
	if len(exs) == 0 {
		return nil
	}
	slices.SortFunc(exs, compareExemplars)
	start := len(t.raw)
	for _, e := range exs {
		t.raw = append(t.raw, e.enc)
	}
	return t.raw[start:len(t.raw):len(t.raw)]
}

// maxExemplarRunes is the OpenMetrics bound on an exemplar's label runes.
const maxExemplarRunes = 128

// exemplars encodes the exemplars in rg into t.exs as getPromExemplars
// converts them, in input order.
func (t *Translator) exemplars(rg wire.OTLPRange) error {
	t.exs = t.exs[:0]
	t.exLabels = t.exLabels[:0]
	for i := rg.Start; i < rg.End; i++ {
		e := &t.req.Exemplars[i]
		var v float64
		switch e.NumberType {
		case wire.OTLPNumberInt:
			v = float64(e.Int)
		case wire.OTLPNumberDouble:
			v = e.Double
		default:
			return pointError("unsupported exemplar value type: Empty")
		}
		// timestamp.FromTime(time.Unix(0, ns)): milliseconds rounded down.
		ns := int64(e.TimeUnixNano)
		ts := ns / 1e6
		if ns%1e6 < 0 {
			ts--
		}
		if len(e.TraceID) != 0 && len(e.TraceID) != 16 {
			return pointError(fmt.Sprintf("exemplar trace_id of %d bytes, must be 16", len(e.TraceID)))
		}
		if len(e.SpanID) != 0 && len(e.SpanID) != 8 {
			return pointError(fmt.Sprintf("exemplar span_id of %d bytes, must be 8", len(e.SpanID)))
		}
		t.kvs = t.kvs[:0]
		runes := 0
		hasTrace, hasSpan := !allZero(e.TraceID), !allZero(e.SpanID)
		if hasTrace {
			t.buf = hex.AppendEncode(t.buf[:0], e.TraceID)
			t.kvs = append(t.kvs, wire.Label{Name: "trace_id", Value: t.intern(t.buf)})
			runes += len("trace_id") + 32
		}
		if hasSpan {
			t.buf = hex.AppendEncode(t.buf[:0], e.SpanID)
			t.kvs = append(t.kvs, wire.Label{Name: "span_id", Value: t.intern(t.buf)})
			runes += len("span_id") + 16
		}
		ids := len(t.kvs)
		for j := e.Attrs.Start; j < e.Attrs.End; j++ {
			a := &t.req.Attrs[j]
			if (hasTrace && a.Key == "trace_id") || (hasSpan && a.Key == "span_id") {
				continue
			}
			value := t.str(&a.Value)
			runes += utf8.RuneCountInString(a.Key) + utf8.RuneCountInString(value)
			t.kvs = append(t.kvs, wire.Label{Name: a.Key, Value: value})
		}
		if runes > maxExemplarRunes {
			t.kvs = t.kvs[:ids]
		}
		sortLabels(t.kvs)
		start := len(t.exLabels)
		t.exLabels = append(t.exLabels, t.kvs...)
		t.exs = append(t.exs, exemplar{enc: t.encodeExemplar(t.kvs, v, ts), value: v, ts: ts, labels: t.exLabels[start:len(t.exLabels):len(t.exLabels)]})
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// encodeExemplar returns the prompb.Exemplar encoding of labels ls, value
// v and timestamp ts (ms), in wr's arena.
func (t *Translator) encodeExemplar(ls []wire.Label, v float64, ts int64) []byte {
	// message Exemplar {
	//   repeated Label labels = 1;
	//   double value = 2;
	//   int64 timestamp = 3;
	// }
	b := t.buf[:0]
	for _, l := range ls {
		n := strSize(l.Name) + strSize(l.Value)
		b = append(b, 1<<3|2)
		b = appendVarint(b, uint64(n))
		b = appendString(b, 1, l.Name)
		b = appendString(b, 2, l.Value)
	}
	if bits := math.Float64bits(v); bits != 0 {
		b = append(b, 2<<3|1)
		b = appendFixed64(b, bits)
	}
	if ts != 0 {
		b = append(b, 3<<3|0)
		b = appendVarint(b, uint64(ts))
	}
	t.buf = b
	return t.bytes(b)
}

// bytes copies b into wr's arena.
func (t *Translator) bytes(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	s := t.wr.Intern(b)
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func strSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + varintSize(uint64(len(s))) + len(s)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendFixed64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

func appendString(b []byte, field int, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, byte(field<<3|2))
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func (t *Translator) targetInfo(res *wire.OTLPResource, minTS, maxTS uint64) error {
	nonIdentifying := res.Attrs.Len()
	for _, k := range [...]string{serviceNamespace, serviceName, serviceInstanceID} {
		if _, ok := t.firstAttr(res.Attrs, k); ok {
			nonIdentifying--
		}
	}
	if nonIdentifying == 0 {
		return nil
	}
	if err := t.attributes(res.Attrs, true); err != nil {
		t.note(err.Error())
		return nil
	}
	if t.job == "" && t.instance == "" {
		return nil
	}
	ls := t.labels("target_info", "", "")
	var h maphash.Hash
	h.SetSeed(t.seed)
	for _, l := range ls {
		h.WriteString(l.Name)
		h.WriteByte(0xff)
		h.WriteString(l.Value)
		h.WriteByte(0xff)
	}
	hash := h.Sum64()
	emitted := false
	emit := func(ms int64) error {
		k := targetKey{hash: hash, ts: ms}
		if _, ok := t.targets[k]; ok {
			return nil
		}
		t.targets[k] = struct{}{}
		if t.bud == 0 {
			limit := t.lim.MaxSamples
			if limit == 0 {
				limit = len(t.req.Points) // the implicit bound, as far as it is known
			}
			return &wire.LimitError{Kind: wire.LimitSamples, Limit: limit, Where: "target_info"}
		}
		t.bud--
		emitted = true
		return t.add(ls, ms, 1, nil)
	}
	// time.Unix(0, n) for n of both ends, stepping by the interval while
	// before the latest, then the latest; UnixMilli rounds down.
	lo, hi := int64(minTS), int64(maxTS)
	floorMs := func(ns int64) int64 {
		ms := ns / 1e6
		if ns%1e6 < 0 {
			ms--
		}
		return ms
	}
	for ts := lo; ts < hi; {
		if err := emit(floorMs(ts)); err != nil {
			return err
		}
		if ts > math.MaxInt64-lookbackInterval {
			break
		}
		ts += lookbackInterval
	}
	if err := emit(floorMs(hi)); err != nil {
		return err
	}
	if emitted {
		return t.addMetadata(wire.Metadata{Type: wire.MetadataGauge, FamilyName: "target_info", Help: "Target metadata"})
	}
	return nil
}
