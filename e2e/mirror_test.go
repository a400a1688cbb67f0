package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// recordingFront passes requests to target unchanged (the Host header
// too, which SigV4 signs) and keeps the query parameters of each.
type recordingFront struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []url.Values
}

func newRecordingFront(t *testing.T, target string) *recordingFront {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	f := &recordingFront{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.URL.Query())
		f.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *recordingFront) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func (f *recordingFront) last() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return nil
	}
	return f.seen[len(f.seen)-1]
}

const mirrorRole = "arn:aws:iam::123456789012:role/stackstate-reader"

// TestStackStateMirror queries a real Prometheus through the relay's mirror
// routes as StackState does — a connection test, field names and values,
// gauge, counter and ~ metrics, every aggregation — with an assumed role
// (the fake STS) and the AMP front verifying every signature, and checks
// each answer's values against the PromQL the mirror sent, run directly.
func TestStackStateMirror(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	store := newCredStore()
	sts := newFakeAWSSTS(t, store, time.Hour)
	amp, verified, _ := ampUpstream(t, prom, store, "eu-west-1")
	front := newRecordingFront(t, amp.URL)
	now := seedReadData(t, prom)
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDBASE", "AWS_SECRET_ACCESS_KEY": "baseAwsSecret", "AWS_CONFIG_FILE": "/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"} {
		t.Setenv(k, v)
	}
	workspace := front.srv.URL + "/workspaces/ws-1234"
	env := readEnv(t, amp.URL)
	env["PROMRELAY_QUERY_URL"] = workspace
	env["PROMRELAY_MIRROR_API_KEY"] = "mirror-api-key"
	env["PROMRELAY_MIRROR_PATH_TOKEN"] = "path-token-0123456789"
	env["PROMRELAY_MIRROR_ALLOWED_ROLE_ARNS"] = mirrorRole
	env["PROMRELAY_SIGV4_STS_ENDPOINT"] = sts.srv.URL
	relay := startRelay(t, env)
	base := relay.URL + "/stackstate/path-token-0123456789"
	conn := map[string]any{"url": workspace, "request_timeout_seconds": 10,
		"aws": map[string]any{"role_arn": mirrorRole, "external_id": "ext-1", "region_name": "eu-west-1", "token_expiry_seconds": 900}}

	call := func(t *testing.T, path string, body map[string]any, token string) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		status, answer, header := do(t, http.MethodPost, path, "application/json", b, bearer(token)...)
		resp := &http.Response{StatusCode: status, Header: header}
		var out map[string]any
		json.Unmarshal([]byte(answer), &out)
		// The mirror's own answers carry the API key; the relay's 401,
		// 403 and 404 for a caller who never reached it do not give it
		// away.
		if _, ok := out["_type"]; (ok || resp.StatusCode == 200) && resp.Header.Get("X-Mirror-Api-Key") != "mirror-api-key" {
			t.Errorf("%s: mirror answer without X-MIRROR-API-KEY", path)
		}
		if resp.StatusCode == 404 && resp.Header.Get("X-Mirror-Api-Key") != "" {
			t.Errorf("%s: the API key given to a caller without the path token", path)
		}
		return resp.StatusCode, out
	}
	startMs, endMs := now.Add(-5*time.Minute).UnixMilli(), now.UnixMilli()
	metric := func(conds []map[string]any, agg map[string]any) map[string]any {
		q := map[string]any{"conditions": conds, "startTime": startMs, "endTime": endMs, "_type": "MetricsQuery"}
		if agg != nil {
			q["aggregation"] = agg
		}
		return map[string]any{"connectionDetails": conn, "query": q, "_type": "MetricsRequest"}
	}
	cond := func(key string, value any, typ string) map[string]any {
		return map[string]any{"key": key, "value": map[string]any{"value": value, "_type": typ}, "_type": "EqualityCondition"}
	}

	t.Run("connection test", func(t *testing.T) {
		if status, out := call(t, base+"/api/connection", map[string]any{"connectionDetails": conn, "_type": "TestConnectionRequest"}, ""); status != 200 {
			t.Fatalf("%d %v", status, out)
		}
		if sts.calls.Load() != 1 || sts.duration.Load() != "900" {
			t.Errorf("%d STS calls for %v s, want 1 (the role assumed once, for token_expiry_seconds)", sts.calls.Load(), sts.duration.Load())
		}
	})
	t.Run("field names and values", func(t *testing.T) {
		status, out := call(t, base+"/api/field/name", map[string]any{"connectionDetails": conn, "query": map[string]any{"conditions": []any{}, "limit": 50, "_type": "FieldNamesQuery"}, "_type": "FieldNamesRequest"}, "")
		if b, _ := json.Marshal(out); status != 200 || !strings.Contains(string(b), `"__counter__"`) || !strings.Contains(string(b), `"tenant_userid"`) {
			t.Errorf("field names: %d %s", status, b)
		}
		status, out = call(t, base+"/api/field/value", map[string]any{"connectionDetails": conn, "query": map[string]any{"conditions": []any{},
			"field": map[string]any{"fieldName": "job", "fieldType": "STRING", "_type": "FieldDescriptor"}, "prefix": "", "offset": 0, "limit": 50, "_type": "FieldValuesQuery"}, "_type": "FieldValuesRequest"}, "")
		if b, _ := json.Marshal(out); status != 200 || !strings.Contains(string(b), `"a"`) || !strings.Contains(string(b), `"c"`) {
			t.Errorf("field values: %d %s", status, b)
		}
	})

	one := []map[string]any{cond("job", "a", "StringValue"), cond("path", "/x", "StringValue"), cond("tenant_userid", []string{"1001"}, "InSetValue")}
	var latencies []time.Duration
	for _, c := range []struct {
		name string
		key  string
		val  string
		agg  string
	}{
		{"gauge raw", "__gauge__", "read_metric", ""},
		{"counter raw", "__counter__", "read_metric", ""},
		{"promql", "~", `read_metric{job="a",path="/x"} * 2`, ""},
		{"gauge MEAN", "__gauge__", "read_metric", "MEAN"},
		{"gauge PERCENTILE_95", "__gauge__", "read_metric", "PERCENTILE_95"},
		{"gauge MAX", "__gauge__", "read_metric", "MAX"},
		{"gauge MIN", "__gauge__", "read_metric", "MIN"},
		{"gauge SUM", "__gauge__", "read_metric", "SUM"},
		{"gauge EVENT_COUNT", "__gauge__", "read_metric", "EVENT_COUNT"},
		{"counter SUM", "__counter__", "read_metric", "SUM"},
		{"counter MEAN", "__counter__", "read_metric", "MEAN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conds := []map[string]any{cond(c.key, c.val, "StringValue")}
			if c.key != "~" {
				conds = append(conds, one...)
			}
			var agg map[string]any
			if c.agg != "" {
				agg = map[string]any{"method": c.agg, "bucketSizeMillis": 60000, "_type": "Aggregation"}
			}
			start := time.Now()
			status, out := call(t, base+"/api/metric", metric(conds, agg), "")
			latencies = append(latencies, time.Since(start))
			if status != 200 {
				t.Fatalf("%d %v", status, out)
			}
			sent := front.last()
			if sent.Get("query") == "" {
				t.Fatalf("no query reached the upstream")
			}
			// The same PromQL, run directly.
			ds, db := apiCall(t, http.MethodGet, prom.URL, "/api/v1/query_range", sent, "")
			var direct struct {
				Data struct {
					Result []struct{ Values [][2]any }
				}
			}
			if ds != 200 || json.Unmarshal([]byte(db), &direct) != nil || len(direct.Data.Result) != 1 {
				t.Fatalf("direct %q: %d %s", sent.Get("query"), ds, tail(db, 300))
			}
			var want []float64
			window := int64(0)
			if c.agg != "" {
				window = 60000
			}
			for _, p := range direct.Data.Result[0].Values {
				ts, _ := p[0].(float64)
				v, _ := strconv.ParseFloat(p[1].(string), 64)
				if int64(math.Round(ts*1000))+window <= endMs && !math.IsNaN(v) && !math.IsInf(v, 0) {
					want = append(want, v)
				}
			}
			var got []float64
			tel, _ := out["telemetry"].(map[string]any)
			pts, _ := tel["points"].([]any)
			for _, p := range pts {
				got = append(got, p.([]any)[0].(float64))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || len(got) == 0 {
				t.Errorf("%s sent %q:\nmirror %v\ndirect %v", c.name, sent.Get("query"), got, want)
			}
		})
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if len(latencies) > 0 {
		t.Logf("metric requests through the mirror: p50 %v, max %v over %d", latencies[len(latencies)/2], latencies[len(latencies)-1], len(latencies))
	}

	t.Run("a tenant reader's mirror queries are enforced", func(t *testing.T) {
		status, out := call(t, relay.URL+"/stackstate/api/field/value", map[string]any{"connectionDetails": conn, "query": map[string]any{"conditions": []any{},
			"field": map[string]any{"fieldName": "tenant_userid", "fieldType": "STRING", "_type": "FieldDescriptor"}, "prefix": "", "offset": 0, "limit": 50, "_type": "FieldValuesQuery"}, "_type": "FieldValuesRequest"}, "tok-a")
		if b, _ := json.Marshal(out); status != 200 || !strings.Contains(string(b), `"1001"`) || strings.Contains(string(b), `"1002"`) {
			t.Errorf("tenant a's field values: %d %s", status, b)
		}
	})
	t.Run("refusals send nothing upstream", func(t *testing.T) {
		before, stsBefore := front.count(), sts.calls.Load()
		other := map[string]any{"url": "http://169.254.169.254/latest", "request_timeout_seconds": 5}
		badRole := map[string]any{"url": workspace, "aws": map[string]any{"role_arn": "arn:aws:iam::999999999999:role/admin"}}
		for name, c := range map[string]map[string]any{"url not allowed": other, "role not allowed": badRole} {
			status, out := call(t, base+"/api/connection", map[string]any{"connectionDetails": c, "_type": "TestConnectionRequest"}, "")
			if b, _ := json.Marshal(out); status < 400 || !strings.Contains(string(b), "PROMRELAY_MIRROR_ALLOWED") {
				t.Errorf("%s: %d %s", name, status, b)
			}
		}
		for _, path := range []string{relay.URL + "/stackstate/wrong-token-0123456789/api/connection", relay.URL + "/stackstate/api/connection"} {
			if status, _ := call(t, path, map[string]any{"connectionDetails": conn, "_type": "TestConnectionRequest"}, ""); status != 404 {
				t.Errorf("%s: %d, want 404", path, status)
			}
		}
		if status, _ := call(t, relay.URL+"/stackstate/api/connection", map[string]any{"connectionDetails": conn, "_type": "TestConnectionRequest"}, "tok-w"); status != 403 {
			t.Errorf("a write-only token: %d, want 403", status)
		}
		if front.count() != before || sts.calls.Load() != stsBefore {
			t.Errorf("refused requests reached the upstream (%d) or STS (%d)", front.count()-before, sts.calls.Load()-stsBefore)
		}
	})
	if verified.Load() == 0 {
		t.Error("no signature verified by the AMP front")
	}
}
