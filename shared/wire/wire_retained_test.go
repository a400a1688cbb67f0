package wire_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/wire"
)

// TestRetainedGrowsWithTheInput: what an Exposition and a WriteRequest keep
// after Reset reflects the largest input they held, so pools can drop them.
func TestRetainedGrowsWithTheInput(t *testing.T) {
	var small, big wire.Exposition
	small.ParseText([]byte("a 1\n"), wire.Limits{})
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "# TYPE a%d gauge\na%d{x=\"%d\"} 1\n", i, i, i)
	}
	if err := big.ParseText([]byte(b.String()), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	big.Reset()
	if small.Retained() >= 1000 || big.Retained() < 10000 {
		t.Fatalf("Retained: small %d, big %d", small.Retained(), big.Retained())
	}
	var wr wire.WriteRequest
	for i := 0; i < 3000; i++ {
		wr.AppendSample(wr.AppendLabels(wire.Label{Name: "__name__", Value: "m"}, wire.Label{Name: "i", Value: fmt.Sprint(i)}), wire.Sample{Value: 1})
	}
	wr.Reset()
	if wr.Retained() < 9000 {
		t.Fatalf("WriteRequest.Retained %d", wr.Retained())
	}
}
