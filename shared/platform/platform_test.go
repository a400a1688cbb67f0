package platform_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aliyun/fc-runtime-go-sdk/events"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/promrelay/promrelay/shared/platform"
	"github.com/promrelay/promrelay/shared/requestid"
)

// echo answers with what it received, so the tests see the request the
// adapter built.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Add("X-Multi", "a")
	w.Header().Add("X-Multi", "b")
	if r.URL.Path == "/binary" {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte{0xff, 0x00, 0x01})
		return
	}
	fmt.Fprintf(w, "%s %s?%s len=%d body=%q ct=%q accept=%q", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.ContentLength, body,
		r.Header.Get("Content-Type"), r.Header.Get("Accept"))
})

func TestFCHTTPTrigger(t *testing.T) {
	a := &platform.Adapter{Handler: echo, MaxBodyBytes: 100}
	str := func(s string) *string { return &s }
	yes := true
	ev := events.HTTPTriggerEvent{
		RawPath:         str("/metrics/job/a%2Fb"),
		Body:            str(base64.StdEncoding.EncodeToString([]byte{0x00, 0x01, 'x'})),
		IsBase64Encoded: &yes,
		Headers:         &map[string]string{"Content-Type": "application/x-protobuf", "Accept": "a, b"},
		QueryParameters: &map[string]string{"z": "1", "a": "2"},
	}
	m := "PUT"
	ev.TriggerContext.Http.Method = &m
	payload, _ := json.Marshal(ev)
	out, err := a.FC(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.HTTPTriggerResponse)
	want := `PUT /metrics/job/a%2Fb?a=2&z=1 len=3 body="\x00\x01x" ct="application/x-protobuf" accept="a, b"`
	if resp.StatusCode != 200 || resp.Body != want || resp.Headers["x-multi"] != "a, b" {
		t.Fatalf("got %+v\nwant body %s", resp, want)
	}
	// An oversized base64 body is refused before decoding.
	ev.Body = str(strings.Repeat("QUFB", 100))
	payload, _ = json.Marshal(ev)
	out, _ = a.FC(context.Background(), payload)
	if r := out.(events.HTTPTriggerResponse); r.StatusCode != 413 {
		t.Fatalf("oversized body: %+v", r)
	}
	// Binary answers are base64-encoded.
	ev.Body, ev.RawPath = str(""), str("/binary")
	payload, _ = json.Marshal(ev)
	out, _ = a.FC(context.Background(), payload)
	if r := out.(events.HTTPTriggerResponse); !r.IsBase64Encoded || r.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0x01}) {
		t.Fatalf("binary answer: %+v", r)
	}
}

func TestFCTimerAndUnknown(t *testing.T) {
	ran := 0
	a := &platform.Adapter{Handler: echo, MaxBodyBytes: 1 << 20, Scheduled: func(context.Context) error { ran++; return nil }}
	if _, err := a.FC(context.Background(), []byte(`{"triggerTime":"2026-11-21T00:00:00Z","triggerName":"t","payload":""}`)); err != nil || ran != 1 {
		t.Fatalf("timer: %v, ran %d", err, ran)
	}
	if _, err := a.FC(context.Background(), []byte(`{"foo":1}`)); err == nil {
		t.Fatal("unknown event accepted")
	}
	if _, err := a.FC(context.Background(), []byte(`not json`)); err == nil {
		t.Fatal("invalid JSON accepted")
	}
}

func TestLambdaEvents(t *testing.T) {
	a := &platform.Adapter{Handler: echo, MaxBodyBytes: 1 << 20}
	url := lambdaevents.LambdaFunctionURLRequest{Version: "2.0", RawPath: "/api/v1/write", RawQueryString: "x=1",
		Headers: map[string]string{"content-type": "application/x-protobuf"}, Body: base64.StdEncoding.EncodeToString([]byte("snappy")), IsBase64Encoded: true}
	url.RequestContext.HTTP.Method = "POST"
	payload, _ := json.Marshal(url)
	out, err := a.Lambda(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.(lambdaevents.LambdaFunctionURLResponse); r.StatusCode != 200 || !strings.HasPrefix(r.Body, `POST /api/v1/write?x=1 len=6 body="snappy"`) {
		t.Fatalf("function URL: %+v", r)
	}

	alb := lambdaevents.ALBTargetGroupRequest{HTTPMethod: "POST", Path: "/metrics/job/x",
		MultiValueHeaders: map[string][]string{"accept": {"a", "b"}}, MultiValueQueryStringParameters: map[string][]string{"q": {"1", "2"}}, Body: "m 1\n"}
	alb.RequestContext.ELB.TargetGroupArn = "arn:tg"
	payload, _ = json.Marshal(alb)
	out, err = a.Lambda(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	r := out.(lambdaevents.ALBTargetGroupResponse)
	if r.StatusCode != 200 || r.Headers != nil || len(r.MultiValueHeaders["x-multi"]) != 2 || !strings.Contains(r.Body, `?q=1&q=2`) || !strings.Contains(r.Body, `accept="a"`) {
		t.Fatalf("ALB multi-value: %+v", r)
	}
	alb.MultiValueHeaders, alb.MultiValueQueryStringParameters = nil, nil
	alb.Headers = map[string]string{"accept": "a"}
	payload, _ = json.Marshal(alb)
	out, _ = a.Lambda(context.Background(), payload)
	if r := out.(lambdaevents.ALBTargetGroupResponse); r.MultiValueHeaders != nil || r.Headers["x-multi"] != "a, b" {
		t.Fatalf("ALB single-value: %+v", r)
	}

	if _, err := a.Lambda(context.Background(), []byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`)); err != nil {
		t.Fatalf("schedule: %v", err)
	}
	if _, err := a.Lambda(context.Background(), []byte(`{"httpMethod":"GET","path":"/"}`)); err == nil || !strings.Contains(err.Error(), "payload format 1.0") {
		t.Fatalf("API GW v1: %v", err)
	}
}

func TestCustomRuntime(t *testing.T) {
	var reached []string
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.URL.Path)
		if _, ok := fccontext.FromContext(r.Context()); ok {
			t.Error("a caller's x-fc-access-key-* headers chose credentials")
		}
		if r.Header.Get("x-fc-access-key-secret") != "" || r.Header.Get("x-fc-access-key-id") != "" {
			t.Error("credential headers reach the relay")
		}
		if got := requestid.From(r.Context()); got != "req-1" {
			t.Errorf("request id %q, want the x-fc-request-id", got)
		}
	})
	runs := 0
	a := &platform.Adapter{Scheduled: func(context.Context) error { runs++; return nil }, Logger: slog.New(slog.DiscardHandler)}
	const secret = "0123456789abcdef-secret"
	h := a.CustomRuntime(inner, secret)
	req := httptest.NewRequest("POST", "/metrics/job/x", strings.NewReader("m 1\n"))
	req.Header.Set("x-fc-request-id", "req-1")
	req.Header.Set("x-fc-access-key-id", "STS.id")
	req.Header.Set("x-fc-access-key-secret", "secret")
	req.Header.Set("x-fc-security-token", "token")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if len(reached) != 1 {
		t.Fatalf("the relay saw %v", reached)
	}
	invoke := func(body string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/invoke", strings.NewReader(body)))
		return rec.Code
	}
	// Anonymous and wrong-secret invocations run nothing (issue 11: ten
	// anonymous calls were ten re-emissions).
	for _, body := range []string{"", "{}", `{"payload":"guess"}`, `{"payload":"0123456789abcdef-secreT"}`, "not json"} {
		if code := invoke(body); code != http.StatusForbidden {
			t.Errorf("invoke %q: %d, want 403", body, code)
		}
	}
	if runs != 0 {
		t.Fatalf("the job ran %d times without the secret", runs)
	}
	if code := invoke(`{"triggerTime":"2026-12-01T00:00:00Z","triggerName":"reemit","payload":"` + secret + `"}`); code != 200 || runs != 1 {
		t.Fatalf("invoke with the secret: %d, %d runs", code, runs)
	}
	// A failing job's error stays in the log.
	a.Scheduled = func(context.Context) error { return errors.New("upstream https://user:pw@host/?api_key=k said no") }
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/invoke", strings.NewReader(`{"payload":"`+secret+`"}`)))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "api_key") {
		t.Fatalf("failed job: %d %q", rec.Code, rec.Body.String())
	}
	// No secret configured: /invoke never runs the job.
	if rec := httptest.NewRecorder(); true {
		a.CustomRuntime(inner, "").ServeHTTP(rec, httptest.NewRequest("POST", "/invoke", strings.NewReader(`{"payload":""}`)))
		if rec.Code != http.StatusForbidden {
			t.Fatalf("no secret: %d", rec.Code)
		}
	}
}

// TestSelfWrite: an HTTP event starts SelfWrite beside itself, with the
// event's values but not its cancellation, and answers without waiting
// for it; a timer event runs it after the job and waits.
func TestSelfWrite(t *testing.T) {
	started := make(chan context.Context, 1)
	release := make(chan struct{})
	a := &platform.Adapter{Handler: echo, MaxBodyBytes: 1 << 20, Scheduled: func(context.Context) error { return nil },
		SelfWrite: func(ctx context.Context) { started <- ctx; <-release }}
	ctx, cancel := context.WithCancel(requestid.With(context.Background(), "req-7"))
	m := "GET"
	ev := events.HTTPTriggerEvent{RawPath: new(string)}
	*ev.RawPath = "/x"
	ev.TriggerContext.Http.Method = &m
	payload, _ := json.Marshal(ev)
	// The write is still blocked when the event is answered.
	if _, err := a.FC(ctx, payload); err != nil {
		t.Fatal(err)
	}
	cancel()
	wctx := <-started
	if wctx.Err() != nil || requestid.From(wctx) != "req-7" {
		t.Errorf("self-write context: err %v, request id %q; want live, with the event's values", wctx.Err(), requestid.From(wctx))
	}
	close(release)

	wrote := 0
	a.SelfWrite = func(context.Context) { wrote++ }
	if _, err := a.FC(context.Background(), []byte(`{"triggerTime":"2026-12-03T00:00:00Z","triggerName":"t","payload":""}`)); err != nil {
		t.Fatal(err)
	}
	if wrote != 1 {
		t.Errorf("a timer event returned after %d self-writes, want 1 (waited for)", wrote)
	}
}

// TestRefusedEventsAreReported: an event the adapter answers itself (an
// oversized body) is reported to Refused with its status, so that it is
// logged and counted.
func TestRefusedEventsAreReported(t *testing.T) {
	var got []string
	a := &platform.Adapter{Handler: echo, MaxBodyBytes: 10,
		Refused: func(ctx context.Context, method string, status int, msg string) {
			got = append(got, fmt.Sprintf("%s %d %s", method, status, requestid.From(ctx)))
		}}
	ev := map[string]any{"rawPath": "/metrics/job/a", "body": strings.Repeat("x", 11),
		"requestContext": map[string]any{"http": map[string]any{"method": "PUT"}}}
	payload, _ := json.Marshal(ev)
	ctx := fccontext.NewContext(context.Background(), &fccontext.FcContext{RequestID: "req-9"})
	out, err := a.FC(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.(events.HTTPTriggerResponse); r.StatusCode != 413 || len(got) != 1 || got[0] != "PUT 413 req-9" {
		t.Fatalf("answer %d, reported %q", r.StatusCode, got)
	}
}
