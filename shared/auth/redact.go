package auth

import (
	"net/url"
	"regexp"
	"strings"
)

// RedactURL returns u as scheme://host/path: without user information,
// query string or fragment, which may carry credentials (user:password@,
// ?api_key=…, a signed STS query's SecurityToken and Signature).
func RedactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// urlInText matches an absolute URL in free text, up to the first space,
// quote or angle bracket (Go's *url.Error quotes its URL).
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>` + "`" + `]+`)

// RedactText returns s with every absolute URL in it shown by RedactURL; a
// URL that does not parse is replaced by its scheme and "://…".
func RedactText(s string) string {
	return urlInText.ReplaceAllStringFunc(s, func(m string) string {
		u, err := url.Parse(m)
		if err != nil {
			scheme, _, _ := strings.Cut(m, "://")
			return scheme + "://…"
		}
		return RedactURL(u)
	})
}
