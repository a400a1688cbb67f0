package auth_test

import (
	"context"
	"errors"
	"net/http"
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

func TestRegionFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write": "eu-west-1",
		"https://aps-workspaces-fips.us-east-1.amazonaws.com/workspaces/ws-1":                "us-east-1",
		"https://prometheus.example/api/v1/write":                                            "",
	} {
		if got := auth.RegionFromURL(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func TestStaticAndExpired(t *testing.T) {
	req, _ := http.NewRequest("POST", "http://x", nil)
	(&auth.Static{Username: "u", Password: "p"}).Sign(req, nil)
	if u, p, ok := req.BasicAuth(); !ok || u != "u" || p != "p" {
		t.Fatal("basic auth not set")
	}
	req.Header.Del("Authorization")
	(&auth.Static{BearerToken: "tok"}).Sign(req, nil)
	if req.Header.Get("Authorization") != "Bearer tok" {
		t.Fatal("bearer not set")
	}
	if (&auth.Static{}).Expired(req, 401, nil, nil) {
		t.Fatal("static credentials cannot expire")
	}
}
