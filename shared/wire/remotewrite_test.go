package wire_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// remoteWriteSchema is prompb's remote.proto and types.proto (remote write
// 1.0) as a descriptor: the reference the codec is checked against.
// Histogram is reduced to a few of its fields: promrelay carries histograms
// as opaque bytes, so only their framing matters.
func remoteWriteSchema(t testing.TB) protoreflect.MessageDescriptor {
	t.Helper()
	return buildRemoteWriteSchema(t, false)
}

// remoteWriteFraming is remoteWriteSchema as far as promrelay's decoder
// reads it: strings as bytes (UTF-8 is checked by ValidateSeries, not while
// decoding) and exemplars and histograms as opaque bytes.
func remoteWriteFraming(t testing.TB) protoreflect.MessageDescriptor {
	t.Helper()
	return buildRemoteWriteSchema(t, true)
}

func buildRemoteWriteSchema(t testing.TB, framing bool) protoreflect.MessageDescriptor {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ.Enum(), JsonName: proto.String(name)}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	str, opaque := descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	exemplarType, histogramType := ".prometheus.Exemplar", ".prometheus.Histogram"
	if framing {
		str, opaque = descriptorpb.FieldDescriptorProto_TYPE_BYTES, descriptorpb.FieldDescriptorProto_TYPE_BYTES
		exemplarType, histogramType = "", ""
	}
	const (
		msg  = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
		dbl  = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
		i64  = descriptorpb.FieldDescriptorProto_TYPE_INT64
		u64  = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		s32  = descriptorpb.FieldDescriptorProto_TYPE_SINT32
		enum = descriptorpb.FieldDescriptorProto_TYPE_ENUM
	)
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("prompb/remote.proto"),
		Package: proto.String("prometheus"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("WriteRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("timeseries", 1, rep, msg, ".prometheus.TimeSeries"),
				field("metadata", 3, rep, msg, ".prometheus.MetricMetadata"),
			}},
			{Name: proto.String("TimeSeries"), Field: []*descriptorpb.FieldDescriptorProto{
				field("labels", 1, rep, msg, ".prometheus.Label"),
				field("samples", 2, rep, msg, ".prometheus.Sample"),
				field("exemplars", 3, rep, opaque, exemplarType),
				field("histograms", 4, rep, opaque, histogramType),
			}},
			{Name: proto.String("Label"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, opt, str, ""), field("value", 2, opt, str, ""),
			}},
			{Name: proto.String("Sample"), Field: []*descriptorpb.FieldDescriptorProto{
				field("value", 1, opt, dbl, ""), field("timestamp", 2, opt, i64, ""),
			}},
			{Name: proto.String("Exemplar"), Field: []*descriptorpb.FieldDescriptorProto{
				field("labels", 1, rep, msg, ".prometheus.Label"), field("value", 2, opt, dbl, ""), field("timestamp", 3, opt, i64, ""),
			}},
			{Name: proto.String("Histogram"), Field: []*descriptorpb.FieldDescriptorProto{
				field("count_int", 1, opt, u64, ""), field("sum", 3, opt, dbl, ""), field("schema", 4, opt, s32, ""), field("timestamp", 15, opt, i64, ""),
			}},
			{Name: proto.String("MetricMetadata"), Field: []*descriptorpb.FieldDescriptorProto{
				field("type", 1, opt, enum, ".prometheus.MetricMetadata.MetricType"),
				field("metric_family_name", 2, opt, str, ""),
				field("help", 4, opt, str, ""),
				field("unit", 5, opt, str, ""),
			}, EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("MetricType"), Value: []*descriptorpb.EnumValueDescriptorProto{
				{Name: proto.String("UNKNOWN"), Number: proto.Int32(0)}, {Name: proto.String("COUNTER"), Number: proto.Int32(1)},
				{Name: proto.String("GAUGE"), Number: proto.Int32(2)}, {Name: proto.String("HISTOGRAM"), Number: proto.Int32(3)},
				{Name: proto.String("GAUGEHISTOGRAM"), Number: proto.Int32(4)}, {Name: proto.String("SUMMARY"), Number: proto.Int32(5)},
				{Name: proto.String("INFO"), Number: proto.Int32(6)}, {Name: proto.String("STATESET"), Number: proto.Int32(7)},
			}}}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().ByName("WriteRequest")
}

// randomReference builds a reference WriteRequest with labels, samples
// (special floats and negative timestamps included), exemplars, histograms
// and metadata.
func randomReference(t testing.TB, md protoreflect.MessageDescriptor, seed uint64, n int) *dynamicpb.Message {
	r := rand.New(rand.NewPCG(seed, 7))
	tsd := md.Fields().ByName("timeseries").Message()
	labelD := tsd.Fields().ByName("labels").Message()
	sampleD := tsd.Fields().ByName("samples").Message()
	exD := tsd.Fields().ByName("exemplars").Message()
	hD := tsd.Fields().ByName("histograms").Message()
	mdD := md.Fields().ByName("metadata").Message()
	wr := dynamicpb.NewMessage(md)
	list := wr.Mutable(md.Fields().ByName("timeseries")).List()
	values := []float64{0, 1, -1, math.NaN(), math.Float64frombits(0x7ff0000000000002), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e-300, 123456.789}
	for i := 0; i < n; i++ {
		ts := dynamicpb.NewMessage(tsd)
		ll := ts.Mutable(tsd.Fields().ByName("labels")).List()
		for j, name := range []string{"__name__", "a", "instance", "job", "zone"}[:2+r.IntN(4)] {
			l := dynamicpb.NewMessage(labelD)
			l.Set(labelD.Fields().ByName("name"), protoreflect.ValueOfString(name))
			v := []string{"metric_x", "", "日本", "10.0.0.1:9100", `quote"back\slash`}[(i+j)%5]
			if name == "__name__" {
				v = "m" + string(rune('a'+i%26))
			}
			l.Set(labelD.Fields().ByName("value"), protoreflect.ValueOfString(v))
			ll.Append(protoreflect.ValueOfMessage(l))
		}
		sl := ts.Mutable(tsd.Fields().ByName("samples")).List()
		for j := 0; j < r.IntN(4); j++ {
			s := dynamicpb.NewMessage(sampleD)
			s.Set(sampleD.Fields().ByName("value"), protoreflect.ValueOfFloat64(values[r.IntN(len(values))]))
			s.Set(sampleD.Fields().ByName("timestamp"), protoreflect.ValueOfInt64(int64(r.IntN(3)-1)*1_763_000_000_123+int64(j)))
			sl.Append(protoreflect.ValueOfMessage(s))
		}
		if i%7 == 0 {
			e := dynamicpb.NewMessage(exD)
			e.Set(exD.Fields().ByName("value"), protoreflect.ValueOfFloat64(0.5))
			e.Set(exD.Fields().ByName("timestamp"), protoreflect.ValueOfInt64(42))
			ts.Mutable(tsd.Fields().ByName("exemplars")).List().Append(protoreflect.ValueOfMessage(e))
		}
		if i%11 == 0 {
			h := dynamicpb.NewMessage(hD)
			h.Set(hD.Fields().ByName("count_int"), protoreflect.ValueOfUint64(9))
			h.Set(hD.Fields().ByName("schema"), protoreflect.ValueOfInt32(-3))
			h.Set(hD.Fields().ByName("timestamp"), protoreflect.ValueOfInt64(5))
			ts.Mutable(tsd.Fields().ByName("histograms")).List().Append(protoreflect.ValueOfMessage(h))
		}
		list.Append(protoreflect.ValueOfMessage(ts))
	}
	ml := wr.Mutable(md.Fields().ByName("metadata")).List()
	for i := 0; i < 3; i++ {
		m := dynamicpb.NewMessage(mdD)
		m.Set(mdD.Fields().ByName("type"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(i*2)))
		m.Set(mdD.Fields().ByName("metric_family_name"), protoreflect.ValueOfString("family_"+string(rune('a'+i))))
		m.Set(mdD.Fields().ByName("help"), protoreflect.ValueOfString("help text"))
		if i == 1 {
			m.Set(mdD.Fields().ByName("unit"), protoreflect.ValueOfString("seconds"))
		}
		ml.Append(protoreflect.ValueOfMessage(m))
	}
	return wr
}

// TestWriteRequestMatchesSchema checks decode and encode against the
// reference: Unmarshal of the reference encoding followed by
// AppendWriteRequest reproduces the reference bytes exactly, and the
// reference decodes promrelay's encoding to an equal message.
func TestWriteRequestMatchesSchema(t *testing.T) {
	md := remoteWriteSchema(t)
	var wr wire.WriteRequest
	for seed := uint64(1); seed <= 50; seed++ {
		ref := randomReference(t, md, seed, 1+int(seed)*3)
		in, err := proto.MarshalOptions{Deterministic: true}.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := wr.Unmarshal(in, wire.Limits{}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if got, want := len(wr.Series), ref.Get(md.Fields().ByName("timeseries")).List().Len(); got != want {
			t.Fatalf("seed %d: %d series, want %d", seed, got, want)
		}
		out := wire.AppendWriteRequest(nil, wr.Series, wr.Metadata)
		if !bytes.Equal(out, in) {
			t.Fatalf("seed %d: re-encoding differs from the reference encoding (%d vs %d bytes)", seed, len(out), len(in))
		}
		back := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(out, back); err != nil {
			t.Fatalf("seed %d: reference cannot decode our encoding: %v", seed, err)
		}
		if !proto.Equal(back, ref) {
			// proto.Equal treats NaN as unequal to itself; compare bits.
			b1, _ := proto.MarshalOptions{Deterministic: true}.Marshal(back)
			if !bytes.Equal(b1, in) {
				t.Fatalf("seed %d: reference decodes our encoding to a different message", seed)
			}
		}
	}
}

// TestWriteRequestValues checks decoded values bit for bit, the staleness
// marker's NaN payload included.
func TestWriteRequestValues(t *testing.T) {
	var wr wire.WriteRequest
	stale := math.Float64frombits(0x7ff0000000000002)
	labels := wr.AppendLabels(wire.Label{Name: "__name__", Value: "up"}, wire.Label{Name: "job", Value: "x"})
	wr.AppendSample(labels, wire.Sample{Value: stale, Timestamp: -1})
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: "up", Help: "h", Unit: "u"})
	enc := wire.AppendWriteRequest(nil, wr.Series, wr.Metadata)
	var got wire.WriteRequest
	if err := got.Unmarshal(enc, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	s := got.Series[0]
	if math.Float64bits(s.Samples[0].Value) != 0x7ff0000000000002 || s.Samples[0].Timestamp != -1 {
		t.Fatalf("sample decoded as %#x @%d", math.Float64bits(s.Samples[0].Value), s.Samples[0].Timestamp)
	}
	if s.Labels[1] != (wire.Label{Name: "job", Value: "x"}) || got.Metadata[0] != wr.Metadata[0] {
		t.Fatalf("decoded %+v %+v", s.Labels, got.Metadata)
	}
}

func TestWriteRequestRejectsMalformed(t *testing.T) {
	var wr wire.WriteRequest
	good := wire.AppendWriteRequest(nil, func() []wire.Series {
		var w wire.WriteRequest
		corpus.WriteRequest(&w, 1, 3)
		return w.Series
	}(), nil)
	cases := map[string][]byte{
		"truncated":          good[:len(good)-5],
		"huge length":        {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"wrong wire type":    {0x0d, 0, 0, 0, 0},
		"bad label wiretype": {0x0a, 0x02, 0x08, 0x01},
		"field zero":         {0x00, 0x01},
		"group wire type":    {0x0b},
		"bad sample value":   {0x0a, 0x04, 0x12, 0x02, 0x08, 0x01},
		"varint overflow":    {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for name, in := range cases {
		if err := wr.Unmarshal(in, wire.Limits{}); err == nil {
			t.Errorf("%s: Unmarshal accepted malformed input", name)
		}
	}
}

func TestValidateSeries(t *testing.T) {
	l := func(kv ...string) []wire.Label {
		var ls []wire.Label
		for i := 0; i < len(kv); i += 2 {
			ls = append(ls, wire.Label{Name: kv[i], Value: kv[i+1]})
		}
		return ls
	}
	one := []wire.Sample{{Value: 1, Timestamp: 1}}
	cases := []struct {
		name    string
		s       wire.Series
		lim     wire.Limits
		wantErr string
	}{
		{"ok", wire.Series{Labels: l("__name__", "up", "job", "a"), Samples: one}, wire.Limits{}, ""},
		{"exemplar only", wire.Series{Labels: l("__name__", "up"), Exemplars: [][]byte{{}}}, wire.Limits{}, ""},
		{"no name", wire.Series{Labels: l("job", "a"), Samples: one}, wire.Limits{}, "missing metric name"},
		{"empty name value", wire.Series{Labels: l("__name__", "", "job", "a"), Samples: one}, wire.Limits{}, "missing metric name"},
		{"empty label name", wire.Series{Labels: l("", "x", "__name__", "up"), Samples: one}, wire.Limits{}, "empty label name"},
		{"unsorted", wire.Series{Labels: l("__name__", "up", "job", "a", "instance", "b"), Samples: one}, wire.Limits{}, "not sorted"},
		{"duplicate", wire.Series{Labels: l("__name__", "up", "job", "a", "job", "b"), Samples: one}, wire.Limits{}, "duplicate label name"},
		{"bad utf8 value", wire.Series{Labels: l("__name__", "up", "job", "\xff"), Samples: one}, wire.Limits{}, "not valid UTF-8"},
		{"bad utf8 name", wire.Series{Labels: l("__name__", "up", "j\xff", "a"), Samples: one}, wire.Limits{}, "not valid UTF-8"},
		{"no samples", wire.Series{Labels: l("__name__", "up")}, wire.Limits{}, "no samples"},
		{"out of order", wire.Series{Labels: l("__name__", "up"), Samples: []wire.Sample{{Timestamp: 2}, {Timestamp: 1}}}, wire.Limits{}, "time order"},
		{"too many labels", wire.Series{Labels: l("__name__", "up", "a", "1", "b", "2"), Samples: one}, wire.Limits{MaxLabels: 2}, "more than the limit of 2"},
		{"label too long", wire.Series{Labels: l("__name__", "up", "a", strings.Repeat("x", 100)), Samples: one}, wire.Limits{MaxLabelBytes: 50}, "more than the limit of 50"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.ValidateSeries(&tc.s, tc.lim)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestApplyLabels(t *testing.T) {
	var wr wire.WriteRequest
	wr.AppendSample(wr.AppendLabels(wire.Label{Name: "__name__", Value: "up"}, wire.Label{Name: "env", Value: "dev"}, wire.Label{Name: "job", Value: "a"}), wire.Sample{Value: 1})
	wr.ApplyLabels([]wire.Label{{Name: "A", Value: "first"}, {Name: "env", Value: "prod"}, {Name: "zone", Value: "z1"}})
	got := wire.FormatLabels(wr.Series[0].Labels, 200)
	if want := `up{A="first",env="prod",job="a",zone="z1"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if err := wire.ValidateSeries(&wr.Series[0], wire.Limits{}); err != nil {
		t.Fatalf("labels not sorted after ApplyLabels: %v", err)
	}
}

func TestSnappyLimitCheckedBeforeAllocation(t *testing.T) {
	// A block header claiming 1 GiB, followed by nothing.
	claim := []byte{0x80, 0x80, 0x80, 0x80, 0x04}
	_, err := wire.DecodeSnappy(nil, claim, 1<<20)
	var tl *wire.TooLargeError
	if err == nil || !asTooLarge(err, &tl) || tl.Size != 1<<30 {
		t.Fatalf("err = %v, want TooLargeError for 1 GiB", err)
	}
	allocs := testing.AllocsPerRun(10, func() { _, _ = wire.DecodeSnappy(nil, claim, 1<<20) })
	if allocs > 1 {
		t.Fatalf("%v allocations for a rejected claim", allocs)
	}
	src := bytes.Repeat([]byte("remote write "), 1000)
	enc := wire.EncodeSnappy(nil, src)
	dec, err := wire.DecodeSnappy(nil, enc, len(src))
	if err != nil || !bytes.Equal(dec, src) {
		t.Fatalf("round trip failed: %v", err)
	}
	if _, err := wire.DecodeSnappy(nil, enc[:len(enc)/2], len(src)); err == nil {
		t.Fatal("truncated block accepted")
	}
}

func asTooLarge(err error, target **wire.TooLargeError) bool {
	t, ok := err.(*wire.TooLargeError)
	*target = t
	return ok
}

// TestUnmarshalExemplarsAfterHistograms checks that a series whose n
// histograms come before its n exemplars decodes in linear work: inserting
// each exemplar before the histograms, as the series' entries are laid out,
// moved every histogram once per exemplar (n²/2 = 2·10¹⁰ slice moves here,
// minutes of memmove, where the linear decode takes milliseconds), and that
// both keep their order.
func TestUnmarshalExemplarsAfterHistograms(t *testing.T) {
	const n = 200000
	series := []byte{0x0a, 0x0d, 0x0a, 0x08}
	series = append(series, "__name__"...)
	series = append(series, 0x12, 0x01, 'm')
	for i := range n {
		series = append(series, 0x22, 0x02, 0x78, byte(i)&0x7f) // a histogram: field 15 (timestamp)
	}
	for i := range n {
		series = append(series, 0x1a, 0x02, 0x18, byte(i)&0x7f) // an exemplar: field 3 (timestamp)
	}
	raw := []byte{0x0a}
	raw = binary.AppendUvarint(raw, uint64(len(series)))
	raw = append(raw, series...)
	var wr wire.WriteRequest
	if err := wr.Unmarshal(raw, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	s := wr.Series[0]
	if len(s.Histograms) != n || len(s.Exemplars) != n {
		t.Fatalf("%d histograms and %d exemplars, want %d of each", len(s.Histograms), len(s.Exemplars), n)
	}
	for i := range n {
		if s.Histograms[i][1] != byte(i)&0x7f || s.Exemplars[i][1] != byte(i)&0x7f {
			t.Fatalf("entry %d out of order", i)
		}
	}
	// A reused WriteRequest decodes it again without allocating, in a
	// bounded time that the quadratic decode exceeds many times over.
	start := time.Now()
	if a := testing.AllocsPerRun(3, func() { _ = wr.Unmarshal(raw, wire.Limits{}) }); a != 0 {
		t.Fatalf("%v allocations per decode with a reused WriteRequest, want 0", a)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("4 decodes of %d histograms then %d exemplars took %v", n, n, d)
	}
}

// TestAppendWriteRequestLabelLengths checks the encoding of labels around
// the lengths where a length prefix grows to two bytes (a label of 124
// bytes and more, a name or value of 128 and more) and of empty names and
// values: the reference re-encodes what it decodes to the same bytes.
func TestAppendWriteRequestLabelLengths(t *testing.T) {
	md := remoteWriteSchema(t)
	var series []wire.Series
	for _, nl := range []int{0, 1, 60, 61, 62, 63, 120, 122, 123, 124, 127, 128, 200} {
		for _, nv := range []int{0, 1, 2, 60, 61, 62, 63, 127, 128, 300} {
			series = append(series, wire.Series{
				Labels:  []wire.Label{{Name: strings.Repeat("n", nl), Value: strings.Repeat("v", nv)}, {Name: "z", Value: "1"}},
				Samples: []wire.Sample{{Value: 1, Timestamp: 2}},
			})
		}
	}
	out := wire.AppendWriteRequest(nil, series, nil)
	back := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(out, back); err != nil {
		t.Fatalf("reference cannot decode our encoding: %v", err)
	}
	if n := back.Get(md.Fields().ByName("timeseries")).List().Len(); n != len(series) {
		t.Fatalf("reference decodes %d series, want %d", n, len(series))
	}
	ref, err := proto.MarshalOptions{Deterministic: true}.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, ref) {
		t.Fatalf("our encoding (%d bytes) differs from the reference's (%d bytes)", len(out), len(ref))
	}
	var wr wire.WriteRequest
	if err := wr.Unmarshal(out, wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	for i := range series {
		if got, want := wr.Series[i].Labels[0], series[i].Labels[0]; got != want {
			t.Fatalf("series %d: label %q=%q, want %q=%q", i, got.Name, got.Value, want.Name, want.Value)
		}
	}
}
