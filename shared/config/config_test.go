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
