package push_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/promrelay/promrelay/shared/push"
)

// referenceGroupingKey is the Pushgateway's own parsing of a push path
// (prometheus/pushgateway handler/push.go: the job route parameter, its
// @base64 form, and splitLabels over the rest), transcribed over path
// segments that are URL-unescaped one by one, as promrelay routes them. It
// returns the label set, the job included, or an error.
func referenceGroupingKey(escapedPath string) (map[string]string, error) {
	segs := strings.Split(escapedPath, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, err
		}
		segs[i] = u
	}
	if len(segs) < 2 || segs[0] != "job" && segs[0] != "job@base64" {
		return nil, fmt.Errorf("no route")
	}
	job := segs[1]
	if segs[0] == "job@base64" {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(job, "="))
		if err != nil {
			return nil, err
		}
		job = string(b)
	}
	if job == "" {
		return nil, fmt.Errorf("job name is required")
	}
	// splitLabels: the labels parameter is "" or "/" plus the rest.
	result := map[string]string{}
	if rest := segs[2:]; len(rest) > 0 && !(len(rest) == 1 && rest[0] == "") {
		components := append([]string{""}, rest...)
		if len(components)%2 == 0 {
			return nil, fmt.Errorf("odd number of components in label string")
		}
		for i := 1; i < len(components)-1; i += 2 {
			name, value := components[i], components[i+1]
			trimmed := strings.TrimSuffix(name, "@base64")
			if !labelNameRE.MatchString(trimmed) || strings.HasPrefix(trimmed, "__") {
				return nil, fmt.Errorf("improper label name %q", trimmed)
			}
			if name != trimmed {
				b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
				if err != nil {
					return nil, err
				}
				value = string(b)
			}
			result[trimmed] = value
			// A value a later pair replaces is still one promrelay
			// checks (found by a 15-minute run: "job/x/a/\xbd/a/").
			refused = refused || stricter(value)
		}
	}
	result["job"] = job
	return result, nil
}

// refused records, during one referenceGroupingKey call, whether any value
// the path held (replaced ones included) is one promrelay refuses.
var refused bool

// labelNameRE is model.LabelNameRE, the legacy label name syntax.
var labelNameRE = regexp.MustCompile("^[a-zA-Z_][a-zA-Z0-9_]*$")

// promrelayStricter reports whether a key that the Pushgateway accepts
// holds what promrelay deliberately refuses: a value with a control
// character or invalid UTF-8.
func promrelayStricter(ref map[string]string) bool {
	if refused {
		return true
	}
	for _, v := range ref {
		if stricter(v) {
			return true
		}
	}
	return false
}

// stricter reports whether promrelay refuses a grouping value the
// Pushgateway accepts.
func stricter(v string) bool {
	return !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0
}

// FuzzParseGroupingKey checks ParseGroupingKey against the Pushgateway's
// parsing (referenceGroupingKey): the same paths are accepted and give the
// same label set, except the values promrelay refuses (control characters,
// invalid UTF-8); and an accepted key is sorted, unique, with a job.
func FuzzParseGroupingKey(f *testing.F) {
	for _, s := range []string{"job/x", "job@base64/eA==/a@base64/Lw", "job/x/instance/", "job/x/a%2Fb/c", "job/x/../y", "job//a/b",
		"job/x/a/1/a/2", "job/x/job/y", "job/x/a/b%00c", "job/x/a/%FF", "job@base64/AA", "job/x/a/%C2%85", "job/x/a/1/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		key, err := push.ParseGroupingKey(path, 0)
		refused = false
		ref, refErr := referenceGroupingKey(path)
		if refErr != nil {
			if err == nil {
				t.Fatalf("%q: accepted as %v, the Pushgateway rejects it: %v", path, key, refErr)
			}
			return
		}
		if err != nil {
			if !promrelayStricter(ref) {
				t.Fatalf("%q: rejected (%v), the Pushgateway accepts it as %v", path, err, ref)
			}
			return
		}
		if promrelayStricter(ref) {
			t.Fatalf("%q: accepted %v with a control character or invalid UTF-8", path, key)
		}
		if len(key) != len(ref) {
			t.Fatalf("%q: key %v, the Pushgateway's %v", path, key, ref)
		}
		for i, l := range key {
			if v, ok := ref[l.Name]; !ok || v != l.Value {
				t.Fatalf("%q: key %v, the Pushgateway's %v", path, key, ref)
			}
			if i > 0 && key[i-1].Name >= l.Name {
				t.Fatalf("%q: key not sorted and unique: %v", path, key)
			}
		}
		if key.Job() == "" {
			t.Fatalf("%q: accepted without a job", path)
		}
	})
}
