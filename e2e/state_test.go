package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/groupstore"
)

// TestStatefulPushgatewaySemantics runs the relay with a file group store
// in front of a real Prometheus whose lookback is 5 s, and the real
// Pushgateway scraped by a Prometheus with the same lookback as the
// reference; the same pushes go to both, and after each step the series
// visible in both must agree: pushed values outlive the lookback, a PUT
// with fewer metrics and a DELETE make series vanish, POST keeps the other
// families.
func TestStatefulPushgatewaySemantics(t *testing.T) {
	needsPeers(t)
	lookback := testpeer.PrometheusOptions{Args: []string{"--query.lookback-delta=5s"}}
	prom := testpeer.StartPrometheus(t, lookback)
	pg := testpeer.StartPushgateway(t)
	ref := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Args: lookback.Args, Config: fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, testpeer.Host(pg.URL))})
	stateDir := t.TempDir()
	env := map[string]string{
		"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL(),
		"PROMRELAY_STATE_URL":    "file://" + stateDir,
		// An external label makes a group's stored labels differ from its
		// grouping key, as tenants do.
		"PROMRELAY_EXTERNAL_LABELS": "relay=r1",
		"PROMRELAY_REEMIT_INTERVAL": "1s",
	}
	// stored reads the groups the store holds for a job.
	stored := func(job string) []*groupstore.Group {
		fs, err := groupstore.NewFileStore(stateDir)
		if err != nil {
			t.Fatal(err)
		}
		all, err := fs.List(context.Background(), "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []*groupstore.Group
		for _, g := range all.Groups {
			for _, l := range g.Key {
				if l.Name == "job" && l.Value == job {
					out = append(out, g)
				}
			}
		}
		return out
	}
	srv := startRelay(t, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("upstream {job=\"state\"}: %v", prom.Query(t, `{job="state"}`))
		}
	})

	both := func(method, path, body string, want int) {
		t.Helper()
		for _, base := range []string{pg.URL, srv.URL} {
			status, msg, _ := do(t, method, base+path, "", []byte(body))
			if status/100 != 2 {
				t.Fatalf("%s %s %s: %d %s", base, method, path, status, msg)
			}
		}
	}
	// visible returns the names of the job's data series.
	visible := func(p *testpeer.Prometheus, job string) string {
		var names []string
		for _, s := range p.Query(t, fmt.Sprintf(`{job=%q, __name__!~"push_time_seconds|push_failure_time_seconds"}`, job)) {
			names = append(names, fmt.Sprintf("%s=%v", s.Metric["__name__"], s.Value))
		}
		return strings.Join(names, " ")
	}
	expect := func(step, job, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, g := visible(ref, job), visible(prom, job)
			if r == want && g == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: reference Pushgateway shows %q, relay upstream %q, want %q", step, r, g, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	both(http.MethodPut, "/metrics/job/state", "a 1\nb 2\n", 200)
	expect("after PUT", "state", "a=1 b=2")
	time.Sleep(8 * time.Second) // past the 5 s lookback
	expect("8 s later, past the lookback", "state", "a=1 b=2")
	if v := prom.Query(t, `push_time_seconds{job="state"}`); len(v) != 1 {
		t.Fatalf("push_time_seconds not kept alive: %v", v)
	}

	both(http.MethodPut, "/metrics/job/state", "a 3\n", 200)
	expect("after a PUT without b", "state", "a=3")
	if gs := stored("state"); len(gs) != 1 || len(gs[0].Stale) != 0 {
		t.Fatalf("after the staleness marker for b was accepted the group should hold none pending: %+v", gs)
	}

	both(http.MethodPost, "/metrics/job/state", "c 4\n", 200)
	expect("after a POST of c", "state", "a=3 c=4")

	both(http.MethodDelete, "/metrics/job/state", "", 202)
	expect("after DELETE", "state", "")
	if v := prom.Query(t, `push_time_seconds{job="state"}`); len(v) != 0 {
		t.Fatalf("push_time_seconds still visible after DELETE: %v", v)
	}
	if gs := stored("state"); len(gs) != 0 {
		t.Fatalf("the deleted group is still in the store: %+v", gs[0])
	}

	// Concurrent pushes to one group lose nothing.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			status, msg, _ := do(t, http.MethodPost, srv.URL+"/metrics/job/conc", "", []byte(fmt.Sprintf("fam%02d %d\n", i, i)))
			if status != 200 {
				t.Errorf("concurrent push %d: %d %s", i, status, msg)
			}
		}(i)
	}
	wg.Wait()
	time.Sleep(7 * time.Second) // only re-emission keeps early pushes visible now
	if v := prom.Query(t, `{job="conc", __name__=~"fam.*"}`); len(v) != 20 {
		t.Fatalf("%d of 20 concurrently pushed families visible after the lookback", len(v))
	}
}
