// Package inbound decides who may write through promrelay and as which
// tenant: static bearer tokens, basic-auth users with bcrypt hashes (the
// format of Prometheus' web.yml), and JWTs (HS256 with a shared secret,
// RS256/ES256 with a PEM key or a JWKS), mapped to tenants whose labels the
// relay applies last, so a writer can never write into another tenant's
// series. Mode none (no authentication) stands alone: next to another mode
// it would make that mode optional.
//
// Answers: no or malformed credentials → 401 with a WWW-Authenticate header
// per enabled scheme; valid credentials without permission (an unknown
// tenant) → 403; too many bcrypt verifications in flight → 503 with
// Retry-After (*BusyError). The messages never say which part was wrong,
// and neither errors nor logs contain a token, password or hash.
//
// Basic auth costs one bcrypt verification per uncached attempt whether or
// not the user exists (unknown users are verified against a dummy hash), so
// user names cannot be found by timing; passwords over 72 bytes, which
// bcrypt would truncate, are refused.
package inbound

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/promrelay/promrelay/shared/wire"
)

// Modes of PROMRELAY_INBOUND_AUTH.
const (
	ModeNone   = "none"
	ModeBearer = "bearer"
	ModeBasic  = "basic"
	ModeJWT    = "jwt"
)

// Identity is an authenticated writer or reader.
type Identity struct {
	Subject string       // for logs: a token's hash prefix, a user name, a JWT subject; never a secret
	Tenant  *Tenant      // nil when the caller has no tenant
	Labels  []wire.Label // the tenant's labels, sorted by name: set last on every series written, forced onto every selector read
	Scopes  Scope        // what the caller may do
	// Scheme is how the caller authenticated: bearer (a static token),
	// jwt, basic, none, or "" without inbound authentication.
	Scheme string
}

// Scope is a set of permissions: ScopeWrite, ScopeRead, or both.
type Scope uint8

// Scopes. Writing (pushes, remote write) needs ScopeWrite; reading (the
// PromQL HTTP API, remote read) needs ScopeRead. A caller who has neither
// for the route gets 403.
const (
	ScopeWrite Scope = 1 << iota
	ScopeRead

	// ScopeAll is what mode none grants: every route it serves.
	ScopeAll = ScopeWrite | ScopeRead
)

// Names of the scopes, as the tenants file's scopes: list and the JWT
// "scope" claim (RFC 8693, section 4.2: space-separated) spell them.
const (
	ScopeNameWrite = "write"
	ScopeNameRead  = "read"
)

// Has reports whether s includes every scope of want.
func (s Scope) Has(want Scope) bool { return s&want == want }

// String names the scopes of s, space-separated ("write read").
func (s Scope) String() string {
	var names []string
	if s.Has(ScopeWrite) {
		names = append(names, ScopeNameWrite)
	}
	if s.Has(ScopeRead) {
		names = append(names, ScopeNameRead)
	}
	return strings.Join(names, " ")
}

// ParseScope parses scope names ("read", "write"); an unknown name is an
// error naming it.
func ParseScope(names []string) (Scope, error) {
	var s Scope
	for _, n := range names {
		switch n {
		case ScopeNameWrite:
			s |= ScopeWrite
		case ScopeNameRead:
			s |= ScopeRead
		default:
			return 0, fmt.Errorf("unknown scope %q (want read or write)", n)
		}
	}
	return s, nil
}

// Errors, mapped to answers by Status.
var (
	ErrMissing   = errors.New("unauthorized: missing or invalid credentials")
	ErrInvalid   = errors.New("unauthorized: missing or invalid credentials")
	ErrForbidden = errors.New("forbidden")
)

// BusyError is returned by Authenticate when a basic-auth password needed a
// bcrypt verification but Options.MaxConcurrentBcrypt verifications were
// already running and the request's context ended before a slot freed.
// Status maps it to 503 Service Unavailable; the HTTP layer sends
// Retry-After with RetryAfter rounded up to whole seconds (RFC 9110,
// section 10.2.3), so senders retry instead of dropping the samples.
type BusyError struct {
	RetryAfter time.Duration // how long the sender should wait; always ≥ 1 s
}

func (e *BusyError) Error() string {
	return "too many password verifications in flight, retry later"
}

// Options configure an Authenticator.
type Options struct {
	Modes      []string          // any of ModeBearer, ModeBasic, ModeJWT; or ModeNone alone
	Tokens     []string          // static bearer tokens of writers without a tenant (ScopeWrite)
	ReadTokens []string          // static bearer tokens of readers without a tenant (ScopeRead): they read every series
	BasicUsers map[string]string // user name → bcrypt hash
	JWT        *JWTVerifier      // nil unless ModeJWT
	Tenants    *Tenants          // nil: no tenants
	Logger     *slog.Logger
	// BasicCacheTTL bounds how long a successful basic verification is
	// remembered, so bcrypt does not dominate latency; 0 means 5 minutes.
	BasicCacheTTL time.Duration
	// MaxConcurrentBcrypt caps the bcrypt verifications running at once
	// (PROMRELAY_INBOUND_BASIC_MAX_CONCURRENT); a request over the cap
	// waits for a slot until its context ends, then gets a *BusyError.
	// Required (≥ 1) with ModeBasic.
	MaxConcurrentBcrypt int
	// OnFailure, when set, is told of every refused request: the
	// scheme the caller used (bearer, jwt, basic, "" for none, other for
	// any other Authorization scheme) and
	// the reason, one of missing, invalid, forbidden, busy (the log
	// line's categories), for the relay's metrics. It must be cheap.
	OnFailure func(scheme, reason string)
}

// Authenticator checks the credentials of inbound requests. It is safe for
// concurrent use.
type Authenticator struct {
	none, bearer, basic bool
	jwt                 *JWTVerifier
	tokens              map[[32]byte]tokenGrant // sha256(token) → what it grants
	tenants             *Tenants
	logger              *slog.Logger
	onFailure           func(scheme, reason string)
	failures            atomic.Int64
	passwords           *passwords // nil unless ModeBasic
}

// New returns an Authenticator for o. It fails with one line naming the
// setting at fault when a mode is unknown, ModeNone is combined with
// another mode or with require_tenant, a mode lacks what it needs (tokens,
// users, keys, MaxConcurrentBcrypt), a user's hash is not a bcrypt hash,
// or a token or user maps to an unknown tenant.
func New(o Options) (*Authenticator, error) {
	a := &Authenticator{tokens: map[[32]byte]tokenGrant{}, tenants: o.Tenants, logger: o.Logger, onFailure: o.OnFailure}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if len(o.Modes) == 0 {
		return nil, errors.New("PROMRELAY_INBOUND_AUTH: no inbound authentication mode")
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
				return nil, errors.New("PROMRELAY_INBOUND_AUTH: jwt mode needs a secret, a public key or a JWKS")
			}
			a.jwt = o.JWT
		default:
			return nil, fmt.Errorf("PROMRELAY_INBOUND_AUTH: unknown inbound authentication mode %q", m)
		}
	}
	// "none" admits every request without credentials: next to another
	// mode it would turn that mode into an optional one (and skip
	// require_tenant for every anonymous writer).
	if a.none && (a.bearer || a.basic || a.jwt != nil) {
		return nil, fmt.Errorf("PROMRELAY_INBOUND_AUTH: mode none cannot be combined with other modes (got %s)", strings.Join(o.Modes, ","))
	}
	if a.none && o.Tenants != nil && o.Tenants.RequireTenant {
		return nil, errors.New("PROMRELAY_INBOUND_AUTH: mode none admits writers without a tenant, but the tenants file sets require_tenant")
	}
	for _, t := range o.Tokens {
		if t != "" {
			a.tokens[sha256.Sum256([]byte(t))] = tokenGrant{scopes: ScopeWrite}
		}
	}
	for _, t := range o.ReadTokens {
		if t == "" {
			continue
		}
		sum := sha256.Sum256([]byte(t))
		if _, dup := a.tokens[sum]; dup {
			// One token, two meanings: refuse rather than pick one.
			return nil, errors.New("PROMRELAY_INBOUND_READ_TOKENS: a read token is also a write token; give readers and writers different tokens")
		}
		a.tokens[sum] = tokenGrant{scopes: ScopeRead}
	}
	if o.Tenants != nil {
		for token, tenant := range o.Tenants.Tokens {
			if o.Tenants.byName[tenant] == nil {
				return nil, fmt.Errorf("PROMRELAY_TENANTS_FILE: a token maps to unknown tenant %q", tenant)
			}
			sum := sha256.Sum256([]byte(token))
			if g, dup := a.tokens[sum]; dup && g.scopes.Has(ScopeRead) {
				// A read token of every series and a tenant's token at once:
				// refuse rather than pick one.
				return nil, fmt.Errorf("PROMRELAY_TENANTS_FILE: the token of tenant %q is also in PROMRELAY_INBOUND_READ_TOKENS", tenant)
			}
			// Also a write token without a tenant: the tenant wins, as it
			// always has.
			a.tokens[sum] = tokenGrant{tenant: tenant}
		}
		for user, tenant := range o.Tenants.Users {
			if o.Tenants.byName[tenant] == nil {
				return nil, fmt.Errorf("PROMRELAY_TENANTS_FILE: user %q maps to unknown tenant %q", user, tenant)
			}
		}
	}
	if a.bearer && len(a.tokens) == 0 {
		return nil, errors.New("PROMRELAY_INBOUND_AUTH: bearer mode needs tokens (PROMRELAY_INBOUND_TOKENS, PROMRELAY_INBOUND_TOKENS_FILE or the tenants file)")
	}
	if a.basic {
		p, err := newPasswords(o.BasicUsers, o.BasicCacheTTL, o.MaxConcurrentBcrypt)
		if err != nil {
			return nil, err
		}
		a.passwords = p
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
// ErrForbidden, 503 for a *BusyError (send Retry-After), 401 otherwise.
func Status(err error) int {
	var busy *BusyError
	switch {
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.As(err, &busy):
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// Authenticate checks r's credentials: "Authorization: Bearer <token>" (a
// static token, or a JWT), or basic auth (a user with a bcrypt hash, or, for
// clients that only speak basic auth such as client_golang's BasicAuth, a
// static token or a JWT as the password). It returns ErrMissing, ErrInvalid
// or ErrForbidden (wrapped), or a *BusyError when a bcrypt verification
// could not start before r's context ended, and logs each failure without
// the credential. Failures() does not count a *BusyError.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	id, scheme, err := a.authenticate(r)
	if err != nil {
		var busy *BusyError
		var n int64
		if errors.As(err, &busy) {
			n = a.failures.Load()
		} else {
			n = a.failures.Add(1)
		}
		reason, category := "invalid credentials", "invalid"
		switch {
		case busy != nil:
			reason, category = "busy", "busy"
		case errors.Is(err, ErrForbidden):
			reason, category = "forbidden", "forbidden"
		case err == ErrMissing:
			reason, category = "missing credentials", "missing"
		}
		a.logger.LogAttrs(r.Context(), slog.LevelWarn, "authentication failed", slog.String("reason", reason),
			slog.String("scheme", schemeLabel(scheme)), slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path),
			slog.String("detail", detail(err)), slog.Int64("failures_total", n))
		if a.onFailure != nil {
			a.onFailure(schemeLabel(scheme), category)
		}
		return id, err
	}
	id.Scheme = scheme
	return id, nil
}

// schemeLabel maps the scheme a caller used to a closed set — bearer,
// jwt, basic, none, "" (no credentials) or other — so that what a caller
// writes in its Authorization header cannot make metric series.
func schemeLabel(scheme string) string {
	switch scheme {
	case "", "bearer", "jwt", "basic", "none":
		return scheme
	}
	return "other"
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
			return Identity{Scopes: ScopeAll}, "none", nil
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
		return a.basicAuth(r, user, pass)
	default:
		return Identity{}, strings.ToLower(scheme), ErrInvalid
	}
}

// token looks up a static token; found reports whether it is known, and
// err is ErrForbidden when it is known but may not write.
func (a *Authenticator) token(tok string) (id Identity, found bool, err error) {
	sum := sha256.Sum256([]byte(tok))
	grant, ok := a.tokens[sum]
	if !ok {
		return Identity{}, false, nil
	}
	id = Identity{Subject: "token:" + hex.EncodeToString(sum[:4]), Scopes: grant.scopes}
	if grant.tenant != "" {
		id.Tenant = a.tenants.byName[grant.tenant]
	}
	id, err = a.finish(id)
	return id, true, err
}

// tokenGrant is what a static token grants: its tenant's scopes, or
// scopes of its own for a token without a tenant.
type tokenGrant struct {
	tenant string // "" for none
	scopes Scope  // without a tenant
}

// finish applies the tenant's labels and scopes and the require_tenant
// rule. A tenant from the tenants file grants its scopes: for a static
// token or a basic user they are the identity's scopes; for a JWT they
// bound the token's "scope" claim.
func (a *Authenticator) finish(id Identity) (Identity, error) {
	if id.Tenant != nil {
		id.Labels = id.Tenant.Labels
		if id.Scopes == 0 {
			id.Scopes = id.Tenant.Scopes
		} else {
			id.Scopes &= id.Tenant.Scopes
		}
	}
	if a.tenants != nil && a.tenants.RequireTenant && id.Tenant == nil && len(id.Labels) == 0 {
		return id, fmt.Errorf("%w: %s has no tenant", ErrForbidden, id.Subject)
	}
	return id, nil
}
