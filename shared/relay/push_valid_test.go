package relay

import (
	"math/rand/v2"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestPlainValidImpliesValidateSeries checks plainValid against
// wire.ValidateSeries on series broken in every way ValidateSeries looks
// for: whatever plainValid accepts, ValidateSeries accepts, and it accepts
// the plain (ASCII, valid) series pushes are made of. With utf8Known, on
// the series whose strings are all valid UTF-8 (the caller's promise), the
// same holds, and it accepts non-ASCII values too.
func TestPlainValidImpliesValidateSeries(t *testing.T) {
	var wr wire.WriteRequest
	corpus.WriteRequest(&wr, 11, 400)
	lim := wire.Limits{MaxLabels: 12, MaxLabelBytes: 60}
	r := rand.New(rand.NewPCG(1, 2))
	breaks := []func(s *wire.Series){
		func(s *wire.Series) {},
		func(s *wire.Series) { s.Labels[r.IntN(len(s.Labels))].Value = "caf\xc3\xa9" },            // UTF-8, not ASCII
		func(s *wire.Series) { s.Labels[r.IntN(len(s.Labels))].Value = "bad\xff-utf8-value" },     // invalid UTF-8
		func(s *wire.Series) { s.Labels[len(s.Labels)-1].Name = "\xfe" },                          // invalid name, still sorted
		func(s *wire.Series) { i := r.IntN(len(s.Labels)); s.Labels[i].Name = "" },                // empty name
		func(s *wire.Series) { s.Labels = append(s.Labels, s.Labels[len(s.Labels)-1]) },           // duplicate
		func(s *wire.Series) { s.Labels[0], s.Labels[1] = s.Labels[1], s.Labels[0] },              // unsorted
		func(s *wire.Series) { s.Labels[0].Value = "" },                                           // empty __name__
		func(s *wire.Series) { s.Labels = s.Labels[1:] },                                          // no __name__
		func(s *wire.Series) { s.Labels[r.IntN(len(s.Labels))].Value = string(make([]byte, 59)) }, // over MaxLabelBytes
		func(s *wire.Series) {
			for len(s.Labels) <= lim.MaxLabels {
				s.Labels = append(s.Labels, wire.Label{Name: "zz" + string(rune('a'+len(s.Labels))), Value: "v"})
			}
		},
		func(s *wire.Series) { s.Samples = nil },
		func(s *wire.Series) { s.Samples = []wire.Sample{{Timestamp: 2}, {Timestamp: 1}} },
		func(s *wire.Series) { s.Samples = []wire.Sample{{Timestamp: 1}, {Timestamp: 1}, {Timestamp: 3}} },
		func(s *wire.Series) { s.Samples, s.Histograms = nil, [][]byte{{0x08, 0x01}} },
	}
	for _, utf8Known := range []bool{false, true} {
		accepted, nonASCII := 0, 0
		for i, orig := range wr.Series {
			for j, brk := range breaks {
				s := wire.Series{Labels: append([]wire.Label(nil), orig.Labels...), Samples: orig.Samples}
				brk(&s)
				if utf8Known && !allUTF8(&s) {
					continue
				}
				plain, err := plainValid(&s, lim, utf8Known), wire.ValidateSeries(&s, lim)
				if plain && err != nil {
					t.Fatalf("utf8Known %v, series %d, break %d: plainValid accepts what ValidateSeries rejects: %v", utf8Known, i, j, err)
				}
				if (j == 0 || utf8Known && j == 1) && err == nil && !plain {
					t.Fatalf("utf8Known %v, series %d: plainValid refuses a valid series %v", utf8Known, i, wire.FormatLabels(s.Labels, 300))
				}
				if plain {
					accepted++
					if j == 1 {
						nonASCII++
					}
				}
			}
		}
		if accepted == 0 || utf8Known && nonASCII == 0 {
			t.Fatalf("utf8Known %v: plainValid accepted %d series, %d with a non-ASCII value", utf8Known, accepted, nonASCII)
		}
	}
}

// allUTF8 reports whether every label name and value of s is valid UTF-8.
func allUTF8(s *wire.Series) bool {
	for _, l := range s.Labels {
		if !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value) {
			return false
		}
	}
	return true
}

// BenchmarkPushValidate is the check of a converted push's series
// (node_exporter-like, 2,000 samples): plainValid first, as convert does,
// against ValidateSeries alone.
func BenchmarkPushValidate(b *testing.B) {
	var e wire.Exposition
	if err := e.ParseText(corpus.Exposition(42, corpus.Options{Families: 200}), wire.Limits{}); err != nil {
		b.Fatal(err)
	}
	key, _ := push.ParseGroupingKey("job/node/instance/host1", 0)
	var wr wire.WriteRequest
	var c push.Converter
	if err := c.Convert(&wr, &e, key, time.Unix(1_763_000_000, 0), wire.Limits{}); err != nil {
		b.Fatal(err)
	}
	lim := wire.Limits{MaxLabels: 256, MaxLabelBytes: 8192}
	b.Run("ValidateSeries", func(b *testing.B) {
		for b.Loop() {
			for i := range wr.Series {
				if err := wire.ValidateSeries(&wr.Series[i], lim); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(wr.Series)), "ns/series")
	})
	for _, utf8Known := range []bool{false, true} {
		name := "plainValid"
		if utf8Known {
			name += "-utf8Known"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for i := range wr.Series {
					if s := &wr.Series[i]; !plainValid(s, lim, utf8Known) {
						if err := wire.ValidateSeries(s, lim); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(wr.Series)), "ns/series")
		})
	}
}
