package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"golang.org/x/crypto/bcrypt"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// TestInboundAuthAndTenants configures the relay as a user would
// (environment, a web.yml users file, a tenants file) and drives it with
// the real client_golang push client and a real Prometheus remote_write
// sender; two real Prometheus servers are the upstreams of two tenants.
func TestInboundAuthAndTenants(t *testing.T) {
	needsPeers(t)
	promA := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	promB := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pusher-pass"), bcrypt.DefaultCost)
	os.WriteFile(filepath.Join(dir, "web.yml"), []byte("basic_auth_users:\n  pusher: "+string(hash)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "tenants.yml"), []byte(fmt.Sprintf(`tenants:
  - name: team-a
    labels: {tenant_userid: "1001"}
  - name: team-b
    labels: {tenant_userid: "1002"}
    upstream: {url: %q, auth: none}
tokens:
  "token-a": team-a
  "token-b": team-b
users:
  pusher: team-a
`, promB.RemoteWriteURL())), 0o600)
	const jwtSecret = "a-shared-secret-of-at-least-32-bytes!"
	env := map[string]string{
		"PROMRELAY_UPSTREAM_URL":             promA.RemoteWriteURL(),
		"PROMRELAY_INBOUND_AUTH":             "bearer,basic,jwt",
		"PROMRELAY_INBOUND_BASIC_USERS_FILE": filepath.Join(dir, "web.yml"),
		"PROMRELAY_TENANTS_FILE":             filepath.Join(dir, "tenants.yml"),
		"PROMRELAY_JWT_SECRET":               jwtSecret,
		"PROMRELAY_JWT_TENANT_CLAIM":         "tenant",
		"PROMRELAY_EXTERNAL_LABELS":          "tenant_userid=external,relay=r1",
	}
	srv := startRelay(t, env)
	logs := srv.Logs
	token := func(tenant string) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ci-job", "tenant": tenant, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(jwtSecret))
		return s
	}
	gauge := func(name string, v float64) prometheus.Collector {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "x", ConstLabels: prometheus.Labels{"tenant_userid": "evil-body"}})
		g.Set(v)
		return g
	}

	// client_golang with BasicAuth: user pusher belongs to team-a. The body
	// and the URL both try to set tenant_userid; the tenant's label wins.
	err := push.New(srv.URL, "auth_basic").BasicAuth("pusher", "pusher-pass").
		Collector(gauge("basic_pushed", 1)).Push()
	if err != nil {
		t.Fatalf("push with BasicAuth: %v", err)
	}
	got := values(promA.WaitFor(t, `basic_pushed`, 1, 10*time.Second))
	if want := `basic_pushed{job="auth_basic",relay="r1",tenant_userid="1001"}`; len(got) != 1 || got[want] != 1 {
		t.Fatalf("team-a's push stored as %v, want %s", got, want)
	}
	promA.WaitFor(t, `push_time_seconds{job="auth_basic",tenant_userid="1001"}`, 1, 5*time.Second)
	// A URL grouping label cannot claim another tenant either.
	status, body, _ := do(t, http.MethodPost, srv.URL+"/metrics/job/auth_url/tenant_userid/evil-url", "", []byte("url_pushed 3\n"),
		"Authorization", "Bearer token-a")
	if status != 200 {
		t.Fatalf("push: %d %s", status, body)
	}
	promA.WaitFor(t, `url_pushed{job="auth_url",tenant_userid="1001"} == 3`, 1, 10*time.Second)
	promA.WaitFor(t, `push_time_seconds{job="auth_url",tenant_userid="1001"}`, 1, 5*time.Second)

	// client_golang with BasicAuth("any", <jwt>) for team-b: its own upstream.
	err = push.New(srv.URL, "auth_jwt").BasicAuth("any", token("team-b")).Collector(gauge("jwt_pushed", 2)).Push()
	if err != nil {
		t.Fatalf("push with a JWT: %v", err)
	}
	promB.WaitFor(t, `jwt_pushed{job="auth_jwt",tenant_userid="1002"} == 2`, 1, 10*time.Second)
	if v := promA.Query(t, `jwt_pushed`); len(v) != 0 {
		t.Fatalf("team-b's data reached team-a's upstream: %v", v)
	}

	// A real Prometheus remote_write sender with authorization: and basic_auth:.
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "sender_metric{tenant_userid=\"evil-sender\"} 7\n")
	}))
	defer exporter.Close()
	testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Config: fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s/api/v1/write
    authorization: {type: Bearer, credentials: token-b}
    queue_config: {batch_send_deadline: 1s}
    write_relabel_configs: [{target_label: via, replacement: bearer}]
  - url: %s/api/v1/write
    basic_auth: {username: pusher, password: pusher-pass}
    queue_config: {batch_send_deadline: 1s}
    write_relabel_configs: [{target_label: via, replacement: basic}]
`, testpeer.Host(exporter.URL), srv.URL, srv.URL)})
	promB.WaitFor(t, `sender_metric{via="bearer",tenant_userid="1002",relay="r1"} == 7`, 1, 30*time.Second)
	promA.WaitFor(t, `sender_metric{via="basic",tenant_userid="1001",relay="r1"} == 7`, 1, 30*time.Second)
	if v := promA.Query(t, `{tenant_userid=~"evil.*|external"}`); len(v) != 0 {
		t.Fatalf("a writer set the tenant label: %v", v)
	}

	// Rejections.
	for _, tc := range []struct {
		name, header string
		wantStatus   int
	}{
		{"missing", "", 401},
		{"wrong token", "Bearer token-c", 401},
		{"wrong password", "Basic " + b64("pusher:nope"), 401},
		{"expired jwt", "Bearer " + func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"tenant": "team-a", "exp": time.Now().Add(-time.Minute).Unix()}).SignedString([]byte(jwtSecret))
			return s
		}(), 401},
		{"unknown tenant", "Bearer " + token("team-z"), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"Authorization", tc.header}
			}
			status, body, h := do(t, http.MethodPost, srv.URL+"/metrics/job/rejected", "", []byte("rejected_metric 1\n"), hdr...)
			if status != tc.wantStatus {
				t.Fatalf("got %d %q, want %d", status, body, tc.wantStatus)
			}
			if status == 401 && len(h.Values("WWW-Authenticate")) == 0 {
				t.Fatal("401 without WWW-Authenticate")
			}
			if strings.Contains(body, "password") || strings.Contains(body, "expired") || strings.Contains(body, "tenant") {
				t.Fatalf("the answer hints at the cause: %q", body)
			}
		})
	}
	if status, _, _ := do(t, http.MethodGet, srv.URL+"/-/healthy", "", nil); status != 200 {
		t.Fatalf("health check needs credentials: %d", status)
	}
	// A push accepted after the rejections has reached the upstream once
	// it answered: the relay answers only after the upstream did, so had a
	// rejected push been relayed, it would be there by now too.
	if status, body, _ := do(t, http.MethodPost, srv.URL+"/metrics/job/rejected", "", []byte("after_rejections 1\n"), "Authorization", "Bearer token-a"); status != 200 {
		t.Fatalf("push after the rejections: %d %s", status, body)
	}
	promA.WaitFor(t, `after_rejections{job="rejected"}`, 1, 10*time.Second)
	if v := promA.Query(t, `rejected_metric`); len(v) != 0 {
		t.Fatalf("rejected data arrived: %v", v)
	}
	for _, secret := range []string{"pusher-pass", "token-a", "token-b", jwtSecret} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("%q appears in the relay's log", secret)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"authentication failed"`) || !strings.Contains(logs.String(), `"tenant":"team-a"`) {
		t.Errorf("log lacks auth failures or tenants:\n%s", logs.String())
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
