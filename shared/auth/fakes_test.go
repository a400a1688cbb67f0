package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fakes of this package: cloud STS services that cannot be reached
// from a test, served on 127.0.0.1.

// stsCall is what a fake STS saw of one AssumeRole call.
type stsCall struct {
	SourceKeyID, SourceToken       string // the credentials the call was signed with
	RoleARN, SessionName, External string
	Duration                       string
}

// fakeAliyunSTS speaks Alibaba Cloud STS AssumeRole (RPC style, JSON
// answers) over HTTPS, as credentials-go calls it.
type fakeAliyunSTS struct {
	srv   *httptest.Server
	Host  string // host:port, for AliyunProviderOptions.STSEndpoint
	TTL   time.Duration
	down  atomic.Bool
	mu    sync.Mutex
	calls []stsCall
}

// newFakeAliyunSTS starts the fake. credentials-go clones
// http.DefaultTransport for each STS call, so the fake's certificate is
// trusted there until the test ends: tests using it must not run in
// parallel.
func newFakeAliyunSTS(t *testing.T) *fakeAliyunSTS {
	t.Helper()
	f := &fakeAliyunSTS{TTL: time.Hour}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, `{"Code":"NoPermission","Message":"You are not authorized to do this action. Account 1234567890123456"}`, http.StatusForbidden)
			return
		}
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" || r.Form.Get("Signature") == "" {
			http.Error(w, `{"Code":"InvalidParameter"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, stsCall{SourceKeyID: r.Form.Get("AccessKeyId"), SourceToken: r.Form.Get("SecurityToken"),
			RoleARN: r.Form.Get("RoleArn"), SessionName: r.Form.Get("RoleSessionName"), External: r.Form.Get("ExternalId"),
			Duration: r.Form.Get("DurationSeconds")})
		n := len(f.calls)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{
			"RequestId":       fmt.Sprintf("req-%d", n),
			"AssumedRoleUser": map[string]string{"Arn": r.Form.Get("RoleArn") + "/" + r.Form.Get("RoleSessionName"), "AssumedRoleId": "3456:promrelay"},
			"Credentials": map[string]string{"AccessKeyId": fmt.Sprintf("STS.key%d", n), "AccessKeySecret": fmt.Sprintf("stsSecret%d", n),
				"SecurityToken": fmt.Sprintf("stsToken%d", n), "Expiration": time.Now().Add(f.TTL).UTC().Format("2006-01-02T15:04:05Z")},
		})
	}))
	f.Host = strings.TrimPrefix(f.srv.URL, "https://")
	dt := http.DefaultTransport.(*http.Transport)
	old := dt.TLSClientConfig
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	dt.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(func() { dt.TLSClientConfig = old; f.srv.Close() })
	return f
}

// Calls returns the AssumeRole calls so far.
func (f *fakeAliyunSTS) Calls() []stsCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]stsCall(nil), f.calls...)
}

// fakeAWSSTS speaks AWS STS AssumeRole (query protocol, XML answers) over
// HTTP, as aws-sdk-go-v2's sts client calls it.
type fakeAWSSTS struct {
	srv    *httptest.Server
	URL    string // for SigV4Options.STSEndpoint
	denied atomic.Bool
	mu     sync.Mutex
	calls  []stsCall
}

func newFakeAWSSTS(t *testing.T) *fakeAWSSTS {
	t.Helper()
	f := &fakeAWSSTS{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		if f.denied.Load() {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/relay is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r-denied</RequestId></ErrorResponse>`)
			return
		}
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/sts/aws4_request, ...
		keyID, _, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="), "/")
		f.mu.Lock()
		f.calls = append(f.calls, stsCall{SourceKeyID: keyID, SourceToken: r.Header.Get("X-Amz-Security-Token"),
			RoleARN: r.Form.Get("RoleArn"), SessionName: r.Form.Get("RoleSessionName"), External: r.Form.Get("ExternalId"),
			Duration: r.Form.Get("DurationSeconds")})
		n := len(f.calls)
		f.mu.Unlock()
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAassumed%d</AccessKeyId><SecretAccessKey>assumedSecret%d</SecretAccessKey><SessionToken>assumedToken%d</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA:%s</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>r-%d</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			n, n, n, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), r.Form.Get("RoleArn"), r.Form.Get("RoleSessionName"), r.Form.Get("RoleSessionName"), n)
	}))
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Calls returns the AssumeRole calls so far.
func (f *fakeAWSSTS) Calls() []stsCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]stsCall(nil), f.calls...)
}
