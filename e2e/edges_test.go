package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswersBeforePlatformDeadline gives a request a platform deadline of
// 1.5 s in front of an upstream that never answers: the relay stops
// retrying and answers 504 before the deadline, so the sender sees the
// relay's reason rather than a killed invocation.
func TestAnswersBeforePlatformDeadline(t *testing.T) {
	hang := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(hang)
	srv, _ := startRelay(t, up.URL, relayOpts{requestTimeout: time.Minute})
	h := srv.Config.Handler
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	req := httptest.NewRequestWithContext(ctx, "POST", "/metrics/job/deadline", strings.NewReader("m 1\n"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusGatewayTimeout {
		t.Fatalf("got %d %q, want 504", rec.Code, rec.Body.String())
	}
	if now := time.Now(); now.After(deadline) {
		t.Fatalf("answered %v after the platform deadline", now.Sub(deadline))
	}
}
