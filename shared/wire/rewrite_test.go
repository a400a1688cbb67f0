package wire_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// rewriteCounts are the Rewriter's counters, which the relay's metrics and
// remote write 2.0's Written headers use.
type rewriteCounts struct{ series, floats, histograms, exemplars, floatsIn, histogramsIn int }

// referenceCounts is what the Rewriter must count: the series, samples and
// exemplars of the valid series written, and the samples read of every
// series.
var referenceCounts rewriteCounts

// referenceRewrite is the slow path the Rewriter must equal: decode, drop
// invalid series, set labels, encode. It sets referenceCounts.
func referenceRewrite(in []byte, set []wire.Label, lim wire.Limits) (out []byte, invalid int, first string, err error) {
	var wr wire.WriteRequest
	referenceCounts = rewriteCounts{}
	if err := wr.Unmarshal(in, wire.Limits{MaxSamples: lim.MaxSamples}); err != nil {
		return nil, 0, "", err
	}
	valid := wr.Series[:0]
	for i := range wr.Series {
		referenceCounts.floatsIn += len(wr.Series[i].Samples)
		referenceCounts.histogramsIn += len(wr.Series[i].Histograms)
		if err := wire.ValidateSeries(&wr.Series[i], lim); err != nil {
			if invalid == 0 {
				first = err.Error()
			}
			invalid++
			continue
		}
		valid = append(valid, wr.Series[i])
		referenceCounts.series++
		referenceCounts.floats += len(wr.Series[i].Samples)
		referenceCounts.histograms += len(wr.Series[i].Histograms)
		referenceCounts.exemplars += len(wr.Series[i].Exemplars)
	}
	wr.Series = valid
	wr.ApplyLabels(set)
	return wire.AppendWriteRequest(nil, wr.Series, wr.Metadata), invalid, first, nil
}

// canonical re-encodes a request so that equal content gives equal bytes.
func canonicalRW(t testing.TB, b []byte) []byte {
	var wr wire.WriteRequest
	if err := wr.Unmarshal(b, wire.Limits{}); err != nil {
		t.Fatalf("rewritten request does not decode: %v", err)
	}
	return wire.AppendWriteRequest(nil, wr.Series, wr.Metadata)
}

func checkRewrite(t testing.TB, in []byte, set []wire.Label, lim wire.Limits) {
	t.Helper()
	want, wantInvalid, wantFirst, wantErr := referenceRewrite(in, set, lim)
	var rw wire.Rewriter
	got, err := rw.Rewrite(nil, in, set, lim)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Rewrite error %v, reference error %v", err, wantErr)
	}
	if err != nil {
		return
	}
	first := ""
	if rw.FirstInvalid != nil {
		first = rw.FirstInvalid.Error()
	}
	if rw.Invalid != wantInvalid || first != wantFirst {
		t.Fatalf("invalid %d %q, reference %d %q", rw.Invalid, first, wantInvalid, wantFirst)
	}
	if c := canonicalRW(t, got); !bytes.Equal(c, want) {
		t.Fatalf("rewritten request differs from the reference path (%d vs %d bytes)", len(c), len(want))
	}
	if c := (rewriteCounts{rw.Series, rw.FloatSamples, rw.HistogramSamples, rw.Exemplars, rw.FloatSamplesIn, rw.HistogramSamplesIn}); c != referenceCounts {
		t.Fatalf("counts %+v, reference %+v", c, referenceCounts)
	}
}

var rewriteSets = [][]wire.Label{
	nil,
	{{Name: "relay", Value: "r1"}},
	{{Name: "A", Value: "first"}, {Name: "instance", Value: "over"}, {Name: "zzz", Value: "last"}},
	{{Name: "__name__", Value: "renamed"}, {Name: "job", Value: "forced"}},
	{{Name: "cluster", Value: ""}, {Name: "instance", Value: ""}, {Name: "tenant", Value: "t"}}, // empty values remove
}

func TestRewriteMatchesReference(t *testing.T) {
	md := remoteWriteSchema(t)
	for seed := uint64(1); seed <= 40; seed++ {
		ref := randomReference(t, md, seed, 5+int(seed)*4)
		in, err := proto.MarshalOptions{Deterministic: true}.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		for i, set := range rewriteSets {
			t.Run(fmt.Sprintf("seed=%d/set=%d", seed, i), func(t *testing.T) {
				checkRewrite(t, in, set, wire.Limits{MaxLabels: 4, MaxLabelBytes: 20})
				checkRewrite(t, in, set, wire.Limits{})
			})
		}
	}
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 3, 300)
	checkRewrite(t, wire.AppendWriteRequest(nil, wr.Series, nil), rewriteSets[2], wire.Limits{})
}

func TestRewriteInvalidSeries(t *testing.T) {
	var wr wire.WriteRequest
	add := func(samples []wire.Sample, kv ...string) {
		var ls []wire.Label
		for i := 0; i+1 < len(kv); i += 2 {
			ls = append(ls, wire.Label{Name: kv[i], Value: kv[i+1]})
		}
		wr.Series = append(wr.Series, wire.Series{Labels: ls, Samples: samples})
	}
	one := []wire.Sample{{Value: 1, Timestamp: 5}}
	add(one, "__name__", "ok", "job", "a")
	add(one, "job", "a", "__name__", "unsorted")
	add(one, "__name__", "dup", "job", "a", "job", "b")
	add(one, "job", "noname")
	add(one, "__name__", "utf8", "job", "\xff")
	add(nil, "__name__", "nosamples")
	add([]wire.Sample{{Timestamp: 2}, {Timestamp: 1}}, "__name__", "backwards")
	add(one, "", "x", "__name__", "emptyname")
	add(one, "__name__", "ok2", "zone", "b")
	wr.Metadata = []wire.Metadata{{Type: wire.MetadataGauge, FamilyName: "ok", Help: "h"}}
	in := wire.AppendWriteRequest(nil, wr.Series, wr.Metadata)
	checkRewrite(t, in, rewriteSets[1], wire.Limits{})
	var rw wire.Rewriter
	rw.Rewrite(nil, in, nil, wire.Limits{})
	if rw.Series != 2 || rw.Invalid != 7 || rw.FloatSamples != 2 {
		t.Fatalf("series %d invalid %d samples %d", rw.Series, rw.Invalid, rw.FloatSamples)
	}
}

// FuzzRewrite checks on arbitrary bytes that the Rewriter and the
// reference path agree on acceptance, invalid series and output.
func FuzzRewrite(f *testing.F) {
	// Small seeds, as for FuzzParseDelimited: every input that finds new
	// coverage is minimized first.
	small := []wire.Series{
		{Labels: []wire.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}}, Samples: []wire.Sample{{Value: 1, Timestamp: 5}}},
		{Labels: []wire.Label{{Name: "__name__", Value: "h"}, {Name: "zone", Value: "é"}}, Exemplars: [][]byte{{0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}}, Histograms: [][]byte{{0x08, 0x01}}},
	}
	f.Add(wire.AppendWriteRequest(nil, small, []wire.Metadata{{Type: 1, FamilyName: "x"}}), uint8(1))
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00}, uint8(0))
	f.Add([]byte{0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x00, 0x12, 0x00}, uint8(2))
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0x08, 0x01, 0x0a, 0x05, 0xfa, 0xff, 0xff, 0xff, 0x0f}, uint8(0))
	md := remoteWriteFraming(f)
	f.Fuzz(func(t *testing.T, in []byte, setIdx uint8) {
		checkRewrite(t, in, rewriteSets[int(setIdx)%len(rewriteSets)], wire.Limits{MaxSamples: 12, MaxLabels: 6, MaxLabelBytes: 64})
		checkWriteRequestSchema(t, md, in)
	})
}

// checkWriteRequestSchema fails when Unmarshal and the remote-write schema
// (prompb through dynamicpb, its strings as bytes: UTF-8 is ValidateSeries'
// concern, not the decoder's) disagree on whether in is well-formed.
// Unmarshal may be stricter only where protobuf-go keeps a field as unknown:
// a known field of the wrong wire type, and groups.
func checkWriteRequestSchema(t *testing.T, md protoreflect.MessageDescriptor, in []byte) {
	t.Helper()
	var wr wire.WriteRequest
	err := wr.Unmarshal(in, wire.Limits{})
	refErr := proto.Unmarshal(in, dynamicpb.NewMessage(md))
	if refErr != nil && err == nil {
		t.Fatalf("Unmarshal accepted %q, which the schema rejects: %v", in, refErr)
	}
	if refErr == nil && err != nil && !strings.Contains(err.Error(), "wrong wire type") && !strings.Contains(err.Error(), "unsupported wire type") {
		t.Fatalf("Unmarshal rejected %q, which the schema accepts: %v", in, err)
	}
}
