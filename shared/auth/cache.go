package auth

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Credentials are one set of cloud credentials.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string    // empty for long-term keys
	Expires         time.Time // zero for credentials that do not expire
}

// FetchFunc obtains fresh credentials (an STS call, say).
type FetchFunc func(ctx context.Context) (Credentials, error)

// Cache holds credentials and refreshes them before they expire:
//
//   - before Expires-Window, Get returns the cached credentials;
//   - inside the window, Get still returns them at once and starts one
//     background refresh, so requests do not wait on STS;
//   - once expired (or invalidated, or never fetched), Get waits for the
//     one refresh in flight, which all concurrent callers share.
//
// It is safe for concurrent use; the FetchFunc is never called
// concurrently.
type Cache struct {
	Fetch   FetchFunc
	Window  time.Duration    // refresh this long before expiry
	Timeout time.Duration    // bound on one fetch; 0 means 30 s
	Now     func() time.Time // nil means time.Now

	mu       sync.Mutex
	cur      Credentials
	have     bool
	inflight chan struct{}
	lastErr  error
	fetches  int
}

func (c *Cache) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Get returns valid credentials, fetching them when needed. Errors come from
// the FetchFunc.
func (c *Cache) Get(ctx context.Context) (Credentials, error) {
	c.mu.Lock()
	now := c.now()
	if c.have && (c.cur.Expires.IsZero() || now.Before(c.cur.Expires.Add(-c.Window))) {
		cur := c.cur
		c.mu.Unlock()
		return cur, nil
	}
	if c.have && now.Before(c.cur.Expires) {
		// Inside the refresh window: serve the current credentials and
		// refresh in the background.
		cur := c.cur
		c.startRefresh()
		c.mu.Unlock()
		return cur, nil
	}
	ch := c.startRefresh()
	c.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return Credentials{}, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have && (c.cur.Expires.IsZero() || c.now().Before(c.cur.Expires)) {
		return c.cur, nil
	}
	if c.lastErr != nil {
		return Credentials{}, c.lastErr
	}
	return Credentials{}, errors.New("credentials expired during refresh")
}

// startRefresh starts a refresh unless one is in flight and returns the
// channel closed when it ends. c.mu must be held.
func (c *Cache) startRefresh() chan struct{} {
	if c.inflight != nil {
		return c.inflight
	}
	ch := make(chan struct{})
	c.inflight = ch
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		creds, err := c.Fetch(ctx)
		cancel()
		c.mu.Lock()
		c.fetches++
		if err == nil {
			c.cur, c.have, c.lastErr = creds, true, nil
		} else {
			c.lastErr = err
		}
		c.inflight = nil
		c.mu.Unlock()
		close(ch)
	}()
	return ch
}

// Invalidate drops the cached credentials unless they were replaced since
// the caller used them (used is their AccessKeyID and token), so that a
// burst of expired-token answers causes one refresh, not one per request.
// It reports whether the credentials were dropped or already replaced.
func (c *Cache) Invalidate(used Credentials) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.have {
		return true
	}
	if c.cur.AccessKeyID != used.AccessKeyID || c.cur.SecurityToken != used.SecurityToken {
		return true // already refreshed: re-signing will use the new ones
	}
	c.have = false
	return true
}

// Fetches returns how many fetches have completed (for tests and metrics).
func (c *Cache) Fetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}
