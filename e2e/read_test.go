package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/wire"
)

// readTenants is the tenants file of the read tests: team-a reads and
// writes, team-b only reads, writer only writes (the default).
const readTenants = `
tenants:
  - name: team-a
    labels: {tenant_userid: "1001"}
    scopes: [read, write]
  - name: team-b
    labels: {tenant_userid: "1002"}
    scopes: [read]
  - name: writer
    labels: {tenant_userid: "1003"}
tokens:
  tok-a: team-a
  tok-b: team-b
  tok-w: writer
`

// hard is a label value full of the characters naive SigV4 signers and
// query-string encoders get wrong.
const hard = `a{b}"c" +*!(),d e/&=?%`

// seedReadData writes the read tests' series straight into prom: two
// tenants' series, one series without a tenant, and one exemplar; samples
// every 15 s over the last 5 minutes. It returns the time of the last
// sample.
func seedReadData(t *testing.T, prom *testpeer.Prometheus) time.Time {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	samples := func(base float64) []wire.Sample {
		var s []wire.Sample
		for i := 20; i >= 0; i-- {
			s = append(s, wire.Sample{Value: base + float64(20-i), Timestamp: now.Add(-time.Duration(i) * 15 * time.Second).UnixMilli()})
		}
		return s
	}
	ex, err := (&prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: "abc123"}}, Value: 7, Timestamp: now.UnixMilli()}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	series := []wire.Series{
		{Labels: lbls("__name__", "read_metric", "job", "a", "path", "/x", "tenant_userid", "1001"), Samples: samples(1), Exemplars: [][]byte{ex}},
		{Labels: lbls("__name__", "read_metric", "job", "a", "path", hard, "tenant_userid", "1001"), Samples: samples(2)},
		{Labels: lbls("__name__", "read_metric", "job", "b", "only_b", "yes", "path", "/x", "tenant_userid", "1002"), Samples: samples(10)},
		{Labels: lbls("__name__", "other_metric", "job", "a", "tenant_userid", "1001"), Samples: samples(100)},
		{Labels: lbls("__name__", "other_metric", "job", "b", "tenant_userid", "1002"), Samples: samples(200)},
		{Labels: lbls("__name__", "untenanted_metric", "job", "c"), Samples: samples(1000)},
	}
	if status, msg, _ := postRemoteWrite(t, prom.URL, rwBody(series...), "application/x-protobuf"); status != 204 {
		t.Fatalf("seeding: %d %s", status, msg)
	}
	prom.WaitFor(t, `count({__name__=~"read_metric|other_metric|untenanted_metric"}) == 6`, 1, 10*time.Second)
	return now
}

// apiCall sends one PromQL API request with params, as a GET query string
// or a POST form, with a bearer token ("" for none).
func apiCall(t *testing.T, method, base, path string, params url.Values, token string) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, base+path, strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, base+path+"?"+params.Encode(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiData returns the data of a successful API answer, decoded; series
// and label lists are sorted so that answers compare as sets.
func apiData(t *testing.T, status int, body string) any {
	t.Helper()
	var r struct {
		Status string
		Data   any
	}
	if status != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Status != "success" {
		t.Fatalf("answer %d: %s", status, tail(body, 600))
	}
	if list, ok := r.Data.([]any); ok {
		sort.Slice(list, func(i, j int) bool { return fmt.Sprint(list[i]) < fmt.Sprint(list[j]) })
	}
	return r.Data
}

// readEnv is a relay that writes to and reads from the AMP front of prom,
// SigV4-signed, with the read tests' tenants.
func readEnv(t *testing.T, ampURL string) map[string]string {
	dir := t.TempDir()
	tenants := filepath.Join(dir, "tenants.yml")
	if err := os.WriteFile(tenants, []byte(readTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"PROMRELAY_UPSTREAM_URL":        ampURL + "/workspaces/ws-1234/api/v1/remote_write",
		"PROMRELAY_QUERY_URL":           ampURL + "/workspaces/ws-1234",
		"PROMRELAY_REMOTE_READ_URL":     ampURL + "/workspaces/ws-1234/api/v1/read",
		"PROMRELAY_UPSTREAM_AUTH":       "sigv4",
		"PROMRELAY_SIGV4_REGION":        "eu-west-1",
		"PROMRELAY_INBOUND_AUTH":        "bearer",
		"PROMRELAY_INBOUND_TOKENS":      "tok-write",
		"PROMRELAY_INBOUND_READ_TOKENS": "tok-all",
		"PROMRELAY_TENANTS_FILE":        tenants,
		"PROMRELAY_REQUEST_TIMEOUT":     "10s",
	}
}

// sigv4Env sets the process's AWS credentials to ones the AMP front knows.
func sigv4Env(t *testing.T, store *credStore) {
	store.add("AKIDREAD", issuedCreds{secret: "readSecret", token: "readToken", expires: time.Now().Add(time.Hour)})
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDREAD", "AWS_SECRET_ACCESS_KEY": "readSecret", "AWS_SESSION_TOKEN": "readToken",
		"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"} {
		t.Setenv(k, v)
	}
}

// readSetup is the read tests' world: a real Prometheus with the seeded
// series (started with promArgs), the AMP front that verifies SigV4 before
// it, and a relay that writes and reads through the front with the read
// tests' tenants. It returns the time of the last sample.
func readSetup(t *testing.T, promArgs ...string) (*testpeer.Prometheus, *relayProc, *atomic.Int32, time.Time) {
	t.Helper()
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Args: promArgs})
	store := newCredStore()
	sigv4Env(t, store)
	amp, verified, _ := ampUpstream(t, prom, store, "eu-west-1")
	now := seedReadData(t, prom)
	return prom, startRelay(t, readEnv(t, amp.URL)), verified, now
}

// TestReadPathSigV4 queries a real Prometheus behind a front that
// verifies SigV4 as AMP does, through the relay: every endpoint, GET and
// POST, PromQL full of the characters naive signers break on, and returns
// exactly what the same requests return directly.
func TestReadPathSigV4(t *testing.T) {
	needsPeers(t)
	prom, relay, verified, now := readSetup(t, "--enable-feature=exemplar-storage")
	ts := strconv.FormatInt(now.Unix(), 10)
	from := strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)
	queries := []string{
		`read_metric`,
		`read_metric{path="` + strings.ReplaceAll(strings.ReplaceAll(hard, `\`, `\\`), `"`, `\"`) + `"}`,
		`read_metric{path=~"/x|a\\{.*", job!="zz"}`,
		`sum by (job) (rate(read_metric{job=~"a|b"}[1m])) * 2 + 1`,
		`count({__name__=~"read_.+"}) or vector(0)`,
		`max_over_time(read_metric[5m:30s]) > bool 0`,
		`label_replace(other_metric, "dst", "$1", "job", "(.*)")`,
		`!!!not promql(`,
	}
	cases := []struct {
		path   string
		params url.Values
		get    bool // GET only
	}{
		{path: "/api/v1/status/buildinfo", get: true},
		{path: "/api/v1/series", params: url.Values{"match[]": {`read_metric{job="a"}`, `{__name__=~"other_.+"}`}, "start": {from}, "end": {ts}}},
		{path: "/api/v1/labels", params: url.Values{"start": {from}, "end": {ts}}},
		{path: "/api/v1/labels", params: url.Values{"match[]": {`read_metric`}, "start": {from}, "end": {ts}}},
		{path: "/api/v1/label/path/values", params: url.Values{"start": {from}, "end": {ts}}, get: true},
		{path: "/api/v1/metadata", get: true},
		{path: "/api/v1/query_exemplars", params: url.Values{"query": {`read_metric{job="a"}`}, "start": {from}, "end": {strconv.FormatInt(now.Unix()+1, 10)}}},
	}
	for _, q := range queries {
		cases = append(cases,
			struct {
				path   string
				params url.Values
				get    bool
			}{path: "/api/v1/query", params: url.Values{"query": {q}, "time": {ts}}},
			struct {
				path   string
				params url.Values
				get    bool
			}{path: "/api/v1/query_range", params: url.Values{"query": {q}, "start": {from}, "end": {ts}, "step": {"30"}}})
	}
	before := verified.Load()
	for _, c := range cases {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if method == http.MethodPost && c.get {
				continue
			}
			t.Run(method+" "+c.path+" "+c.params.Get("query"), func(t *testing.T) {
				rs, rb := apiCall(t, method, relay.URL, c.path, c.params, "tok-all")
				if c.path == "/api/v1/status/buildinfo" {
					if got := apiData(t, rs, rb).(map[string]any)["version"]; got != "2.42.0" {
						t.Errorf("buildinfo version %v", got)
					}
					return
				}
				ds, db := apiCall(t, method, prom.URL, c.path, c.params, "")
				if ds != 200 {
					// The upstream's own error answer passes through.
					if rs != ds || rb != db {
						t.Errorf("relay %d %s\ndirect %d %s", rs, rb, ds, db)
					}
					return
				}
				if got, want := apiData(t, rs, rb), apiData(t, ds, db); !reflect.DeepEqual(got, want) {
					t.Errorf("relay and direct differ:\nrelay  %s\ndirect %s", tail(rb, 800), tail(db, 800))
				}
			})
		}
	}
	if n := verified.Load() - before; n < int32(len(cases)) {
		t.Errorf("%d signatures verified by the AMP front, want at least %d", n, len(cases))
	}
	if strings.Contains(relay.Logs.String(), "tok-") {
		t.Error("a token appears in the relay's log")
	}
}

// TestReadTenantEnforcement proves a tenant reader sees its own series
// only, however the query is written: each query through the relay
// returns what the query with the tenant's matcher written in by hand
// returns directly.
func TestReadTenantEnforcement(t *testing.T) {
	needsPeers(t)
	prom, relay, _, now := readSetup(t, "--enable-feature=exemplar-storage")
	ts := strconv.FormatInt(now.Unix(), 10)
	from := strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)
	const a = `tenant_userid="1001"`
	for _, c := range []struct{ query, direct string }{
		{`read_metric`, `read_metric{` + a + `}`},
		{`{__name__=~".+"}`, `{__name__=~".+",` + a + `}`},
		{`read_metric{tenant_userid="1002"}`, `read_metric{` + a + `}`},
		{`read_metric{tenant_userid=~".*"}`, `read_metric{` + a + `}`},
		{`read_metric{tenant_userid!="1001"}`, `read_metric{` + a + `}`},
		{`count(read_metric{job=~"a|b"})`, `count(read_metric{job=~"a|b",` + a + `})`},
		{`sum(read_metric) + on() sum(other_metric)`, `sum(read_metric{` + a + `}) + on() sum(other_metric{` + a + `})`},
		{`read_metric or untenanted_metric`, `read_metric{` + a + `} or untenanted_metric{` + a + `}`},
		{`max_over_time(rate(read_metric[1m])[5m:30s])`, `max_over_time(rate(read_metric{` + a + `}[1m])[5m:30s])`},
		{`count(label_replace(other_metric, "tenant_userid", "1002", "job", ".*"))`, `count(label_replace(other_metric{` + a + `}, "tenant_userid", "1002", "job", ".*"))`},
		{`read_metric offset 1m`, `read_metric{` + a + `} offset 1m`},
		{`count by (tenant_userid) ({__name__=~"read_metric|other_metric"})`, `count by (tenant_userid) ({__name__=~"read_metric|other_metric",` + a + `})`},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(method+" "+c.query, func(t *testing.T) {
				rs, rb := apiCall(t, method, relay.URL, "/api/v1/query", url.Values{"query": {c.query}, "time": {ts}}, "tok-a")
				ds, db := apiCall(t, method, prom.URL, "/api/v1/query", url.Values{"query": {c.direct}, "time": {ts}}, "")
				if got, want := apiData(t, rs, rb), apiData(t, ds, db); !reflect.DeepEqual(got, want) {
					t.Errorf("tenant reader got\n%s\nwant\n%s", tail(rb, 800), tail(db, 800))
				}
				if strings.Contains(rb, `"1002"`) {
					t.Errorf("another tenant's series leaked: %s", tail(rb, 800))
				}
			})
		}
	}
	t.Run("range, exemplars, labels, URL and form together", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			params       url.Values
			urlQuery     string // sent in the URL besides a POST form
			direct       url.Values
		}{
			{"GET", "/api/v1/query_range", url.Values{"query": {`sum(read_metric)`}, "start": {from}, "end": {ts}, "step": {"30"}},
				"", url.Values{"query": {`sum(read_metric{` + a + `})`}, "start": {from}, "end": {ts}, "step": {"30"}}},
			{"POST", "/api/v1/query_exemplars", url.Values{"query": {`{__name__=~"read_.*"}`}, "start": {from}, "end": {strconv.FormatInt(now.Unix()+1, 10)}},
				"", url.Values{"query": {`{__name__=~"read_.*",` + a + `}`}, "start": {from}, "end": {strconv.FormatInt(now.Unix()+1, 10)}}},
			{"POST", "/api/v1/labels", url.Values{"match[]": {`{__name__=~".+"}`}, "start": {from}, "end": {ts}},
				"", url.Values{"match[]": {`{__name__=~".+",` + a + `}`}, "start": {from}, "end": {ts}}},
			{"POST", "/api/v1/series", url.Values{"start": {from}, "end": {ts}},
				"match[]=" + url.QueryEscape(`{job=~".+"}`), url.Values{"match[]": {`{job=~".+",` + a + `}`}, "start": {from}, "end": {ts}}},
		} {
			path := c.path
			if c.urlQuery != "" {
				path += "?" + c.urlQuery
			}
			rs, rb := apiCall(t, c.method, relay.URL, path, c.params, "tok-a")
			ds, db := apiCall(t, "GET", prom.URL, c.path, c.direct, "")
			if got, want := apiData(t, rs, rb), apiData(t, ds, db); !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: tenant reader got\n%s\nwant\n%s", c.method, path, tail(rb, 600), tail(db, 600))
			}
			if strings.Contains(rb, `"tenant_userid":"1002"`) || strings.Contains(rb, `"only_b"`) {
				t.Errorf("%s %s: another tenant's series leaked: %s", c.method, path, tail(rb, 600))
			}
		}
	})
	t.Run("match[] absent and present", func(t *testing.T) {
		rs, rb := apiCall(t, http.MethodGet, relay.URL, "/api/v1/labels", url.Values{"start": {from}, "end": {ts}}, "tok-a")
		if labels := apiData(t, rs, rb).([]any); strings.Contains(fmt.Sprint(labels), "only_b") || !strings.Contains(fmt.Sprint(labels), "path") {
			t.Errorf("labels of tenant a: %v", labels)
		}
		rs, rb = apiCall(t, http.MethodGet, relay.URL, "/api/v1/label/tenant_userid/values", url.Values{"start": {from}, "end": {ts}}, "tok-a")
		if got := fmt.Sprint(apiData(t, rs, rb)); got != "[1001]" {
			t.Errorf("tenant a sees tenant_userid values %s", got)
		}
		rs, rb = apiCall(t, http.MethodPost, relay.URL, "/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`, `read_metric{tenant_userid="1002"}`}, "start": {from}, "end": {ts}}, "tok-a")
		for _, s := range apiData(t, rs, rb).([]any) {
			if s.(map[string]any)["tenant_userid"] != "1001" {
				t.Errorf("series of another tenant: %v", s)
			}
		}
		// A tenant-less reader sees both tenants.
		rs, rb = apiCall(t, http.MethodGet, relay.URL, "/api/v1/label/tenant_userid/values", url.Values{"start": {from}, "end": {ts}}, "tok-all")
		if got := fmt.Sprint(apiData(t, rs, rb)); got != "[1001 1002]" {
			t.Errorf("tenant-less reader sees %s", got)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			method, path, query, token string
			want                       int
			msg                        string
		}{
			{"GET", "/api/v1/metadata", "", "tok-a", 403, "cannot be limited to a tenant"},
			{"GET", "/api/v1/query", "sum(", "tok-a", 400, "invalid PromQL"},
			{"POST", "/api/v1/query?query=up", "up", "tok-a", 400, "more than one query parameter"},
			{"GET", "/api/v1/label/%2e%2e/values", "", "tok-a", 400, "invalid label name"},
			{"GET", "/api/v1/label/..%2F..%2Fws-2%2Fapi%2Fv1%2Flabel%2Fjob/values", "", "tok-all", 400, "invalid label name"},
			{"GET", "/api/v1/query", strings.Repeat("-", 3000) + "up", "tok-a", 400, "more than 2048 tokens"},
			{"GET", "/api/v1/query", "up", "tok-w", 403, "read scope"},
			{"GET", "/api/v1/query", "up", "tok-write", 403, "read scope"},
			{"POST", "/api/v1/query", "up", "", 401, "unauthorized"},
			{"GET", "/api/v1/query", "up", "nope", 401, "unauthorized"},
		} {
			status, body := apiCall(t, c.method, relay.URL, c.path, url.Values{"query": {c.query}}, c.token)
			if status != c.want || !strings.Contains(body, c.msg) {
				t.Errorf("%s %s %q as %q: %d %q, want %d %q", c.method, c.path, c.query, c.token, status, body, c.want, c.msg)
			}
		}
		// A read-only tenant cannot write.
		status, msg, _ := do(t, http.MethodPost, relay.URL+"/api/v1/write", "application/x-protobuf",
			rwBody(wire.Series{Labels: lbls("__name__", "x"), Samples: []wire.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}}),
			"Content-Encoding", "snappy", "Authorization", "Bearer tok-b")
		if status != 403 || !strings.Contains(msg, "write scope") {
			t.Errorf("read-only tenant writing: %d %q", status, msg)
		}
	})
}

// readRequest is a snappy remote-read request for matchers, with the
// accepted response types.
func readRequest(t *testing.T, from, to time.Time, types []prompb.ReadRequest_ResponseType, matchers ...*prompb.LabelMatcher) []byte {
	t.Helper()
	b, err := proto.Marshal(&prompb.ReadRequest{Queries: []*prompb.Query{{StartTimestampMs: from.UnixMilli(), EndTimestampMs: to.UnixMilli(), Matchers: matchers}},
		AcceptedResponseTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func postRead(t *testing.T, url string, body []byte, token string) (int, []byte, http.Header) {
	t.Helper()
	status, b, h := do(t, http.MethodPost, url, "application/x-protobuf", body, append(bearer(token),
		"Content-Encoding", "snappy", "X-Prometheus-Remote-Read-Version", "0.1.0")...)
	return status, []byte(b), h
}

// bearer is the header pair of a bearer token, none for "".
func bearer(token string) []string {
	if token == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + token}
}

// TestRemoteRead points a real Prometheus' remote_read at the relay and
// reads the upstream's raw samples back, as a tenant; and sends both
// response types (sampled, STREAMED_XOR_CHUNKS) directly, comparing the
// relay's bytes with the upstream's own answer.
func TestRemoteRead(t *testing.T) {
	needsPeers(t)
	prom, relay, _, now := readSetup(t)
	from, to := now.Add(-10*time.Minute), now.Add(time.Second)
	name := &prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "read_metric"}
	other := &prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: "tenant_userid", Value: "1002"}
	mine := &prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: "tenant_userid", Value: "1001"}

	for _, types := range [][]prompb.ReadRequest_ResponseType{{prompb.ReadRequest_SAMPLES}, {prompb.ReadRequest_STREAMED_XOR_CHUNKS}} {
		t.Run(types[0].String(), func(t *testing.T) {
			// A tenant-less reader gets the upstream's answer byte for byte.
			status, got, h := postRead(t, relay.URL+"/api/v1/read", readRequest(t, from, to, types, name), "tok-all")
			ds, want, dh := postRead(t, prom.URL+"/api/v1/read", readRequest(t, from, to, types, name), "")
			if status != 200 || ds != 200 || !bytes.Equal(got, want) || h.Get("Content-Type") != dh.Get("Content-Type") {
				t.Fatalf("relay %d %q (%d bytes), direct %d %q (%d bytes)", status, h.Get("Content-Type"), len(got), ds, dh.Get("Content-Type"), len(want))
			}
			// A tenant reader asking for another tenant's series gets its
			// own: the upstream's answer to the enforced request.
			status, got, _ = postRead(t, relay.URL+"/api/v1/read", readRequest(t, from, to, types, name, other), "tok-a")
			_, want, _ = postRead(t, prom.URL+"/api/v1/read", readRequest(t, from, to, types, name, mine), "")
			if status != 200 || !bytes.Equal(got, want) {
				t.Errorf("tenant reader: %d, %d bytes; want the enforced request's %d bytes", status, len(got), len(want))
			}
		})
	}

	t.Run("prometheus remote_read", func(t *testing.T) {
		reader := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Config: fmt.Sprintf(`global:
  scrape_interval: 15s
remote_read:
  - url: %s/api/v1/read
    read_recent: true
    authorization:
      credentials: tok-a
`, relay.URL)})
		got := reader.WaitFor(t, `count_over_time(read_metric[10m])`, 2, 15*time.Second)
		for _, s := range got {
			if s.Metric["tenant_userid"] != "1001" || s.Value != 21 {
				t.Errorf("remote_read through the relay: %v", got)
			}
		}
		if len(got) != 2 {
			t.Errorf("remote_read returned %d series of tenant a, want 2: %v", len(got), got)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		body := readRequest(t, from, to, nil, name)
		if status, b, _ := postRead(t, relay.URL+"/api/v1/read", body, "tok-w"); status != 403 {
			t.Errorf("write-only tenant: %d %s", status, b)
		}
		if status, b, _ := postRead(t, relay.URL+"/api/v1/read", []byte("not snappy"), "tok-a"); status != 400 {
			t.Errorf("garbage: %d %s", status, b)
		}
	})
}

// The AMP front of these tests refuses what AMP refuses: a correctly
// signed request whose query string is not in SigV4's canonical form (an
// unescaped { } ", say). Without this, TestReadPathSigV4 could not fail
// for a relay that sends the query as the client wrote it.
func TestAMPFrontRefusesNonCanonicalQuery(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	store := newCredStore()
	store.add("AKIDREAD", issuedCreds{secret: "readSecret", token: "readToken", expires: time.Now().Add(time.Hour)})
	amp, _, _ := ampUpstream(t, prom, store, "eu-west-1")
	send := func(rawQuery string, canonical bool) int {
		req, _ := http.NewRequest(http.MethodGet, amp.URL+"/workspaces/ws-1/api/v1/query?"+rawQuery, nil)
		req.Header.Set("X-Amz-Security-Token", "readToken")
		sum := sha256.Sum256(nil)
		hash := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", hash)
		if err := v4.NewSigner().SignHTTP(req.Context(), aws.Credentials{AccessKeyID: "AKIDREAD", SecretAccessKey: "readSecret", SessionToken: "readToken"},
			req, hash, "aps", "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		if !canonical {
			req.URL.RawQuery = rawQuery // as a naive signer sends it
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(`query=up{job="x"}`, true); got != 200 {
		t.Errorf("canonical: %d", got)
	}
	if got := send(`query=up{job="x"}`, false); got != 403 {
		t.Errorf("non-canonical query string: %d, want 403", got)
	}
}
