package wire

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseError is a syntax error in a text exposition, with its 1-based line.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("text format parsing error in line %d: %s", e.Line, e.Msg)
}

// ParseText decodes b as the text exposition format 0.0.4 into e, replacing
// its contents. It accepts what prometheus/common/expfmt's TextParser accepts
// with the legacy name syntax, with the same results, and one more thing: the
// last line may lack its newline (expfmt, and so the Pushgateway, reject that
// as "unexpected end of input stream"). Metric names in braces (the UTF-8
// syntax of later formats) are rejected. Syntax errors are *ParseError. It
// returns a *LimitError as soon as the exposition crosses lim: each sample
// line counts one toward lim.MaxSamples, and each label of a sample line
// (with the metric name, and le or quantile) toward lim.MaxLabels.
func (e *Exposition) ParseText(b []byte, lim Limits) error {
	e.Reset()
	p := textParser{e: e, b: b, lim: lim, bud: newBudget(lim), lastMetric: -1}
	if err := p.run(); err != nil {
		return err
	}
	e.finishText()
	return nil
}

type textParser struct {
	e    *Exposition
	b    []byte
	i    int
	line int
	lim  Limits
	bud  budget

	fam            int32
	isCount, isSum bool

	// The metric names of the last sample lines and what family made of
	// them: sample lines of one family come in runs (a histogram's
	// x_bucket, x_sum and x_count). A name resolves the same until a
	// comment line (a TYPE line changes it) or a new family (x, created,
	// could take x_sum), which empty the cache.
	names      [4]resolvedName
	numNames   int
	nextName   int
	lastMetric int32 // the summary or histogram metric the last line went to; -1 for none
}

// textPoint is a quantile or bucket line of the text format, linked into
// its metric's list: lines of one summary or histogram may interleave with
// another's, so the lists become contiguous slices only in finishText.
type textPoint struct {
	bound, value float64 // quantile or upper bound; quantile value or cumulative count
	next         int32
}

func (p *textParser) errorf(format string, args ...any) error {
	return &ParseError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// Byte classes of the text format, bits of charClass.
const (
	classNameStart  = 1 << iota // [a-zA-Z_]
	classLabelName              // [a-zA-Z0-9_]
	classMetricName             // [a-zA-Z0-9_:]
	classTokenEnd               // blank or newline
	classValueStop              // '"', '\\', newline or a byte ≥ 0x80 (label value scanning)
)

// charClass holds the classes of each byte value.
const charClass = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x18\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x08\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x06\x06\x06\x06\x06\x06\x06\x06\x06\x06\x04\x00\x00\x00\x00\x00" +
	"\x00\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07" +
	"\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x00\x10\x00\x00\x07" +
	"\x00\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07" +
	"\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x00\x00\x00\x00\x00" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10" +
	"\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10\x10"

func (p *textParser) skipBlanks() {
	b, i := p.b, p.i
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	p.i = i
}

// eol reports whether the parser is at the end of a line or of the input.
func (p *textParser) eol() bool { return p.i >= len(p.b) || p.b[p.i] == '\n' }

// nextLine moves past the current line's newline.
func (p *textParser) nextLine() {
	if k := bytes.IndexByte(p.b[p.i:], '\n'); k >= 0 {
		p.i += k + 1
	} else {
		p.i = len(p.b)
	}
}

func (p *textParser) run() error {
	for {
		p.line++
		p.skipBlanks()
		if p.i >= len(p.b) {
			return nil
		}
		var err error
		switch p.b[p.i] {
		case '\n':
			p.i++
			continue
		case '#':
			err = p.comment()
		case '{':
			err = p.errorf("metric names inside braces are not supported by the text format 0.0.4")
		default:
			err = p.sample()
		}
		if err != nil {
			return err
		}
	}
}

// token reads up to the next blank or newline.
func (p *textParser) token() []byte {
	b, i := p.b, p.i
	start := i
	for i < len(b) && charClass[b[i]]&classTokenEnd == 0 {
		i++
	}
	p.i = i
	return b[start:i]
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isNameCont(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

// metricName reads a metric name; it is empty when none starts here.
func (p *textParser) metricName() (string, error) {
	b, i := p.b, p.i
	start := i
	if i < len(b) && (isNameStart(b[i]) || b[i] == ':') {
		i++
		for i < len(b) && charClass[b[i]]&classMetricName != 0 {
			i++
		}
	}
	p.i = i
	if i < len(b) && b[i] == '"' {
		return "", p.errorf("quoted metric names are not supported by the text format 0.0.4")
	}
	return bytesToString(p.b[start:p.i]), nil
}

func (p *textParser) comment() error {
	p.i++                         // '#'
	p.numNames, p.nextName = 0, 0 // a TYPE line changes what a name resolves to
	p.skipBlanks()
	if p.eol() {
		p.nextLine()
		return nil
	}
	kw := p.token()
	if p.eol() {
		p.nextLine()
		return nil
	}
	isHelp := string(kw) == "HELP"
	if !isHelp && string(kw) != "TYPE" {
		p.nextLine() // a plain comment
		return nil
	}
	p.skipBlanks()
	name, err := p.metricName()
	if err != nil {
		return err
	}
	if p.eol() {
		p.nextLine()
		return nil
	}
	if !isBlank(p.b[p.i]) {
		return p.errorf("invalid metric name in comment")
	}
	if err := p.family(name); err != nil {
		return err
	}
	f := &p.e.Families[p.fam]
	p.skipBlanks()
	if p.eol() {
		p.nextLine()
		return nil
	}
	if isHelp {
		if f.HasHelp {
			return p.errorf("second HELP line for metric name %q", f.Name)
		}
		help, err := p.restOfLine(true)
		if err != nil {
			return err
		}
		f.Help, f.HasHelp = help, true
		return nil
	}
	if f.HasType {
		return p.errorf("second TYPE line for metric name %q, or TYPE reported after samples", f.Name)
	}
	typ, _ := p.restOfLine(false)
	if strings.IndexByte(typ, '\\') >= 0 {
		// expfmt reads the type without escapes but still drops every
		// backslash: "# TYPE x summ\ary" declares a summary.
		typ = strings.ReplaceAll(typ, "\\", "")
	}
	t, ok := parseType(typ)
	if !ok {
		return p.errorf("unknown metric type %q", typ)
	}
	f.Type, f.HasType = t, true
	return nil
}

// parseType maps a TYPE word, in any letter case, to a MetricType.
func parseType(s string) (MetricType, bool) {
	var buf [16]byte
	if len(s) > len(buf) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(s)]) {
	case "COUNTER":
		return Counter, true
	case "GAUGE":
		return Gauge, true
	case "SUMMARY":
		return Summary, true
	case "UNTYPED":
		return Untyped, true
	case "HISTOGRAM":
		return Histogram, true
	case "GAUGE_HISTOGRAM", "GAUGEHISTOGRAM":
		return GaugeHistogram, true
	}
	return 0, false
}

// restOfLine returns the rest of the line and moves past it. With escapes,
// \\, \n and \" are unescaped (HELP text) and any other escape is an error.
func (p *textParser) restOfLine(escapes bool) (string, error) {
	start := p.i
	end := len(p.b)
	if k := bytes.IndexByte(p.b[start:], '\n'); k >= 0 {
		end = start + k
	}
	p.i = end
	if p.i < len(p.b) {
		p.i++
	}
	raw := p.b[start:end]
	if !escapes || bytes.IndexByte(raw, '\\') < 0 {
		return bytesToString(raw), nil
	}
	return p.unescape(raw)
}

// unescape resolves the escapes of raw into the string arena. Label values
// allow \\, \" and \n; HELP text the same.
func (p *textParser) unescape(raw []byte) (string, error) {
	e := p.e
	start := len(e.strbuf)
	for j := 0; j < len(raw); j++ {
		c := raw[j]
		if c != '\\' {
			e.strbuf = append(e.strbuf, c)
			continue
		}
		j++
		if j >= len(raw) {
			return "", p.errorf("invalid escape sequence at end of line")
		}
		switch raw[j] {
		case '\\', '"':
			e.strbuf = append(e.strbuf, raw[j])
		case 'n':
			e.strbuf = append(e.strbuf, '\n')
		default:
			return "", p.errorf("invalid escape sequence '\\%c'", raw[j])
		}
	}
	return bytesToString(e.strbuf[start:len(e.strbuf)]), nil
}

// family finds or creates the family a metric name belongs to, as expfmt
// does: a name ending in _count or _sum belongs to a summary or histogram of
// the base name, and one ending in _bucket to a histogram.
func (p *textParser) family(name string) error {
	p.isCount, p.isSum = false, false
	// name comes from metricName, which reads [a-zA-Z_:][a-zA-Z0-9_:]*:
	// valid when not empty.
	if name == "" {
		return p.errorf("invalid metric name %q", name)
	}
	e := p.e
	if idx, ok := e.byName[name]; ok {
		p.fam = idx
		return nil
	}
	count := len(name) > 6 && name[len(name)-6:] == "_count"
	sum := len(name) > 4 && name[len(name)-4:] == "_sum"
	bucket := len(name) > 7 && name[len(name)-7:] == "_bucket"
	base := name
	switch {
	case count:
		base = name[:len(name)-6]
	case sum:
		base = name[:len(name)-4]
	case bucket:
		base = name[:len(name)-7]
	}
	if idx, ok := e.byName[base]; ok && base != name {
		switch t := e.Families[idx].Type; {
		case t == Summary && (count || sum),
			(t == Histogram || t == GaugeHistogram):
			p.fam, p.isCount, p.isSum = idx, count, sum
			return nil
		}
	}
	// A family costs memory without a sample (a line of HELP or TYPE
	// alone), so each counts toward the sample limit.
	if err := p.bud.take(1); err != nil {
		return err
	}
	e.Families = append(e.Families, Family{Name: name})
	p.fam = int32(len(e.Families) - 1)
	e.byName[name] = p.fam
	return nil
}

// parseFloat parses a sample value or a le/quantile label as expfmt does:
// strconv.ParseFloat, but without hexadecimal floats or digit separators.
func parseFloat(b string) (float64, error) {
	if v, ok := parseDecimal(b); ok {
		return v, nil
	}
	for i := 0; i < len(b); i++ {
		if c := b[i]; c == 'p' || c == 'P' || c == '_' {
			return 0, fmt.Errorf("unsupported character in float")
		}
	}
	return strconv.ParseFloat(b, 64)
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseDecimal parses a plain decimal, -?digits[.digits] with at least one
// digit, whose digits make an integer m ≤ 2^53 with at most 22 of them after
// the point: then m and 10^k are exact floats and one IEEE division rounds
// m/10^k correctly, which is strconv.ParseFloat's own exact fast path
// (atof64exact), so the result is bit-identical to it. ok is false for
// anything else, left to strconv.
func parseDecimal(b string) (v float64, ok bool) {
	i, n := 0, len(b)
	if n == 0 || n > 24 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		i = 1
	}
	var m uint64
	digits, frac := 0, -1
	for ; i < n; i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
			continue
		}
		if c != '.' || frac >= 0 {
			return 0, false
		}
		frac = 0
	}
	if digits == 0 || digits > 19 || m > 1<<53 {
		return 0, false
	}
	v = float64(m)
	if neg {
		v = -v
	}
	if frac > 0 {
		if frac > 22 {
			return 0, false
		}
		v /= pow10[frac]
	}
	return v, true
}

// resolvedName is a metric name and the family it belongs to.
type resolvedName struct {
	name           string
	fam            int32
	isCount, isSum bool
}

// resolveCached sets the parser's family from the cache of recent names and
// reports whether name was in it.
func (p *textParser) resolveCached(name string) bool {
	for k := range p.names[:p.numNames] {
		if r := &p.names[k]; r.name == name {
			p.fam, p.isCount, p.isSum = r.fam, r.isCount, r.isSum
			return true
		}
	}
	return false
}

// cacheName records what family made of name; nFams is the number of
// families before, so that a new family empties the cache first.
func (p *textParser) cacheName(name string, nFams int) {
	if len(p.e.Families) != nFams {
		p.numNames, p.nextName = 0, 0
	}
	p.names[p.nextName] = resolvedName{name: name, fam: p.fam, isCount: p.isCount, isSum: p.isSum}
	p.nextName = (p.nextName + 1) % len(p.names)
	if p.numNames < len(p.names) {
		p.numNames++
	}
}

// sample parses one sample line: name, labels, value, optional timestamp.
func (p *textParser) sample() error {
	if err := p.bud.take(1); err != nil {
		return err
	}
	e := p.e
	name, err := p.metricName()
	if err != nil {
		return err
	}
	if name == "" {
		return p.errorf("invalid metric name")
	}
	if !p.resolveCached(name) {
		nFams := len(e.Families)
		if err := p.family(name); err != nil {
			return err
		}
		p.cacheName(name, nFams)
	}
	fam := p.fam
	if f := &e.Families[fam]; !f.HasType {
		f.Type, f.HasType = Untyped, true
	}
	p.skipBlanks()
	labelsStart := len(e.labels)
	bound := math.NaN()
	if p.i < len(p.b) && p.b[p.i] == '{' {
		p.i++
		if bound, err = p.labels(labelsStart); err != nil {
			return err
		}
		p.skipBlanks()
	}
	tok := p.token()
	v, err := parseFloat(bytesToString(tok))
	if err != nil {
		return p.errorf("expected float as value, got %q", tok)
	}
	m, err := p.attach(labelsStart, bound, v)
	if err != nil {
		return err
	}
	return p.timestamp(m)
}

// labels parses the label pairs after '{' up to and including '}', appends
// them to the exposition's label store and returns the value of the le
// (histogram) or quantile (summary) label, NaN when there is none.
func (p *textParser) labels(labelsStart int) (float64, error) {
	e := p.e
	f := &e.Families[p.fam]
	typ := f.Type
	bound := math.NaN()
	n := 1 // the metric name
	for {
		p.skipBlanks()
		if p.i >= len(p.b) {
			return bound, p.errorf("unexpected end of input stream")
		}
		if p.b[p.i] == '}' {
			p.i++
			return bound, nil
		}
		start := p.i
		if isNameStart(p.b[p.i]) {
			b, i := p.b, p.i+1
			for i < len(b) && charClass[b[i]]&classLabelName != 0 {
				i++
			}
			p.i = i
		}
		if p.i < len(p.b) && p.b[p.i] == '"' {
			return bound, p.errorf("quoted label names are not supported by the text format 0.0.4")
		}
		lname := bytesToString(p.b[start:p.i])
		if lname == "" {
			return bound, p.errorf("invalid label name for metric %q", f.Name)
		}
		// The usual `="` right after the name skips expect's blanks.
		quoted := p.i+1 < len(p.b) && p.b[p.i] == '=' && p.b[p.i+1] == '"'
		if quoted {
			p.i++
		} else if err := p.expect('=', "after label name"); err != nil {
			return bound, err
		}
		if lname == MetricNameLabel {
			return bound, p.errorf("label name %q is reserved", MetricNameLabel)
		}
		special := typ == Summary && lname == "quantile" ||
			(typ == Histogram || typ == GaugeHistogram) && lname == "le"
		if !special {
			for _, l := range e.labels[labelsStart:] {
				if l.Name == lname {
					return bound, p.errorf("duplicate label names for metric %q", f.Name)
				}
			}
		}
		if quoted {
			p.i++
		} else if err := p.expect('"', "at start of label value"); err != nil {
			return bound, err
		}
		value, ascii, err := p.labelValue()
		if err != nil {
			return bound, err
		}
		n++
		if k := p.lim.labelOver(n, len(lname)+len(value)); k != 0 {
			return bound, p.lim.labelError(k, fmt.Sprintf("line %d: metric %q, label %q", p.line, f.Name, lname))
		}
		if !ascii && !utf8.ValidString(value) {
			return bound, p.errorf("invalid label value %q", value)
		}
		if special {
			v, err := parseFloat(value)
			if err != nil {
				return bound, p.errorf("expected float as value for '%s' label, got %q", lname, value)
			}
			bound = v
		} else {
			e.labels = append(e.labels, Label{Name: lname, Value: value})
		}
		p.skipBlanks()
		if p.i >= len(p.b) {
			return bound, p.errorf("unexpected end of input stream")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return bound, nil
		default:
			return bound, p.errorf("unexpected end of label value %q", value)
		}
	}
}

// expect skips blanks and then the byte c, which must follow.
func (p *textParser) expect(c byte, where string) error {
	p.skipBlanks()
	if p.i >= len(p.b) {
		return p.errorf("unexpected end of input stream")
	}
	if p.b[p.i] != c {
		return p.errorf("expected '%c' %s, found %q", c, where, p.b[p.i])
	}
	p.i++
	return nil
}

// attach records the value v of the sample line whose labels start at
// labelsStart: a new metric for counters, gauges and untyped; for summaries
// and histograms the metric with the same label set (created on its first
// line), whose count, sum, quantile or bucket the line sets.
func (p *textParser) attach(labelsStart int, bound, v float64) (*Metric, error) {
	e := p.e
	fam := p.fam
	labels := e.labels[labelsStart:len(e.labels):len(e.labels)]
	typ := e.Families[fam].Type
	if typ != Summary && typ != Histogram && typ != GaugeHistogram {
		m := &e.Metrics[e.newMetric(fam)]
		m.Labels = labels
		e.Families[fam].Metrics++
		m.Value, m.HasValue = v, true
		return m, nil
	}
	idx, created := p.lastMetric, false
	if idx < 0 || e.Metrics[idx].Family != fam || !sameLabelSet(e.Metrics[idx].Labels, labels) {
		// Not the metric of the line before (which is the one metric of
		// this family with this label set when it matches).
		var sig uint64
		idx, sig = e.findGroup(fam, labels)
		if idx < 0 {
			idx = e.newMetric(fam)
			e.Metrics[idx].Labels = labels
			e.groups[sig] = idx
			e.Families[fam].Metrics++
			created = true
		}
	}
	if !created {
		// An existing metric: its line's labels are not needed.
		clear(e.labels[labelsStart:])
		e.labels = e.labels[:labelsStart]
	}
	p.lastMetric = idx
	m := &e.Metrics[idx]
	m.HasValue = true
	switch {
	case p.isCount && typ == Summary:
		m.Count = uint64(v)
	case p.isCount:
		if u := uint64(v); v == float64(u) {
			m.Count = u
		} else {
			if v < 0 {
				return nil, p.errorf("negative count for histogram %q", e.Families[fam].Name)
			}
			m.CountFloat = v
		}
	case p.isSum:
		m.Sum = v
	case math.IsNaN(bound):
		// A summary or histogram line without quantile or le.
	case typ != Summary && v < 0 && v != float64(uint64(v)):
		return nil, p.errorf("negative bucket population for histogram %q", e.Families[fam].Name)
	default:
		e.addPoint(m, textPoint{bound: bound, value: v})
	}
	return m, nil
}

// timestamp parses the optional timestamp after the value and the end of
// the line.
func (p *textParser) timestamp(m *Metric) error {
	if p.eol() {
		p.nextLine()
		return nil
	}
	p.skipBlanks()
	tok := p.token()
	ts, err := strconv.ParseInt(bytesToString(tok), 10, 64)
	if err != nil {
		return p.errorf("expected integer as timestamp, got %q", tok)
	}
	m.TimestampMs, m.HasTimestamp = ts, true
	if !p.eol() {
		rest, _ := p.restOfLine(false)
		return p.errorf("spurious string after timestamp: %q", rest)
	}
	p.nextLine()
	return nil
}

// addPoint appends pt to metric m's list of text points.
func (e *Exposition) addPoint(m *Metric, pt textPoint) {
	pt.next = -1
	idx := int32(len(e.points))
	e.points = append(e.points, pt)
	if m.first < 0 {
		m.first = idx
	} else {
		e.points[m.last].next = idx
	}
	m.last = idx
}

// labelValue reads a quoted label value after its opening quote and moves
// past the closing quote. ascii reports that the value's bytes are all
// below 0x80 (so valid UTF-8).
func (p *textParser) labelValue() (value string, ascii bool, err error) {
	start := p.i
	escaped := false
	ascii = true
	for p.i < len(p.b) {
		b, i := p.b, p.i
		for i < len(b) && charClass[b[i]]&classValueStop == 0 {
			i++
		}
		p.i = i
		if i >= len(b) {
			break
		}
		c := b[i]
		switch c {
		case '"':
			raw := p.b[start:p.i]
			p.i++
			if !escaped {
				return bytesToString(raw), ascii, nil
			}
			s, err := p.unescape(raw)
			return s, ascii, err
		case '\n':
			return "", false, p.errorf("label value %q contains unescaped new-line", p.b[start:p.i])
		case '\\':
			escaped = true
			p.i++
			if p.i < len(p.b) {
				switch p.b[p.i] {
				case '"', '\\', 'n':
				default:
					return "", false, p.errorf("invalid escape sequence '\\%c'", p.b[p.i])
				}
			}
		default: // ≥ 0x80
			ascii = false
		}
		p.i++
	}
	return "", false, p.errorf("unexpected end of input stream")
}

// finishText turns each summary's and histogram's list of text points into
// its Quantiles or Buckets, contiguous in the exposition's stores, and makes
// each histogram all-integer or all-float, as expfmt does after parsing: once
// any count is a float, all become floats.
func (e *Exposition) finishText() {
	for i := range e.Metrics {
		m := &e.Metrics[i]
		if m.first < 0 {
			continue
		}
		if e.Families[m.Family].Type == Summary {
			start := len(e.quantiles)
			for j := m.first; j >= 0; j = e.points[j].next {
				e.quantiles = append(e.quantiles, Quantile{Quantile: e.points[j].bound, Value: e.points[j].value})
			}
			m.Quantiles = e.quantiles[start:len(e.quantiles):len(e.quantiles)]
			continue
		}
		start := len(e.buckets)
		for j := m.first; j >= 0; j = e.points[j].next {
			b := Bucket{UpperBound: e.points[j].bound}
			if v := e.points[j].value; v == float64(uint64(v)) {
				b.Count = uint64(v)
			} else {
				b.CountFloat = v
			}
			e.buckets = append(e.buckets, b)
		}
		m.Buckets = e.buckets[start:len(e.buckets):len(e.buckets)]
	}
	for i := range e.Metrics {
		m := &e.Metrics[i]
		t := e.Families[m.Family].Type
		if t != Histogram && t != GaugeHistogram {
			continue
		}
		anyFloat := m.CountFloat != 0
		for j := range m.Buckets {
			anyFloat = anyFloat || m.Buckets[j].CountFloat != 0
		}
		if !anyFloat {
			continue
		}
		if !m.CountIsFloat {
			if m.CountFloat == 0 {
				m.CountFloat = float64(m.Count)
			}
			m.Count, m.CountIsFloat = 0, true
		}
		for j := range m.Buckets {
			b := &m.Buckets[j]
			if b.CountFloat == 0 && !b.CountIsFloat {
				b.CountFloat = float64(b.Count)
			}
			b.Count, b.CountIsFloat = 0, true
		}
	}
}

// HistogramCount returns a histogram metric's sample count as a float.
func (m *Metric) HistogramCount() float64 {
	if m.CountIsFloat {
		return m.CountFloat
	}
	return float64(m.Count)
}
