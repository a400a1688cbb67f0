package inbound

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
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
	JWKS         string // a JWKS file path or an https:// URL (fetched and refreshed by keyfunc)
	Issuer       string // required "iss" when set
	Audience     string // required in "aud" when set
	// TenantClaim names the claim that carries the writer's tenant: a
	// tenant name from the tenants file, or, with TenantLabel set, the
	// value of that label directly.
	TenantClaim string
	TenantLabel string
	Leeway      time.Duration // clock skew allowed on exp/nbf
}

// JWTVerifier verifies JWTs with golang-jwt: the algorithm must match the
// configured key (HS256 for the secret; RS256/ES256 for public keys), so
// "none" and algorithm confusion (an HS256 token "signed" with a public
// key) are rejected; "exp" is required; "nbf", "iss" and "aud" are checked.
type JWTVerifier struct {
	opts    JWTOptions
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
}

// NewJWTVerifier returns a verifier for o. Errors name the bad key or JWKS.
func NewJWTVerifier(o JWTOptions) (*JWTVerifier, error) {
	var methods []string
	var pub any
	var jwks keyfunc.Keyfunc
	if len(o.Secret) > 0 {
		if len(o.Secret) < 32 {
			return nil, errors.New("the HS256 secret must be at least 32 bytes")
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
			return nil, errors.New("the JWT public key is neither an RSA nor an EC public key in PEM")
		}
	}
	if o.JWKS != "" {
		var err error
		if strings.HasPrefix(o.JWKS, "https://") || strings.HasPrefix(o.JWKS, "http://") {
			jwks, err = keyfunc.NewDefault([]string{o.JWKS})
		} else {
			var raw []byte
			if raw, err = os.ReadFile(o.JWKS); err == nil {
				jwks, err = keyfunc.NewJWKSetJSON(json.RawMessage(raw))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cannot load the JWKS %s: %w", o.JWKS, err)
		}
		methods = append(methods, "RS256", "ES256")
	}
	if len(methods) == 0 {
		return nil, errors.New("jwt mode needs PROMRELAY_JWT_SECRET, PROMRELAY_JWT_PUBLIC_KEY_FILE or PROMRELAY_JWT_JWKS")
	}
	popts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(o.Leeway)}
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
				return jwks.Keyfunc(t)
			}
		case *jwt.SigningMethodECDSA:
			if k, ok := pub.(*ecdsa.PublicKey); ok {
				return k, nil
			}
			if jwks != nil {
				return jwks.Keyfunc(t)
			}
		}
		return nil, fmt.Errorf("no key for algorithm %s", t.Method.Alg())
	}
	return v, nil
}

// Verify checks a token and returns its claims.
func (v *JWTVerifier) Verify(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyfunc); err != nil {
		return nil, err
	}
	return claims, nil
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
