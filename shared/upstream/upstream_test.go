package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/auth"
	"github.com/promrelay/promrelay/shared/wire"
)

func batch(n int) *wire.WriteRequest {
	var wr wire.WriteRequest
	for i := 0; i < n; i++ {
		wr.AppendSample(wr.AppendLabels(wire.Label{Name: "__name__", Value: "m"}, wire.Label{Name: "i", Value: strings.Repeat("x", 50) + string(rune('a'+i%26))}), wire.Sample{Value: float64(i), Timestamp: int64(i)})
	}
	return &wr
}

func TestRequestHeadersAndAuth(t *testing.T) {
	for _, tc := range []struct {
		signer auth.Static
		want   string
	}{
		{auth.Static{BearerToken: "tok"}, "Bearer tok"},
		{auth.Static{Username: "u", Password: "p"}, "Basic dTpw"},
		{auth.Static{}, ""},
	} {
		var got http.Header
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r.Header.Clone()
			if r.ProtoMajor != 1 {
				t.Errorf("protocol %s, want HTTP/1.1", r.Proto)
			}
			w.WriteHeader(204)
		}))
		c, err := New(Config{URL: srv.URL, UserAgent: "promrelay/test", Transport: &auth.Transport{Base: NewTransport(), Signer: &tc.signer}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(context.Background(), batch(1)); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		for k, v := range map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
			"X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "promrelay/test", "Authorization": tc.want} {
			if got.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, got.Get(k), v)
			}
		}
	}
	if _, err := New(Config{URL: "/relative"}); err == nil {
		t.Error("relative URL accepted")
	}
}

func TestSplitKeepsEverySeriesOnceAndUnderBudget(t *testing.T) {
	var series atomic.Int64
	var maxBody atomic.Int64
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if int64(len(body)) > maxBody.Load() {
			maxBody.Store(int64(len(body)))
		}
		raw, err := wire.DecodeSnappy(nil, body, 1<<24)
		if err != nil {
			t.Error(err)
		}
		var wr wire.WriteRequest
		if err := wr.Unmarshal(raw); err != nil {
			t.Error(err)
		}
		series.Add(int64(len(wr.Series)))
		w.WriteHeader(204)
	}))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL, MaxRequestBytes: 2000})
	wr := batch(1000)
	wr.Metadata = append(wr.Metadata, wire.Metadata{Type: wire.MetadataGauge, FamilyName: "m"})
	res, err := c.Write(context.Background(), wr)
	if err != nil {
		t.Fatal(err)
	}
	if series.Load() != 1000 || maxBody.Load() > 2000 || res.Batches != int(requests.Load()) || res.Batches < 2 {
		t.Fatalf("series %d, largest body %d, batches %d, requests %d", series.Load(), maxBody.Load(), res.Batches, requests.Load())
	}
}

func TestRetryPolicy(t *testing.T) {
	cases := []struct {
		name       string
		answers    []int
		retryAfter string
		timeout    time.Duration
		wantStatus int // 0 = success
		wantCalls  int32
	}{
		{"5xx then ok", []int{500, 502, 204}, "", 5 * time.Second, 0, 3},
		{"400 not retried", []int{400}, "", 5 * time.Second, 400, 1},
		{"404 not retried", []int{404}, "", 5 * time.Second, 400, 1},
		{"401 not retried", []int{401}, "", 5 * time.Second, 400, 1},
		{"408 retried", []int{408, 204}, "", 5 * time.Second, 0, 2},
		{"429 then ok", []int{429, 204}, "0", 5 * time.Second, 0, 2},
		{"429 past deadline", []int{429}, "10", time.Second, 429, 1},
		{"5xx until deadline", []int{503}, "", 300 * time.Millisecond, 502, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				status := tc.answers[min(n, len(tc.answers)-1)]
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(status)
			}))
			defer srv.Close()
			c, _ := New(Config{URL: srv.URL, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			_, err := c.Write(ctx, batch(3))
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				e, ok := err.(*Error)
				if !ok || e.Status != tc.wantStatus {
					t.Fatalf("err = %v, want status %d", err, tc.wantStatus)
				}
				if tc.wantStatus == 429 && e.RetryAfter != 10*time.Second {
					t.Errorf("RetryAfter %v, want the upstream's 10s", e.RetryAfter)
				}
			}
			if tc.wantCalls > 0 && calls.Load() != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.wantCalls)
			}
			if tc.wantCalls == 0 && calls.Load() < 2 {
				t.Errorf("%d calls, want retries until the deadline", calls.Load())
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	if d := parseRetryAfter("7"); d != 7*time.Second {
		t.Errorf("seconds: %v", d)
	}
	if d := parseRetryAfter(time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)); d < time.Second || d > 3*time.Second {
		t.Errorf("date: %v", d)
	}
	if d := parseRetryAfter("soon"); d != 0 {
		t.Errorf("garbage: %v", d)
	}
}

// TestCredentialFailureIs503 checks that a signer that cannot get
// credentials makes the write fail with 503 (retryable), never 400.
func TestCredentialFailureIs503(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL, MinBackoff: 5 * time.Millisecond, Transport: &auth.Transport{Base: NewTransport(), Signer: failingSigner{}}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Write(ctx, batch(1))
	e, ok := err.(*Error)
	if !ok || e.Status != http.StatusServiceUnavailable || !strings.Contains(e.Msg, "cannot get upstream credentials: sts down") {
		t.Fatalf("err = %v", err)
	}
}

type failingSigner struct{}

func (failingSigner) Sign(*http.Request, []byte) error {
	return &auth.CredentialsError{Err: errors.New("sts down")}
}
func (failingSigner) Expired(*http.Request, int, http.Header, []byte) bool { return false }
