package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/mirror"
)

func serve(t testing.TB, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

func decode(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, w.Body)
	}
	return m
}

func TestNewRequiresSettings(t *testing.T) {
	q := &fakeQuerier{}
	for _, tc := range []struct {
		name string
		o    mirror.Options
	}{
		{"no querier", mirror.Options{APIKey: "k", MaxBodyBytes: 1}},
		{"no api key", mirror.Options{Querier: q, MaxBodyBytes: 1}},
		{"no body limit", mirror.Options{Querier: q, APIKey: "k"}},
	} {
		if _, err := mirror.New(tc.o); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// A body over MaxBodyBytes is answered 413 with the protocol's validation
// error and the API key, and nothing reaches the upstream, whether the
// length is declared or not.
func TestBodyLimit(t *testing.T) {
	q := &fakeQuerier{}
	h, err := mirror.New(mirror.Options{Querier: q, APIKey: testAPIKey, MaxBodyBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"connectionDetails":{"url":"http://prom:9090"},"query":{"conditions":[` + strings.Repeat(" ", 200) + `]}}`
	for _, declared := range []bool{true, false} {
		r := httptest.NewRequest("POST", "/api/metric", strings.NewReader(body))
		if !declared {
			r.ContentLength = -1
			r.Body = readerOnly{strings.NewReader(body)}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		m := decode(t, w)
		if w.Code != http.StatusRequestEntityTooLarge || m["summary"] != "Request validation errors." || w.Header().Get("X-MIRROR-API-KEY") != testAPIKey {
			t.Errorf("declared=%v: %d %v %s", declared, w.Code, w.Header(), w.Body)
		}
		if !strings.Contains(w.Body.String(), "request body too large (limit 100 bytes)") {
			t.Errorf("declared=%v: %s", declared, w.Body)
		}
	}
	if len(q.calls) != 0 {
		t.Errorf("%d upstream calls", len(q.calls))
	}
}

type readerOnly struct{ r *strings.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r readerOnly) Close() error               { return nil }

// Every answer carries X-MIRROR-API-KEY: successes, validation errors,
// upstream errors, refusals, 404 and 405 (the fixtures check it too).
func TestAPIKeyOnEveryResponse(t *testing.T) {
	q := &fakeQuerier{answers: []call{{Refused: "no"}, {Error: "boom"}, {Status: 500, BodyText: ptr("x")}}}
	h := newHandler(t, q)
	req := `{"connectionDetails":{"url":"http://prom:9090"},"query":{"conditions":[{"key":"__gauge__","value":{"value":"up"}}],"startTime":0,"endTime":60000}}`
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/", ""}, {"GET", "/healthcheck", ""}, {"GET", "/nope", ""}, {"PUT", "/api/metric", ""},
		{"POST", "/api/metric", "{"}, {"POST", "/api/metric", "[]"}, {"POST", "/api/metric", req}, {"POST", "/api/metric", req},
		{"POST", "/api/metric", req}, {"POST", "/api/connection", `{"connectionDetails":{"url":"http://prom:9090"}}`},
	} {
		w := serve(t, h, tc.method, tc.path, tc.body)
		if got := w.Header().Get("X-MIRROR-API-KEY"); got != testAPIKey {
			t.Errorf("%s %s %q: X-MIRROR-API-KEY = %q (status %d)", tc.method, tc.path, tc.body, got, w.Code)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// A *RefusedError anywhere in the chain is answered as a refusal, 500 as the protocol answers every failure,
// with the reason; other errors are "Prometheus error.".
func TestRefusedWrapped(t *testing.T) {
	q := querierFunc(func(context.Context, mirror.Connection, string, url.Values) (int, []byte, error) {
		return 0, nil, fmt.Errorf("assume role: %w", &mirror.RefusedError{Reason: "role not allowed"})
	})
	h := newHandler(t, q)
	w := serve(t, h, "POST", "/api/field/name", `{"connectionDetails":{"url":"http://prom:9090"},"query":{}}`)
	m := decode(t, w)
	if w.Code != http.StatusInternalServerError || m["summary"] != "Connection refused by the mirror." || m["details"] != "role not allowed" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if err := (&mirror.RefusedError{Reason: "r"}).Error(); err != "connection refused by the mirror: r" {
		t.Error(err)
	}
}

type querierFunc func(context.Context, mirror.Connection, string, url.Values) (int, []byte, error)

func (f querierFunc) Query(ctx context.Context, c mirror.Connection, e string, p url.Values) (int, []byte, error) {
	return f(ctx, c, e, p)
}

// request_timeout_seconds is the upstream query's time budget, and the
// caller's context bounds it.
func TestRequestTimeout(t *testing.T) {
	var left time.Duration
	q := querierFunc(func(ctx context.Context, _ mirror.Connection, _ string, _ url.Values) (int, []byte, error) {
		dl, _ := ctx.Deadline()
		left = time.Until(dl)
		return 200, []byte(`{"data":[]}`), nil
	})
	h := newHandler(t, q)
	serve(t, h, "POST", "/api/field/name", `{"connectionDetails":{"url":"http://prom:9090","request_timeout_seconds":7},"query":{}}`)
	if left <= 6*time.Second || left > 7*time.Second {
		t.Errorf("budget %v, want 7 s", left)
	}
	serve(t, h, "POST", "/api/field/name", `{"connectionDetails":{"url":"http://prom:9090"},"query":{}}`)
	if left <= 29*time.Second || left > 30*time.Second {
		t.Errorf("default budget %v, want 30 s", left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/field/name",
		strings.NewReader(`{"connectionDetails":{"url":"http://prom:9090","request_timeout_seconds":15000},"query":{}}`)).WithContext(ctx))
	if left > time.Second {
		t.Errorf("budget %v beyond the caller's 1 s", left)
	}
}

// The work of a metric request is bounded before anything is sent: the
// number of conditions, InSetValue members, the PromQL's length.
func TestMetricBounds(t *testing.T) {
	cond := func(k, v string) string {
		return fmt.Sprintf(`{"key":%q,"value":{"value":%s,"_type":"StringValue"}}`, k, v)
	}
	req := func(conds ...string) string {
		return `{"connectionDetails":{"url":"http://prom:9090"},"query":{"conditions":[` + strings.Join(conds, ",") +
			`],"startTime":0,"endTime":60000}}`
	}
	many := []string{cond("__gauge__", `"up"`)}
	for i := range 64 {
		many = append(many, cond(fmt.Sprintf("l%d", i), `"v"`))
	}
	set := make([]string, 1025)
	for i := range set {
		set[i] = fmt.Sprintf("%q", fmt.Sprint(i))
	}
	for _, tc := range []struct{ name, body, msg string }{
		{"conditions", req(many...), "more than 64 conditions"},
		{"set members", req(cond("__gauge__", `"up"`), `{"key":"s","value":{"value":[`+strings.Join(set, ",")+`],"_type":"InSetValue"}}`), "more than 1024 InSetValue members"},
		{"label value", req(cond("__gauge__", `"up"`), cond("l", `"`+strings.Repeat("x", 17<<10)+`"`)), "label value longer than 16384 bytes"},
		{"query length", req(cond("~", `"`+strings.Repeat("x", 65<<10)+`"`)), "query longer than 65536 bytes"},
	} {
		q := &fakeQuerier{}
		h, _ := mirror.New(mirror.Options{Querier: q, APIKey: "k", MaxBodyBytes: 1 << 20})
		w := serve(t, h, "POST", "/api/metric", tc.body)
		if w.Code != 500 || !strings.Contains(w.Body.String(), tc.msg) || !strings.Contains(w.Body.String(), "Request validation errors.") {
			t.Errorf("%s: %d %.300s", tc.name, w.Code, w.Body)
		}
		if len(q.calls) != 0 {
			t.Errorf("%s: sent upstream", tc.name)
		}
	}
}

// Upstream series beyond one are not turned into telemetry: the answer is
// "Too many metrics." however many come back.
func TestManySeriesNotConverted(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for i := range 5000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"instance":"h%d"},"values":[[1,"1"]]}`, i)
	}
	b.WriteString(`]}}`)
	q := &fakeQuerier{answers: []call{{Status: 200, Body: json.RawMessage(b.String())}}}
	h := newHandler(t, q)
	w := serve(t, h, "POST", "/api/metric", `{"connectionDetails":{"url":"http://prom:9090"},"query":{"conditions":[{"key":"__gauge__","value":{"value":"up"}}],"startTime":0,"endTime":60000}}`)
	m := decode(t, w)
	if w.Code != 500 || m["summary"] != "Too many metrics." || m["details"] != "['instance']" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// Connection's String and LogValue leave the AWS secrets out.
func TestConnectionHidesSecrets(t *testing.T) {
	c := mirror.Connection{URL: "https://aps", AWS: &mirror.AWSDetails{RoleARN: "arn:role", AccessKeyID: "AKID", SecretAccessKey: "s3cr3t", SessionToken: "t0ken"}}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "conn", c)
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %s", c, c, c), logged.String()} {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, "t0ken") || !strings.Contains(s, "arn:role") {
			t.Errorf("%s", s)
		}
	}
}

// Secrets in the request body are not echoed in validation errors (FastAPI
// echoes the body).
func TestValidationErrorDoesNotEchoBody(t *testing.T) {
	h := newHandler(t, &fakeQuerier{})
	w := serve(t, h, "POST", "/api/metric", `{"connectionDetails":{"url":"http://prom:9090","aws":{"aws_secret_access_key":"s3cr3t","token_expiry_seconds":1}},"query":{}}`)
	if w.Code != 500 || strings.Contains(w.Body.String(), "s3cr3t") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// A panic below the handler is answered "Internal server error." with the
// API key, and not its text.
func TestPanicAnswered(t *testing.T) {
	q := querierFunc(func(context.Context, mirror.Connection, string, url.Values) (int, []byte, error) {
		panic("secret detail")
	})
	h := newHandler(t, q)
	w := serve(t, h, "POST", "/api/field/name", `{"connectionDetails":{"url":"http://prom:9090"},"query":{}}`)
	if w.Code != 500 || w.Header().Get("X-MIRROR-API-KEY") != testAPIKey || strings.Contains(w.Body.String(), "secret") ||
		!strings.Contains(w.Body.String(), "Internal server error.") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// Keys are compared as encoding/json matches them (escapes decoded, case
// and Unicode folding), so a second "url" cannot hide from the first; an
// object of more than 256 keys is refused. Nothing reaches the upstream.
func TestDuplicateKeys(t *testing.T) {
	var many strings.Builder
	for i := range 257 {
		fmt.Fprintf(&many, `"k%d":1,`, i)
	}
	for _, tc := range []struct{ name, body, msg string }{
		{"escaped", `{"connectionDetails":{"url":"http://prom:9090","\u0075rl":"http://evil"},"query":{}}`, `duplicate key \"url\"`},
		{"kelvin sign", `{"connectionDetails":{"url":"http://prom:9090","aws":{"aws_access_key_id":"a","aws_access_` + "\u212a" + `ey_id":"b"}},"query":{}}`, "duplicate key"},
		{"many keys", `{"connectionDetails":{"url":"http://prom:9090"},"query":{` + many.String() + `"limit":1}}`, "more than 256 keys in an object"},
	} {
		q := &fakeQuerier{}
		h := newHandler(t, q)
		w := serve(t, h, "POST", "/api/field/name", tc.body)
		if w.Code != 500 || !strings.Contains(w.Body.String(), tc.msg) || len(q.calls) != 0 {
			t.Errorf("%s: %d %s (%d calls)", tc.name, w.Code, w.Body, len(q.calls))
		}
	}
}

// A failed request is logged as one event (path, status, summary, time
// taken from Options.Now), without the request's secrets.
func TestFailureLogged(t *testing.T) {
	var logged bytes.Buffer
	now := time.Unix(1700000000, 0)
	h, err := mirror.New(mirror.Options{Querier: &fakeQuerier{answers: []call{{Error: "boom"}}}, APIKey: "k", MaxBodyBytes: 1 << 16,
		Logger: slog.New(slog.NewJSONHandler(&logged, nil)), Now: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, h, "POST", "/api/field/name", `{"connectionDetails":{"url":"http://prom:9090","aws":{"aws_secret_access_key":"s3cr3t","aws_session_token":"t0ken"}},"query":{}}`)
	var ev map[string]any
	if err := json.Unmarshal(logged.Bytes(), &ev); err != nil {
		t.Fatalf("%v: %s", err, logged.String())
	}
	if ev["msg"] != "mirror request failed" || ev["path"] != "/api/field/name" || ev["status"] != 500.0 || ev["answer"] != "Prometheus error." || ev["seconds"] != 1.0 {
		t.Errorf("%s", logged.String())
	}
	if strings.Contains(logged.String(), "s3cr3t") || strings.Contains(logged.String(), "t0ken") {
		t.Errorf("secret logged: %s", logged.String())
	}
}
