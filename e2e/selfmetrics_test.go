package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// TestSelfMetricsServer: with PROMRELAY_SELF_METRICS_INTERVAL the server
// writes its own metrics into the real upstream Prometheus, under
// job="promrelay" and instance=<hostname>:<pid>, and they count the
// requests it served.
func TestSelfMetricsServer(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	s := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL(), "PROMRELAY_SELF_METRICS_INTERVAL": "1s"})
	for i := 0; i < 3; i++ {
		if code, body, _ := do(t, "PUT", s.URL+"/metrics/job/selfmetrics", "", []byte("m 1\n")); code != 200 {
			t.Fatalf("push: %d %s", code, body)
		}
	}
	host, _ := os.Hostname()
	got := prom.WaitFor(t, `promrelay_requests_total{job="promrelay",route="push",code="200"} >= 3`, 1, 15*time.Second)
	if inst := got[0].Metric["instance"]; !strings.HasPrefix(inst, host+":") {
		t.Errorf("instance label %q, want %s:<pid>", inst, host)
	}
	// The Go and process collectors, and the relay's upstream requests,
	// come along.
	prom.WaitFor(t, `go_goroutines{job="promrelay"}`, 1, 5*time.Second)
	prom.WaitFor(t, `promrelay_upstream_requests_total{job="promrelay",status_class="2xx"} > 0`, 1, 5*time.Second)
}

// TestSelfMetricsFunctions: both function binaries, each run as two
// instances against their fake runtime APIs, write their own metrics
// upstream without being asked (the default interval on functions),
// beside an HTTP invocation and after a timer invocation; the instances
// are two series, not a collision.
func TestSelfMetricsFunctions(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	fcBin := binary(t, "fc")
	lambdaBin := binary(t, "lambda", "lambda.norpc")
	for _, inst := range []string{"fc-a", "fc-b"} {
		rt := fcRuntime(t)
		startFunction(t, fcBin, "FC_RUNTIME_API="+testpeer.Host(rt.srv.URL), "PROMRELAY_UPSTREAM_URL="+prom.RemoteWriteURL(),
			"PROMRELAY_INBOUND_AUTH=none", "FC_INSTANCE_ID="+inst, "PROMRELAY_SELF_METRICS_INTERVAL=") // the default
		// The first write starts beside the first request; the timer
		// invocation writes again after its job (interval 1s here) and
		// waits for it.
		if hr := decodeResult(t, rt.invoke(t, fcHTTPEvent("PUT", "/metrics/job/self_fc", "", []byte("m 1\n"), false))); hr.StatusCode != 200 {
			t.Fatalf("push: %+v", hr)
		}
		prom.WaitFor(t, `promrelay_memory_budget_bytes{job="promrelay",instance="`+inst+`"}`, 1, 15*time.Second)
	}
	for _, inst := range []string{"2026/12/03/[$LATEST]aaaa", "2026/12/03/[$LATEST]bbbb"} {
		rt := lambdaRuntime(t)
		startFunction(t, lambdaBin, "AWS_LAMBDA_RUNTIME_API="+testpeer.Host(rt.srv.URL), "PROMRELAY_UPSTREAM_URL="+prom.RemoteWriteURL(),
			"AWS_LAMBDA_FUNCTION_NAME=promrelay", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "PROMRELAY_INBOUND_AUTH=none",
			"AWS_LAMBDA_LOG_STREAM_NAME="+inst, "PROMRELAY_SELF_METRICS_INTERVAL=1s")
		if hr := decodeResult(t, rt.invoke(t, lambdaURLEvent("PUT", "/metrics/job/self_lambda", "", []byte("m 1\n"), false))); hr.StatusCode != 200 {
			t.Fatalf("push: %+v", hr)
		}
		time.Sleep(1100 * time.Millisecond)
		// The schedule's invocation writes the metrics that count the
		// push, and answers only after the write.
		r := rt.invoke(t, map[string]any{"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
			"source": "aws.events", "account": "123456789012", "time": "2026-12-03T17:00:00Z", "region": "eu-west-1",
			"resources": []string{"arn:aws:events:eu-west-1:123456789012:rule/promrelay-reemit"}, "detail": map[string]any{}})
		if r.kind != "response" {
			t.Fatalf("schedule: %s %s", r.kind, r.body)
		}
		got := prom.Query(t, `promrelay_requests_total{job="promrelay",instance="`+inst+`",route="push",code="200"}`)
		if len(got) != 1 || got[0].Value != 1 {
			t.Errorf("instance %s: promrelay_requests_total{route=push,code=200} = %v right after the schedule's invocation, want 1", inst, got)
		}
	}
	got := prom.WaitFor(t, `count by (instance) (promrelay_memory_budget_bytes{job="promrelay"})`, 4, 10*time.Second)
	if len(got) != 4 {
		t.Errorf("%d instances wrote their metrics, want 4: %v", len(got), got)
	}
}
