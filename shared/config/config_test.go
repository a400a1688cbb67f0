package config_test

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/config"
)

func TestLoadDefaultsAndFlags(t *testing.T) {
	env := map[string]string{
		"PROMRELAY_UPSTREAM_URL":     "http://127.0.0.1:9090/api/v1/write",
		"PROMRELAY_EXTERNAL_LABELS":  "region=eu, cluster=a",
		"PROMRELAY_UPSTREAM_TIMEOUT": "3s",
	}
	c, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9091" || c.MaxRequestBytes != 1<<20 || c.UpstreamTimeout != 3*time.Second || c.RequestTimeout != 30*time.Second {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if len(c.ExternalLabels) != 2 || c.ExternalLabels[0].Name != "cluster" {
		t.Fatalf("external labels %+v, want sorted", c.ExternalLabels)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-listen", "127.0.0.1:1", "-upstream.timeout", "5s"}); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1" || c.UpstreamTimeout != 5*time.Second {
		t.Fatalf("flags did not override: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"PROMRELAY_MAX_REQUEST_BYTES=0", "PROMRELAY_MAX_REQUEST_BYTES"},
		{"PROMRELAY_REQUEST_TIMEOUT=x", "PROMRELAY_REQUEST_TIMEOUT"},
		{"PROMRELAY_EXTERNAL_LABELS=a", "PROMRELAY_EXTERNAL_LABELS"},
		{"PROMRELAY_EXTERNAL_LABELS=a=1,a=2", "given twice"},
		{"PROMRELAY_EXTERNAL_LABELS=__a=1", "invalid label name"},
		{"PROMRELAY_PATH_PREFIX=prod", "must start with /"},
		{"PROMRELAY_LOG_LEVEL=loud", "PROMRELAY_LOG_LEVEL"},
		{"PROMRELAY_UPSTREAM_PASSWORD=", ""},
		{"PROMRELAY_SELF_METRICS_INTERVAL=1ms", "at least 1s"},
		{"PROMRELAY_SELF_METRICS_INTERVAL=-1s", "PROMRELAY_SELF_METRICS_INTERVAL"},
		{"PROMRELAY_SELF_METRICS_INTERVAL=0", ""},
		{"PROMRELAY_METRICS_AUTH=open", "PROMRELAY_METRICS_AUTH"},
	} {
		k, v, _ := strings.Cut(tc.env, "=")
		_, err := config.Load(func(name string) string {
			if name == k {
				return v
			}
			return ""
		})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.env, err, tc.want)
		}
	}
}

// TestSelfMetricsInterval: 60s on the functions and off on the server
// unless set; 0 is never.
func TestSelfMetricsInterval(t *testing.T) {
	for _, c := range []struct {
		v          string
		onFunction bool
		want       time.Duration
	}{{"", true, time.Minute}, {"", false, 0}, {"0", true, 0}, {"5s", false, 5 * time.Second}} {
		cfg, err := config.Load(func(name string) string {
			if name == "PROMRELAY_SELF_METRICS_INTERVAL" {
				return c.v
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.SelfMetricsInterval(c.onFunction); got != c.want {
			t.Errorf("%q on a function %v: %v, want %v", c.v, c.onFunction, got, c.want)
		}
	}
}

// TestReadmeDocumentsEverySetting keeps the README's table in step with
// the code.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings {
		row := "| `" + s.Env + "` | `-" + s.Flag + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row for %s (%q)", s.Env, row)
		}
	}
}

func TestAuthModes(t *testing.T) {
	base := map[string]string{"PROMRELAY_UPSTREAM_URL": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"}
	for _, tc := range []struct {
		env      map[string]string
		wantMode string
		wantErr  string
	}{
		{map[string]string{}, config.AuthNone, ""},
		{map[string]string{"PROMRELAY_UPSTREAM_USERNAME": "u", "PROMRELAY_UPSTREAM_PASSWORD": "p"}, config.AuthBasic, ""},
		{map[string]string{"PROMRELAY_UPSTREAM_BEARER_TOKEN": "t"}, config.AuthBearer, ""},
		{map[string]string{"PROMRELAY_UPSTREAM_AUTH": "aliyun", "PROMRELAY_ALIYUN_ROLE_ARN": "acs:ram::1:role/r"}, config.AuthAliyun, ""},
		{map[string]string{"PROMRELAY_UPSTREAM_AUTH": "sigv4"}, config.AuthSigV4, ""},
		{map[string]string{"PROMRELAY_UPSTREAM_AUTH": "kerberos"}, "", "must be none, basic, bearer, aliyun or sigv4"},
		{map[string]string{"PROMRELAY_UPSTREAM_AUTH": "bearer"}, "", "needs PROMRELAY_UPSTREAM_BEARER_TOKEN"},
		{map[string]string{"PROMRELAY_UPSTREAM_AUTH": "basic"}, "", "needs PROMRELAY_UPSTREAM_USERNAME"},
		{map[string]string{"PROMRELAY_UPSTREAM_AUTH": "sigv4", "PROMRELAY_UPSTREAM_PASSWORD": "x"}, "", "unset PROMRELAY_UPSTREAM_USERNAME"},
		{map[string]string{"PROMRELAY_UPSTREAM_AUTH": "aliyun", "PROMRELAY_ALIYUN_ROLE_ARN": "r", "PROMRELAY_ALIYUN_ROLE_DURATION": "5m"}, "", "at least 15m"},
		{map[string]string{"PROMRELAY_ALIYUN_AUTH_FORM": "token"}, "", "must be basic or bearer"},
		{map[string]string{"PROMRELAY_CREDENTIALS_REFRESH_WINDOW": "-1s"}, "", "must be positive"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		c, err := config.Load(func(k string) string { return env[k] })
		if err == nil {
			err = c.Validate()
		}
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err = %v, want %q", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.AuthMode() != tc.wantMode {
			t.Errorf("%v: mode %q err %v, want %q", tc.env, c.AuthMode(), err, tc.wantMode)
		}
	}
}

func TestFCCustomRuntimeListen(t *testing.T) {
	c, _ := config.Load(func(k string) string { return map[string]string{"FC_SERVER_PORT": "9000"}[k] })
	if c.Listen != "0.0.0.0:9000" || !c.FCCustomRuntime {
		t.Fatalf("listen %q custom %v", c.Listen, c.FCCustomRuntime)
	}
	c, _ = config.Load(func(k string) string {
		return map[string]string{"FC_SERVER_PORT": "9000", "PROMRELAY_LISTEN": "127.0.0.1:1"}[k]
	})
	if c.Listen != "127.0.0.1:1" {
		t.Fatalf("explicit listen lost: %q", c.Listen)
	}
}

func TestMemoryLimitFromThePlatform(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want int64
	}{
		{map[string]string{}, config.DefaultMemoryLimit},
		{map[string]string{"FC_FUNCTION_MEMORY_SIZE": "256"}, 256 << 20},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, 1024 << 20},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "PROMRELAY_MEMORY_LIMIT": "268435456"}, 256 << 20},
	} {
		cfg, err := config.Load(func(k string) string { return c.env[k] })
		if err != nil || cfg.MemoryLimit != c.want {
			t.Errorf("%v: MemoryLimit %d, %v; want %d", c.env, cfg.MemoryLimit, err, c.want)
		}
	}
	if _, err := config.Load(func(k string) string {
		return map[string]string{"PROMRELAY_MEMORY_LIMIT": "1000"}[k]
	}); err == nil || !strings.Contains(err.Error(), "PROMRELAY_MEMORY_LIMIT") {
		t.Errorf("a tiny memory limit: %v", err)
	}
}

func TestValidateRefusesUnsafeCombinations(t *testing.T) {
	base := map[string]string{"PROMRELAY_UPSTREAM_URL": "http://127.0.0.1:9090/api/v1/write"}
	for _, c := range []struct {
		extra map[string]string
		want  string
	}{
		{map[string]string{"PROMRELAY_INBOUND_AUTH": "none,bearer"}, "PROMRELAY_INBOUND_AUTH"},
		{map[string]string{"FC_SERVER_PORT": "9000", "PROMRELAY_STATE_URL": "file:///tmp/x"}, "PROMRELAY_INVOKE_SECRET"},
		{map[string]string{"PROMRELAY_UPSTREAM_MIN_BACKOFF": "10s", "PROMRELAY_UPSTREAM_MAX_BACKOFF": "1s"}, "PROMRELAY_UPSTREAM_MIN_BACKOFF"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range c.extra {
			env[k] = v
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.extra, err, c.want)
		}
	}
	if _, err := config.Load(func(k string) string {
		return map[string]string{"PROMRELAY_INVOKE_SECRET": "short"}[k]
	}); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("a short invoke secret: %v (and the secret must not be printed)", err)
	}
}

func TestIsAMPHost(t *testing.T) {
	for host, want := range map[string]bool{
		"aps-workspaces.eu-west-1.amazonaws.com":                             true,
		"APS-WORKSPACES.us-east-1.amazonaws.com:443":                         true,
		"aps-workspaces-fips.us-east-1.amazonaws.com":                        true,
		"aps-workspaces.cn-north-1.amazonaws.com.cn":                         true,
		"aps-workspaces.eu-west-1.amazonaws.com.evil.net":                    false,
		"prometheus.example":                                                 false,
		"cn-hangzhou.arms.aliyuncs.com":                                      false,
		"example.com/aps-workspaces.eu-west-1.amazonaws.com":                 false,
		"vpce-0123abcd.aps-workspaces.eu-west-1.vpce.amazonaws.com":          true,
		"vpce-0123abcd.aps-workspaces.eu-west-1.vpce.amazonaws.com.evil.net": false,
	} {
		if got := config.IsAMPHost(host); got != want {
			t.Errorf("IsAMPHost(%q) = %v", host, got)
		}
	}
	// Recognised by the host, not the path.
	c := config.Config{RemoteReadURL: "http://prom.example/aps-workspaces.eu-west-1.amazonaws.com/api/v1/read"}
	if err := c.ValidateRead(); err != nil {
		t.Errorf("a path that looks like AMP: %v", err)
	}
	if c.QueryAuthMode() != config.AuthNone {
		t.Errorf("query auth %q", c.QueryAuthMode())
	}
	c = config.Config{UpstreamAuth: config.AuthSigV4, QueryURL: "https://q"}
	if rc := c.ReadConfig("https://q"); rc.UpstreamURL != "https://q" || rc.AuthMode() != config.AuthSigV4 {
		t.Errorf("read config %+v", rc)
	}
}

func TestMirrorPrefixCannotShadowRoutes(t *testing.T) {
	for _, p := range []string{"/metrics", "/api/x", "/-", "/stack.state", "/v1"} {
		if _, err := config.Load(func(k string) string {
			if k == "PROMRELAY_MIRROR_PREFIX" {
				return p
			}
			return ""
		}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

func TestUpstreamProfile(t *testing.T) {
	for _, tc := range []struct{ url, profile, want string }{
		{"https://cn-hangzhou.arms.aliyuncs.com/prometheus/a/b/c/cn-hangzhou/api/v3/write", "", config.ProfileARMS},
		{"https://proj.cn-hangzhou.log.aliyuncs.com/prometheus/proj/store/api/v1/write", "", config.ProfileARMS},
		{"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write", "", config.ProfileAMP},
		{"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write", "auto", config.ProfileAMP},
		{"http://127.0.0.1:9090/api/v1/write", "", config.ProfilePrometheus},
		{"https://evil-arms.aliyuncs.com.example.com/api/v1/write", "", config.ProfilePrometheus},
		{"http://127.0.0.1:9090/api/v1/write", "amp", config.ProfileAMP},
		{"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write", "prometheus", config.ProfilePrometheus},
	} {
		env := map[string]string{"PROMRELAY_UPSTREAM_URL": tc.url, "PROMRELAY_UPSTREAM_PROFILE": tc.profile}
		c, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Profile(); got != tc.want {
			t.Errorf("%s with %q: %s, want %s", tc.url, tc.profile, got, tc.want)
		}
	}
	for _, bad := range []map[string]string{
		{"PROMRELAY_UPSTREAM_PROFILE": "victoria"}, {"PROMRELAY_UPSTREAM_PROTOCOL": "v3"},
		{"PROMRELAY_MAX_CLASSIC_BUCKETS": "1"}, {"PROMRELAY_OTLP_DELTA": "convert"},
	} {
		bad["PROMRELAY_UPSTREAM_URL"] = "http://127.0.0.1:9090/api/v1/write"
		if _, err := config.Load(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
