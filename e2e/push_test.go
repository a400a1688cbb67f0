package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// TestClientGolangPush drives the relay with the real client_golang push
// client, unchanged, in both formats, and checks with PromQL what arrived.
func TestClientGolangPush(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	relaySrv := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL()})

	for _, format := range []struct {
		name string
		f    expfmt.Format
	}{
		{"text", expfmt.NewFormat(expfmt.TypeTextPlain)},
		{"protobuf", expfmt.NewFormat(expfmt.TypeProtoDelim)},
	} {
		t.Run(format.name, func(t *testing.T) {
			job := "cg_" + format.name
			completion := prometheus.NewGauge(prometheus.GaugeOpts{Name: "db_backup_last_completion_timestamp_seconds", Help: "Last completed backup."})
			completion.Set(1_763_000_000)
			processed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "db_backup_records_total", Help: "Records backed up."}, []string{"table"})
			processed.WithLabelValues("users").Add(120)
			processed.WithLabelValues("orders").Add(7)
			duration := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "db_backup_duration_seconds", Help: "Backup duration.", Buckets: []float64{1, 10, 100}})
			duration.Observe(4)
			duration.Observe(50)
			sizes := prometheus.NewSummary(prometheus.SummaryOpts{Name: "db_backup_size_bytes", Help: "Backup sizes.", Objectives: map[float64]float64{0.5: 0.05}})
			sizes.Observe(1024)

			err := push.New(relaySrv.URL, job).Grouping("instance", "db1").Format(format.f).
				Collector(completion).Collector(processed).Collector(duration).Collector(sizes).Push()
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			got := values(prom.WaitFor(t, fmt.Sprintf(`{job=%q}`, job), 13, 10*time.Second))
			want := map[string]float64{
				fmt.Sprintf(`db_backup_last_completion_timestamp_seconds{instance="db1",job=%q}`, job): 1_763_000_000,
				fmt.Sprintf(`db_backup_records_total{instance="db1",job=%q,table="users"}`, job):       120,
				fmt.Sprintf(`db_backup_records_total{instance="db1",job=%q,table="orders"}`, job):      7,
				fmt.Sprintf(`db_backup_duration_seconds_bucket{instance="db1",job=%q,le="1"}`, job):    0,
				fmt.Sprintf(`db_backup_duration_seconds_bucket{instance="db1",job=%q,le="10"}`, job):   1,
				fmt.Sprintf(`db_backup_duration_seconds_bucket{instance="db1",job=%q,le="100"}`, job):  2,
				fmt.Sprintf(`db_backup_duration_seconds_bucket{instance="db1",job=%q,le="+Inf"}`, job): 2,
				fmt.Sprintf(`db_backup_duration_seconds_sum{instance="db1",job=%q}`, job):              54,
				fmt.Sprintf(`db_backup_duration_seconds_count{instance="db1",job=%q}`, job):            2,
				fmt.Sprintf(`db_backup_size_bytes{instance="db1",job=%q,quantile="0.5"}`, job):         1024,
				fmt.Sprintf(`db_backup_size_bytes_sum{instance="db1",job=%q}`, job):                    1024,
				fmt.Sprintf(`db_backup_size_bytes_count{instance="db1",job=%q}`, job):                  1,
			}
			for k, v := range want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			pt := got[fmt.Sprintf(`push_time_seconds{instance="db1",job=%q}`, job)]
			if now := float64(time.Now().Unix()); pt < now-60 || pt > now+1 {
				t.Errorf("push_time_seconds = %v, want about %v", pt, now)
			}

			// Add (POST) another metric to the group.
			extra := prometheus.NewGauge(prometheus.GaugeOpts{Name: "db_backup_extra", Help: "x"})
			extra.Set(3)
			if err := push.New(relaySrv.URL, job).Grouping("instance", "db1").Format(format.f).Collector(extra).Add(); err != nil {
				t.Fatalf("Add: %v", err)
			}
			prom.WaitFor(t, fmt.Sprintf(`db_backup_extra{job=%q,instance="db1"} == 3`, job), 1, 10*time.Second)

			// Delete answers 202, which the client requires.
			if err := push.New(relaySrv.URL, job).Grouping("instance", "db1").Delete(); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		})
	}
}

// TestRawPushes sends pushes the way the ARMS Pushgateway docs show with
// curl: text bodies, gzip, base64 grouping values, and bad input.
func TestRawPushes(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL()})
	relaySrv, logs := relay, relay.Logs

	status, body, _ := do(t, http.MethodPost, relaySrv.URL+"/metrics/job/curl_demo", "", []byte("some_metric 3.14\n"))
	if status != http.StatusOK {
		t.Fatalf("push: %d %s", status, body)
	}
	prom.WaitFor(t, `some_metric{job="curl_demo"} == 3.14`, 1, 10*time.Second)

	text := "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\",method=\"get\"} 1027\nhttp_requests_total{code=\"400\",method=\"post\"} 3\n"
	status, body, _ = do(t, http.MethodPut, relaySrv.URL+"/metrics/job/curl_put/instance/web-1", "text/plain; version=0.0.4", []byte(text))
	if status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, body)
	}
	prom.WaitFor(t, `http_requests_total{job="curl_put",instance="web-1"}`, 2, 10*time.Second)

	// gzip body
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("gzipped_metric 42\n"))
	zw.Close()
	status, body, _ = do(t, http.MethodPost, relaySrv.URL+"/metrics/job/curl_gzip", "", gz.Bytes(), "Content-Encoding", "gzip")
	if status != http.StatusOK {
		t.Fatalf("gzip push: %d %s", status, body)
	}
	prom.WaitFor(t, `gzipped_metric{job="curl_gzip"} == 42`, 1, 10*time.Second)

	// @base64 grouping: a job and a value with slashes.
	job := base64.RawURLEncoding.EncodeToString([]byte("nightly/backup"))
	path := base64.URLEncoding.EncodeToString([]byte("/var/lib/db"))
	status, body, _ = do(t, http.MethodPost, relaySrv.URL+"/metrics/job@base64/"+job+"/path@base64/"+path, "", []byte("files 9\n"))
	if status != http.StatusOK {
		t.Fatalf("base64 push: %d %s", status, body)
	}
	prom.WaitFor(t, `files{job="nightly/backup",path="/var/lib/db"} == 9`, 1, 10*time.Second)

	// A missing trailing newline is accepted (the Pushgateway rejects it).
	status, body, _ = do(t, http.MethodPost, relaySrv.URL+"/metrics/job/curl_nonl", "", []byte("no_newline 1"))
	if status != http.StatusOK {
		t.Fatalf("push without trailing newline: %d %s", status, body)
	}

	bad := []struct {
		name, method, path, body, wantMsg string
		wantStatus                        int
	}{
		{"syntax", http.MethodPost, "/metrics/job/bad", "bad metric\n", `expected float as value, got "metric"`, 400},
		{"timestamp", http.MethodPost, "/metrics/job/bad", "m 1 1700000000000\n", "must not have timestamps", 400},
		{"duplicate", http.MethodPost, "/metrics/job/bad", "m 1\nm 2\n", "duplicate series", 400},
		{"no job is redirected as the Pushgateway does", http.MethodPost, "/metrics/job/", "m 1\n", "", 307},
		{"odd path", http.MethodPost, "/metrics/job/bad/instance", "m 1\n", "odd number of components", 400},
		{"bad label", http.MethodPost, "/metrics/job/bad/1x/y", "m 1\n", `improper label name "1x"`, 400},
		{"get", http.MethodGet, "/metrics/job/bad", "", "Method Not Allowed", 405},
		{"bad gzip", http.MethodPost, "/metrics/job/bad", "not gzip", "cannot decode gzip body", 400},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.name == "bad gzip" {
				hdr = []string{"Content-Encoding", "gzip"}
			}
			status, body, _ := do(t, tc.method, relaySrv.URL+tc.path, "", []byte(tc.body), hdr...)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantMsg) {
				t.Fatalf("got %d %q, want %d with %q", status, body, tc.wantStatus, tc.wantMsg)
			}
		})
	}
	// The rejected push with a timestamp recorded a push failure time.
	prom.WaitFor(t, `push_failure_time_seconds{job="bad"}`, 1, 10*time.Second)

	// One JSON log line per request, with the documented fields.
	for _, field := range []string{`"route":"push"`, `"status":200`, `"samples_in":1`, `"samples_out":2`, `"upstream_status":204`, `"duration_ms":`, `"bytes_in":`} {
		if !strings.Contains(logs.String(), field) {
			t.Errorf("log lacks %s:\n%s", field, logs.String())
		}
	}
}
