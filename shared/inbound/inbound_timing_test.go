package inbound_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/promrelay/promrelay/shared/inbound"
)

// BenchmarkAuthenticate measures the per-request cost of each inbound mode.
// basic/uncached is a bcrypt verification at the default cost (10), which
// the cache turns into basic/cached for repeat writers; basic-wrong (a
// known user, a wrong password) and basic-unknown-user (verified against
// the dummy hash) should cost the same.
func BenchmarkAuthenticate(b *testing.B) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	hs, _ := inbound.NewJWTVerifier(inbound.JWTOptions{Secret: secret})
	rs, _ := inbound.NewJWTVerifier(inbound.JWTOptions{PublicKeyPEM: pubPEM(b, &rsaKey.PublicKey)})
	es, _ := inbound.NewJWTVerifier(inbound.JWTOptions{PublicKeyPEM: pubPEM(b, &ecKey.PublicKey)})
	exp := jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()}
	for _, tc := range []struct {
		name    string
		opts    inbound.Options
		header  string
		wantErr bool
	}{
		{"bearer", inbound.Options{Modes: []string{"bearer"}, Tokens: []string{"t1", "t2", "t3"}}, "Bearer t2", false},
		{"basic-cached", inbound.Options{Modes: []string{"basic"}, BasicUsers: map[string]string{"u": string(hash)}, MaxConcurrentBcrypt: 1}, basic("u", "pw"), false},
		{"basic-uncached", inbound.Options{Modes: []string{"basic"}, BasicUsers: map[string]string{"u": string(hash)}, BasicCacheTTL: time.Nanosecond, MaxConcurrentBcrypt: 1}, basic("u", "pw"), false},
		{"basic-wrong", inbound.Options{Modes: []string{"basic"}, BasicUsers: map[string]string{"u": string(hash)}, MaxConcurrentBcrypt: 1}, basic("u", "wrong"), true},
		{"basic-unknown-user", inbound.Options{Modes: []string{"basic"}, BasicUsers: map[string]string{"u": string(hash)}, MaxConcurrentBcrypt: 1}, basic("nobody", "wrong"), true},
		{"jwt-hs256", inbound.Options{Modes: []string{"jwt"}, JWT: hs}, "Bearer " + sign(b, jwt.SigningMethodHS256, secret, exp), false},
		{"jwt-rs256", inbound.Options{Modes: []string{"jwt"}, JWT: rs}, "Bearer " + sign(b, jwt.SigningMethodRS256, rsaKey, exp), false},
		{"jwt-es256", inbound.Options{Modes: []string{"jwt"}, JWT: es}, "Bearer " + sign(b, jwt.SigningMethodES256, ecKey, exp), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tc.opts.Logger = slog.New(slog.DiscardHandler)
			a, err := inbound.New(tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			req := request(tc.header)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(req); (err != nil) != tc.wantErr {
					b.Fatal(err)
				}
			}
		})
	}
}
