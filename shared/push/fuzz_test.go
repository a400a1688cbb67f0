package push_test

import (
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// FuzzParseGroupingKey checks that any path either fails with an error or
// gives a key that is sorted, unique, has a non-empty job, and only valid,
// unreserved label names.
func FuzzParseGroupingKey(f *testing.F) {
	for _, s := range []string{"job/x", "job@base64/eA==/a@base64/Lw", "job/x/instance/", "job/x/a%2Fb/c", "job/x/../y", "job//a/b", "job/x/a/1/a/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		key, err := push.ParseGroupingKey(path, 0)
		if err != nil {
			return
		}
		if key.Job() == "" {
			t.Fatalf("%q: accepted without a job", path)
		}
		for i, l := range key {
			if !wire.IsValidLabelName(l.Name) || strings.HasPrefix(l.Name, "__") {
				t.Fatalf("%q: label name %q", path, l.Name)
			}
			if i > 0 && key[i-1].Name >= l.Name {
				t.Fatalf("%q: key not sorted and unique: %v", path, key)
			}
		}
	})
}
