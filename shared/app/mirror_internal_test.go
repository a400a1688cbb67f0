package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/promrelay/promrelay/shared/config"
	"github.com/promrelay/promrelay/shared/mirror"
	"github.com/promrelay/promrelay/shared/query"
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
	m, err := newMirrorUpstreams(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.builds = rate.NewLimiter(rate.Inf, 1)
	mo := struct {
		Upstream func(context.Context, mirror.Connection) (*query.Upstream, error)
	}{m.get}
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
	// Fields a caller could vary freely build nothing new.
	varied := keys("s1")
	varied.AWS.RoleSessionName, varied.AWS.Region, varied.AWS.TokenExpiry = "other", "us-east-1", time.Hour
	if a4, _ := mo.Upstream(ctx, varied); a4 != a1 {
		t.Error("a new session name, region or lifetime built a new connection")
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
	// New connections are built at most MirrorConnectionBurst at once.
	m.builds = rate.NewLimiter(rate.Every(config.MirrorConnectionEvery), config.MirrorConnectionBurst)
	refused := 0
	for i := range config.MirrorConnectionBurst + 5 {
		var re *mirror.RefusedError
		if _, err := mo.Upstream(ctx, keys(fmt.Sprint("burst", i))); errors.As(err, &re) {
			refused++
		}
	}
	if refused < 4 {
		t.Errorf("%d of %d new connections refused, want at least 4", refused, config.MirrorConnectionBurst+5)
	}
}
