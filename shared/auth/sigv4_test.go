package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/promrelay/promrelay/shared/auth"
)

const ampURL = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"

// isolateAWSEnv makes the SDK's default configuration see only what the
// test sets: no shared files, no instance metadata.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
	} {
		t.Setenv(k, v)
	}
}

// sourceCredentials is a provider of fixed source credentials that counts
// its calls.
type sourceCredentials struct{ calls atomic.Int32 }

func (s *sourceCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	s.calls.Add(1)
	return aws.Credentials{AccessKeyID: "AKIDsource", SecretAccessKey: "sourceSecret", SessionToken: "sourceToken",
		CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
}

func sigv4Options(src aws.CredentialsProvider) auth.SigV4Options {
	return auth.SigV4Options{Window: 5 * time.Minute, MinForcedRefresh: 10 * time.Second,
		ConfigOptions: []func(*config.LoadOptions) error{config.WithCredentialsProvider(src), config.WithRetryMaxAttempts(1)}}
}

func TestSigV4OptionsRequired(t *testing.T) {
	isolateAWSEnv(t)
	src := &sourceCredentials{}
	for _, tc := range []struct {
		want   string
		url    string
		modify func(*auth.SigV4Options)
	}{
		{"Window", ampURL, func(o *auth.SigV4Options) { o.Window = 0 }},
		{"MinForcedRefresh", ampURL, func(o *auth.SigV4Options) { o.MinForcedRefresh = 0 }},
		{"SessionName", ampURL, func(o *auth.SigV4Options) { o.RoleARN = "arn:aws:iam::123456789012:role/r" }},
		{"no AWS region", "https://prometheus.example/api/v1/write", func(*auth.SigV4Options) {}},
	} {
		o := sigv4Options(src)
		tc.modify(&o)
		if _, err := auth.NewSigV4(context.Background(), tc.url, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want one naming %s", err, tc.want)
		}
	}
}

// TestSigV4Signs checks the signature's scope, the payload hash of the
// exact body, and that X-Scope-OrgID (which AMP rejects when signed) is
// removed.
func TestSigV4Signs(t *testing.T) {
	isolateAWSEnv(t)
	for _, tc := range []struct {
		url, region, wantScope string
	}{
		{ampURL, "", "/eu-west-1/aps/aws4_request"},
		{"https://prometheus.example/api/v1/write", "ap-southeast-2", "/ap-southeast-2/aps/aws4_request"},
	} {
		o := sigv4Options(&sourceCredentials{})
		o.Region = tc.region
		s, err := auth.NewSigV4(context.Background(), tc.url, o)
		if err != nil {
			t.Fatal(err)
		}
		body := []byte("compressed remote write")
		req, _ := http.NewRequest(http.MethodPost, tc.url, nil)
		req.Header.Set("X-Scope-OrgID", "tenant")
		if err := s.Sign(req, body); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		authz := req.Header.Get("Authorization")
		if !strings.HasPrefix(authz, "AWS4-HMAC-SHA256 Credential=AKIDsource/") || !strings.Contains(authz, tc.wantScope) ||
			req.Header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(sum[:]) || req.Header.Get("X-Scope-OrgID") != "" ||
			req.Header.Get("X-Amz-Security-Token") != "sourceToken" {
			t.Errorf("%s: headers %v", tc.url, req.Header)
		}
	}
}

// TestSigV4RoleAssumedOnTopOfTheSourceCredentials checks that the role's
// AssumeRole call is signed with the default chain's credentials (on
// Lambda, the function role's) and that the assumed ones sign requests.
func TestSigV4RoleAssumedOnTopOfTheSourceCredentials(t *testing.T) {
	isolateAWSEnv(t)
	sts := newFakeAWSSTS(t)
	o := sigv4Options(&sourceCredentials{})
	o.RoleARN, o.ExternalID, o.SessionName, o.STSEndpoint = "arn:aws:iam::123456789012:role/amp-writer", "ext-2", "relay-test", sts.URL
	s, err := auth.NewSigV4(context.Background(), ampURL, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest(http.MethodPost, ampURL, nil)
		if err := s.Sign(req, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=ASIAassumed1/") || req.Header.Get("X-Amz-Security-Token") != "assumedToken1" {
			t.Fatalf("signed with %q", req.Header.Get("Authorization"))
		}
	}
	calls := sts.Calls()
	if len(calls) != 1 || calls[0].SourceKeyID != "AKIDsource" || calls[0].SourceToken != "sourceToken" ||
		calls[0].RoleARN != o.RoleARN || calls[0].SessionName != "relay-test" || calls[0].External != "ext-2" {
		t.Fatalf("AssumeRole calls %+v", calls)
	}
}

// TestSigV4STSDenied checks that a refused AssumeRole is a
// *CredentialsError with STS's reason in Detail and no source secret.
func TestSigV4STSDenied(t *testing.T) {
	isolateAWSEnv(t)
	sts := newFakeAWSSTS(t)
	sts.denied.Store(true)
	o := sigv4Options(&sourceCredentials{})
	o.RoleARN, o.SessionName, o.STSEndpoint = "arn:aws:iam::123456789012:role/amp-writer", "relay-test", sts.URL
	s, err := auth.NewSigV4(context.Background(), ampURL, o)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, ampURL, nil)
	err = s.Sign(req, nil)
	var ce *auth.CredentialsError
	if !errors.As(err, &ce) || err.Error() != auth.CredentialsMessage || !strings.Contains(ce.Detail, "AccessDenied") ||
		strings.Contains(ce.Detail, "sourceSecret") || strings.Contains(ce.Detail, "sourceToken") {
		t.Fatalf("err %v, Detail %q", err, ce.Detail)
	}
}

// TestSigV4ExpiredTokenResigns checks that AWS's expired-token answer
// drops the cached credentials and the request is re-signed once, at most
// once per MinForcedRefresh, and that other 403s and 401s are passed on.
func TestSigV4ExpiredTokenResigns(t *testing.T) {
	isolateAWSEnv(t)
	src := &sourceCredentials{}
	var answers atomic.Int32
	amp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch answers.Add(1) {
		case 1:
			w.Header().Set("X-Amzn-Errortype", "ExpiredTokenException")
			w.WriteHeader(403)
		case 3:
			http.Error(w, `{"message":"The security token included in the request is expired"}`, 403)
		default:
			w.WriteHeader(204)
		}
	}))
	defer amp.Close()
	s, err := auth.NewSigV4(context.Background(), ampURL, sigv4Options(src))
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := auth.NewTransport(amp.URL, s, http.DefaultTransport)
	send := func() int {
		req, _ := http.NewRequest(http.MethodPost, amp.URL+"/api/v1/remote_write", strings.NewReader("x"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := send(); status != 204 || src.calls.Load() != 2 || answers.Load() != 2 {
		t.Fatalf("status %d, %d retrievals, %d answers; want 204 after one re-signing", status, src.calls.Load(), answers.Load())
	}
	if status := send(); status != 403 || src.calls.Load() != 2 {
		t.Fatalf("within MinForcedRefresh: status %d, %d retrievals", status, src.calls.Load())
	}
	for _, tc := range []struct {
		status int
		header http.Header
		body   string
	}{
		{403, http.Header{}, "AccessDenied"},
		{401, http.Header{"X-Amzn-Errortype": {"ExpiredTokenException"}}, ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, ampURL, nil)
		if s.Expired(req, tc.status, tc.header, []byte(tc.body)) {
			t.Errorf("%d %v %q taken for expiry", tc.status, tc.header, tc.body)
		}
	}
}
