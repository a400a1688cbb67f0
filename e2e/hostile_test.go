package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/golang/snappy"

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
		{"remote write 2.0", "POST", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", []byte{0}, 415, "remote write 2.0"},
		{"zstd encoding", "POST", "/api/v1/write", rw, "zstd", []byte{0}, 415, "snappy"},

		{"text push over the limit (a 3 MiB line)", "POST", "/metrics/job/x", "", "", bigLine, 413, "request body of"},
		{"gzip bomb", "POST", "/metrics/job/x", "", "gzip", gz(bytes.Repeat([]byte("m 1\n"), 4<<20)), 413, "decompressed push body"},
		{"broken gzip", "POST", "/metrics/job/x", "", "gzip", []byte{0x1f, 0x8b, 0x08, 0x00, 0x01}, 400, "gzip"},
		{"text with invalid UTF-8", "POST", "/metrics/job/x", "", "", []byte("m{a=\"\xff\"} 1\n"), 400, "invalid label value"},
		{"text with NUL bytes", "POST", "/metrics/job/x", "", "", []byte("m\x00 1\n"), 400, "expected float"},
		{"text timestamp overflow", "POST", "/metrics/job/x", "", "", []byte("m 1 99999999999999999999999\n"), 400, "expected integer as timestamp"},
		{"text NaN timestamp", "POST", "/metrics/job/x", "", "", []byte("m 1 NaN\n"), 400, "expected integer as timestamp"},
		{"text value overflow", "POST", "/metrics/job/x", "", "", []byte("m 1e400\n"), 400, "expected float"},
		{"text 300 labels", "POST", "/metrics/job/x", "", "", []byte("m{" + strings.Repeat("a", 0) + labelList(300) + "} 1\n"), 400, "more than the limit of 64"},
		{"protobuf push truncated", "POST", "/metrics/job/x", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "", []byte{0x20, 0x0a}, 400, "exceeds"},
		{"path with .. is redirected to the cleaned path", "POST", "/metrics/job/x/../y", "", "", []byte("m 1\n"), 301, ""},
		{"escaped slash in label name", "POST", "/metrics/job/x/a%2Fb/c", "", "", []byte("m 1\n"), 400, "improper label name"},
		{"10,000 grouping components", "POST", deepGroup, "", "", []byte("m 1\n"), 400, "more labels than PROMRELAY_MAX_LABELS allows"},
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
