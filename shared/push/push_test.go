package push_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/wire"
)

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
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			key, err := push.ParseGroupingKey(tc.path, 0)
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
