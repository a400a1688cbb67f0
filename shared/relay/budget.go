package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Budget bounds the memory of all requests in flight together, in bytes:
// each request reserves what it will cost before it does the work
// (its body, and its decoded size times the route's measured expansion
// factor), and gives it back when it answers. A request that does not fit
// waits up to Wait, then gets 429 with Retry-After; one that could never
// fit gets 413. It is safe for concurrent use.
type Budget struct {
	sem   *semaphore.Weighted
	size  int64
	wait  time.Duration
	inUse atomic.Int64 // bytes reserved now
}

// NewBudget returns a budget of size bytes whose requests wait up to wait
// for room.
func NewBudget(size int64, wait time.Duration) *Budget {
	return &Budget{sem: semaphore.NewWeighted(size), size: size, wait: wait}
}

// Size returns the budget in bytes.
func (b *Budget) Size() int64 { return b.size }

// InUse returns the bytes reserved by requests (and scheduled runs) in
// flight now, for the promrelay_memory_budget_in_use_bytes gauge.
func (b *Budget) InUse() int64 { return b.inUse.Load() }

// BudgetError is a request the budget could not take: Need bytes more,
// with Held already reserved, out of Size.
type BudgetError struct {
	Need, Held, Size int64
}

func (e *BudgetError) Error() string {
	if e.Need+e.Held > e.Size {
		return fmt.Sprintf("the request needs about %d bytes of memory, more than this instance's budget of %d bytes (PROMRELAY_MEMORY_LIMIT): send smaller requests", e.Need+e.Held, e.Size)
	}
	return "too many requests in flight for this instance's memory (PROMRELAY_MEMORY_LIMIT); retry later"
}

// TooLarge reports whether the request could never fit.
func (e *BudgetError) TooLarge() bool { return e.Need+e.Held > e.Size }

// Reservation is one request's (or one scheduled run's) share of the
// budget, grown as it learns its size. It implements
// groupstore.Reservation. It is safe for concurrent use.
type Reservation struct {
	b    *Budget
	mu   sync.Mutex
	held int64
}

// NewReservation returns an empty reservation of b.
func (b *Budget) NewReservation() *Reservation { return &Reservation{b: b} }

// Grow reserves n more bytes, waiting up to the budget's wait (and no
// longer than ctx). It returns a *BudgetError when they do not fit.
func (c *Reservation) Grow(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	c.mu.Lock()
	held := c.held
	c.mu.Unlock()
	if held+n > c.b.size {
		return &BudgetError{Need: n, Held: held, Size: c.b.size}
	}
	if !c.b.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, c.b.wait)
		err := c.b.sem.Acquire(wctx, n)
		cancel()
		if err != nil {
			return &BudgetError{Need: n, Held: held, Size: c.b.size}
		}
	}
	c.b.inUse.Add(n)
	c.mu.Lock()
	c.held += n
	c.mu.Unlock()
	return nil
}

// Release gives the whole reservation back; it can grow again after.
func (c *Reservation) Release() {
	c.mu.Lock()
	held := c.held
	c.held = 0
	c.mu.Unlock()
	if held > 0 {
		c.b.inUse.Add(-held)
		c.b.sem.Release(held)
	}
}
