package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/promrelay/promrelay/shared/auth"
)

// isolateAliyunEnv makes credentials-go's default chain see only what the
// test sets: no real profile, no ECS metadata service.
func isolateAliyunEnv(t *testing.T) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	for k, v := range map[string]string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID": "", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "", "ALIBABA_CLOUD_SECURITY_TOKEN": "",
		"ALIBABA_CLOUD_ROLE_ARN": "", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "", "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "",
		"ALIBABA_CLOUD_CREDENTIALS_FILE": "", "ALIBABA_CLOUD_CREDENTIALS_URI": "", "ALIBABA_CLOUD_PROFILE": "",
		"ALIBABA_CLOUD_ECS_METADATA": "", "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

func setAliyunEnvKeys(t *testing.T, id, secret, token string) {
	t.Helper()
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", id)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
	t.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", token)
}

// invocation returns a context carrying Function Compute per-invocation
// credentials, as the FC runtime hands them to a handler.
func invocation(id, secret, token string) context.Context {
	return fccontext.NewContext(context.Background(), &fccontext.FcContext{RequestID: "req-" + id,
		Credentials: fccontext.Credentials{AccessKeyId: id, AccessKeySecret: secret, SecurityToken: token}})
}

// fakeClock is a clock the test moves.
type fakeClock struct{ now atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.now.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

func providerOptions() auth.AliyunProviderOptions {
	return auth.AliyunProviderOptions{Window: 5 * time.Minute}
}

func roleOptions(sts *fakeAliyunSTS) auth.AliyunProviderOptions {
	return auth.AliyunProviderOptions{RoleARN: "acs:ram::1234567890123456:role/promrelay", ExternalID: "ext-1", SessionName: "relay-test",
		Duration: 15 * time.Minute, STSEndpoint: sts.Host, Window: 5 * time.Minute}
}

func newAliyun(t *testing.T, po auth.AliyunProviderOptions, form auth.AliyunForm) (*auth.AliyunProvider, *auth.Aliyun) {
	t.Helper()
	p, err := auth.NewAliyunProvider(po)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewAliyun(auth.AliyunOptions{Provider: p, Form: form, MinForcedRefresh: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

// signed signs a request with ctx and returns its Authorization header.
func signed(t *testing.T, s auth.Signer, ctx context.Context) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://arms.example/api/v1/write", nil)
	err := s.Sign(req, nil)
	return req.Header.Get("Authorization"), err
}

func basic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// TestAliyunOptionsRequired checks that the constructors add no default:
// each missing setting is an error naming the field.
func TestAliyunOptionsRequired(t *testing.T) {
	for _, tc := range []struct {
		want string
		o    auth.AliyunProviderOptions
	}{
		{"Window", auth.AliyunProviderOptions{}},
		{"SessionName", auth.AliyunProviderOptions{Window: time.Minute, RoleARN: "acs:ram::1:role/r", Duration: time.Hour}},
		{"Duration", auth.AliyunProviderOptions{Window: time.Minute, RoleARN: "acs:ram::1:role/r", SessionName: "s"}},
		{"Duration", auth.AliyunProviderOptions{Window: time.Minute, RoleARN: "acs:ram::1:role/r", SessionName: "s", Duration: 14 * time.Minute}},
	} {
		if _, err := auth.NewAliyunProvider(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.o, err, tc.want)
		}
	}
	p, _ := auth.NewAliyunProvider(providerOptions())
	for _, tc := range []struct {
		want string
		o    auth.AliyunOptions
	}{
		{"Provider", auth.AliyunOptions{Form: auth.AliyunBasic, MinForcedRefresh: time.Second}},
		{"Form", auth.AliyunOptions{Provider: p, MinForcedRefresh: time.Second}},
		{"Form", auth.AliyunOptions{Provider: p, Form: "digest", MinForcedRefresh: time.Second}},
		{"MinForcedRefresh", auth.AliyunOptions{Provider: p, Form: auth.AliyunBearer}},
	} {
		if _, err := auth.NewAliyun(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.o, err, tc.want)
		}
	}
}

// TestAliyunDefaultChainForms checks both ARMS forms with credentials from
// the environment (credentials-go's default chain).
func TestAliyunDefaultChainForms(t *testing.T) {
	isolateAliyunEnv(t)
	setAliyunEnvKeys(t, "LTAIenv", "envSecret", "")
	p, s := newAliyun(t, providerOptions(), auth.AliyunBasic)
	for i := 0; i < 3; i++ {
		if got, err := signed(t, s, context.Background()); err != nil || got != basic("LTAIenv", "envSecret") {
			t.Fatalf("long-term keys: %q %v", got, err)
		}
	}
	if p.Fetches() != 1 || s.Fetches() != 1 {
		t.Errorf("%d fetches for long-term keys, want 1", p.Fetches())
	}
	_, bearer := newAliyun(t, providerOptions(), auth.AliyunBearer)
	if _, err := signed(t, bearer, context.Background()); !errors.As(err, new(*auth.CredentialsError)) {
		t.Errorf("bearer without a security token: %v", err)
	}

	setAliyunEnvKeys(t, "STS.env", "envSecret", "envToken")
	_, s = newAliyun(t, providerOptions(), auth.AliyunBasic)
	if got, _ := signed(t, s, context.Background()); got != basic("STS.env", "envSecret$envToken") {
		t.Errorf("STS keys: %q", got)
	}
	_, bearer = newAliyun(t, providerOptions(), auth.AliyunBearer)
	if got, _ := signed(t, bearer, context.Background()); got != "Bearer envToken" {
		t.Errorf("bearer: %q", got)
	}
}

// TestAliyunNoCredentials checks that an empty default chain is a
// *CredentialsError with the generic message.
func TestAliyunNoCredentials(t *testing.T) {
	isolateAliyunEnv(t)
	_, s := newAliyun(t, providerOptions(), auth.AliyunBasic)
	_, err := signed(t, s, context.Background())
	var ce *auth.CredentialsError
	if !errors.As(err, &ce) || err.Error() != auth.CredentialsMessage || ce.Detail == "" {
		t.Fatalf("err = %v", err)
	}
}

// TestAliyunInvocationCredentialsWithoutRole checks that, with no role
// configured, Function Compute's per-invocation credentials sign the
// request, uncached, and a 401 does not count as expiry.
func TestAliyunInvocationCredentialsWithoutRole(t *testing.T) {
	isolateAliyunEnv(t)
	p, s := newAliyun(t, providerOptions(), auth.AliyunBasic)
	got, err := signed(t, s, invocation("STS.fc", "fcSecret", "fcToken"))
	if err != nil || got != basic("STS.fc", "fcSecret$fcToken") || p.Fetches() != 0 {
		t.Fatalf("%q %v, %d fetches", got, err, p.Fetches())
	}
	req, _ := http.NewRequestWithContext(invocation("STS.fc", "fcSecret", "fcToken"), http.MethodPost, "https://arms.example/", nil)
	s.Sign(req, nil)
	if s.Expired(req, 401, nil, nil) {
		t.Error("per-invocation credentials cannot be refreshed")
	}
}

// TestAliyunRoleAssumedOnTopOfInvocationCredentials checks that a
// configured role is assumed with Function Compute's per-invocation
// credentials as the source, and that the assumed credentials sign. Before,
// the invocation's credentials signed and the role was ignored.
func TestAliyunRoleAssumedOnTopOfInvocationCredentials(t *testing.T) {
	isolateAliyunEnv(t)
	sts := newFakeAliyunSTS(t)
	p, s := newAliyun(t, roleOptions(sts), auth.AliyunBasic)
	got, err := signed(t, s, invocation("STS.fc", "fcSecret", "fcToken"))
	if err != nil || got != basic("STS.key1", "stsSecret1$stsToken1") {
		t.Fatalf("signed with %q (%v), want the assumed role's credentials", got, err)
	}
	calls := sts.Calls()
	want := stsCall{SourceKeyID: "STS.fc", SourceToken: "fcToken", RoleARN: "acs:ram::1234567890123456:role/promrelay",
		SessionName: "relay-test", External: "ext-1", Duration: "900"}
	if len(calls) != 1 || calls[0] != want {
		t.Fatalf("AssumeRole calls %+v, want one %+v", calls, want)
	}
	// Cached: a second invocation reuses the assumed credentials.
	if got, _ := signed(t, s, invocation("STS.fc2", "fcSecret2", "fcToken2")); got != basic("STS.key1", "stsSecret1$stsToken1") || p.Fetches() != 1 {
		t.Errorf("second invocation: %q, %d fetches", got, p.Fetches())
	}
}

// TestAliyunRoleAssumedOnTopOfTheDefaultChain checks the source
// credentials outside Function Compute.
func TestAliyunRoleAssumedOnTopOfTheDefaultChain(t *testing.T) {
	isolateAliyunEnv(t)
	setAliyunEnvKeys(t, "LTAIbase", "baseSecret", "")
	sts := newFakeAliyunSTS(t)
	_, s := newAliyun(t, roleOptions(sts), auth.AliyunBearer)
	if got, err := signed(t, s, context.Background()); err != nil || got != "Bearer stsToken1" {
		t.Fatalf("%q %v", got, err)
	}
	if calls := sts.Calls(); len(calls) != 1 || calls[0].SourceKeyID != "LTAIbase" || calls[0].SourceToken != "" {
		t.Fatalf("calls %+v", calls)
	}
}

// TestAliyunSTSFailureDetail checks that a failed AssumeRole is a
// *CredentialsError whose Detail keeps STS's answer for the log and no
// secret: not the source credentials, not the signed STS query.
func TestAliyunSTSFailureDetail(t *testing.T) {
	isolateAliyunEnv(t)
	sts := newFakeAliyunSTS(t)
	sts.down.Store(true)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	for _, tc := range []struct {
		name, endpoint, want string
	}{
		{"STS refuses", sts.Host, "Account 1234567890123456"},
		{"STS unreachable", closedHost, `Post "https://` + closedHost + `": dial tcp`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := roleOptions(sts)
			o.STSEndpoint = tc.endpoint
			_, s := newAliyun(t, o, auth.AliyunBasic)
			ctx, cancel := context.WithTimeout(invocation("STS.fc", "fcSecret", "fcToken"), 10*time.Second)
			defer cancel()
			_, err := signed(t, s, ctx)
			var ce *auth.CredentialsError
			if !errors.As(err, &ce) || err.Error() != "cannot obtain upstream credentials" || !strings.Contains(ce.Detail, tc.want) {
				t.Fatalf("err %v, Detail %q", err, ce.Detail)
			}
			for _, secret := range []string{"fcSecret", "fcToken", "Signature", "SecurityToken=", "AccessKeyId="} {
				if strings.Contains(ce.Detail, secret) {
					t.Errorf("Detail %q contains %q", ce.Detail, secret)
				}
			}
		})
	}
}

// TestAliyunExpiredForcesOneRefresh checks that a 401 from ARMS drops
// cached credentials so the request is re-signed with fresh ones, at most
// once per MinForcedRefresh.
func TestAliyunExpiredForcesOneRefresh(t *testing.T) {
	isolateAliyunEnv(t)
	sts := newFakeAliyunSTS(t)
	clock := newFakeClock()
	o := roleOptions(sts)
	o.Now = clock.Now
	for _, form := range []auth.AliyunForm{auth.AliyunBasic, auth.AliyunBearer} {
		t.Run(string(form), func(t *testing.T) {
			p, s := newAliyun(t, o, form)
			var accepted atomic.Int32
			reject := "" // the Authorization ARMS takes for expired
			arms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if reject == "" || r.Header.Get("Authorization") == reject {
					reject = r.Header.Get("Authorization")
					http.Error(w, "the security token is expired", http.StatusUnauthorized)
					return
				}
				accepted.Add(1)
				w.WriteHeader(204)
			}))
			defer arms.Close()
			tr, _ := auth.NewTransport(arms.URL, s, http.DefaultTransport)
			send := func() int {
				req, _ := http.NewRequestWithContext(invocation("STS.fc", "fcSecret", "fcToken"), http.MethodPost, arms.URL+"/api/v1/write", strings.NewReader("x"))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if status := send(); status != 204 || p.Fetches() != 2 {
				t.Fatalf("status %d after %d fetches, want 204 after a refresh", status, p.Fetches())
			}
			reject = "" // the fresh credentials expire too, at once
			if status := send(); status != 401 || p.Fetches() != 2 {
				t.Fatalf("within MinForcedRefresh: status %d, %d fetches; want the 401 and no refresh", status, p.Fetches())
			}
			clock.Advance(11 * time.Second)
			reject = ""
			if status := send(); status != 204 || p.Fetches() != 3 {
				t.Fatalf("after MinForcedRefresh: status %d, %d fetches", status, p.Fetches())
			}
			req, _ := http.NewRequest(http.MethodPost, arms.URL, nil)
			if s.Expired(req, 500, nil, nil) {
				t.Error("a 500 is not expiry")
			}
		})
	}
}

// TestAliyunAWSProviderKeepsInvocationCredentials checks that the OSS
// store's view of the provider, even inside an aws.CredentialsCache (as
// the AWS SDK wraps it), never serves one invocation's credentials to
// another, and caches assumed credentials until they expire.
func TestAliyunAWSProviderKeepsInvocationCredentials(t *testing.T) {
	isolateAliyunEnv(t)
	p, _ := newAliyun(t, providerOptions(), auth.AliyunBasic)
	cache := aws.NewCredentialsCache(p.AWS())
	for _, id := range []string{"STS.a", "STS.b", "STS.a"} {
		c, err := cache.Retrieve(invocation(id, id+"-secret", id+"-token"))
		if err != nil || c.AccessKeyID != id || c.SecretAccessKey != id+"-secret" || c.SessionToken != id+"-token" {
			t.Fatalf("invocation %s got %+v %v", id, c, err)
		}
	}
	if _, err := cache.Retrieve(context.Background()); !errors.As(err, new(*auth.CredentialsError)) {
		t.Errorf("no credentials at all: %v", err)
	}

	sts := newFakeAliyunSTS(t)
	p, _ = newAliyun(t, roleOptions(sts), auth.AliyunBasic)
	cache = aws.NewCredentialsCache(p.AWS())
	for i := 0; i < 3; i++ {
		c, err := cache.Retrieve(invocation("STS.fc", "fcSecret", "fcToken"))
		if err != nil || c.AccessKeyID != "STS.key1" || !c.CanExpire || time.Until(c.Expires) > 15*time.Minute || time.Until(c.Expires) < 14*time.Minute {
			t.Fatalf("%+v %v", c, err)
		}
	}
	if len(sts.Calls()) != 1 {
		t.Errorf("%d AssumeRole calls, want 1", len(sts.Calls()))
	}
}
