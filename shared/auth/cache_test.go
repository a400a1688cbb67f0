package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/auth"
)

func TestCacheRefreshesInWindowWithoutBlocking(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var calls atomic.Int32
	release := make(chan struct{}, 10)
	c := &auth.Cache{Window: time.Minute, Now: clock, Fetch: func(ctx context.Context) (auth.Credentials, error) {
		n := calls.Add(1)
		if n > 1 {
			<-release // a slow STS
		}
		return auth.Credentials{AccessKeyID: string(rune('A' + n)), Expires: clock().Add(10 * time.Minute)}, nil
	}}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("50 concurrent first calls made %d fetches", calls.Load())
	}
	advance(9*time.Minute + 30*time.Second) // inside the window
	got, err := c.Get(context.Background())
	if err != nil || got.AccessKeyID != "B" {
		t.Fatalf("inside the window: %+v %v, want the old credentials at once", got, err)
	}
	release <- struct{}{}
	for i := 0; i < 100 && c.Fetches() < 2; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if got, _ := c.Get(context.Background()); got.AccessKeyID != "C" || calls.Load() != 2 {
		t.Fatalf("after the background refresh: %+v, %d calls", got, calls.Load())
	}
	// Invalidate with stale credentials is a no-op; with current ones it forces a fetch.
	c.Invalidate(auth.Credentials{AccessKeyID: "B"})
	release <- struct{}{}
	if got, _ := c.Get(context.Background()); got.AccessKeyID != "C" {
		t.Fatalf("stale invalidation dropped current credentials: %+v", got)
	}
	c.Invalidate(auth.Credentials{AccessKeyID: "C"})
	if got, _ := c.Get(context.Background()); got.AccessKeyID != "D" {
		t.Fatalf("after invalidation: %+v", got)
	}
}

func TestCacheErrorAndRecovery(t *testing.T) {
	fail := atomic.Bool{}
	fail.Store(true)
	c := &auth.Cache{Fetch: func(ctx context.Context) (auth.Credentials, error) {
		if fail.Load() {
			return auth.Credentials{}, errors.New("sts down")
		}
		return auth.Credentials{AccessKeyID: "ok"}, nil
	}}
	if _, err := c.Get(context.Background()); err == nil || err.Error() != "sts down" {
		t.Fatalf("err = %v", err)
	}
	fail.Store(false)
	if got, err := c.Get(context.Background()); err != nil || got.AccessKeyID != "ok" {
		t.Fatalf("%+v %v", got, err)
	}
}

type ctxKey struct{}

// TestCacheRefreshCarriesTheCallersValues checks that a refresh sees the
// values of the context of the Get that started it (Function Compute's
// per-invocation credentials travel there), but not its cancellation: the
// refresh serves every caller.
func TestCacheRefreshCarriesTheCallersValues(t *testing.T) {
	fetchErr := make(chan error, 1)
	c := &auth.Cache{Fetch: func(ctx context.Context) (auth.Credentials, error) {
		v, _ := ctx.Value(ctxKey{}).(string)
		time.Sleep(20 * time.Millisecond)
		fetchErr <- ctx.Err()
		return auth.Credentials{AccessKeyID: v}, nil
	}}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "from-invocation"), 5*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller whose deadline passes while waiting: %v", err)
	}
	if err := <-fetchErr; err != nil {
		t.Fatalf("the refresh was cancelled with its first caller: %v", err)
	}
	if got, err := c.Get(context.Background()); err != nil || got.AccessKeyID != "from-invocation" {
		t.Fatalf("%+v %v", got, err)
	}
}

// TestCacheTimeoutBoundsAFetch checks Timeout, and that credentials that
// arrive already expired are an error, not served.
func TestCacheTimeoutBoundsAFetch(t *testing.T) {
	c := &auth.Cache{Timeout: 10 * time.Millisecond, Fetch: func(ctx context.Context) (auth.Credentials, error) {
		<-ctx.Done()
		return auth.Credentials{}, ctx.Err()
	}}
	if _, err := c.Get(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	c = &auth.Cache{Fetch: func(ctx context.Context) (auth.Credentials, error) {
		return auth.Credentials{AccessKeyID: "old", Expires: time.Now().Add(-time.Second)}, nil
	}}
	if _, err := c.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "expired during refresh") {
		t.Fatalf("expired credentials: %v", err)
	}
}

// TestCacheShortLivedCredentials checks that credentials living less than
// twice the window are refreshed in the second half of their life, not on
// every Get.
func TestCacheShortLivedCredentials(t *testing.T) {
	clock := newFakeClock()
	var calls atomic.Int32
	c := &auth.Cache{Window: 5 * time.Minute, Now: clock.Now, Fetch: func(ctx context.Context) (auth.Credentials, error) {
		calls.Add(1)
		return auth.Credentials{AccessKeyID: "k", Expires: clock.Now().Add(time.Minute)}, nil
	}}
	for i := 0; i < 5; i++ {
		c.Get(context.Background())
		clock.Advance(5 * time.Second)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d fetches in the first half of the credentials' life, want 1", calls.Load())
	}
	clock.Advance(10 * time.Second) // 35 s in
	c.Get(context.Background())
	for i := 0; i < 100 && c.Fetches() < 2; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if c.Fetches() != 2 {
		t.Fatalf("%d fetches in the second half, want a background refresh", c.Fetches())
	}
}
