package wire_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// TestEncodeSnappyIsSnappy checks that EncodeSnappy's blocks, made by s2's
// snappy-compatible encoder, are plain snappy: github.com/golang/snappy
// (the decoder Prometheus' remote-write receiver uses) decodes each to its
// input. The inputs cover the empty one, incompressible bytes, runs longer
// than snappy's 64 KiB block unit, and remote-write requests.
func TestEncodeSnappyIsSnappy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	inputs := [][]byte{nil, {0}, random[:100], random, bytes.Repeat([]byte("abc"), 200<<10)}
	for seed := uint64(1); seed <= 3; seed++ {
		var wr wire.WriteRequest
		corpus.WriteRequest(&wr, seed, 2000)
		inputs = append(inputs, wire.AppendWriteRequest(nil, wr.Series, nil))
	}
	dst := []byte(nil)
	for i, src := range inputs {
		dst = wire.EncodeSnappy(dst, src)
		got, err := snappy.Decode(nil, dst)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("input %d (%d bytes): golang/snappy decodes %d bytes, error %v", i, len(src), len(got), err)
		}
	}
}
