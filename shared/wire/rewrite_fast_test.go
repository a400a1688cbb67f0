package wire_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestRewriteCanonicalBytes checks that a canonical request (as Prometheus
// and AppendWriteRequest encode it, which the Rewriter's one-pass path
// takes) comes out byte for byte as the reference path encodes it, for
// every override set, including overrides that replace or remove labels
// and change a series' length varint.
func TestRewriteCanonicalBytes(t *testing.T) {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 7, 300)
	long := make([]wire.Label, 0, 40)
	long = append(long, wire.Label{Name: "__name__", Value: "m"})
	for _, c := range "abcdefghijklmnopqrstuvwxyz" {
		long = append(long, wire.Label{Name: string(c), Value: "vvvvv"})
	}
	// A series of just over 127 bytes, so removing a label shortens its
	// length varint from two bytes to one.
	edge := []wire.Label{{Name: "__name__", Value: "edge"}, {Name: "a", Value: string(bytes.Repeat([]byte("x"), 100))}, {Name: "instance", Value: "i1"}}
	// And one of 126 bytes with a 26-byte instance label: removing it and
	// adding tenant (rewriteSets' last) gives 113 bytes, under the 139
	// the one-pass path first reserves a two-byte length for.
	var shrink wire.Series
	for n := 1; n < 120; n++ {
		shrink = wire.Series{Labels: []wire.Label{{Name: "__name__", Value: "s"}, {Name: "a", Value: strings.Repeat("y", n)},
			{Name: "instance", Value: "host-1234567"}}, Samples: []wire.Sample{{Value: 1, Timestamp: 1_700_000_000_000}}}
		if len(wire.AppendWriteRequest(nil, []wire.Series{shrink}, nil)) == 2+126 {
			break
		}
	}
	wr.Series = append(wr.Series,
		wire.Series{Labels: long, Samples: []wire.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}}},
		wire.Series{Labels: edge, Samples: []wire.Sample{{Value: 3, Timestamp: 1_700_000_000_000}}},
		shrink)
	in := wire.AppendWriteRequest(nil, wr.Series, nil)
	for _, set := range rewriteSets {
		want, invalid, _, err := referenceRewrite(in, set, wire.Limits{MaxLabels: 256, MaxLabelBytes: 8192})
		if err != nil || invalid != 0 {
			t.Fatalf("reference: %v, %d invalid", err, invalid)
		}
		var rw wire.Rewriter
		got, err := rw.Rewrite([]byte("prefix"), in, set, wire.Limits{MaxLabels: 256, MaxLabelBytes: 8192})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
			t.Fatalf("set %v: rewritten bytes differ from the reference encoding (%d vs %d bytes)", set, len(got)-6, len(want))
		}
		if rw.Series != len(wr.Series) || rw.FloatSamples != rw.FloatSamplesIn || rw.FloatSamplesIn != len(wr.Series)+1 {
			t.Fatalf("set %v: counted %d series, %d of %d samples", set, rw.Series, rw.FloatSamples, rw.FloatSamplesIn)
		}
	}
}

// TestRewriteSampleLimitInCanonicalSeries checks that the sample budget
// still ends a canonical request at the sample that crosses it.
func TestRewriteSampleLimitInCanonicalSeries(t *testing.T) {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 3, 50)
	in := wire.AppendWriteRequest(nil, wr.Series, nil)
	var rw wire.Rewriter
	if _, err := rw.Rewrite(nil, in, nil, wire.Limits{MaxSamples: 50}); err != nil {
		t.Fatalf("50 samples under a limit of 50: %v", err)
	}
	_, err := rw.Rewrite(nil, in, nil, wire.Limits{MaxSamples: 49})
	asLimit(t, err, wire.LimitSamples, 49)
}

// TestRewriteCanonicalMutations runs every single-byte change and every
// truncation of a small canonical request (two labels, two samples)
// through the Rewriter and the reference path: the one-pass path must
// never read out of bounds, and take only what the general path would take
// the same way.
func TestRewriteCanonicalMutations(t *testing.T) {
	in := wire.AppendWriteRequest(nil, []wire.Series{{
		Labels:  []wire.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}},
		Samples: []wire.Sample{{Value: 1, Timestamp: 5}, {Value: 2, Timestamp: 1 << 40}},
	}}, nil)
	lim := wire.Limits{MaxSamples: 12, MaxLabels: 6, MaxLabelBytes: 64}
	for i := range in {
		for v := range 256 {
			m := append([]byte(nil), in...)
			m[i] = byte(v)
			for _, set := range rewriteSets {
				checkRewrite(t, m, set, lim)
			}
		}
		checkRewrite(t, in[:i], rewriteSets[1], lim)
	}
}
