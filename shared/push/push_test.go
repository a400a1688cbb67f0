package push_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

func TestParseGroupingKeyNoLimit(t *testing.T) {
	path := "job/x" + strings.Repeat("/a/1", 1000)
	if _, err := push.ParseGroupingKey(path, 0); err != nil {
		t.Fatalf("maxLabels 0: %v", err)
	}
}

func TestParseGroupingKey(t *testing.T) {
	cases := []struct {
		path    string
		want    string // GroupingKey.String()
		wantErr string
	}{
		{path: "job/backup", want: `job="backup"`},
		{path: "job/backup/", want: `job="backup"`},
		{path: "job/backup/instance/db1/zone/a", want: `instance="db1",job="backup",zone="a"`},
		{path: "job@base64/YmFja3Vw", want: `job="backup"`},
		{path: "job@base64/YmFja3VwLzE=", want: `job="backup/1"`},
		{path: "job/x/path@base64/L3Zhci90bXA", want: `job="x",path="/var/tmp"`},
		{path: "job/x/path@base64/L3Zhci90bXA=", want: `job="x",path="/var/tmp"`},
		{path: "job/x/empty@base64/=", want: `empty="",job="x"`},
		{path: "job/x/instance/", want: `instance="",job="x"`},
		{path: "job/x/a%2Fb/c", wantErr: "improper label name"},
		{path: "job/x/dir/a%2Fb", want: `dir="a/b",job="x"`},
		{path: "job/x/a/1/a/2", want: `a="2",job="x"`},
		{path: "job/x/job/y", want: `job="x"`},
		{path: "job/%E6%97%A5", want: `job="日"`},
		{path: "job/", wantErr: "job name is required"},
		{path: "job", wantErr: "job name is required"},
		{path: "instance/x", wantErr: "job name is required"},
		{path: "job@base64/", wantErr: "job name is required"},
		{path: "job/x/instance", wantErr: "odd number of components"},
		{path: "job/x/a/1/b", wantErr: "odd number of components"},
		{path: "job/x/1bad/v", wantErr: `improper label name "1bad"`},
		{path: "job/x/__reserved/v", wantErr: "improper label name"},
		{path: "job/x/a-b/v", wantErr: "improper label name"},
		{path: "job@base64/!!!", wantErr: "invalid base64 encoding in job name"},
		{path: "job/x/a@base64/!!!", wantErr: "invalid base64 encoding for label a"},
		{path: "job/x/a/%zz", wantErr: "invalid escape"},
		// Issue 11: a NUL in a grouping value forged another tenant's
		// group id; control characters and invalid UTF-8 are refused.
		{path: "job/j%00%5Cx00tenant%00team-a%00tenant_userid%001001", wantErr: "contains control character U+0000"},
		{path: "job/x/a/b%00c", wantErr: "grouping label a contains control character U+0000"},
		{path: "job/x/a/b%0Ac", wantErr: "control character U+000A"},
		{path: "job/x/a/b%7F", wantErr: "control character U+007F"},
		{path: "job/x/a/%C2%85", wantErr: "control character U+0085"},
		{path: "job/x/a/%FF", wantErr: "grouping label a is not valid UTF-8"},
		{path: "job@base64/AA", wantErr: "grouping label job contains control character U+0000"},
		{path: "job/x/a@base64/_w", wantErr: "not valid UTF-8"},
		{path: "job/x/a/%09", wantErr: "control character U+0009"},
		{path: "job/x/a/1/b/2/c/3", wantErr: "grouping key has more than 3 labels"},
		{path: "job/x/a/1/b/2/c/3/d/4/e/5/f/6", wantErr: "grouping key has more than 3 labels"},
		{path: "job/x/a/1/b/2", want: `a="1",b="2",job="x"`},
		{path: "job/x/a/1/a/2/a/3", wantErr: "grouping key has more than 3 labels"}, // pairs are counted before duplicates collapse
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			key, err := push.ParseGroupingKey(tc.path, 3)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := key.String(); got != tc.want {
				t.Fatalf("key = %s, want %s", got, tc.want)
			}
		})
	}
}

// series renders the converted series as sorted "labels value" lines.
func series(wr *wire.WriteRequest) map[string]float64 {
	out := map[string]float64{}
	for _, s := range wr.Series {
		out[wire.FormatLabels(s.Labels, 1000)] = s.Samples[0].Value
	}
	return out
}

func convert(t *testing.T, text, path string) (*wire.WriteRequest, error) {
	t.Helper()
	var e wire.Exposition
	if err := e.ParseText([]byte(text), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	key, err := push.ParseGroupingKey(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wr wire.WriteRequest
	var c push.Converter
	err = c.Convert(&wr, &e, key, time.Unix(1_763_000_000, 500_000_000), wire.Limits{})
	return &wr, err
}

func TestConvert(t *testing.T) {
	in := `# HELP jobs_total Jobs run.
# TYPE jobs_total counter
jobs_total{result="ok",job="overridden",instance="body"} 3
# TYPE lat histogram
lat_bucket{le="0.10"} 1
lat_bucket{le="1"} 2
lat_sum 1.5
lat_count 4
# TYPE q summary
q{quantile="0.5"} 0.2
q{quantile="0.99"} 0.9
q_sum 3
q_count 10
plain{le="keep",empty=""} 7
`
	wr, err := convert(t, in, "job/batch/instance/node1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`jobs_total{instance="node1",job="batch",result="ok"}`: 3,
		`lat_bucket{instance="node1",job="batch",le="0.1"}`:    1,
		`lat_bucket{instance="node1",job="batch",le="1"}`:      2,
		`lat_bucket{instance="node1",job="batch",le="+Inf"}`:   4,
		`lat_sum{instance="node1",job="batch"}`:                1.5,
		`lat_count{instance="node1",job="batch"}`:              4,
		`q{instance="node1",job="batch",quantile="0.5"}`:       0.2,
		`q{instance="node1",job="batch",quantile="0.99"}`:      0.9,
		`q_sum{instance="node1",job="batch"}`:                  3,
		`q_count{instance="node1",job="batch"}`:                10,
		`plain{instance="node1",job="batch",le="keep"}`:        7,
		`push_time_seconds{instance="node1",job="batch"}`:      1_763_000_000.5,
	}
	got := series(wr)
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, s := range wr.Series {
		if err := wire.ValidateSeries(&s, wire.Limits{}); err != nil {
			t.Errorf("converted series invalid: %v", err)
		}
		if s.Samples[0].Timestamp != 1_763_000_000_500 {
			t.Errorf("timestamp %d, want the push time", s.Samples[0].Timestamp)
		}
	}
	md := map[string]wire.Metadata{}
	for _, m := range wr.Metadata {
		md[m.FamilyName] = m
	}
	if md["jobs_total"].Type != wire.MetadataCounter || md["jobs_total"].Help != "Jobs run." || md["lat"].Type != wire.MetadataHistogram ||
		md["q"].Type != wire.MetadataSummary || md["plain"].Type != wire.MetadataUnknown || md[push.PushTimeMetric].Type != wire.MetadataGauge {
		t.Errorf("metadata %+v", wr.Metadata)
	}
}

func TestConvertSpecialValuesAndEmptyPush(t *testing.T) {
	wr, err := convert(t, "a NaN\nb -Inf\n", "job/x")
	if err != nil {
		t.Fatal(err)
	}
	got := series(wr)
	if !math.IsNaN(got[`a{job="x"}`]) || !math.IsInf(got[`b{job="x"}`], -1) {
		t.Fatalf("got %v", got)
	}
	wr, err = convert(t, "", "job/x")
	if err != nil || len(wr.Series) != 1 || wr.Series[0].Labels[0].Value != push.PushTimeMetric {
		t.Fatalf("empty push: %v %v", err, series(wr))
	}
}

func TestConvertRejects(t *testing.T) {
	cases := map[string]struct{ in, path, wantErr string }{
		"timestamp":                  {"m 1 1700000000000\n", "job/x", "must not have timestamps"},
		"duplicate series":           {"m 1\nm 2\n", "job/x", "duplicate series"},
		"duplicate after grouping":   {"m{instance=\"a\"} 1\nm{instance=\"b\"} 2\n", "job/x/instance/c", "duplicate series"},
		"duplicate via job override": {"m{job=\"a\"} 1\nm 2\n", "job/x", "duplicate series"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := convert(t, tc.in, tc.path)
			var inv *push.InvalidError
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if _, ok := err.(*push.InvalidError); !ok {
				t.Fatalf("err is %T, want %T", err, inv)
			}
		})
	}
}

func TestConvertNativeOnlyHistogramGetsInfBucket(t *testing.T) {
	var e wire.Exposition
	// One delimited family: histogram "h" with sample_count 5, sum 2 and a
	// native schema, no classic buckets.
	h := []byte{0x08, 0x05, 0x11, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x28, 0x00}
	m := append([]byte{0x3a, byte(len(h))}, h...)
	f := append([]byte{0x0a, 0x01, 'h', 0x18, 0x04, 0x22, byte(len(m))}, m...)
	if err := e.ParseDelimited(append([]byte{byte(len(f))}, f...), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	var wr wire.WriteRequest
	var c push.Converter
	if err := c.Convert(&wr, &e, push.GroupingKey{{Name: "job", Value: "x"}}, time.Unix(1, 0), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	got := series(&wr)
	if got[`h_bucket{job="x",le="+Inf"}`] != 5 || got[`h_count{job="x"}`] != 5 || got[`h_sum{job="x"}`] != 2 {
		t.Fatalf("got %v", got)
	}
}

// TestConvertDropsPushTimeFamilies is issue 12's Pushgateway difference: a
// body carrying push_time_seconds was a 400 "duplicate series"; the
// Pushgateway answers 200 and keeps its own push time.
func TestConvertDropsPushTimeFamilies(t *testing.T) {
	in := "# TYPE push_time_seconds gauge\npush_time_seconds 1\npush_failure_time_seconds{job=\"x\"} 2\nup 1\n"
	wr, err := convert(t, in, "job/x")
	if err != nil {
		t.Fatal(err)
	}
	got := series(wr)
	want := map[string]float64{`up{job="x"}`: 1, `push_time_seconds{job="x"}`: 1_763_000_000.5}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("series %v, want %v", got, want)
		}
	}
	for _, md := range wr.Metadata {
		if md.FamilyName == push.PushFailureTimeMetric || md.FamilyName == push.PushTimeMetric && md.Help == "" {
			t.Fatalf("metadata of the pushed family kept: %+v", md)
		}
	}
}

// TestConvertSampleLimit checks that Convert stops at MaxSamples, counting
// the series it makes (a histogram's +Inf bucket, _sum and _count, and the
// push_time_seconds gauge included).
func TestConvertSampleLimit(t *testing.T) {
	var e wire.Exposition
	in := "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n" // 4 series with push_time_seconds: le=1, le=+Inf, _sum, _count
	if err := e.ParseText([]byte(in), wire.Limits{}); err != nil {
		t.Fatal(err)
	}
	key := push.GroupingKey{{Name: "job", Value: "x"}}
	var c push.Converter
	for limit, wantErr := range map[int]bool{3: true, 4: true, 5: false, 0: false} {
		var wr wire.WriteRequest
		err := c.Convert(&wr, &e, key, time.Unix(1, 0), wire.Limits{MaxSamples: limit})
		var le *wire.LimitError
		if got := errors.As(err, &le); got != wantErr {
			t.Fatalf("limit %d: error %v", limit, err)
		}
		if wantErr && (le.Kind != wire.LimitSamples || le.Limit != limit || len(wr.Series) > limit) {
			t.Fatalf("limit %d: %+v, %d series", limit, le, len(wr.Series))
		}
	}
}

// TestConvertKeyRemovesLabel checks that a grouping label with an empty
// value removes the body's label of that name, as on the Pushgateway.
func TestConvertKeyRemovesLabel(t *testing.T) {
	wr, err := convert(t, "up{instance=\"body\",zone=\"a\"} 1\n", "job/x/instance/")
	if err != nil {
		t.Fatal(err)
	}
	if got := series(wr); got[`up{job="x",zone="a"}`] != 1 {
		t.Fatalf("series %v", got)
	}
}
