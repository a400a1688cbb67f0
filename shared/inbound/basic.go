package inbound

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is the longest basic-auth password verified against a
// bcrypt hash. bcrypt reads only the first 72 bytes of a password
// (golang.org/x/crypto/bcrypt refuses longer ones with ErrPasswordTooLong),
// so a longer presented password would match on its prefix alone; it is
// rejected (401) instead.
const MaxPasswordBytes = 72

// basicCacheSize bounds the verification cache, in entries; the least
// recently used entry is evicted first.
const basicCacheSize = 10000

// busyRetryAfter is the Retry-After of a *BusyError: a verification at the
// default cost takes tens of milliseconds, so a slot frees well within it.
const busyRetryAfter = time.Second

// passwords verifies basic-auth passwords against bcrypt hashes:
//
//   - an unknown user is verified against a dummy hash of the highest cost
//     among the configured users, so the answer takes as long as for a
//     known user with a wrong password and user names cannot be found by
//     timing;
//   - at most cap(sem) verifications run at once, bounding the CPU an
//     attacker can take by guessing;
//   - good verifications are remembered in an LRU keyed by the user and an
//     HMAC-SHA256 of the password under a random per-process key, so no
//     password is kept and no other password can hit an entry.
type passwords struct {
	users   map[string][]byte // user → bcrypt hash
	dummy   func() []byte     // a bcrypt hash of a random password, made on first use
	sem     chan struct{}
	ttl     time.Duration
	cache   *lru.Cache[cacheKey, time.Time] // → expiry of a good verification
	macKey  [32]byte
	compare func(hash, password []byte) error // bcrypt.CompareHashAndPassword; replaced in tests
	now     func() time.Time
}

type cacheKey struct {
	user string
	mac  [sha256.Size]byte
}

func newPasswords(users map[string]string, ttl time.Duration, maxConcurrent int) (*passwords, error) {
	if len(users) == 0 {
		return nil, errors.New("PROMRELAY_INBOUND_AUTH: basic mode needs users (PROMRELAY_INBOUND_BASIC_USERS_FILE)")
	}
	if maxConcurrent < 1 {
		return nil, fmt.Errorf("PROMRELAY_INBOUND_BASIC_MAX_CONCURRENT: basic mode needs at least 1 concurrent bcrypt verification, got %d", maxConcurrent)
	}
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	cache, err := lru.New[cacheKey, time.Time](basicCacheSize)
	if err != nil {
		return nil, err
	}
	p := &passwords{users: make(map[string][]byte, len(users)), sem: make(chan struct{}, maxConcurrent), ttl: ttl, cache: cache,
		compare: bcrypt.CompareHashAndPassword, now: time.Now}
	cost := bcrypt.MinCost
	for u, h := range users {
		c, err := bcrypt.Cost([]byte(h))
		if err != nil {
			return nil, fmt.Errorf("PROMRELAY_INBOUND_BASIC_USERS_FILE: the password of %q is not a bcrypt hash", u)
		}
		cost = max(cost, c)
		p.users[u] = []byte(h)
	}
	rand.Read(p.macKey[:])
	p.dummy = sync.OnceValue(func() []byte {
		h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
		if err != nil {
			panic("inbound: cannot make the dummy bcrypt hash: " + err.Error()) // cost was read from a valid hash
		}
		return h
	})
	return p, nil
}

// check reports whether pass is user's password. known is false for a
// user without a hash, who is verified against the dummy hash and never
// accepted. It returns a *BusyError when no verification slot frees before
// ctx ends.
func (p *passwords) check(ctx context.Context, user, pass string) (bool, error) {
	hash, known := p.users[user]
	m := hmac.New(sha256.New, p.macKey[:])
	m.Write([]byte(pass))
	key := cacheKey{user: user}
	m.Sum(key.mac[:0])
	if exp, ok := p.cache.Get(key); ok && known && p.now().Before(exp) {
		return true, nil
	}
	select {
	case p.sem <- struct{}{}:
	default:
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return false, &BusyError{RetryAfter: busyRetryAfter}
		}
	}
	defer func() { <-p.sem }()
	if !known {
		hash = p.dummy()
	}
	if p.compare(hash, []byte(pass)) != nil || !known {
		return false, nil
	}
	p.cache.Add(key, p.now().Add(p.ttl))
	return true, nil
}

// basicAuth checks a basic-auth user and password, in this order: the
// password as a static token (client_golang's BasicAuth("any", token)),
// then the user's bcrypt hash (or the dummy hash for an unknown user),
// then the password as a JWT. Every user name costs one bcrypt
// verification unless the password is a token, too long, or cached.
func (a *Authenticator) basicAuth(r *http.Request, user, pass string) (Identity, string, error) {
	if a.bearer {
		if id, found, err := a.token(pass); found {
			return id, "basic-token", err
		}
	}
	tooLong := false
	if a.passwords != nil {
		if len(pass) > MaxPasswordBytes {
			tooLong = true
		} else {
			good, err := a.passwords.check(r.Context(), user, pass)
			if err != nil {
				return Identity{}, "basic", err
			}
			if good {
				id := Identity{Subject: "user:" + user}
				if a.tenants != nil {
					if t := a.tenants.Users[user]; t != "" {
						id.Tenant = a.tenants.byName[t]
					}
				}
				if id.Tenant == nil {
					// A user without a tenant writes, as before scopes.
					id.Scopes = ScopeWrite
				}
				id, err := a.finish(id)
				return id, "basic", err
			}
		}
	}
	if a.jwt != nil && strings.Count(pass, ".") == 2 {
		id, err := a.jwtIdentity(pass)
		return id, "basic-jwt", err
	}
	if tooLong {
		return Identity{}, "basic", fmt.Errorf("%w: password longer than %d bytes", ErrInvalid, MaxPasswordBytes)
	}
	return Identity{}, "basic", ErrInvalid
}
