package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/app"
)

// pushMany sends n concurrent pushes and returns the answers that were
// not 200.
func pushMany(t *testing.T, relayURL, job string, n int) []string {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := client.Post(fmt.Sprintf("%s/metrics/job/%s/instance/i%d", relayURL, job, i), "", strings.NewReader("cred_metric 1\n"))
			if err != nil {
				mu.Lock()
				bad = append(bad, err.Error())
				mu.Unlock()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%d %s", resp.StatusCode, b))
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return bad
}

// aliyunEnv are the settings of the aliyun mode with a role assumed
// through the fake STS: 15-minute credentials (STS's minimum), refreshed
// 5 minutes early, so no refresh is due during a test unless an upstream
// answer forces one. (Refreshes across windows in real time are proven
// with SigV4's short-lived credentials in TestSigV4Credentials; the
// shared cache is the same.)
func aliyunEnv(upstreamURL string, sts *fakeAliyunSTS) map[string]string {
	return map[string]string{
		"PROMRELAY_UPSTREAM_URL":                   upstreamURL,
		"PROMRELAY_UPSTREAM_AUTH":                  "aliyun",
		"PROMRELAY_ALIYUN_ROLE_ARN":                "acs:ram::1234567890:role/promrelay",
		"PROMRELAY_ALIYUN_EXTERNAL_ID":             "ext-1",
		"PROMRELAY_ALIYUN_ROLE_DURATION":           "15m",
		"PROMRELAY_ALIYUN_STS_ENDPOINT":            testpeer.Host(sts.srv.URL),
		"PROMRELAY_CREDENTIALS_REFRESH_WINDOW":     "5m",
		"PROMRELAY_CREDENTIALS_MIN_FORCED_REFRESH": "1ms",
		"PROMRELAY_REQUEST_TIMEOUT":                "5s",
	}
}

// TestAliyunCredentials runs the aliyun mode, configured from PROMRELAY_*
// settings, against a fake Alibaba Cloud STS and an upstream that checks
// credentials as ARMS does, in front of a real Prometheus.
func TestAliyunCredentials(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	store := newCredStore()
	sts := newFakeAliyunSTS(t, store, 15*time.Minute, map[string]string{"LTAIbaseKeyId": "", "STS.invocation": "invToken"})
	sts.trustInProcess(t)
	arms := armsUpstream(t, prom.URL, store)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIbaseKeyId")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "baseSecretValue")
	env := aliyunEnv(arms.URL+"/api/v1/write", sts)
	relay := startRelay(t, env)
	var logs []*logBuffer
	logs = append(logs, relay.Logs)

	t.Run("1,000 concurrent requests share one STS call", func(t *testing.T) {
		for round := 0; round < 5; round++ {
			if bad := pushMany(t, relay.URL, "aliyun_load", 200); len(bad) > 0 {
				t.Fatalf("round %d: %d of 200 failed, first: %s", round, len(bad), bad[0])
			}
		}
		if n := sts.calls.Load(); n != 1 {
			t.Fatalf("1,000 requests (200 at once) made %d STS calls, want 1", n)
		}
		prom.WaitFor(t, `count(cred_metric{job="aliyun_load"}) == 200`, 1, 10*time.Second)
	})

	t.Run("expired token mid-flight is re-signed once", func(t *testing.T) {
		before := sts.calls.Load()
		store.expireNext.Store(true)
		if bad := pushMany(t, relay.URL, "aliyun_expired", 1); len(bad) > 0 {
			t.Fatalf("push failed: %v", bad)
		}
		if got := sts.calls.Load() - before; got != 1 {
			t.Errorf("%d STS calls for one expired answer, want 1", got)
		}
	})

	t.Run("STS down is 503 without its details, then success once it is back", func(t *testing.T) {
		sts.down.Store(true)
		fresh := startRelay(t, env)
		logs = append(logs, fresh.Logs)
		status, body, _ := do(t, http.MethodPost, fresh.URL+"/metrics/job/aliyun_down", "", []byte("m 1\n"))
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "cannot obtain upstream credentials") {
			t.Fatalf("got %d %q, want 503 cannot obtain upstream credentials", status, body)
		}
		for _, detail := range []string{"1234567890123456", "req-down", "ServiceUnavailable"} {
			if strings.Contains(body, detail) {
				t.Errorf("the 503 body carries the STS error's %q: %q", detail, body)
			}
		}
		sts.down.Store(false)
		if bad := pushMany(t, fresh.URL, "aliyun_down", 1); len(bad) > 0 {
			t.Fatalf("after STS came back: %v", bad)
		}
	})

	store.add("STS.invocation", issuedCreds{secret: "invSecret", token: "invToken"})
	invocation := func() context.Context {
		return fccontext.NewContext(context.Background(), &fccontext.FcContext{RequestID: "fc-1",
			Credentials: fccontext.Credentials{AccessKeyId: "STS.invocation", AccessKeySecret: "invSecret", SecurityToken: "invToken"}})
	}
	t.Run("without a role, Function Compute's invocation credentials sign", func(t *testing.T) {
		noRole := withEnv(env, "PROMRELAY_ALIYUN_ROLE_ARN", "", "PROMRELAY_ALIYUN_EXTERNAL_ID", "")
		r, err := newRelay(t, app.FunctionCompute, withEnv(noRole, "PROMRELAY_INBOUND_AUTH", "none"))
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, r.Logs)
		before := sts.calls.Load()
		rec := httptest.NewRecorder()
		r.App.Handler.ServeHTTP(rec, httptest.NewRequestWithContext(invocation(), "POST", "/metrics/job/aliyun_fc", strings.NewReader("fc_cred 1\n")))
		// Two upstream requests: the data, then the push-time gauge.
		if rec.Code != 200 || store.accepted("STS.invocation") != 2 {
			t.Fatalf("got %d %s; invocation credentials used %d times", rec.Code, rec.Body, store.accepted("STS.invocation"))
		}
		if sts.calls.Load() != before {
			t.Error("STS was called although no role is configured")
		}
		// Without them, the environment's AccessKey signs, which this fake
		// ARMS does not know: its 401 is a 502 naming the credentials (the
		// sender keeps its data).
		rec = httptest.NewRecorder()
		r.App.Handler.ServeHTTP(rec, httptest.NewRequest("POST", "/metrics/job/aliyun_fc", strings.NewReader("fc_cred 1\n")))
		if rec.Code != 502 || !strings.Contains(rec.Body.String(), "upstream refused the relay's credentials") {
			t.Fatalf("environment credentials: got %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("with a role, it is assumed on top of the invocation credentials", func(t *testing.T) {
		r, err := newRelay(t, app.FunctionCompute, withEnv(env, "PROMRELAY_INBOUND_AUTH", "none"))
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, r.Logs)
		before, invBefore := sts.callsFrom("STS.invocation"), store.accepted("STS.invocation")
		rec := httptest.NewRecorder()
		r.App.Handler.ServeHTTP(rec, httptest.NewRequestWithContext(invocation(), "POST", "/metrics/job/aliyun_fc_role", strings.NewReader("fc_role 1\n")))
		if rec.Code != 200 {
			t.Fatalf("got %d %s", rec.Code, rec.Body)
		}
		if sts.callsFrom("STS.invocation") != before+1 {
			t.Errorf("AssumeRole signed with the invocation's credentials %d times, want 1", sts.callsFrom("STS.invocation")-before)
		}
		if store.accepted("STS.invocation") != invBefore {
			t.Error("the invocation's credentials signed an upstream request: they replaced the configured role")
		}
		prom.WaitFor(t, `fc_role{job="aliyun_fc_role"}`, 1, 10*time.Second)
	})

	for _, l := range logs {
		for _, secret := range []string{"baseSecretValue", "stsSecret1", "stsToken1", "invSecret", "invToken"} {
			if strings.Contains(l.String(), secret) {
				t.Errorf("a secret (%s) appears in the relay's log", secret)
			}
		}
	}
}

// TestFCBinaryAliyunCredentials runs the real functions/fc binary in the
// aliyun mode, with and without a role: without, it signs its upstream
// writes with the per-invocation credentials the runtime API hands it
// (x-fc-access-key-id, -secret, x-fc-security-token); with
// PROMRELAY_ALIYUN_ROLE_ARN, those credentials sign the AssumeRole call
// and the role's credentials sign the writes.
func TestFCBinaryAliyunCredentials(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	store := newCredStore()
	store.add("STS.fake-id", issuedCreds{secret: "fake-secret", token: "fake-token"})
	sts := newFakeAliyunSTS(t, store, 15*time.Minute, map[string]string{"STS.fake-id": "fake-token"})
	arms := armsUpstream(t, prom.URL, store)
	bin := binary(t, "fc")
	for _, tc := range []struct {
		name string
		role bool
	}{{"invocation credentials", false}, {"role on top of the invocation credentials", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fcRuntime(t)
			env := []string{"FC_RUNTIME_API=" + testpeer.Host(rt.srv.URL),
				"PROMRELAY_UPSTREAM_URL=" + arms.URL + "/api/v1/write", "PROMRELAY_UPSTREAM_AUTH=aliyun", "PROMRELAY_INBOUND_AUTH=none",
				// The instance's own environment credentials must never sign.
				"ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIenvKey", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=envSecret"}
			if tc.role {
				env = append(env, "PROMRELAY_ALIYUN_ROLE_ARN=acs:ram::1234567890:role/promrelay",
					"PROMRELAY_ALIYUN_STS_ENDPOINT="+testpeer.Host(sts.srv.URL), "SSL_CERT_FILE="+sts.CertFile)
			}
			_, logs := startFunction(t, bin, env...)
			invBefore, stsBefore := store.accepted("STS.fake-id"), sts.callsFrom("STS.fake-id")
			job := map[bool]string{false: "fc_aliyun", true: "fc_aliyun_role"}[tc.role]
			hr := decodeResult(t, rt.invoke(t, fcHTTPEvent("POST", "/metrics/job/"+job, "", []byte("signed_metric 1\n"), false)))
			if hr.StatusCode != 200 {
				t.Fatalf("push: %+v\n%s", hr, logs.String())
			}
			used := store.accepted("STS.fake-id") - invBefore
			if !tc.role && used != 2 { // the data, then the push-time gauge
				t.Fatalf("the invocation's credentials signed %d upstream requests, want 2", used)
			}
			if tc.role {
				if used != 0 {
					t.Fatalf("the invocation's credentials signed %d upstream requests: they replaced the role", used)
				}
				if n := sts.callsFrom("STS.fake-id") - stsBefore; n != 1 {
					t.Fatalf("%d AssumeRole calls signed with the invocation's credentials, want 1", n)
				}
			}
			prom.WaitFor(t, fmt.Sprintf(`signed_metric{job=%q}`, job), 1, 10*time.Second)
			for _, secret := range []string{"fake-secret", "fake-token", "envSecret", "stsSecret", "stsToken"} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("%s appears in the function's log", secret)
				}
			}
		})
	}
}

// TestSigV4Credentials runs the sigv4 mode, configured as a user would
// (PROMRELAY_* settings), with an assumed role whose credentials live 3
// seconds and are refreshed 1 second before expiry.
func TestSigV4Credentials(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	store := newCredStore()
	sts := newFakeAWSSTS(t, store, 3*time.Second)
	amp, verified, expired := ampUpstream(t, prom, store, "eu-west-1")
	env := map[string]string{
		"PROMRELAY_UPSTREAM_URL":               amp.URL + "/workspaces/ws-1234/api/v1/remote_write",
		"PROMRELAY_UPSTREAM_AUTH":              "sigv4",
		"PROMRELAY_SIGV4_REGION":               "eu-west-1",
		"PROMRELAY_SIGV4_ROLE_ARN":             "arn:aws:iam::123456789012:role/promrelay",
		"PROMRELAY_SIGV4_EXTERNAL_ID":          "ext-1",
		"PROMRELAY_SIGV4_STS_ENDPOINT":         sts.srv.URL,
		"PROMRELAY_CREDENTIALS_REFRESH_WINDOW": "1s",
		"PROMRELAY_REQUEST_TIMEOUT":            "5s",
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDBASE", "AWS_SECRET_ACCESS_KEY": "baseAwsSecret", "AWS_CONFIG_FILE": "/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"} {
		t.Setenv(k, v)
	}
	relay := startRelay(t, env)

	t.Run("concurrent requests across refreshes", func(t *testing.T) {
		start := time.Now()
		for round := 0; round < 5; round++ {
			if bad := pushMany(t, relay.URL, "sigv4_load", 200); len(bad) > 0 {
				t.Fatalf("round %d: %d of 200 failed, first: %s", round, len(bad), bad[0])
			}
			if round == 0 && sts.calls.Load() != 1 {
				t.Fatalf("200 concurrent first requests made %d STS calls, want 1", sts.calls.Load())
			}
			time.Sleep(1200 * time.Millisecond)
		}
		elapsed := time.Since(start)
		// One call per 2 s (3 s credentials, refreshed 1 s early), plus the first.
		want := int32(elapsed/(2*time.Second)) + 1
		if n := sts.calls.Load(); n < 2 || n > want+1 {
			t.Errorf("%d STS calls in %v, want 2..%d", n, elapsed.Round(time.Millisecond), want+1)
		}
		t.Logf("1,000 requests in %v, %d STS calls, %d signatures verified", elapsed.Round(time.Millisecond), sts.calls.Load(), verified.Load())
		prom.WaitFor(t, `count(cred_metric{job="sigv4_load"}) == 200`, 1, 10*time.Second)
	})

	t.Run("remote write batch", func(t *testing.T) {
		body, n := remoteWriteBody(500, "sigv4_rw")
		status, msg, _ := do(t, http.MethodPost, relay.URL+"/api/v1/write", "application/x-protobuf", body, "Content-Encoding", "snappy", "X-Scope-OrgID", "tenant-a")
		if status != 204 {
			t.Fatalf("got %d %q", status, msg)
		}
		got := prom.WaitFor(t, `count({job="sigv4_rw"})`, 1, 10*time.Second)
		if int(got[0].Value) != n {
			t.Errorf("%v series arrived, want %d", got[0].Value, n)
		}
	})

	t.Run("ExpiredTokenException is re-signed once", func(t *testing.T) {
		before, verBefore, expBefore := sts.calls.Load(), verified.Load(), expired.Load()
		store.expireNext.Store(true)
		if bad := pushMany(t, relay.URL, "sigv4_expired", 1); len(bad) > 0 {
			t.Fatalf("push failed: %v", bad)
		}
		// One answer said expired, the data request re-signed got through,
		// then the push-time gauge; STS was asked again (once, or twice if
		// the 3-second credentials also reached their refresh window).
		if e, v := expired.Load()-expBefore, verified.Load()-verBefore; e != 1 || v != 2 {
			t.Errorf("%d expired answers and %d accepted requests, want 1 and 2", e, v)
		}
		if got := sts.calls.Load() - before; got < 1 || got > 2 {
			t.Errorf("%d STS calls for one expired answer, want 1 (2 with a natural refresh)", got)
		}
	})

	for _, secret := range []string{"baseAwsSecret", "awsSecret1", "awsSessionToken1"} {
		if strings.Contains(relay.Logs.String(), secret) {
			t.Errorf("a secret (%s) appears in the relay's log", secret)
		}
	}
}

// TestCallerCannotChooseCredentials sends pushes that carry Function
// Compute's credential headers (x-fc-access-key-id, -secret,
// x-fc-security-token) to the server binary in the aliyun mode, plain and
// as FC's custom runtime: a caller's headers never choose the credentials
// the relay signs with; the instance's own credentials sign.
func TestCallerCannotChooseCredentials(t *testing.T) {
	needsPeers(t)
	store := newCredStore()
	store.add("LTAIenvKey", issuedCreds{secret: "envSecret"})
	store.add("STS.caller", issuedCreds{secret: "callerSecret", token: "callerToken"})
	arms := armsUpstream(t, newFaultProxy(t, "").URL, store)
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{{"plain server", nil}, {"FC custom runtime", map[string]string{"FC_SERVER_PORT": "9000", "PROMRELAY_INBOUND_AUTH": "none", "PROMRELAY_INVOKE_SECRET": "timer-secret-0123456789"}}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, withEnv(tc.env, "PROMRELAY_UPSTREAM_URL", arms.URL+"/api/v1/write", "PROMRELAY_UPSTREAM_AUTH", "aliyun",
				"ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenvKey", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envSecret"))
			env, caller := store.accepted("LTAIenvKey"), store.accepted("STS.caller")
			status, body, _ := do(t, http.MethodPost, srv.URL+"/metrics/job/caller", "", []byte("m 1\n"),
				"x-fc-access-key-id", "STS.caller", "x-fc-access-key-secret", "callerSecret", "x-fc-security-token", "callerToken")
			if status != 200 {
				t.Fatalf("push: %d %s", status, body)
			}
			if n := store.accepted("STS.caller") - caller; n != 0 {
				t.Fatalf("the caller's x-fc-* credentials signed %d upstream requests", n)
			}
			if n := store.accepted("LTAIenvKey") - env; n != 2 {
				t.Fatalf("the instance's credentials signed %d upstream requests, want 2 (the data, then the push-time gauge)", n)
			}
		})
	}
}
