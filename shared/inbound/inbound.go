// Package inbound decides who may write through promrelay and as which
// tenant: static bearer tokens, basic-auth users with bcrypt hashes (the
// format of Prometheus' web.yml), and JWTs (HS256 with a shared secret,
// RS256/ES256 with a PEM key or a JWKS), mapped to tenants whose labels the
// relay applies last, so a writer can never write into another tenant's
// series.
//
// Answers: no or malformed credentials → 401 with a WWW-Authenticate header
// per enabled scheme; valid credentials without permission (an unknown
// tenant) → 403. The messages never say which part was wrong, and failures
// are logged without the credential.
package inbound

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/promrelay/promrelay/shared/wire"
)

// Modes of PROMRELAY_INBOUND_AUTH.
const (
	ModeNone   = "none"
	ModeBearer = "bearer"
	ModeBasic  = "basic"
	ModeJWT    = "jwt"
)

// Identity is an authenticated writer.
type Identity struct {
	Subject string       // for logs: a token's hash prefix, a user name, a JWT subject; never a secret
	Tenant  *Tenant      // nil when the writer has no tenant
	Labels  []wire.Label // labels to set last on every series, sorted by name
}

// Errors, mapped to answers by Status.
var (
	ErrMissing   = errors.New("unauthorized: missing or invalid credentials")
	ErrInvalid   = errors.New("unauthorized: missing or invalid credentials")
	ErrForbidden = errors.New("forbidden")
)

// Options configure an Authenticator.
type Options struct {
	Modes      []string          // any of ModeNone, ModeBearer, ModeBasic, ModeJWT
	Tokens     []string          // static bearer tokens
	BasicUsers map[string]string // user name → bcrypt hash
	JWT        *JWTVerifier      // nil unless ModeJWT
	Tenants    *Tenants          // nil: no tenants
	Logger     *slog.Logger
	// BasicCacheTTL bounds how long a successful basic verification is
	// remembered, so bcrypt does not dominate latency; 0 means 5 minutes.
	BasicCacheTTL time.Duration
}

// Authenticator checks the credentials of inbound requests. It is safe for
// concurrent use.
type Authenticator struct {
	none, bearer, basic bool
	jwt                 *JWTVerifier
	tokens              map[[32]byte]string // sha256(token) → tenant name ("" for none)
	users               map[string]string   // user → bcrypt hash
	tenants             *Tenants
	logger              *slog.Logger
	failures            atomic.Int64

	cacheTTL time.Duration
	cacheMu  sync.Mutex
	cache    map[[32]byte]time.Time // sha256(user, password) → expiry of a good verification
}

// New returns an Authenticator for o. It fails when a mode lacks what it
// needs (tokens, users, keys) or a token or user maps to an unknown tenant.
func New(o Options) (*Authenticator, error) {
	a := &Authenticator{tokens: map[[32]byte]string{}, users: o.BasicUsers, tenants: o.Tenants, logger: o.Logger,
		cacheTTL: o.BasicCacheTTL, cache: map[[32]byte]time.Time{}}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if a.cacheTTL <= 0 {
		a.cacheTTL = 5 * time.Minute
	}
	if len(o.Modes) == 0 {
		return nil, errors.New("no inbound authentication mode")
	}
	for _, m := range o.Modes {
		switch m {
		case ModeNone:
			a.none = true
		case ModeBearer:
			a.bearer = true
		case ModeBasic:
			a.basic = true
		case ModeJWT:
			if o.JWT == nil {
				return nil, errors.New("jwt mode needs a secret, a public key or a JWKS")
			}
			a.jwt = o.JWT
		default:
			return nil, fmt.Errorf("unknown inbound authentication mode %q", m)
		}
	}
	for _, t := range o.Tokens {
		if t != "" {
			a.tokens[sha256.Sum256([]byte(t))] = ""
		}
	}
	if o.Tenants != nil {
		for token, tenant := range o.Tenants.Tokens {
			if o.Tenants.byName[tenant] == nil {
				return nil, fmt.Errorf("tenants file: a token maps to unknown tenant %q", tenant)
			}
			a.tokens[sha256.Sum256([]byte(token))] = tenant
		}
		for user, tenant := range o.Tenants.Users {
			if o.Tenants.byName[tenant] == nil {
				return nil, fmt.Errorf("tenants file: user %q maps to unknown tenant %q", user, tenant)
			}
		}
	}
	if a.bearer && len(a.tokens) == 0 {
		return nil, errors.New("bearer mode needs tokens (PROMRELAY_INBOUND_TOKENS, PROMRELAY_INBOUND_TOKENS_FILE or the tenants file)")
	}
	if a.basic && len(a.users) == 0 {
		return nil, errors.New("basic mode needs users (PROMRELAY_INBOUND_BASIC_USERS_FILE)")
	}
	return a, nil
}

// Failures returns the number of failed authentications so far.
func (a *Authenticator) Failures() int64 { return a.failures.Load() }

// Challenge sets one WWW-Authenticate header per enabled scheme.
func (a *Authenticator) Challenge(h http.Header) {
	if a.bearer || a.jwt != nil {
		h.Add("WWW-Authenticate", `Bearer realm="promrelay"`)
	}
	if a.basic || a.jwt != nil || a.bearer {
		h.Add("WWW-Authenticate", `Basic realm="promrelay"`)
	}
}

// Status maps an Authenticate error to its HTTP status: 403 for
// ErrForbidden, 401 otherwise.
func Status(err error) int {
	if errors.Is(err, ErrForbidden) {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}

// Authenticate checks r's credentials: "Authorization: Bearer <token>" (a
// static token, or a JWT), or basic auth (a user with a bcrypt hash, or, for
// clients that only speak basic auth such as client_golang's BasicAuth, a
// static token or a JWT as the password). It returns ErrMissing, ErrInvalid
// or ErrForbidden, and logs each failure without the credential.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	id, scheme, err := a.authenticate(r)
	if err != nil {
		n := a.failures.Add(1)
		reason := "invalid credentials"
		switch {
		case errors.Is(err, ErrForbidden):
			reason = "forbidden"
		case err == ErrMissing:
			reason = "missing credentials"
		}
		a.logger.LogAttrs(r.Context(), slog.LevelWarn, "authentication failed", slog.String("reason", reason),
			slog.String("scheme", scheme), slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path),
			slog.String("detail", detail(err)), slog.Int64("failures_total", n))
	}
	return id, err
}

// detail keeps the wrapped reason of an error for the log (never a secret).
func detail(err error) string {
	msg := err.Error()
	for _, e := range []error{ErrMissing, ErrForbidden} {
		msg = strings.TrimPrefix(msg, e.Error()+": ")
	}
	return msg
}

func (a *Authenticator) authenticate(r *http.Request) (Identity, string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if a.none {
			return Identity{}, "none", nil
		}
		return Identity{}, "", ErrMissing
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer":
		if cred == "" {
			return Identity{}, "bearer", ErrInvalid
		}
		if a.bearer {
			if id, found, err := a.token(cred); found {
				return id, "bearer", err
			}
		}
		if a.jwt != nil && strings.Count(cred, ".") == 2 {
			id, err := a.jwtIdentity(cred)
			return id, "jwt", err
		}
		return Identity{}, "bearer", ErrInvalid
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return Identity{}, "basic", ErrInvalid
		}
		if a.basic {
			if hash, known := a.users[user]; known {
				if !a.checkPassword(user, pass, hash) {
					return Identity{}, "basic", ErrInvalid
				}
				id := Identity{Subject: "user:" + user}
				if a.tenants != nil {
					if t := a.tenants.Users[user]; t != "" {
						id.Tenant = a.tenants.byName[t]
					}
				}
				id, err := a.finish(id)
				return id, "basic", err
			}
		}
		if a.bearer {
			if id, found, err := a.token(pass); found {
				return id, "basic-token", err
			}
		}
		if a.jwt != nil && strings.Count(pass, ".") == 2 {
			id, err := a.jwtIdentity(pass)
			return id, "basic-jwt", err
		}
		return Identity{}, "basic", ErrInvalid
	default:
		return Identity{}, strings.ToLower(scheme), ErrInvalid
	}
}

// token looks up a static token; found reports whether it is known, and
// err is ErrForbidden when it is known but may not write.
func (a *Authenticator) token(tok string) (id Identity, found bool, err error) {
	sum := sha256.Sum256([]byte(tok))
	tenant, ok := a.tokens[sum]
	if !ok {
		return Identity{}, false, nil
	}
	id = Identity{Subject: "token:" + hex.EncodeToString(sum[:4])}
	if tenant != "" {
		id.Tenant = a.tenants.byName[tenant]
	}
	id, err = a.finish(id)
	return id, true, err
}

// finish applies the tenant's labels and the require_tenant rule.
func (a *Authenticator) finish(id Identity) (Identity, error) {
	if id.Tenant != nil {
		id.Labels = id.Tenant.Labels
	}
	if a.tenants != nil && a.tenants.RequireTenant && id.Tenant == nil && len(id.Labels) == 0 {
		return id, fmt.Errorf("%w: %s has no tenant", ErrForbidden, id.Subject)
	}
	return id, nil
}

// checkPassword verifies a basic-auth password against its bcrypt hash,
// remembering good verifications for the cache TTL. The cache key is a
// SHA-256 of user and password, so no plaintext is kept.
func (a *Authenticator) checkPassword(user, pass, hash string) bool {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	h.Write([]byte{0})
	h.Write([]byte(hash))
	var key [32]byte
	h.Sum(key[:0])
	now := time.Now()
	a.cacheMu.Lock()
	exp, ok := a.cache[key]
	a.cacheMu.Unlock()
	if ok && now.Before(exp) {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
		return false
	}
	a.cacheMu.Lock()
	if len(a.cache) >= 10000 {
		clear(a.cache)
	}
	a.cache[key] = now.Add(a.cacheTTL)
	a.cacheMu.Unlock()
	return true
}
