package inbound

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/promrelay/promrelay/shared/wire"
)

// JWTOptions configure a JWTVerifier. At least one of Secret, PublicKeyPEM
// and JWKS is needed.
type JWTOptions struct {
	Secret       []byte // HS256 shared secret
	PublicKeyPEM []byte // RS256 or ES256 public key, PEM
	// JWKS is a JWKS file path or an https:// URL, fetched and refreshed
	// by keyfunc; http:// is accepted only for a loopback host
	// (localhost, 127.0.0.0/8, ::1). A JWKS usually belongs to an identity
	// provider that issues tokens for other services too, so with a JWKS
	// Issuer and Audience are required.
	JWKS     string
	Issuer   string // required "iss" when set (PROMRELAY_JWT_ISSUER)
	Audience string // required in "aud" when set (PROMRELAY_JWT_AUDIENCE)
	// MaxLifetime, when > 0, is the longest lifetime a token may claim:
	// exp − iat, or exp − now for a token without iat (plus Leeway), must
	// not exceed it (PROMRELAY_JWT_MAX_LIFETIME). 0 means unlimited.
	MaxLifetime time.Duration
	// TenantClaim names the claim that carries the writer's tenant: a
	// tenant name from the tenants file, or, with TenantLabel set, the
	// value of that label directly.
	TenantClaim string
	TenantLabel string
	Leeway      time.Duration // clock skew allowed on exp/nbf
	// Logger takes the JWKS refresh failures, which no request sees;
	// nil means slog.Default().
	Logger *slog.Logger
}

// JWTVerifier verifies JWTs with golang-jwt: the algorithm must match the
// configured key (HS256 for the secret; RS256/ES256 for public keys), so
// "none" and algorithm confusion (an HS256 token "signed" with a public
// key) are rejected; "exp" is required; "nbf", "iat" (not in the future),
// "iss" and "aud" are checked (RFC 7519, section 4.1), and the lifetime
// against JWTOptions.MaxLifetime.
type JWTVerifier struct {
	opts    JWTOptions
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
}

// NewJWTVerifier returns a verifier for o. Errors are one line naming the
// setting at fault: a short secret, a key that is not RSA or EC PEM, a
// JWKS that cannot be read or is not served over https://, a JWKS without
// PROMRELAY_JWT_ISSUER or PROMRELAY_JWT_AUDIENCE, a negative
// PROMRELAY_JWT_MAX_LIFETIME. They never contain the secret or a URL's
// user information or query.
func NewJWTVerifier(o JWTOptions) (*JWTVerifier, error) {
	var methods []string
	var pub any
	var jwks keyfunc.Keyfunc
	if len(o.Secret) > 0 {
		if len(o.Secret) < 32 {
			return nil, errors.New("PROMRELAY_JWT_SECRET: the HS256 secret must be at least 32 bytes")
		}
		methods = append(methods, "HS256")
	}
	if len(o.PublicKeyPEM) > 0 {
		if k, err := jwt.ParseRSAPublicKeyFromPEM(o.PublicKeyPEM); err == nil {
			pub = k
			methods = append(methods, "RS256")
		} else if k, err := jwt.ParseECPublicKeyFromPEM(o.PublicKeyPEM); err == nil {
			pub = k
			methods = append(methods, "ES256")
		} else {
			return nil, errors.New("PROMRELAY_JWT_PUBLIC_KEY_FILE: the JWT public key is neither an RSA nor an EC public key in PEM")
		}
	}
	if o.JWKS != "" {
		if o.Issuer == "" || o.Audience == "" {
			return nil, errors.New("PROMRELAY_JWT_JWKS needs PROMRELAY_JWT_ISSUER and PROMRELAY_JWT_AUDIENCE, so that tokens the identity provider issued for other services are refused")
		}
		var err error
		if jwks, err = loadJWKS(o.JWKS, o.Logger); err != nil {
			return nil, err
		}
		methods = append(methods, "RS256", "ES256")
	}
	if o.MaxLifetime < 0 {
		return nil, fmt.Errorf("PROMRELAY_JWT_MAX_LIFETIME: must not be negative, got %s", o.MaxLifetime)
	}
	if len(methods) == 0 {
		return nil, errors.New("jwt mode needs PROMRELAY_JWT_SECRET, PROMRELAY_JWT_PUBLIC_KEY_FILE or PROMRELAY_JWT_JWKS")
	}
	popts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(o.Leeway)}
	if o.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		popts = append(popts, jwt.WithAudience(o.Audience))
	}
	v := &JWTVerifier{opts: o, parser: jwt.NewParser(popts...)}
	v.keyfunc = func(t *jwt.Token) (any, error) {
		switch t.Method.(type) {
		case *jwt.SigningMethodHMAC:
			if len(o.Secret) > 0 {
				return o.Secret, nil
			}
		case *jwt.SigningMethodRSA:
			if k, ok := pub.(*rsa.PublicKey); ok {
				return k, nil
			}
			if jwks != nil {
				return jwksKey(jwks, t, o.JWKS)
			}
		case *jwt.SigningMethodECDSA:
			if k, ok := pub.(*ecdsa.PublicKey); ok {
				return k, nil
			}
			if jwks != nil {
				return jwksKey(jwks, t, o.JWKS)
			}
		}
		return nil, fmt.Errorf("no key for algorithm %s", t.Method.Alg())
	}
	return v, nil
}

// ErrLifetime is returned by Verify for a token whose lifetime exceeds
// JWTOptions.MaxLifetime.
var ErrLifetime = errors.New("token lifetime exceeds the maximum")

// Verify checks a token and returns its claims. Errors are golang-jwt's
// (jwt.ErrTokenExpired, jwt.ErrTokenInvalidIssuer, ...) or ErrLifetime;
// none contains the token.
func (v *JWTVerifier) Verify(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyfunc); err != nil {
		return nil, err
	}
	if limit := v.opts.MaxLifetime; limit > 0 {
		exp, err := claims.GetExpirationTime() // present: the parser requires it
		if err != nil || exp == nil {
			return nil, jwt.ErrTokenRequiredClaimMissing
		}
		start, slack := time.Now(), v.opts.Leeway
		if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
			start, slack = iat.Time, 0
		}
		if exp.Sub(start) > limit+slack {
			return nil, fmt.Errorf("%w: %s > %s", ErrLifetime, exp.Sub(start).Round(time.Second), limit)
		}
	}
	return claims, nil
}

// loadJWKS reads a JWKS file, or fetches (and keeps refreshing) a JWKS URL
// with keyfunc over a client that follows no redirect off https://.
func loadJWKS(loc string, logger *slog.Logger) (keyfunc.Keyfunc, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if !strings.Contains(loc, "://") {
		raw, err := os.ReadFile(loc)
		if err != nil {
			return nil, fmt.Errorf("PROMRELAY_JWT_JWKS: %w", err)
		}
		k, err := keyfunc.NewJWKSetJSON(json.RawMessage(raw))
		if err != nil {
			return nil, fmt.Errorf("PROMRELAY_JWT_JWKS: cannot load the JWKS %s: %w", loc, err)
		}
		return k, nil
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, errors.New("PROMRELAY_JWT_JWKS: not a valid URL")
	}
	shown := redactURL(u)
	if !secureURL(u) {
		return nil, fmt.Errorf("PROMRELAY_JWT_JWKS: %s must be an https:// URL (http:// only on a loopback host)", shown)
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !secureURL(req.URL) || len(via) >= 5 {
				return fmt.Errorf("refusing the JWKS redirect to %s", redactURL(req.URL))
			}
			return nil
		},
	}
	k, err := keyfunc.NewDefaultOverrideCtx(context.Background(), []string{loc}, keyfunc.Override{
		Client: client,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.WarnContext(ctx, "cannot refresh the JWKS", "url", shown, "error", redactIn(err.Error(), loc))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("PROMRELAY_JWT_JWKS: cannot load the JWKS %s: %s", shown, redactIn(err.Error(), loc))
	}
	return k, nil
}

// jwksKey looks up t's key in the JWKS at loc. Its errors (a failed
// refresh) are shown without the URL's user information and query, since
// they end up in the log.
func jwksKey(k keyfunc.Keyfunc, t *jwt.Token, loc string) (any, error) {
	key, err := k.Keyfunc(t)
	if err != nil {
		return nil, errors.New(redactIn(err.Error(), loc))
	}
	return key, nil
}

// redactIn replaces the URL loc in msg by its scheme, host and path.
func redactIn(msg, loc string) string {
	u, err := url.Parse(loc)
	if err != nil || !strings.Contains(loc, "://") {
		return msg
	}
	return strings.ReplaceAll(msg, loc, redactURL(u))
}

// secureURL reports whether a JWKS may be fetched from u: https://, or
// http:// to a loopback host, where nothing on the network can change the
// keys in transit.
func secureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return u.Host != ""
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// redactURL shows u as scheme, host and path only: user information and
// the query may carry credentials.
func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// jwtScopes reads the "scope" claim (RFC 8693, section 4.2: a string of
// space-separated scopes): the read and write it names. Without the claim,
// or with one that names neither (an identity provider's "openid profile",
// or not a string), a token writes, as every JWT did before scopes
// existed, so that existing writers keep working.
func jwtScopes(claims jwt.MapClaims) Scope {
	str, _ := claims["scope"].(string)
	var s Scope
	for _, name := range strings.Fields(str) {
		switch name {
		case ScopeNameWrite:
			s |= ScopeWrite
		case ScopeNameRead:
			s |= ScopeRead
		}
	}
	if s == 0 {
		return ScopeWrite
	}
	return s
}

func (a *Authenticator) jwtIdentity(token string) (Identity, error) {
	claims, err := a.jwt.Verify(token)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: jwt: %v", ErrInvalid, err)
	}
	id := Identity{Subject: "jwt"}
	if sub, _ := claims.GetSubject(); sub != "" {
		id.Subject = "jwt:" + sub
	}
	id.Scopes = jwtScopes(claims)
	o := a.jwt.opts
	if o.TenantClaim != "" {
		value, _ := claims[o.TenantClaim].(string)
		if value == "" || !utf8.ValidString(value) {
			return id, fmt.Errorf("%w: %s lacks the tenant claim %q", ErrForbidden, id.Subject, o.TenantClaim)
		}
		if o.TenantLabel != "" {
			id.Labels = []wire.Label{{Name: o.TenantLabel, Value: value}}
		} else {
			if a.tenants == nil || a.tenants.byName[value] == nil {
				return id, fmt.Errorf("%w: unknown tenant %q", ErrForbidden, value)
			}
			id.Tenant = a.tenants.byName[value]
		}
	}
	return a.finish(id)
}
