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
	SecurityToken   string // empty for long-term keys
	// Expires is the time until which the credentials may be used and
	// cached; zero for credentials that do not expire.
	Expires time.Time
}

// FetchFunc obtains fresh credentials (an STS call, say). ctx carries the
// values of the request that needed them.
type FetchFunc func(ctx context.Context) (Credentials, error)

// Cache holds credentials and refreshes them before they expire:
//
//   - before Expires-Window, Get returns the cached credentials;
//   - inside the window, Get still returns them at once and starts one
//     background refresh, so requests do not wait on STS; for credentials
//     that live less than twice Window, the window is the second half of
//     their life, so that a refresh does not start on every Get;
//   - once expired (or invalidated, or never fetched), Get waits for the
//     one refresh in flight, which all concurrent callers share.
//
// A refresh runs with the values of the context of the Get that started it
// (context.WithoutCancel: Function Compute's per-invocation credentials
// travel in the context) but not its deadline, as it serves every caller;
// Timeout, when set, bounds it. It is safe for concurrent use; the
// FetchFunc is never called concurrently.
type Cache struct {
	Fetch   FetchFunc
	Window  time.Duration    // refresh this long before expiry; 0 refreshes at expiry
	Timeout time.Duration    // bound on one fetch; 0 leaves it to the FetchFunc's own bounds
	Now     func() time.Time // nil means time.Now
	// OnFetch, when set, is told of every completed fetch and its error
	// (nil for success), for the relay's metrics; it runs on the
	// refresh's goroutine and must be cheap.
	OnFetch func(err error)

	mu        sync.Mutex
	cur       Credentials
	refreshAt time.Time // when a background refresh is due
	have      bool
	inflight  chan struct{}
	lastErr   error
	fetches   int
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
	if c.have && (c.cur.Expires.IsZero() || now.Before(c.refreshAt)) {
		cur := c.cur
		c.mu.Unlock()
		return cur, nil
	}
	if c.have && now.Before(c.cur.Expires) {
		// Inside the refresh window: serve the current credentials and
		// refresh in the background.
		cur := c.cur
		c.startRefresh(ctx)
		c.mu.Unlock()
		return cur, nil
	}
	ch := c.startRefresh(ctx)
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

// startRefresh starts a refresh with ctx's values unless one is in flight
// and returns the channel closed when it ends. c.mu must be held.
func (c *Cache) startRefresh(ctx context.Context) chan struct{} {
	if c.inflight != nil {
		return c.inflight
	}
	ch := make(chan struct{})
	c.inflight = ch
	fctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if c.Timeout > 0 {
		fctx, cancel = context.WithTimeout(fctx, c.Timeout)
	}
	go func() {
		creds, err := c.Fetch(fctx)
		cancel()
		c.mu.Lock()
		c.fetches++
		if err == nil {
			c.cur, c.have, c.lastErr = creds, true, nil
			fetched := c.now()
			c.refreshAt = creds.Expires.Add(-c.Window)
			if half := fetched.Add(creds.Expires.Sub(fetched) / 2); half.After(c.refreshAt) {
				c.refreshAt = half
			}
		} else {
			c.lastErr = err
		}
		c.inflight = nil
		c.mu.Unlock()
		if c.OnFetch != nil {
			c.OnFetch(err)
		}
		close(ch)
	}()
	return ch
}

// Invalidate drops the cached credentials unless they were replaced since
// the caller used them (used is their AccessKeyID and SecurityToken), so
// that a burst of expired-token answers causes one refresh, not one per
// request.
func (c *Cache) Invalidate(used Credentials) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have && c.cur.AccessKeyID == used.AccessKeyID && c.cur.SecurityToken == used.SecurityToken {
		c.have = false
	}
}

// Fetches returns how many fetches have completed (for tests and metrics).
func (c *Cache) Fetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}
