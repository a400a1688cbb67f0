package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// TestRelayKilledMidStream runs a real Prometheus remote_write sender
// through the relay binary, kills the relay with SIGKILL while batches are
// in flight, restarts it on the same address, and checks that every sample
// the sender stored locally also reached the upstream: the sender retries
// what was never acknowledged, and the relay acknowledged nothing the
// upstream had not taken.
func TestRelayKilledMidStream(t *testing.T) {
	upstreamProm := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{})
	bin := buildServer(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-listen", addr, "-log.level", "error")
		cmd.Env = append(os.Environ(), "PROMRELAY_UPSTREAM_URL="+upstreamProm.RemoteWriteURL())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	relay := start()

	var seq atomic.Int64
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kill_seq %d\nkill_other{a=\"b\"} %d\n", seq.Add(1), seq.Load()*2)
	}))
	defer exporter.Close()
	sender := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Config: fmt.Sprintf(`global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
scrape_configs:
  - job_name: killtest
    static_configs: [{targets: [%q]}]
remote_write:
  - url: http://%s/api/v1/write
    remote_timeout: 5s
    queue_config: {batch_send_deadline: 200ms, max_samples_per_send: 50, min_backoff: 100ms, max_backoff: 500ms}
`, testpeer.Host(exporter.URL), addr)})

	upstreamProm.WaitFor(t, `kill_seq`, 1, 20*time.Second)
	time.Sleep(1500 * time.Millisecond)
	relay.Process.Signal(syscall.SIGKILL)
	relay.Wait()
	time.Sleep(1500 * time.Millisecond) // the sender keeps scraping and queues
	start()
	time.Sleep(2 * time.Second)

	// Compare per series what the sender stored with what arrived upstream.
	const window = `[10m]`
	deadline := time.Now().Add(30 * time.Second)
	for {
		sent := values(sender.Query(t, `count_over_time({job="killtest",__name__=~"kill_.*"}`+window+`)`))
		got := values(upstreamProm.Query(t, `count_over_time({job="killtest",__name__=~"kill_.*"}`+window+`)`))
		equal := len(sent) == 2
		for k, v := range sent {
			equal = equal && got[k] == v
		}
		if equal {
			t.Logf("after SIGKILL and restart: %v samples per series sent and stored, 0 lost", sent)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("samples lost: sender stored %v, upstream has %v", sent, got)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Values agree too, sample by sample (the counter is strictly increasing).
	sentMax := values(sender.Query(t, `max_over_time(kill_seq`+window+`)`))
	gotMax := values(upstreamProm.Query(t, `max_over_time(kill_seq`+window+`)`))
	for k, v := range sentMax {
		if gotMax[k] < v {
			t.Errorf("%s: upstream max %v, sender %v", k, gotMax[k], v)
		}
	}
}
