package auth_test

import (
	"context"
	"errors"
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
