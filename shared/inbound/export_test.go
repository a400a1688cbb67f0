package inbound

// SetCompare replaces the bcrypt comparison of a's basic-auth passwords,
// so tests can count verifications and hold them in flight.
func SetCompare(a *Authenticator, f func(hash, password []byte) error) {
	a.passwords.compare = f
}

// Compare is the bcrypt comparison a's basic-auth passwords use.
func Compare(a *Authenticator) func(hash, password []byte) error {
	return a.passwords.compare
}

// SecureURL reports whether a JWKS may be fetched from u.
var SecureURL = secureURL
