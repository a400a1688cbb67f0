// Package corpus generates realistic, deterministic test inputs for the
// codec: node_exporter-like text expositions with every feature of the text
// format 0.0.4, and remote-write batches shaped like a Prometheus server's.
package corpus

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/promrelay/promrelay/shared/wire"
)

// Options shape a generated exposition.
type Options struct {
	Families   int  // metric families; about 10 samples each on average
	Timestamps bool // add a timestamp to some samples (pushes reject them)
	Quirks     bool // tabs, trailing commas, comments, escapes, special floats
}

var (
	devices     = []string{"eth0", "eth1", "lo", "docker0", "veth9a1b", "bond0"}
	mountpoints = []string{"/", "/boot", "/home", "/var/lib/docker", `/mnt/with "quotes"`, `C:\data`, "/srv/日本語", "/tmp/ü\nnewline"}
	modes       = []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	buckets     = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	quantiles   = []float64{0, 0.25, 0.5, 0.75, 0.9, 0.99, 1}
	helpTexts   = []string{"Seconds the CPUs spent in each mode.", `Help with a backslash \ and a newline
in it.`, "Filesystem space available to non-root users in bytes.", "Total number of bytes received.", ""}
)

// EscapeLabelValue escapes a label value for the text format.
func EscapeLabelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func formatValue(r *rand.Rand, quirks bool) string {
	if quirks {
		switch r.IntN(40) {
		case 0:
			return "NaN"
		case 1:
			return "+Inf"
		case 2:
			return "-Inf"
		case 3:
			return "-0"
		case 4:
			return "1.5e-07"
		case 5:
			return "6.02E+23"
		case 6:
			return "0"
		}
	}
	switch r.IntN(3) {
	case 0:
		return strconv.Itoa(r.IntN(1_000_000))
	case 1:
		return strconv.FormatFloat(r.Float64()*1e6, 'g', -1, 64)
	default:
		return strconv.FormatFloat(r.NormFloat64()*1000, 'f', 3, 64)
	}
}

// Exposition returns a text-format exposition generated from seed: counters
// with cpu/mode label sets, gauges over devices and mount points, untyped
// metrics, histograms and summaries, with HELP and TYPE lines.
func Exposition(seed uint64, o Options) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b strings.Builder
	ts := func() string {
		if o.Timestamps && r.IntN(4) == 0 {
			return " " + strconv.FormatInt(1_700_000_000_000+int64(r.IntN(1_000_000)), 10)
		}
		return ""
	}
	sep := func() string {
		if o.Quirks && r.IntN(10) == 0 {
			return "\t"
		}
		return " "
	}
	for f := 0; f < o.Families; f++ {
		kind := f % 10
		name := fmt.Sprintf("node_metric_%d", f)
		if kind < 3 {
			name += "_seconds_total"
		}
		help := helpTexts[r.IntN(len(helpTexts))]
		if o.Quirks && r.IntN(8) == 0 {
			b.WriteString("# a plain comment line\n\n")
		}
		if help != "" || kind != 9 {
			fmt.Fprintf(&b, "# HELP %s %s\n", name, escapeHelp(help))
		}
		switch {
		case kind < 3: // counter: cpu × mode
			fmt.Fprintf(&b, "# TYPE %s counter\n", name)
			for cpu := 0; cpu < 1+r.IntN(2); cpu++ {
				for _, m := range modes {
					trailing := ""
					if o.Quirks && r.IntN(10) == 0 {
						trailing = ","
					}
					fmt.Fprintf(&b, "%s{cpu=\"%d\",mode=\"%s\"%s}%s%s%s\n", name, cpu, m, trailing, sep(), formatValue(r, o.Quirks), ts())
				}
			}
		case kind < 6: // gauge over filesystems or devices
			fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
			if kind == 3 {
				for _, mp := range mountpoints {
					fmt.Fprintf(&b, "%s{device=\"/dev/sda%d\",fstype=\"ext4\",mountpoint=\"%s\"} %s%s\n", name, r.IntN(9), EscapeLabelValue(mp), formatValue(r, o.Quirks), ts())
				}
			} else {
				for _, d := range devices {
					sp := ""
					if o.Quirks && r.IntN(6) == 0 {
						sp = " "
					}
					fmt.Fprintf(&b, "%s{%sdevice%s=%s\"%s\"%s}%s%s%s\n", name, sp, sp, sp, d, sp, sep(), formatValue(r, o.Quirks), ts())
				}
			}
		case kind < 8: // histogram
			fmt.Fprintf(&b, "# TYPE %s histogram\n", name)
			for _, handler := range []string{"/api/v1/query", "/metrics"}[:1+r.IntN(2)] {
				cum := 0
				for _, le := range buckets {
					cum += r.IntN(100)
					fmt.Fprintf(&b, "%s_bucket{handler=\"%s\",le=\"%s\"} %d\n", name, handler, strconv.FormatFloat(le, 'g', -1, 64), cum)
				}
				cum += r.IntN(10)
				fmt.Fprintf(&b, "%s_bucket{handler=\"%s\",le=\"+Inf\"} %d\n", name, handler, cum)
				fmt.Fprintf(&b, "%s_sum{handler=\"%s\"} %s\n", name, handler, strconv.FormatFloat(r.Float64()*float64(cum), 'g', -1, 64))
				fmt.Fprintf(&b, "%s_count{handler=\"%s\"} %d\n", name, handler, cum)
			}
		case kind == 8: // summary
			fmt.Fprintf(&b, "# TYPE %s summary\n", name)
			for _, q := range quantiles {
				fmt.Fprintf(&b, "%s{quantile=\"%s\"} %s\n", name, strconv.FormatFloat(q, 'g', -1, 64), strconv.FormatFloat(r.Float64()/100, 'g', -1, 64))
			}
			fmt.Fprintf(&b, "%s_sum %s\n%s_count %d\n", name, strconv.FormatFloat(r.Float64()*10, 'g', -1, 64), name, r.IntN(10000))
		default: // untyped, no TYPE line
			fmt.Fprintf(&b, "%s %s%s\n", name, formatValue(r, o.Quirks), ts())
			fmt.Fprintf(&b, "%s{instance=\"a:9100\",version=\"go1.26\"} %s\n", name, formatValue(r, o.Quirks))
		}
	}
	return []byte(b.String())
}

// WriteRequest fills wr with a remote-write batch of n series shaped like a
// Prometheus server's: a metric name, job, instance and about eight more
// labels (10.7 labels on average, as in the reference corpora), one sample
// each, sorted labels.
func WriteRequest(wr *wire.WriteRequest, seed uint64, n int) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	wr.Reset()
	base := int64(1_763_000_000_000)
	for i := 0; i < n; i++ {
		ls := []wire.Label{
			{Name: wire.MetricNameLabel, Value: fmt.Sprintf("node_metric_%d_total", i%200)},
			{Name: "cluster", Value: "prod-eu-1"},
			{Name: "cpu", Value: strconv.Itoa(i % 16)},
			{Name: "device", Value: devices[i%len(devices)]},
			{Name: "env", Value: "production"},
			{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250)},
			{Name: "job", Value: "node"},
			{Name: "mode", Value: modes[i%len(modes)]},
			{Name: "region", Value: "eu-central-1"},
			{Name: "team", Value: "platform"},
		}
		if i%10 < 7 {
			ls = append(ls, wire.Label{Name: "zone", Value: "eu-central-1" + string(rune('a'+i%3))})
		}
		v := math.Round(r.Float64()*1e6) / 100
		wr.AppendSample(wr.AppendLabels(ls...), wire.Sample{Value: v, Timestamp: base + int64(r.IntN(15000))})
	}
}
