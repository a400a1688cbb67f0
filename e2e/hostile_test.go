package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"golang.org/x/crypto/bcrypt"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/wire"
)

type hostileCase struct {
	name        string
	method      string
	path        string
	contentType string
	encoding    string
	body        []byte
	wantStatus  int
	wantMsg     string
}

// hostileCorpus is the committed corpus of bad requests: each must get a
// clear 4xx naming the problem.
func hostileCorpus() []hostileCase {
	one := []wire.Sample{{Value: 1, Timestamp: 1}}
	many := make([]string, 0, 20000)
	for i := 0; i < 10000; i++ {
		many = append(many, fmt.Sprintf("l%05d", i), "v")
	}
	manyLabels := append([]string{"__name__", "m"}, many...)
	bigLine := append(append([]byte("m{a=\""), bytes.Repeat([]byte("x"), 3<<20)...), "\"} 1\n"...)
	var deep strings.Builder
	deep.WriteString("/metrics/job/x")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&deep, "/l%d/v", i)
	}
	deepGroup := deep.String()
	const rw = "application/x-protobuf"
	return []hostileCase{
		{"remote write body over the limit", "POST", "/api/v1/write", rw, "snappy", bytes.Repeat([]byte{0}, 2<<20), 413, "request body of"},
		{"snappy header claims 1 GiB", "POST", "/api/v1/write", rw, "snappy", []byte{0x80, 0x80, 0x80, 0x80, 0x04, 0x00}, 413, "decompressed body of 1073741824 bytes exceeds the limit"},
		{"snappy header claims 16 GiB", "POST", "/api/v1/write", rw, "snappy", []byte{0x80, 0x80, 0x80, 0x80, 0x40, 0x00}, 400, "cannot decode snappy block"},
		{"truncated snappy", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("__name__", "m"), Samples: one})[:8], 400, "snappy"},
		{"not snappy at all", "POST", "/api/v1/write", rw, "snappy", []byte("GET / HTTP/1.1\r\n"), 400, "snappy"},
		{"protobuf wrong wire type", "POST", "/api/v1/write", rw, "snappy", snappy.Encode(nil, []byte{0x0d, 1, 2, 3, 4}), 400, "wrong wire type"},
		{"protobuf huge length", "POST", "/api/v1/write", rw, "snappy", snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00}), 400, "exceeds"},
		{"protobuf group wire type", "POST", "/api/v1/write", rw, "snappy", snappy.Encode(nil, []byte{0x0b, 0x0c}), 400, "wire type"},
		{"protobuf varint overflow", "POST", "/api/v1/write", rw, "snappy", snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), 400, "overflow"},
		{"100,000 repeated empty series", "POST", "/api/v1/write", rw, "snappy", snappy.Encode(nil, bytes.Repeat([]byte{0x0a, 0x00}, 100000)), 400, "missing metric name"},
		{"invalid UTF-8 label value", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("__name__", "m", "a", "\xff\xfe"), Samples: one}), 400, "not valid UTF-8"},
		{"invalid UTF-8 label name", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("__name__", "m", "\xc3", "v"), Samples: one}), 400, "not valid UTF-8"},
		{"duplicate labels", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("__name__", "m", "a", "1", "a", "2"), Samples: one}), 400, "duplicate label name"},
		{"unsorted labels", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("z", "1", "__name__", "m"), Samples: one}), 400, "not sorted"},
		{"empty label name", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("", "x", "__name__", "m"), Samples: one}), 400, "empty label name"},
		{"no metric name", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("job", "x"), Samples: one}), 400, "missing metric name"},
		{"10,000 labels on one series", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls(manyLabels...), Samples: one}), 400, "more than the limit of 64"},
		{"label value of 1 MiB", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("__name__", "m", "a", strings.Repeat("v", 1<<20)), Samples: one}), 400, "more than the limit of 4096"},
		{"samples out of order", "POST", "/api/v1/write", rw, "snappy", rwBody(wire.Series{Labels: lbls("__name__", "m"), Samples: []wire.Sample{{Timestamp: 5}, {Timestamp: 1}}}), 400, "time order"},
		{"remote write 1.0 body sent as 2.0", "POST", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", rwBody(wire.Series{Labels: lbls("__name__", "m"), Samples: one}), 400, "no time series"},
		{"remote write 2.0, first symbol not empty", "POST", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", wire.EncodeSnappy(nil, []byte{0x22, 0x01, 'x'}), 400, "remote-write 2.0"},
		{"unknown remote-write message", "POST", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", []byte{0}, 415, "unsupported remote-write message"},
		{"zstd encoding", "POST", "/api/v1/write", rw, "zstd", []byte{0}, 415, "snappy"},

		{"text push over the limit (a 3 MiB line)", "POST", "/metrics/job/x", "", "", bigLine, 413, "request body of"},
		{"gzip bomb", "POST", "/metrics/job/x", "", "gzip", gz(bytes.Repeat([]byte("m 1\n"), 4<<20)), 413, "decompressed push body"},
		{"broken gzip", "POST", "/metrics/job/x", "", "gzip", []byte{0x1f, 0x8b, 0x08, 0x00, 0x01}, 400, "gzip"},
		{"text with invalid UTF-8", "POST", "/metrics/job/x", "", "", []byte("m{a=\"\xff\"} 1\n"), 400, "invalid label value"},
		{"text with NUL bytes", "POST", "/metrics/job/x", "", "", []byte("m\x00 1\n"), 400, "expected float"},
		{"text timestamp overflow", "POST", "/metrics/job/x", "", "", []byte("m 1 99999999999999999999999\n"), 400, "expected integer as timestamp"},
		{"text NaN timestamp", "POST", "/metrics/job/x", "", "", []byte("m 1 NaN\n"), 400, "expected integer as timestamp"},
		{"text value overflow", "POST", "/metrics/job/x", "", "", []byte("m 1e400\n"), 400, "expected float"},
		{"text 300 labels", "POST", "/metrics/job/x", "", "", []byte("m{" + strings.Repeat("a", 0) + labelList(300) + "} 1\n"), 413, "more than 64 labels per series (the limit of PROMRELAY_MAX_LABELS)"},
		{"protobuf push truncated", "POST", "/metrics/job/x", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "", []byte{0x20, 0x0a}, 400, "exceeds"},
		{"path with .. is redirected to the cleaned path", "POST", "/metrics/job/x/../y", "", "", []byte("m 1\n"), 301, ""},
		{"escaped slash in label name", "POST", "/metrics/job/x/a%2Fb/c", "", "", []byte("m 1\n"), 400, "improper label name"},
		{"10,000 grouping components", "POST", deepGroup, "", "", []byte("m 1\n"), 400, "grouping key has more than 64 labels"},
		{"empty job", "POST", "/metrics/job@base64/=/a/b", "", "", []byte("m 1\n"), 400, "job name is required"},
		// A grouping value with NUL once let a writer without a tenant
		// name another tenant's group (ids hashed name\0value\0).
		{"DELETE with NUL in a grouping value", "DELETE", "/metrics/job/j%00%5Cx00tenant%00team-a%00tenant_userid%001001", "", "", nil, 400, "grouping"},
		{"PUT with NUL in a grouping value", "PUT", "/metrics/job/j/a/x%00y", "", "", []byte("m 1\n"), 400, "grouping"},
		{"POST with a control character in a grouping value", "POST", "/metrics/job/j/a/x%01y", "", "", []byte("m 1\n"), 400, "grouping"},
		{"DELETE with invalid UTF-8 in a grouping value", "DELETE", "/metrics/job/j/a/%FF", "", "", nil, 400, "grouping"},
	}
}

func labelList(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "l%d=\"v\"", i)
	}
	return b.String()
}

// TestHostileInput sends the corpus to a relay with tight limits: every
// request gets its 4xx with a message that names the problem, none reaches
// the upstream, memory stays bounded, and the relay keeps serving.
func TestHostileInput(t *testing.T) {
	up := newFaultProxy(t, "")
	srv := startRelay(t, map[string]string{
		"PROMRELAY_UPSTREAM_URL":           up.URL + "/api/v1/write",
		"PROMRELAY_MAX_BODY_BYTES":         "1048576",
		"PROMRELAY_MAX_DECODED_BYTES":      "4194304",
		"PROMRELAY_MAX_PUSH_DECODED_BYTES": "4194304",
		"PROMRELAY_MAX_LABELS":             "64",
		"PROMRELAY_MAX_LABEL_BYTES":        "4096",
	})
	corpus := hostileCorpus()
	passed := 0
	var maxHeap uint64
	for _, tc := range corpus {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(body.String(), tc.wantMsg) {
				t.Fatalf("got %d %q, want %d naming %q", resp.StatusCode, trim(body.String()), tc.wantStatus, tc.wantMsg)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			maxHeap = max(maxHeap, ms.HeapInuse)
			passed++
		})
	}
	t.Logf("hostile corpus: %d of %d cases answered as expected; heap in use peaked at %d MiB", passed, len(corpus), maxHeap>>20)
	if n := up.requests.Load(); n != 0 {
		t.Errorf("%d hostile requests reached the upstream", n)
	}
	// Still serving.
	if status, body, _ := do(t, http.MethodPost, srv.URL+"/metrics/job/after", "", []byte("after_hostile 1\n")); status != 200 {
		t.Fatalf("relay stopped serving: %d %s", status, body)
	}
}

// TestHostileServer is the part of the hostile corpus that is about the
// server: each case runs the real server binary.
func TestHostileServer(t *testing.T) {
	needsPeers(t)
	t.Run("POST /invoke on the plain server is 404 and runs nothing", func(t *testing.T) {
		// Once wired on every server before the path prefix and inbound
		// auth: anyone could run the scheduled job.
		up := newFaultProxy(t, "")
		const secret = "timer-secret-0123456789"
		srv := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write",
			"PROMRELAY_STATE_URL": "file://" + t.TempDir(), "PROMRELAY_REEMIT_INTERVAL": "1h", "PROMRELAY_INVOKE_SECRET": secret})
		if status, body, _ := do(t, http.MethodPut, srv.URL+"/metrics/job/stored", "", []byte("stored_metric 1\n")); status != 200 {
			t.Fatalf("push: %d %s", status, body)
		}
		pushed := up.requests.Load()
		for i := 0; i < 10; i++ {
			status, body, _ := do(t, http.MethodPost, srv.URL+"/invoke", "application/json",
				[]byte(`{"triggerTime":"2026-11-21T17:00:00Z","triggerName":"reemit","payload":"`+secret+`"}`))
			if status != 404 {
				t.Fatalf("POST /invoke: %d %q, want 404", status, body)
			}
		}
		if n := up.requests.Load(); n != pushed || strings.Contains(srv.Logs.String(), "re-emitted") {
			t.Fatalf("POST /invoke re-emitted: %d upstream requests after the push", n-pushed)
		}
	})
	for _, code := range []int{302, 307} {
		t.Run(fmt.Sprintf("an upstream %d is 502 and the target gets no credentials", code), func(t *testing.T) {
			// Redirects were followed and re-signed: credentials went to the
			// redirect target, and a 302 became a bodyless GET counted as
			// success.
			target := newFaultProxy(t, "")
			up := newFaultProxy(t, "")
			up.set(nil, &fault{name: "redirect", status: code, location: target.URL + "/api/v1/write"})
			srv := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write",
				"PROMRELAY_UPSTREAM_BEARER_TOKEN": "hidden-bearer", "PROMRELAY_REQUEST_TIMEOUT": "3s"})
			status, body, _ := do(t, http.MethodPost, srv.URL+"/metrics/job/redirected", "", []byte("m 1\n"))
			want := "upstream redirected to " + testpeer.Host(target.URL)
			if status != 502 || !strings.Contains(body, want) {
				t.Fatalf("got %d %q, want 502 naming %q", status, body, want)
			}
			if n := target.requests.Load(); n != 0 {
				t.Fatalf("the redirect target got %d requests (Authorization %q)", n, target.authorizations())
			}
			if strings.Contains(body, "hidden-bearer") {
				t.Fatalf("the answer carries the token: %q", body)
			}
		})
	}
	t.Run("401 closes the connection instead of draining the body", func(t *testing.T) {
		up := newFaultProxy(t, "")
		srv := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write",
			"PROMRELAY_INBOUND_AUTH": "bearer", "PROMRELAY_INBOUND_TOKENS": "token-0123456789"})
		resp, err := client.Post(srv.URL+"/metrics/job/anon", "", bytes.NewReader(bytes.Repeat([]byte("m 1\n"), 256<<10)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !(resp.Close || strings.EqualFold(resp.Header.Get("Connection"), "close")) {
			t.Fatalf("got %d Connection %q (close %v), want 401 with Connection: close", resp.StatusCode, resp.Header.Get("Connection"), resp.Close)
		}
	})
	t.Run("a trickled body is cut by PROMRELAY_SERVER_READ_TIMEOUT", func(t *testing.T) {
		// Only ReadHeaderTimeout was set: a body sent a byte at a time held
		// the connection open indefinitely.
		up := newFaultProxy(t, "")
		srv := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write", "PROMRELAY_SERVER_READ_TIMEOUT": "1s"})
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "POST /metrics/job/trickle HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n", srv.Addr)
		ended := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(conn) // an answer, then EOF; or EOF alone
			ended <- string(b)
		}()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case answer := <-ended:
				t.Logf("connection ended %v after the headers, %d body bytes sent; answer %q", time.Since(start).Round(10*time.Millisecond), i, trim(answer))
				return
			case <-tick.C:
				if i >= 100 { // 10 s: a hang detector
					t.Fatalf("the connection was still open after %v with %d body bytes trickled", time.Since(start), i)
				}
				conn.Write([]byte("m"))
			}
		}
	})
	t.Run("more than PROMRELAY_MAX_CONNECTIONS connections wait", func(t *testing.T) {
		up := newFaultProxy(t, "")
		arrived := make(chan struct{}, 2)
		release := make(chan struct{})
		held := fault{name: "held", hold: release, arrived: arrived}
		up.set([]fault{held, held}, nil)
		srv := startServer(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write", "PROMRELAY_MAX_CONNECTIONS": "2"})
		oneShot := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		pushes := make(chan int, 2)
		for i := 0; i < 2; i++ {
			go func(i int) {
				resp, err := oneShot.Post(fmt.Sprintf("%s/metrics/job/held/instance/i%d", srv.URL, i), "", strings.NewReader("m 1\n"))
				if err != nil {
					pushes <- 0
					return
				}
				resp.Body.Close()
				pushes <- resp.StatusCode
			}(i)
		}
		for i := 0; i < 2; i++ {
			select {
			case <-arrived:
			case <-time.After(15 * time.Second):
				close(release)
				t.Fatal("the two pushes never reached the upstream")
			}
		}
		third := make(chan int, 1)
		go func() {
			resp, err := oneShot.Get(srv.URL + "/-/healthy")
			if err != nil {
				third <- 0
				return
			}
			resp.Body.Close()
			third <- resp.StatusCode
		}()
		// A third connection is not served while two are open. (This can
		// only pass wrongly, on a slow machine, never fail wrongly.)
		select {
		case status := <-third:
			close(release)
			t.Fatalf("a third connection was served (%d) while PROMRELAY_MAX_CONNECTIONS=2 were open", status)
		case <-time.After(500 * time.Millisecond):
		}
		close(release)
		for i := 0; i < 2; i++ {
			if status := <-pushes; status != 200 {
				t.Errorf("held push answered %d, want 200", status)
			}
		}
		select {
		case status := <-third:
			if status != 200 {
				t.Fatalf("the waiting connection got %d, want 200", status)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the waiting connection was never served")
		}
	})
	t.Run("error bodies carry no user info or query string of the upstream URL", func(t *testing.T) {
		// 502s once carried the upstream URL whole: user name and
		// ?api_key=… included.
		up := newFaultProxy(t, "")
		dead := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
		for _, tc := range []struct {
			name, host string
			f          *fault
			want       int
		}{
			{"upstream 500", testpeer.Host(up.URL), &fault{name: "500", status: 500, body: "boom"}, 502},
			{"upstream 401", testpeer.Host(up.URL), &fault{name: "401", status: 401, body: "denied"}, 502},
			{"upstream 400", testpeer.Host(up.URL), &fault{name: "400", status: 400, body: "bad sample"}, 400},
			{"unreachable", dead, nil, 502},
		} {
			up.set(nil, tc.f)
			srv := startServer(t, map[string]string{
				"PROMRELAY_UPSTREAM_URL":    "http://hidden-user@" + tc.host + "/api/v1/write?api_key=hidden-key",
				"PROMRELAY_REQUEST_TIMEOUT": "2s",
			})
			status, body, _ := do(t, http.MethodPost, srv.URL+"/metrics/job/leak", "", []byte("m 1\n"))
			if status != tc.want {
				t.Errorf("%s: got %d %q, want %d", tc.name, status, body, tc.want)
			}
			if strings.Contains(body, "hidden-") || strings.Contains(body, "api_key") {
				t.Errorf("%s: the answer carries the upstream URL's user info or query: %q", tc.name, body)
			}
			if strings.Contains(srv.Logs.String(), "hidden-key") {
				t.Errorf("%s: the log carries the upstream URL's query string", tc.name)
			}
		}
	})
}

// pushLines is n bytes (at least) of text exposition lines a{b="N"} 1
// with N = 0, 1, 2, ...: one series per line.
func pushLines(n int) []byte {
	b := make([]byte, 0, n+32)
	for i := 0; len(b) < n; i++ {
		b = append(b, `a{b="`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "\"} 1\n"...)
	}
	return b
}

// bigRemoteWrite is a remote-write body of about decoded bytes once
// snappy-decoded, in series with one long label value each (part random,
// so the snappy body keeps about an eighth of it).
func bigRemoteWrite(decoded int) (body []byte, rawLen, series int) {
	rng := rand.New(rand.NewPCG(1, 2))
	const valueLen = 6400
	now := time.Now().UnixMilli()
	var ss []wire.Series
	for size := 0; size < decoded; {
		rnd := make([]byte, 275)
		for i := range rnd {
			rnd[i] = byte(rng.UintN(256))
		}
		v := hex.EncodeToString(rnd) + strings.Repeat("x", valueLen-2*len(rnd))
		s := wire.Series{Labels: lbls("__name__", "big", "i", strconv.Itoa(len(ss)), "v", v), Samples: []wire.Sample{{Value: 1, Timestamp: now}}}
		ss = append(ss, s)
		size += valueLen + 40
	}
	raw := wire.AppendWriteRequest(nil, ss, nil)
	return wire.EncodeSnappy(nil, raw), len(raw), len(ss)
}

// TestPeakMemory runs the server binary with PROMRELAY_MEMORY_LIMIT of
// 256 MiB in front of a null upstream, one fresh process per hostile case,
// and reads the process's peak RSS (VmHWM) after each: it must stay under
// 256 MiB. Pushes over the limits get 413 (within 10 s, a hang detector);
// concurrent large remote writes get 204 or 429, and the relay keeps
// serving.
func TestPeakMemory(t *testing.T) {
	needsPeers(t)
	if os.Getenv("PROMRELAY_E2E") == "" {
		t.Skip("peak memory of the server binary: set PROMRELAY_E2E=1 (make test)")
	}
	const limit = 256 << 20
	up := newFaultProxy(t, "")
	env := map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write", "PROMRELAY_MEMORY_LIMIT": strconv.Itoa(limit)}
	hangDetector := &http.Client{Timeout: 10 * time.Second}
	send := func(t *testing.T, url, encoding string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Encoding", encoding)
		if encoding == "snappy" {
			req.Header.Set("Content-Type", "application/x-protobuf")
		}
		resp, err := hangDetector.Do(req)
		if err != nil {
			if isTimeout(err) {
				return -1, "no answer within 10 s"
			}
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name    string
		decoded int
	}{{"gzip push of 2 MiB of one-line series", 2 << 20}, {"gzip push of 32 MiB of one-line series", 32 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			body := gz(pushLines(tc.decoded))
			srv := startServer(t, env)
			status, msg := send(t, srv.URL+"/metrics/job/mem", "gzip", body)
			peak := srv.peakRSS(t)
			t.Logf("%d KB gzip body (%d MiB decoded): answered %d %q; peak RSS %d MiB", len(body)/1000, tc.decoded>>20, status, trim(strings.TrimSpace(msg)), peak>>20)
			if status != 413 {
				t.Errorf("got %d %q, want 413 within 10 s", status, trim(msg))
			}
			if peak >= limit {
				t.Errorf("peak RSS %d MiB, over the 256 MiB memory limit", peak>>20)
			}
		})
	}
	t.Run("8 concurrent remote writes of 33 MB decoded", func(t *testing.T) {
		body, rawLen, series := bigRemoteWrite(33_000_000)
		if rawLen > 32<<20 {
			t.Fatalf("the body decodes to %d bytes, over PROMRELAY_MAX_DECODED_BYTES' default", rawLen)
		}
		srv := startServer(t, env)
		statuses := make(chan string, 8)
		for i := 0; i < 8; i++ {
			go func() {
				status, msg := send(t, srv.URL+"/api/v1/write", "snappy", body)
				statuses <- fmt.Sprintf("%d %s", status, trim(strings.TrimSpace(msg)))
			}()
		}
		var got []string
		for i := 0; i < 8; i++ {
			s := <-statuses
			got = append(got, s)
			if !strings.HasPrefix(s, "204 ") && !strings.HasPrefix(s, "429 ") {
				t.Errorf("remote write answered %s, want 204 or 429", s)
			}
		}
		if status, _, _ := do(t, http.MethodGet, srv.URL+"/-/healthy", "", nil); status != 200 {
			t.Errorf("after the writes /-/healthy answered %d", status)
		}
		peak := srv.peakRSS(t)
		t.Logf("%d series, %d MB snappy, %d MB decoded, 8 at once: %v; peak RSS %d MiB", series, len(body)/1_000_000, rawLen/1_000_000, got, peak>>20)
		if peak >= limit {
			t.Errorf("peak RSS %d MiB, over the 256 MiB memory limit", peak>>20)
		}
	})
}

// TestHostileState covers the group store's bounds and upkeep on an
// in-process relay with a file store: a group cannot grow beyond
// PROMRELAY_MAX_SERIES_PER_GROUP (it once grew without bound under POST),
// a tenant cannot hold more than PROMRELAY_MAX_GROUPS_PER_TENANT groups,
// a deleted group leaves no lock file behind, and a corrupt group is
// skipped by the re-emission, which goes on with the others (it once
// stopped at the first bad group, for every tenant).
func TestHostileState(t *testing.T) {
	up := newFaultProxy(t, "")
	dir := t.TempDir()
	r := startRelay(t, map[string]string{
		"PROMRELAY_UPSTREAM_URL":          up.URL + "/api/v1/write",
		"PROMRELAY_STATE_URL":             "file://" + dir,
		"PROMRELAY_MAX_SERIES_PER_GROUP":  "5",
		"PROMRELAY_MAX_GROUPS_PER_TENANT": "3",
		"PROMRELAY_REEMIT_INTERVAL":       "1h",
	})
	push := func(method, path, body string, want int, wantMsg string) {
		t.Helper()
		status, msg, _ := do(t, method, r.URL+path, "", []byte(body))
		if status != want || !strings.Contains(msg, wantMsg) {
			t.Fatalf("%s %s: got %d %q, want %d naming %q", method, path, status, msg, want, wantMsg)
		}
	}
	push("POST", "/metrics/job/grow", "s1 1\ns2 1\ns3 1\n", 200, "")
	push("POST", "/metrics/job/grow", "t1 1\nt2 1\nt3 1\n", 413, "PROMRELAY_MAX_SERIES_PER_GROUP")
	push("PUT", "/metrics/job/big", "u1 1\nu2 1\nu3 1\nu4 1\nu5 1\nu6 1\n", 413, "PROMRELAY_MAX_SERIES_PER_GROUP")
	push("PUT", "/metrics/job/g2", "m 1\n", 200, "")
	push("PUT", "/metrics/job/g3", "m 1\n", 200, "")
	push("PUT", "/metrics/job/g4", "m 1\n", 429, "PROMRELAY_MAX_GROUPS_PER_TENANT")
	push("DELETE", "/metrics/job/g3", "", 202, "")

	files := func(suffix string) []string {
		var out []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
				out = append(out, strings.TrimPrefix(p, dir))
			}
			return nil
		})
		return out
	}
	groups := files(".json")
	if len(groups) != 2 {
		t.Fatalf("the store holds %v, want the 2 groups left", groups)
	}
	// A lock file lives only as long as its group: none for the deleted
	// group, nor for the groups the limits refused.
	var orphans []string
	for _, l := range files(".lock") {
		if !slices.Contains(groups, strings.TrimSuffix(l, ".lock")) {
			orphans = append(orphans, l)
		}
	}
	if len(orphans) != 0 {
		t.Errorf("lock files without their group (deleted or refused groups): %v", orphans)
	}

	// A corrupt group that sorts first.
	bad := filepath.Join(dir, "t0000000000000000")
	if err := os.MkdirAll(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, strings.Repeat("0", 40)+".json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := up.requests.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.App.Scheduled(ctx)
	if n := up.requests.Load() - before; n == 0 {
		t.Fatalf("the re-emission sent nothing after meeting a corrupt group (error %v)", err)
	}
	if !strings.Contains(r.Logs.String(), `"skipped":1`) {
		t.Errorf("the corrupt group's skip is not logged:\n%s", tail(r.Logs.String(), 2000))
	}
}

// TestHostileInbound covers inbound authentication's findings on an
// in-process relay: a basic-auth password over bcrypt's 72 bytes is
// refused (bcrypt once compared only its first 72 bytes), and a JWKS
// without issuer and audience, or over plain http:// to another host,
// stops start-up naming the setting.
func TestHostileInbound(t *testing.T) {
	up := newFaultProxy(t, "")
	dir := t.TempDir()
	pass := strings.Repeat("p", 72)
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "web.yml")
	os.WriteFile(users, []byte("basic_auth_users:\n  pusher: "+string(hash)+"\n"), 0o600)
	r := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": up.URL + "/api/v1/write",
		"PROMRELAY_INBOUND_AUTH": "basic", "PROMRELAY_INBOUND_BASIC_USERS_FILE": users})
	for _, tc := range []struct {
		name, pass string
		want       int
	}{{"72 bytes", pass, 200}, {"73 bytes sharing the first 72", pass + "X", 401}} {
		status, body, _ := do(t, http.MethodPost, r.URL+"/metrics/job/basic", "", []byte("m 1\n"), "Authorization", "Basic "+b64("pusher:"+tc.pass))
		if status != tc.want {
			t.Errorf("password of %s: got %d %q, want %d", tc.name, status, body, tc.want)
		}
	}

	jwks := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwks, []byte(`{"keys":[{"kty":"oct","kid":"k1","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}`), 0o600)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"JWKS without issuer", map[string]string{"PROMRELAY_JWT_JWKS": jwks, "PROMRELAY_JWT_AUDIENCE": "promrelay"}, "PROMRELAY_JWT_ISSUER"},
		{"JWKS without audience", map[string]string{"PROMRELAY_JWT_JWKS": jwks, "PROMRELAY_JWT_ISSUER": "https://idp.example.com"}, "PROMRELAY_JWT_AUDIENCE"},
		{"JWKS over http:// to another host", map[string]string{"PROMRELAY_JWT_JWKS": "http://idp.example.com/jwks.json",
			"PROMRELAY_JWT_ISSUER": "https://idp.example.com", "PROMRELAY_JWT_AUDIENCE": "promrelay"}, "https://"},
		{"none next to bearer", map[string]string{"PROMRELAY_INBOUND_AUTH": "none,bearer", "PROMRELAY_INBOUND_TOKENS": "token-0123456789"}, "PROMRELAY_INBOUND_AUTH"},
	} {
		env := withEnv(tc.env, "PROMRELAY_UPSTREAM_URL", up.URL+"/api/v1/write")
		if env["PROMRELAY_INBOUND_AUTH"] == "" {
			env["PROMRELAY_INBOUND_AUTH"] = "jwt"
		}
		if _, err := newRelay(t, app.Server, env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: start-up error %v, want one naming %s", tc.name, err, tc.want)
		}
	}
}
