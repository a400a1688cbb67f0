package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// hugeFront passes requests to prom, except the query "huge", answered
// with n bytes of JSON: bigger than a buffered platform can return.
func hugeFront(t *testing.T, prom *testpeer.Prometheus, n int) *httptest.Server {
	target, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("query") == "huge" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`)
			chunk := strings.Repeat(`{"metric":{"i":"x"},"value":[1,"1"]},`, 1000)
			for sent := 0; sent < n; sent += len(chunk) {
				io.WriteString(w, chunk)
			}
			io.WriteString(w, `{}]}}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestReadBinaries drives the real read entry points (functions/lambda-read,
// functions/fc-read) through their fake runtime APIs: PromQL queries as
// Function URL and HTTP-trigger events, a tenant's enforcement, remote read
// with its binary answer base64-encoded, no write route, and the 502 that
// names the platform's response limit.
func TestReadBinaries(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	now := seedReadData(t, prom)
	front := hugeFront(t, prom, 7<<20)
	tenants := filepath.Join(t.TempDir(), "tenants.yml")
	if err := os.WriteFile(tenants, []byte(readTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"PROMRELAY_QUERY_URL=" + front.URL, "PROMRELAY_REMOTE_READ_URL=" + prom.URL + "/api/v1/read",
		"PROMRELAY_INBOUND_AUTH=bearer", "PROMRELAY_INBOUND_READ_TOKENS=tok-all", "PROMRELAY_TENANTS_FILE=" + tenants}
	ts := strconv.FormatInt(now.Unix(), 10)
	query := url.Values{"query": {`count by (tenant_userid) (read_metric)`}, "time": {ts}}
	direct := func(q string) any {
		s, b := apiCall(t, "GET", prom.URL, "/api/v1/query", url.Values{"query": {q}, "time": {ts}}, "")
		return apiData(t, s, b)
	}
	readBody := readRequest(t, now.Add(-10*time.Minute), now.Add(time.Second), []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES},
		&prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "read_metric"})
	_, wantRead, _ := postRead(t, prom.URL+"/api/v1/read", readBody, "")

	for _, fn := range []struct {
		name, runtimeEnv, limit string
		rt                      func(testing.TB) *fakeRuntime
		event                   func(method, path, rawQuery, token, contentType string, body []byte, b64 bool) map[string]any
	}{
		{"lambda-read", "AWS_LAMBDA_RUNTIME_API", "Lambda's response limit of 6225920 bytes", lambdaRuntime,
			func(method, path, rawQuery, token, contentType string, body []byte, b64 bool) map[string]any {
				ev := lambdaURLEvent(method, path, contentType, body, b64)
				ev["rawQueryString"] = rawQuery
				if token != "" {
					ev["headers"].(map[string]string)["authorization"] = "Bearer " + token
				}
				ev["headers"].(map[string]string)["content-encoding"] = "snappy"
				return ev
			}},
		{"fc-read", "FC_RUNTIME_API", "Function Compute's response limit of 16711680 bytes", fcRuntime,
			func(method, path, rawQuery, token, contentType string, body []byte, b64 bool) map[string]any {
				ev := fcHTTPEvent(method, path, contentType, body, b64)
				q, _ := url.ParseQuery(rawQuery)
				params := map[string]string{}
				for k := range q {
					params[k] = q.Get(k)
				}
				ev["queryParameters"] = params
				if token != "" {
					ev["headers"].(map[string]string)["Authorization"] = "Bearer " + token
				}
				ev["headers"].(map[string]string)["Content-Encoding"] = "snappy"
				return ev
			}},
	} {
		t.Run(fn.name, func(t *testing.T) {
			rt := fn.rt(t)
			bin := binary(t, fn.name, "lambda.norpc")
			startFunction(t, bin, append([]string{fn.runtimeEnv + "=" + testpeer.Host(rt.srv.URL)}, common...)...)
			invoke := func(method, path, rawQuery, token, contentType string, body []byte, b64 bool) httpResult {
				return decodeResult(t, rt.invoke(t, fn.event(method, path, rawQuery, token, contentType, body, b64)))
			}
			// A tenant-less reader sees both tenants, as directly.
			hr := invoke("GET", "/api/v1/query", query.Encode(), "tok-all", "", nil, false)
			if got, want := apiData(t, hr.StatusCode, hr.Body), direct(`count by (tenant_userid) (read_metric)`); !reflect.DeepEqual(got, want) {
				t.Errorf("tenant-less: %s", hr.Body)
			}
			// A tenant reader, by POST form, sees its own.
			hr = invoke("POST", "/api/v1/query", "", "tok-a", "application/x-www-form-urlencoded", []byte(query.Encode()), false)
			if got, want := apiData(t, hr.StatusCode, hr.Body), direct(`count by (tenant_userid) (read_metric{tenant_userid="1001"})`); !reflect.DeepEqual(got, want) {
				t.Errorf("tenant a: %s", hr.Body)
			}
			// Remote read: the binary answer comes back base64-encoded.
			hr = invoke("POST", "/api/v1/read", "", "tok-all", "application/x-protobuf", readBody, true)
			got, _ := base64.StdEncoding.DecodeString(hr.Body)
			if hr.StatusCode != 200 || !hr.IsBase64Encoded || string(got) != string(wantRead) {
				t.Errorf("remote read: %d base64 %v, %d bytes, want %d", hr.StatusCode, hr.IsBase64Encoded, len(got), len(wantRead))
			}
			// No write route in a read entry point.
			if hr = invoke("POST", "/api/v1/write", "", "tok-all", "application/x-protobuf", nil, false); hr.StatusCode != 404 {
				t.Errorf("write route: %d", hr.StatusCode)
			}
			// An answer over the platform's limit is a 502 that names it.
			hr = invoke("GET", "/api/v1/query", url.Values{"query": {"huge"}}.Encode(), "tok-all", "", nil, false)
			if fn.name == "lambda-read" && (hr.StatusCode != 502 || !strings.Contains(hr.Body, fn.limit)) {
				t.Errorf("huge answer: %d %s", hr.StatusCode, tail(hr.Body, 300))
			}
			if fn.name == "fc-read" && hr.StatusCode != 200 {
				// 7 MiB is within Function Compute's 16 MB.
				t.Errorf("7 MiB answer on Function Compute: %d %s", hr.StatusCode, tail(hr.Body, 300))
			}
		})
	}
	t.Run("start-up refusals", func(t *testing.T) {
		for _, c := range []struct{ bin, env, want string }{
			{"lambda-read", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "PROMRELAY_QUERY_URL or PROMRELAY_REMOTE_READ_URL is required"},
			{"lambda", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "serves writes only"},
		} {
			cmd, logs := startFunction(t, binary(t, c.bin, "lambda.norpc"), c.env, "PROMRELAY_INBOUND_AUTH=none",
				"PROMRELAY_UPSTREAM_URL=http://127.0.0.1:1/api/v1/write", fmt.Sprintf("PROMRELAY_QUERY_URL=%s", map[bool]string{true: "", false: "http://127.0.0.1:1"}[c.bin == "lambda-read"]))
			if err := cmd.Wait(); err == nil || !strings.Contains(logs.String(), c.want) {
				t.Errorf("%s: exit %v, log %q", c.bin, err, logs.String())
			}
		}
	})
}
