package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
)

func fcHTTPEvent(method, path, contentType string, body []byte, b64 bool) map[string]any {
	bodyStr := string(body)
	if b64 {
		bodyStr = base64.StdEncoding.EncodeToString(body)
	}
	headers := map[string]string{"User-Agent": "curl/8.5.0", "X-Forwarded-Proto": "https"}
	if contentType != "" {
		headers["Content-Type"] = contentType
	}
	return map[string]any{
		"version": "v1", "rawPath": path, "body": bodyStr, "isBase64Encoded": b64,
		"headers": headers, "queryParameters": map[string]string{},
		"requestContext": map[string]any{
			"accountId": "1234567890", "domainName": "promrelay.cn-hangzhou.fcapp.run", "domainPrefix": "promrelay",
			"http":      map[string]string{"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "curl/8.5.0"},
			"requestId": "1-6561d9d4-aaaa", "time": "21/Nov/2026:17:00:00 +0000", "timeEpoch": "1763744400000",
		},
	}
}

type httpResult struct {
	StatusCode        int                 `json:"statusCode"`
	StatusDescription string              `json:"statusDescription"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

func decodeResult(t *testing.T, r result) httpResult {
	t.Helper()
	if r.kind != "response" {
		t.Fatalf("function posted %s: %s", r.kind, r.body)
	}
	var hr httpResult
	if err := json.Unmarshal(r.body, &hr); err != nil {
		t.Fatalf("response is not an HTTP response event: %v: %s", err, r.body)
	}
	return hr
}

// TestFCBinary drives the real functions/fc binary through a fake Function
// Compute runtime API with real-shaped HTTP-trigger and timer events, and
// checks the response events and what arrived in a real Prometheus.
func TestFCBinary(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	rt := fcRuntime(t)
	bin := binary(t, "fc")
	_, logs := startFunction(t, bin, "FC_RUNTIME_API="+testpeer.Host(rt.srv.URL), "PROMRELAY_UPSTREAM_URL="+prom.RemoteWriteURL(), "PROMRELAY_INBOUND_AUTH=none")

	// A text push.
	hr := decodeResult(t, rt.invoke(t, fcHTTPEvent("POST", "/metrics/job/fc_push/instance/fn", "text/plain", []byte("fc_metric 7\n"), false)))
	if hr.StatusCode != 200 {
		t.Fatalf("push: %+v", hr)
	}
	prom.WaitFor(t, `fc_metric{job="fc_push",instance="fn"} == 7`, 1, 10*time.Second)

	// A remote-write batch, base64-encoded as binary bodies arrive.
	body, n := remoteWriteBody(200, "fc_rw")
	hr = decodeResult(t, rt.invoke(t, fcHTTPEvent("POST", "/api/v1/write", "application/x-protobuf", body, true)))
	if hr.StatusCode != 204 {
		t.Fatalf("remote write: %+v", hr)
	}
	got := prom.WaitFor(t, `count({job="fc_rw"})`, 1, 10*time.Second)
	if int(got[0].Value) != n {
		t.Errorf("%v series arrived, want %d", got[0].Value, n)
	}

	// Bad input is a 4xx response event, not a failed invocation.
	hr = decodeResult(t, rt.invoke(t, fcHTTPEvent("POST", "/metrics/job/fc_bad", "", []byte("bad metric\n"), false)))
	if hr.StatusCode != 400 || !strings.Contains(hr.Body, "expected float as value") {
		t.Fatalf("bad push: %+v", hr)
	}
	badB64 := fcHTTPEvent("POST", "/api/v1/write", "", nil, true)
	badB64["body"] = "not base64!"
	hr = decodeResult(t, rt.invoke(t, badB64))
	if hr.StatusCode != 400 || !strings.Contains(hr.Body, "base64") {
		t.Fatalf("bad base64: %+v", hr)
	}

	// A timer event runs the (not yet configured) scheduled job.
	r := rt.invoke(t, map[string]string{"triggerTime": "2026-11-21T17:00:00Z", "triggerName": "reemit", "payload": ""})
	if r.kind != "response" {
		t.Fatalf("timer: %s %s", r.kind, r.body)
	}
	// An unrecognised event fails the invocation with a clear error.
	r = rt.invoke(t, map[string]string{"hello": "world"})
	if r.kind != "error" || !strings.Contains(string(r.body), "unrecognised invocation event") {
		t.Fatalf("unknown event: %s %s", r.kind, r.body)
	}

	// Concurrent invocations (Function Compute runs them in parallel).
	const parallel = 20
	var chans []chan result
	for i := 0; i < parallel; i++ {
		ev, _ := json.Marshal(fcHTTPEvent("PUT", "/metrics/job/fc_par/instance/i"+string(rune('a'+i)), "", []byte("par_metric 1\n"), false))
		_, ch := rt.enqueue(ev, 20*time.Second)
		chans = append(chans, ch)
	}
	for _, ch := range chans {
		if hr := decodeResult(t, <-ch); hr.StatusCode != 200 {
			t.Errorf("parallel push: %+v", hr)
		}
	}
	prom.WaitFor(t, `count(par_metric{job="fc_par"}) == 20`, 1, 10*time.Second)

	for _, want := range []string{`"msg":"no scheduled job configured`, `"request_id":"req-1"`, `"route":"push","status":200`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "fake-secret") {
		t.Error("the per-invocation credentials appear in the log")
	}
}

func lambdaURLEvent(method, path, contentType string, body []byte, b64 bool) map[string]any {
	bodyStr := string(body)
	if b64 {
		bodyStr = base64.StdEncoding.EncodeToString(body)
	}
	headers := map[string]string{"host": "abcdefg.lambda-url.eu-west-1.on.aws", "user-agent": "curl/8.5.0"}
	if contentType != "" {
		headers["content-type"] = contentType
	}
	return map[string]any{
		"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": headers,
		"requestContext": map[string]any{
			"accountId": "anonymous", "apiId": "abcdefg", "domainName": "abcdefg.lambda-url.eu-west-1.on.aws", "domainPrefix": "abcdefg",
			"http":      map[string]string{"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "curl/8.5.0"},
			"requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678", "routeKey": "$default", "stage": "$default", "time": "21/Nov/2026:17:00:00 +0000", "timeEpoch": 1763744400000,
		},
		"body": bodyStr, "isBase64Encoded": b64,
	}
}

// TestLambdaBinary drives the real functions/lambda bootstrap (built with
// -tags lambda.norpc) through a fake Lambda runtime API with Function URL,
// API Gateway v2, ALB and EventBridge events.
func TestLambdaBinary(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	rt := lambdaRuntime(t)
	bin := binary(t, "lambda", "lambda.norpc")
	_, logs := startFunction(t, bin, "AWS_LAMBDA_RUNTIME_API="+testpeer.Host(rt.srv.URL), "PROMRELAY_UPSTREAM_URL="+prom.RemoteWriteURL(),
		"AWS_LAMBDA_FUNCTION_NAME=promrelay", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "PROMRELAY_INBOUND_AUTH=none")

	// Function URL: text push.
	hr := decodeResult(t, rt.invoke(t, lambdaURLEvent("PUT", "/metrics/job/lambda_push", "text/plain", []byte("lambda_metric 3\n"), false)))
	if hr.StatusCode != 200 {
		t.Fatalf("push: %+v", hr)
	}
	prom.WaitFor(t, `lambda_metric{job="lambda_push"} == 3`, 1, 10*time.Second)

	// Function URL: base64 snappy remote write.
	body, n := remoteWriteBody(300, "lambda_rw")
	hr = decodeResult(t, rt.invoke(t, lambdaURLEvent("POST", "/api/v1/write", "application/x-protobuf", body, true)))
	if hr.StatusCode != 204 {
		t.Fatalf("remote write: %+v", hr)
	}
	got := prom.WaitFor(t, `count({job="lambda_rw"})`, 1, 10*time.Second)
	if int(got[0].Value) != n {
		t.Errorf("%v series arrived, want %d", got[0].Value, n)
	}

	// API Gateway HTTP API v2 with a stage in the path is the same shape;
	// without PROMRELAY_PATH_PREFIX the stage path is not a route.
	apigw := lambdaURLEvent("POST", "/prod/metrics/job/apigw", "", []byte("m 1\n"), false)
	apigw["routeKey"] = "POST /{proxy+}"
	hr = decodeResult(t, rt.invoke(t, apigw))
	if hr.StatusCode != 404 {
		t.Fatalf("stage path without prefix: %+v", hr)
	}

	// ALB with multi-value headers: answered with multi-value headers.
	alb := map[string]any{
		"requestContext":                  map[string]any{"elb": map[string]string{"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/promrelay/abc"}},
		"httpMethod":                      "POST",
		"path":                            "/metrics/job/lambda_alb/instance/x",
		"multiValueQueryStringParameters": map[string][]string{},
		"multiValueHeaders":               map[string][]string{"content-type": {"text/plain; version=0.0.4"}, "host": {"alb.example.com"}},
		"body":                            "alb_metric 5\n",
		"isBase64Encoded":                 false,
	}
	hr = decodeResult(t, rt.invoke(t, alb))
	if hr.StatusCode != 200 || hr.StatusDescription != "200 OK" || hr.MultiValueHeaders == nil {
		t.Fatalf("ALB: %+v", hr)
	}
	prom.WaitFor(t, `alb_metric{job="lambda_alb",instance="x"} == 5`, 1, 10*time.Second)
	alb["body"] = "bad metric\n"
	hr = decodeResult(t, rt.invoke(t, alb))
	if hr.StatusCode != 400 || len(hr.MultiValueHeaders["content-type"]) != 1 {
		t.Fatalf("ALB bad input: %+v", hr)
	}

	// EventBridge schedule.
	r := rt.invoke(t, map[string]any{"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
		"source": "aws.events", "account": "123456789012", "time": "2026-11-21T17:00:00Z", "region": "eu-west-1",
		"resources": []string{"arn:aws:events:eu-west-1:123456789012:rule/promrelay-reemit"}, "detail": map[string]any{}})
	if r.kind != "response" {
		t.Fatalf("schedule: %s %s", r.kind, r.body)
	}
	r = rt.invoke(t, map[string]any{"httpMethod": "GET", "path": "/", "resource": "/"})
	if r.kind != "error" || !strings.Contains(string(r.body), "payload format 1.0") {
		t.Fatalf("API Gateway v1 event: %s %s", r.kind, r.body)
	}
	for _, want := range []string{`"msg":"no scheduled job configured`, `"request_id":"req-1"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestFunctionsRefuseBadConfig checks that both entry points stop with
// one clear log line when the configuration is incomplete: no upstream, or
// no inbound authentication mode (a function's trigger URL is public).
func TestFunctionsRefuseBadConfig(t *testing.T) {
	needsPeers(t)
	for _, fn := range []struct{ name, env string }{{"fc", "FC_RUNTIME_API=127.0.0.1:1"}, {"lambda", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1"}} {
		var tags []string
		if fn.name == "lambda" {
			tags = []string{"lambda.norpc"}
		}
		bin := binary(t, fn.name, tags...)
		for _, tc := range []struct {
			env  []string
			want string
		}{
			{[]string{"PROMRELAY_UPSTREAM_URL=", "PROMRELAY_INBOUND_AUTH=none"}, "PROMRELAY_UPSTREAM_URL (-upstream.url) is required"},
			{[]string{"PROMRELAY_UPSTREAM_URL=http://127.0.0.1:1/api/v1/write", "PROMRELAY_INBOUND_AUTH="}, "PROMRELAY_INBOUND_AUTH is required on Function Compute and Lambda"},
			{[]string{"PROMRELAY_UPSTREAM_URL=http://127.0.0.1:1/api/v1/write", "PROMRELAY_INBOUND_AUTH=bearer"}, "bearer mode needs tokens"},
		} {
			cmd, logs := startFunction(t, bin, append([]string{fn.env}, tc.env...)...)
			err := cmd.Wait()
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if err == nil || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("%s %v: exit %v, log %q", fn.name, tc.env, err, logs.String())
			}
		}
	}
}

// BenchmarkColdStart measures, for each function binary, the time from
// exec to the first response posted to the runtime API (a health check
// that is queued before the process starts).
func BenchmarkColdStart(b *testing.B) {
	needsPeers(b)
	for _, fn := range []struct{ name, env string }{{"fc", "FC_RUNTIME_API"}, {"lambda", "AWS_LAMBDA_RUNTIME_API"},
		{"fc-read", "FC_RUNTIME_API"}, {"lambda-read", "AWS_LAMBDA_RUNTIME_API"}} {
		b.Run(fn.name, func(b *testing.B) {
			var tags []string
			if strings.HasPrefix(fn.name, "lambda") {
				tags = []string{"lambda.norpc"}
			}
			isFC := strings.HasPrefix(fn.name, "fc")
			bin := binary(b, fn.name, tags...)
			var total time.Duration
			for b.Loop() {
				var rt *fakeRuntime
				if isFC {
					rt = fcRuntime(b)
				} else {
					rt = lambdaRuntime(b)
				}
				ev, _ := json.Marshal(fcHTTPEvent("GET", "/-/ready", "", nil, false))
				if !isFC {
					ev, _ = json.Marshal(lambdaURLEvent("GET", "/-/ready", "", nil, false))
				}
				_, ch := rt.enqueue(ev, 10*time.Second)
				start := time.Now()
				cmd, _ := startFunction(b, bin, fn.env+"="+testpeer.Host(rt.srv.URL), "PROMRELAY_UPSTREAM_URL=http://127.0.0.1:1/api/v1/write", "PROMRELAY_INBOUND_AUTH=none",
					map[bool]string{true: "PROMRELAY_QUERY_URL=http://127.0.0.1:1"}[strings.HasSuffix(fn.name, "-read")])
				r := <-ch
				total += time.Since(start)
				if r.kind != "response" {
					b.Fatalf("%s %s", r.kind, r.body)
				}
				cmd.Process.Kill()
				cmd.Wait()
				rt.srv.CloseClientConnections()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/coldstart")
		})
	}
}

// TestFCCustomRuntime runs the server binary as Function Compute's custom
// runtime runs it (FC_SERVER_PORT set) with a group store: POST /invoke
// runs the scheduled job only for a timer event whose payload is
// PROMRELAY_INVOKE_SECRET, answers 403 otherwise with a generic body, and
// a caller's x-fc-* credential headers are dropped.
func TestFCCustomRuntime(t *testing.T) {
	needsPeers(t)
	up := newFaultProxy(t, "")
	const secret = "timer-secret-0123456789"
	srv := startServer(t, map[string]string{
		"FC_SERVER_PORT":            "9000",
		"PROMRELAY_INBOUND_AUTH":    "none",
		"PROMRELAY_UPSTREAM_URL":    up.URL + "/api/v1/write",
		"PROMRELAY_STATE_URL":       "file://" + t.TempDir(),
		"PROMRELAY_INVOKE_SECRET":   secret,
		"PROMRELAY_REEMIT_INTERVAL": "1h",
	})
	status, body, _ := do(t, http.MethodPut, srv.URL+"/metrics/job/custom", "", []byte("custom_metric 1\n"),
		"x-fc-access-key-id", "STS.caller", "x-fc-access-key-secret", "callerSecret", "x-fc-security-token", "callerToken")
	if status != 200 {
		t.Fatalf("push: %d %s", status, body)
	}
	pushed := up.requests.Load()
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"no payload", `{"triggerTime":"2026-11-21T17:00:00Z","triggerName":"reemit","payload":""}`, 403},
		{"wrong payload", `{"triggerTime":"2026-11-21T17:00:00Z","triggerName":"reemit","payload":"guess"}`, 403},
		{"not an event", `hello`, 403},
	} {
		status, body, _ := do(t, http.MethodPost, srv.URL+"/invoke", "application/json", []byte(tc.body))
		if status != tc.want || strings.Contains(body, "PROMRELAY") {
			t.Errorf("%s: got %d %q, want %d with a generic body", tc.name, status, body, tc.want)
		}
	}
	if n := up.requests.Load(); n != pushed {
		t.Fatalf("refused invocations re-emitted: the upstream saw %d more requests", n-pushed)
	}
	status, body, _ = do(t, http.MethodPost, srv.URL+"/invoke", "application/json",
		[]byte(`{"triggerTime":"2026-11-21T17:00:00Z","triggerName":"reemit","payload":"`+secret+`"}`))
	if status != 200 {
		t.Fatalf("invoke with the secret: %d %s", status, body)
	}
	if n := up.requests.Load(); n <= pushed {
		t.Fatal("the timer invocation did not re-emit the stored group")
	}
	// The log reaches the test through a pipe, after the answer maybe.
	if !eventually(5*time.Second, func() bool { return strings.Contains(srv.Logs.String(), `"msg":"re-emitted"`) }) {
		t.Errorf("no re-emission logged:\n%s", srv.Logs.String())
	}
	for _, s := range []string{secret, "callerSecret", "callerToken"} {
		if strings.Contains(srv.Logs.String(), s) {
			t.Errorf("%s appears in the log", s)
		}
	}
}
