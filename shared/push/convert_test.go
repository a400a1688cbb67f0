package push_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

// bruteDuplicate reports whether two of series have the same label set,
// comparing every pair: the definition Convert's duplicate check must meet.
func bruteDuplicate(series []wire.Series) bool {
	for i := range series {
		for j := range i {
			if slices.Equal(series[i].Labels, series[j].Labels) {
				return true
			}
		}
	}
	return false
}

// checkConvertDuplicates converts text pushed to path and fails when
// Convert's verdict on duplicate series differs from bruteDuplicate's, or
// when a converted label name or value is not valid UTF-8 (the relay's
// push validation relies on that and skips the check).
func checkConvertDuplicates(t *testing.T, c *push.Converter, text, path string) {
	key, err := push.ParseGroupingKey(path, 0)
	if err != nil {
		return
	}
	var e wire.Exposition
	if e.ParseText([]byte(text), wire.Limits{MaxSamples: 5000}) != nil {
		return
	}
	var wr wire.WriteRequest
	err = c.Convert(&wr, &e, key, time.Unix(1_700_000_000, 0), wire.Limits{})
	for _, s := range wr.Series {
		for _, l := range s.Labels {
			if !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value) {
				t.Fatalf("push %q to %s: converted label %q=%q is not valid UTF-8", text, path, l.Name, l.Value)
			}
		}
	}
	var inv *push.InvalidError
	gotDup := errors.As(err, &inv) && strings.Contains(inv.Msg, "duplicate series")
	if err != nil && !gotDup {
		return // a timestamp: no verdict on duplicates
	}
	if want := bruteDuplicate(wr.Series); gotDup != want {
		t.Fatalf("push %q to %s: Convert reports a duplicate: %v, pairwise comparison: %v (err %v)", text, path, gotDup, want, err)
	}
}

var duplicateCases = []struct{ text, path string }{
	{"m 1\nm 2\n", "job/x"},
	{"m{a=\"1\"} 1\nm{a=\"2\"} 2\nm{a=\"1\"} 3\n", "job/x"},
	{"m{a=\"2\"} 1\nm{a=\"1\"} 2\nm{a=\"3\"} 3\n", "job/x"},
	{"m{a=\"2\",b=\"\"} 1\nm{a=\"2\"} 2\n", "job/x"},
	{"m{instance=\"a\"} 1\nm{instance=\"b\"} 2\n", "job/x/instance/c"},
	{"m{instance=\"a\"} 1\nm{instance=\"b\"} 2\n", "job/x/instance/"},
	{"m{job=\"a\"} 1\nm 2\n", "job/x"},
	{"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.50\"} 2\n", "job/x"},
	{"# TYPE s summary\ns{quantile=\"0\"} 1\ns{quantile=\"-0\"} 2\n", "job/x"},
	{"# TYPE s summary\ns{quantile=\"NaN\"} 1\ns{quantile=\"NaN\"} 2\n", "job/x"},
	{"# TYPE s summary\ns{quantile=\"0.9\"} 1\ns{quantile=\"0.5\"} 2\n", "job/x"},
	{"# TYPE s summary\ns{le=\"1\",quantile=\"0.5\"} 1\ns{le=\"2\",quantile=\"0.5\"} 2\n", "job/x"},
	{"# TYPE s summary\ns_sum 1\n# TYPE s_count counter\ns_count 3\n", "job/x"},
	{"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 2\n", "job/x"},
	{"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"1\"} 2\n", "job/x"},
	{"# TYPE h histogram\nh_bucket{le=\"-Inf\"} 1\nh_bucket{le=\"1\"} 2\n", "job/x"},
	{"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 2\n", "job/x/le/3"},
	{"# TYPE h histogram\nh_bucket{le=\"1\",quantile=\"a\"} 1\nh_bucket{le=\"1\",quantile=\"b\"} 2\n", "job/x/quantile/q"},
	{"# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{a=\"2\",le=\"1\"} 2\nh_bucket{a=\"1\",le=\"2\"} 2\n", "job/x"},
	{"# TYPE h_bucket counter\nh_bucket{le=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n", "job/x"},
	{"# TYPE h gauge\nh_bucket{le=\"1\"} 1\n# TYPE h_bucket histogram\nh_bucket_bucket{le=\"1\"} 1\n", "job/x"},
	{"a{x=\"1\"} 1\nb 1\na{x=\"0\"} 1\na{x=\"1\"} 2\n", "job/x"},
	{"a{x=\"1\"} 1\nb 1\na{x=\"0\"} 1\na{x=\"2\"} 2\n", "job/x"},
	{"push_time_seconds 1\npush_time_seconds{a=\"1\"} 1\n", "job/x"},
	{"m{a=\"caf\u00e9\"} 1\nm{a=\"x\"} 2\n", "job/x/b@base64/w6k"},
	{"m{a=\"x\",b=\"y\"} 1\nm{a=\"x\"} 1\nm{a=\"xy\"} 1\nm{b=\"y\"} 1\n", "job/x"},
}

// TestConvertFindsEveryDuplicate: Convert's duplicate-series verdict (a
// proof of distinctness on the usual path, hashing otherwise) agrees with
// comparing every pair of series.
func TestConvertFindsEveryDuplicate(t *testing.T) {
	var c push.Converter
	for _, tc := range duplicateCases {
		checkConvertDuplicates(t, &c, tc.text, tc.path)
	}
}

func FuzzConvertDuplicates(f *testing.F) {
	for _, tc := range duplicateCases {
		f.Add(tc.text, tc.path)
	}
	var c push.Converter
	f.Fuzz(func(t *testing.T, text, path string) {
		checkConvertDuplicates(t, &c, text, path)
	})
}
