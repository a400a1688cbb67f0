package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// fakeAWSSTS speaks AWS STS AssumeRole (query protocol, XML answers).
type fakeAWSSTS struct {
	srv   *httptest.Server
	calls atomic.Int32
	store *credStore
	ttl   time.Duration
}

func newFakeAWSSTS(t *testing.T, store *credStore, ttl time.Duration) *fakeAWSSTS {
	f := &fakeAWSSTS{store: store, ttl: ttl}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("Action") != "AssumeRole" || !strings.Contains(r.Header.Get("Authorization"), "Credential=AKIDBASE/") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>bad request</Message></Error></ErrorResponse>`)
			return
		}
		n := f.calls.Add(1)
		id := fmt.Sprintf("ASIAFAKE%08d", n)
		c := issuedCreds{secret: fmt.Sprintf("awsSecret%d", n), token: fmt.Sprintf("awsSessionToken%d", n), expires: time.Now().Add(f.ttl)}
		f.store.add(id, c)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><AssumedRoleId>AROAFAKE:%s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/promrelay/%s</Arn></AssumedRoleUser>
    <Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, r.Form.Get("RoleSessionName"), r.Form.Get("RoleSessionName"), id, c.secret, c.token, c.expires.UTC().Format(time.RFC3339), n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// ampUpstream verifies SigV4 as AMP does — it recomputes the signature with
// the SDK's signer over the received bytes — and answers expired or
// unknown credentials as AMP does, before passing the request to the real
// Prometheus.
func ampUpstream(t *testing.T, prom *testpeer.Prometheus, store *credStore, region string) (*httptest.Server, *atomic.Int32, *atomic.Int32) {
	target, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var verified, expired atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		authz := r.Header.Get("Authorization")
		cred := between(authz, "Credential=", "/")
		c, ok := store.get(cred)
		if !ok || r.Header.Get("X-Amz-Security-Token") != c.token {
			w.Header().Set("X-Amzn-Errortype", "UnrecognizedClientException")
			http.Error(w, `{"message":"The security token included in the request is invalid."}`, http.StatusForbidden)
			return
		}
		if time.Now().After(c.expires) || store.expireNext.CompareAndSwap(true, false) {
			expired.Add(1)
			w.Header().Set("X-Amzn-Errortype", "ExpiredTokenException")
			http.Error(w, `{"message":"The security token included in the request is expired"}`, http.StatusForbidden)
			return
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil || r.Header.Get("X-Amz-Content-Sha256") != hash || r.Header.Get("X-Scope-Orgid") != "" {
			http.Error(w, `{"message":"bad signing headers"}`, http.StatusForbidden)
			return
		}
		check, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		check.ContentLength = int64(len(body))
		for _, h := range strings.Split(between(authz, "SignedHeaders=", ","), ";") {
			if h != "host" && h != "content-length" {
				check.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		check.Header.Del("Authorization")
		if err := v4.NewSigner().SignHTTP(r.Context(), aws.Credentials{AccessKeyID: cred, SecretAccessKey: c.secret, SessionToken: c.token},
			check, hash, "aps", region, signedAt); err != nil || check.Header.Get("Authorization") != authz {
			http.Error(w, `{"message":"The request signature we calculated does not match the signature you provided."}`, http.StatusForbidden)
			return
		}
		verified.Add(1)
		store.accept(cred)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.URL.Path = "/api/v1/write" // AMP's /workspaces/<id>/api/v1/remote_write
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &verified, &expired
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// TestSigV4Credentials runs the sigv4 mode, configured as a user would
// (environment variables through config.Load), with an assumed role whose
// credentials live 3 seconds and are refreshed 1 second before expiry.
func TestSigV4Credentials(t *testing.T) {
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
	relaySrv, logs := relayFromEnv(t, env)

	t.Run("concurrent requests across refreshes", func(t *testing.T) {
		start := time.Now()
		for round := 0; round < 5; round++ {
			if bad := pushMany(t, relaySrv.URL, "sigv4_load", 200); len(bad) > 0 {
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
		status, msg, _ := do(t, http.MethodPost, relaySrv.URL+"/api/v1/write", "application/x-protobuf", body, "Content-Encoding", "snappy", "X-Scope-OrgID", "tenant-a")
		if status != 204 {
			t.Fatalf("got %d %q", status, msg)
		}
		got := prom.WaitFor(t, `count({job="sigv4_rw"})`, 1, 10*time.Second)
		if int(got[0].Value) != n {
			t.Errorf("%v series arrived, want %d", got[0].Value, n)
		}
	})

	t.Run("ExpiredTokenException is re-signed once", func(t *testing.T) {
		time.Sleep(20 * time.Millisecond)
		before, verBefore, expBefore := sts.calls.Load(), verified.Load(), expired.Load()
		store.expireNext.Store(true)
		if bad := pushMany(t, relaySrv.URL, "sigv4_expired", 1); len(bad) > 0 {
			t.Fatalf("push failed: %v", bad)
		}
		// One answer said expired, one re-signed request got through, and
		// STS was asked again (once, or twice if the 3-second credentials
		// also reached their refresh window meanwhile).
		// The data request re-signed once, then the push-time gauge.
		if e, v := expired.Load()-expBefore, verified.Load()-verBefore; e != 1 || v != 2 {
			t.Errorf("%d expired answers and %d accepted requests, want 1 and 2", e, v)
		}
		if got := sts.calls.Load() - before; got < 1 || got > 2 {
			t.Errorf("%d STS calls for one expired answer, want 1 (2 with a natural refresh)", got)
		}
	})

	for _, secret := range []string{"baseAwsSecret", "awsSecret1", "awsSessionToken1"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret (%s) appears in the relay's log", secret)
		}
	}
}
