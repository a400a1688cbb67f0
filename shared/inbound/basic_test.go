package inbound_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/promrelay/promrelay/shared/inbound"
)

// countCompare wraps a's bcrypt comparison with a counter of calls and the
// cost of the last hash compared.
func countCompare(t *testing.T, a *inbound.Authenticator) (calls *atomic.Int64, lastCost *atomic.Int64) {
	t.Helper()
	calls, lastCost = new(atomic.Int64), new(atomic.Int64)
	real := inbound.Compare(a)
	inbound.SetCompare(a, func(hash, pass []byte) error {
		calls.Add(1)
		c, _ := bcrypt.Cost(hash)
		lastCost.Store(int64(c))
		return real(hash, pass)
	})
	return calls, lastCost
}

func basicAuth(t *testing.T, users map[string]string, modes ...string) *inbound.Authenticator {
	t.Helper()
	a, err := inbound.New(inbound.Options{Modes: modes, Tokens: []string{"plain-token"}, BasicUsers: users,
		JWT: mustHS(t), Logger: slog.New(slog.DiscardHandler), MaxConcurrentBcrypt: 2})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustHS(t *testing.T) *inbound.JWTVerifier {
	v, err := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBasicUnknownUserCostsABcrypt: an unknown user is verified against a
// dummy hash of the users' cost, as a known user with a wrong password is,
// so the two cannot be told apart by timing. The counter replaces a
// wall-clock comparison.
func TestBasicUnknownUserCostsABcrypt(t *testing.T) {
	const cost int64 = 5 // bcrypt.MinCost + 1
	hash, _ := bcrypt.GenerateFromPassword([]byte("alice-pass"), int(cost))
	a := basicAuth(t, map[string]string{"alice": string(hash)}, "bearer", "basic", "jwt")
	calls, lastCost := countCompare(t, a)
	jwtPass := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "x", "exp": 1}) // expired
	for _, tc := range []struct {
		name      string
		user, pwd string
		wantCalls int64
		wantOK    bool
	}{
		{"known user, wrong password", "alice", "wrong", 1, false},
		{"unknown user", "bob", "wrong", 1, false},
		{"unknown user, known user's password", "bob", "alice-pass", 1, false},
		{"unknown user, JWT-shaped password under 72 bytes", "bob", "a.b.c", 1, false},
		{"known user, good password", "alice", "alice-pass", 1, true},
		{"known user, cached", "alice", "alice-pass", 0, true},
		{"token as password: no bcrypt", "any", "plain-token", 0, true},
		{"JWT as password: over 72 bytes, no bcrypt", "bob", jwtPass, 0, false},
		{"known user, JWT as password: no bcrypt", "alice", jwtPass, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			_, err := a.Authenticate(request(basic(tc.user, tc.pwd)))
			if (err == nil) != tc.wantOK {
				t.Fatalf("err %v, want ok=%v", err, tc.wantOK)
			}
			if got := calls.Load() - before; got != tc.wantCalls {
				t.Fatalf("%d bcrypt verifications, want %d", got, tc.wantCalls)
			}
			if tc.wantCalls > 0 && lastCost.Load() != cost {
				t.Fatalf("verified against a hash of cost %d, want %d", lastCost.Load(), cost)
			}
		})
	}
}

// TestBasicPasswordOver72Bytes: bcrypt reads 72 bytes; a longer password
// whose first 72 bytes match must not get in.
func TestBasicPasswordOver72Bytes(t *testing.T) {
	pw := strings.Repeat("p", inbound.MaxPasswordBytes)
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := basicAuth(t, map[string]string{"alice": string(hash)}, "basic")
	calls, _ := countCompare(t, a)
	if _, err := a.Authenticate(request(basic("alice", pw))); err != nil {
		t.Fatalf("72-byte password: %v", err)
	}
	_, err = a.Authenticate(request(basic("alice", pw+"-and-anything-else")))
	if inbound.Status(err) != 401 || !errors.Is(err, inbound.ErrInvalid) {
		t.Fatalf("73+ byte password with a matching prefix: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d bcrypt verifications, want 1 (none for the long password)", calls.Load())
	}
}

// TestBasicConcurrencyCap holds the only verification slot and checks that
// a second verification waits for its context and then gets a *BusyError
// (503 with Retry-After), not counted as a failure; a cached verification
// needs no slot; and a waiting one proceeds when the slot frees.
func TestBasicConcurrencyCap(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	a, err := inbound.New(inbound.Options{Modes: []string{"basic"}, BasicUsers: map[string]string{"alice": string(hash), "bob": string(hash)},
		Logger: slog.New(slog.DiscardHandler), MaxConcurrentBcrypt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(request(basic("bob", "pw"))); err != nil { // cached from now on
		t.Fatal(err)
	}
	real := inbound.Compare(a)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	inbound.SetCompare(a, func(hash, pass []byte) error {
		once.Do(func() { close(entered); <-release })
		return real(hash, pass)
	})
	first := make(chan error)
	go func() { _, err := a.Authenticate(request(basic("alice", "pw"))); first <- err }()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = a.Authenticate(request(basic("alice", "pw")).WithContext(ctx))
	var busy *inbound.BusyError
	if !errors.As(err, &busy) || busy.RetryAfter.Seconds() < 1 || inbound.Status(err) != 503 {
		t.Fatalf("over the cap: %v (status %d), want a *BusyError with Retry-After ≥ 1s and 503", err, inbound.Status(err))
	}
	if a.Failures() != 0 {
		t.Fatalf("busy counted as %d failures", a.Failures())
	}
	if _, err := a.Authenticate(request(basic("bob", "pw"))); err != nil {
		t.Fatalf("cached verification needs a slot: %v", err)
	}
	second := make(chan error)
	go func() { _, err := a.Authenticate(request(basic("alice", "wrong"))); second <- err }()
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the verification in flight: %v", err)
	}
	if err := <-second; inbound.Status(err) != 401 {
		t.Fatalf("the waiting verification: %v, want 401", err)
	}
}

// TestBasicCacheIsLRU fills the verification cache past its 10,000
// entries while one user keeps writing: that user's entry survives (the
// old cache was wiped whole, costing every writer a bcrypt at once).
func TestBasicCacheIsLRU(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	const n = 10000
	users := map[string]string{"hot": string(hash)}
	for i := range n {
		users[fmt.Sprint("u", i)] = string(hash)
	}
	a := basicAuth(t, users, "basic")
	var calls atomic.Int64
	inbound.SetCompare(a, func(_, pass []byte) error { // bcrypt's answer, without its cost
		calls.Add(1)
		if string(pass) != "pw" {
			return bcrypt.ErrMismatchedHashAndPassword
		}
		return nil
	})
	auth := func(user string) {
		t.Helper()
		if _, err := a.Authenticate(request(basic(user, "pw"))); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
	}
	for i := range n {
		if i%1000 == 0 {
			auth("hot")
		}
		auth(fmt.Sprint("u", i))
	}
	before := calls.Load()
	auth("hot")
	if calls.Load() != before {
		t.Fatal("the recently used entry was evicted")
	}
	if calls.Load() != n+1 {
		t.Fatalf("%d verifications for %d users", calls.Load(), n+1)
	}
	auth("u0") // the least recently used entry is gone
	if calls.Load() != n+2 {
		t.Fatalf("%d verifications, want the evicted u0 verified again", calls.Load())
	}
}

// TestBasicCacheKeyNeedsThePassword: a cached good verification does not
// let another password of the same user in, nor the same password for
// another user.
func TestBasicCacheKeyNeedsThePassword(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	other, _ := bcrypt.GenerateFromPassword([]byte("other"), bcrypt.MinCost)
	a := basicAuth(t, map[string]string{"alice": string(hash), "bob": string(other)}, "basic")
	calls, _ := countCompare(t, a)
	if _, err := a.Authenticate(request(basic("alice", "pw"))); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"alice", "pw\x00"}, {"alice", "PW"}, {"bob", "pw"}, {"alice\x00", "pw"}} {
		if _, err := a.Authenticate(request(basic(c[0], c[1]))); inbound.Status(err) != 401 {
			t.Fatalf("%q/%q: %v", c[0], c[1], err)
		}
	}
	if calls.Load() != 5 {
		t.Fatalf("%d verifications, want 5 (none answered from the cache)", calls.Load())
	}
}

func TestBasicConfigErrors(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, tc := range []struct {
		name string
		o    inbound.Options
		want string
	}{
		{"no cap", inbound.Options{Modes: []string{"basic"}, BasicUsers: map[string]string{"u": string(hash)}}, "PROMRELAY_INBOUND_BASIC_MAX_CONCURRENT"},
		{"not a hash", inbound.Options{Modes: []string{"basic"}, BasicUsers: map[string]string{"u": "$2y$plaintext-password"}, MaxConcurrentBcrypt: 1}, "not a bcrypt hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inbound.New(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "plaintext") {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
}
