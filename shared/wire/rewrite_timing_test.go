package wire_test

import (
	"testing"

	"github.com/promrelay/promrelay/shared/wire"
)

// BenchmarkRewrite is the wire-level relay step alone (no snappy) on the
// 2,000-series batch with two labels set.
func BenchmarkRewrite(b *testing.B) {
	raw, _ := remoteWriteCorpus(2000)
	set := []wire.Label{{Name: "relay", Value: "r1"}, {Name: "tenant", Value: "t1"}}
	var rw wire.Rewriter
	var out []byte
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = rw.Rewrite(out[:0], raw, set, wire.Limits{MaxLabels: 256, MaxLabelBytes: 8192}); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSample(b, 2000)
}
