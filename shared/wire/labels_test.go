package wire_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/wire"
)

func ls(kv ...string) []wire.Label {
	var out []wire.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, wire.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestMergeLabels(t *testing.T) {
	cases := []struct {
		name             string
		ls, overrides    []wire.Label
		want, overridden []wire.Label
	}{
		{name: "none", ls: ls("a", "1"), want: ls("a", "1"), overridden: ls("a", "1")},
		{name: "replace and add", ls: ls("b", "1", "d", "2"), overrides: ls("a", "x", "b", "y", "e", "z"), want: ls("a", "x", "b", "y", "d", "2", "e", "z"), overridden: ls("a", "x", "b", "y", "d", "2", "e", "z")},
		{name: "empty override removes", ls: ls("a", "1", "b", "2"), overrides: ls("a", "", "c", ""), want: ls("b", "2"), overridden: ls("a", "", "b", "2", "c", "")},
		{name: "empty base value kept", ls: ls("a", ""), overrides: ls("b", "1"), want: ls("a", "", "b", "1"), overridden: ls("a", "", "b", "1")},
		{name: "into empty", overrides: ls("a", "1", "b", ""), want: ls("a", "1"), overridden: ls("a", "1", "b", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire.MergeLabels(nil, tc.ls, tc.overrides); !slices.Equal(got, tc.want) {
				t.Errorf("MergeLabels = %v, want %v", got, tc.want)
			}
			if got := wire.MergeOverrides(nil, tc.ls, tc.overrides); !slices.Equal(got, tc.overridden) {
				t.Errorf("MergeOverrides = %v, want %v", got, tc.overridden)
			}
		})
	}
	// Two override sets merged, then applied, equal applying one after the
	// other.
	base, a, b := ls("a", "1", "b", "2", "c", "3"), ls("a", "x", "b", "y"), ls("b", "", "d", "4")
	once := wire.MergeLabels(nil, base, wire.MergeOverrides(nil, a, b))
	twice := wire.MergeLabels(nil, wire.MergeLabels(nil, base, a), b)
	if !slices.Equal(once, twice) {
		t.Fatalf("merged overrides give %v, applied in turn %v", once, twice)
	}
}

// TestAppendLabelsKeyUnambiguous is the group-id collision of issue 11:
// with NUL separators, {job="j\x00tenant\x00team-a"} and {job="j",
// tenant="team-a"} hashed alike; length prefixes keep them apart.
func TestAppendLabelsKeyUnambiguous(t *testing.T) {
	pairs := [][2][]wire.Label{
		{ls("job", "j\x00tenant\x00team-a"), ls("job", "j", "tenant", "team-a")},
		{ls("a", "bc"), ls("ab", "c")},
		{ls("a", ""), ls("", "a")},
		{ls("a", "b", "c", "d"), ls("a", "b\x01\x01c\x01d")},
	}
	for _, p := range pairs {
		k1, k2 := wire.AppendLabelsKey(nil, p[0]), wire.AppendLabelsKey(nil, p[1])
		if bytes.Equal(k1, k2) {
			t.Errorf("%v and %v have the same key %q", p[0], p[1], k1)
		}
	}
	long := strings.Repeat("x", 300)
	got := wire.AppendLabelsKey([]byte("p"), ls("n", long))
	want := append([]byte("p\x01n\xac\x02"), long...)
	if !bytes.Equal(got, want) {
		t.Fatalf("key %q, want %q", got[:8], want[:8])
	}
}

func TestSortLabels(t *testing.T) {
	for _, n := range []int{0, 1, 5, 17, 100} {
		var l []wire.Label
		for i := n; i > 0; i-- {
			l = append(l, wire.Label{Name: fmt.Sprintf("l%03d", i)})
		}
		wire.SortLabels(l)
		if !slices.IsSortedFunc(l, func(a, b wire.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatalf("%d labels not sorted: %v", n, l)
		}
	}
}

func TestApplyLabelsRemovesOnEmptyValue(t *testing.T) {
	var wr wire.WriteRequest
	wr.AppendSample(wr.AppendLabels(ls("__name__", "up", "instance", "a", "job", "x")...), wire.Sample{Value: 1})
	wr.ApplyLabels(ls("instance", "", "tenant", "t"))
	if want := ls("__name__", "up", "job", "x", "tenant", "t"); !slices.Equal(wr.Series[0].Labels, want) {
		t.Fatalf("labels %v, want %v", wr.Series[0].Labels, want)
	}
}
