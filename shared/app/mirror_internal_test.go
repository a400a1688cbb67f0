package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/mirror"
)

// Each connection — URL, role, keys, region, … — gets its own credentials,
// kept for the config.MirrorConnections most recently used; only
// allow-listed URLs and roles are served.
func TestMirrorConnectionsCachedPerConnection(t *testing.T) {
	for k, v := range map[string]string{"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	cfg := config.Config{QueryURL: "http://127.0.0.1:9/ws", MirrorAPIKey: "k", MirrorPrefix: "/stackstate",
		MirrorAllowedURLs: []string{"http://127.0.0.1:9/ws", "http://127.0.0.1:9/other"}, MirrorAllowedRoleARNs: []string{"arn:aws:iam::1:role/r"},
		RefreshWindow: time.Minute, MinForcedRefresh: time.Second, SigV4SessionName: "promrelay"}
	mo, err := mirrorOptions(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys := func(secret string) mirror.Connection {
		return mirror.Connection{URL: "http://127.0.0.1:9/ws/", AWS: &mirror.AWSDetails{AccessKeyID: "AKID", SecretAccessKey: secret, Region: "eu-west-1", TokenExpiry: 900 * time.Second}}
	}
	a1, err := mo.Upstream(ctx, keys("s1"))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := mo.Upstream(ctx, keys("s1"))
	b, _ := mo.Upstream(ctx, keys("s2"))
	if a1 != a2 || a1 == b {
		t.Errorf("same connection: same upstream %v; other secret: other upstream %v", a1 == a2, a1 != b)
	}
	for _, c := range []mirror.Connection{
		{URL: "http://169.254.169.254"},
		{URL: "http://127.0.0.1:9/ws", AWS: &mirror.AWSDetails{RoleARN: "arn:aws:iam::1:role/admin", Region: "eu-west-1"}},
	} {
		var re *mirror.RefusedError
		if _, err := mo.Upstream(ctx, c); !errors.As(err, &re) {
			t.Errorf("%v: %v, want a refusal", c, err)
		}
	}
	for i := range config.MirrorConnections + 1 {
		if _, err := mo.Upstream(ctx, keys(fmt.Sprint("many", i))); err != nil {
			t.Fatal(err)
		}
	}
	if a3, _ := mo.Upstream(ctx, keys("s1")); a3 == a1 {
		t.Errorf("the least recently used connection was kept beyond %d", config.MirrorConnections)
	}
}
