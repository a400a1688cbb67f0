package auth_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/promrelay/promrelay/shared/auth"
)

// countingSigner signs with a bearer token numbered by its Sign calls and
// says the credentials expired when expire is set.
type countingSigner struct {
	signs   atomic.Int32
	expire  bool
	expired atomic.Int32
	err     error
}

func (s *countingSigner) Sign(req *http.Request, body []byte) error {
	if s.err != nil {
		return s.err
	}
	n := s.signs.Add(1)
	req.Header.Set("Authorization", "Bearer token-"+string(rune('0'+n)))
	return nil
}

func (s *countingSigner) Expired(*http.Request, int, http.Header, []byte) bool {
	s.expired.Add(1)
	return s.expire
}

// peer is a server that records whether anything reached it and whether
// it carried credentials.
type peer struct {
	srv             *httptest.Server
	requests, signd atomic.Int32
}

func newPeer(t *testing.T, h http.HandlerFunc) *peer {
	p := &peer{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			p.signd.Add(1)
		}
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// TestTransportRefusesOtherOrigin checks that a Transport signs only for
// its upstream's origin: an http.Client that follows a 302 or 307 gets
// ErrOtherOrigin, and the redirect's target sees nothing. Before, the
// signer signed every hop and the credentials went to the target.
func TestTransportRefusesOtherOrigin(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		target := newPeer(t, nil)
		upstream := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.srv.URL+"/api/v1/write", status)
		})
		signer := &countingSigner{}
		tr, err := auth.NewTransport(upstream.srv.URL+"/api/v1/write", signer, http.DefaultTransport)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: tr} // follows redirects
		_, err = client.Post(upstream.srv.URL+"/api/v1/write", "application/x-protobuf", strings.NewReader("samples"))
		if !errors.Is(err, auth.ErrOtherOrigin) {
			t.Errorf("%d: err = %v, want ErrOtherOrigin", status, err)
		}
		if upstream.signd.Load() != 1 || target.requests.Load() != 0 || signer.signs.Load() != 1 {
			t.Errorf("%d: upstream got %d signed, target %d requests, %d signatures", status, upstream.signd.Load(), target.requests.Load(), signer.signs.Load())
		}
	}
}

func TestOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"http://Example.COM/x", "http://example.com:80/y?z", true},
		{"https://example.com/", "https://example.com:443", true},
		{"https://example.com/", "http://example.com/", false},
		{"https://example.com/", "https://example.com:8443/", false},
		{"https://example.com/", "https://example.com.evil/", false},
		{"http://[::1]:9090/", "http://[::1]:9090/api", true},
	} {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if (auth.Origin(a) == auth.Origin(b)) != tc.same {
			t.Errorf("%s vs %s: %s and %s", tc.a, tc.b, auth.Origin(a), auth.Origin(b))
		}
	}
	tr, _ := auth.NewTransport("https://example.com/api", &auth.Static{BearerToken: "t"}, http.DefaultTransport)
	req, _ := http.NewRequest(http.MethodPost, "http://example.com/api", strings.NewReader("x"))
	if _, err := tr.RoundTrip(req); !errors.Is(err, auth.ErrOtherOrigin) || !strings.Contains(err.Error(), "http://example.com:80") {
		t.Errorf("plain http to an https upstream: %v", err)
	}
	up := newPeer(t, nil)
	tr, _ = auth.NewTransport(up.srv.URL+"/api/v1/write", &auth.Static{BearerToken: "t"}, http.DefaultTransport)
	req, _ = http.NewRequest(http.MethodGet, strings.Replace(up.srv.URL, "http://", "HTTP://", 1)+"/api/v1/query", nil)
	if resp, err := tr.RoundTrip(req); err != nil || up.signd.Load() != 1 {
		t.Errorf("same origin, another path and case: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestNewTransportRejectsIncompleteArguments(t *testing.T) {
	for _, tc := range []struct {
		url    string
		signer auth.Signer
		base   http.RoundTripper
	}{
		{"/relative", &auth.Static{}, http.DefaultTransport},
		{"ftp://host/", &auth.Static{}, http.DefaultTransport},
		{"http://user:pw-secret@host/%zz?key=x", &auth.Static{}, http.DefaultTransport},
		{"http://host/", nil, http.DefaultTransport},
		{"http://host/", &auth.Static{}, nil},
	} {
		if _, err := auth.NewTransport(tc.url, tc.signer, tc.base); err == nil || strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("%s: err = %v", tc.url, err)
		}
	}
}

// TestTransportResignsOnceWhenExpired checks that an answer the signer
// takes for expired credentials makes the Transport sign and send the
// request once more, with the same body, and that any other 401 reaches
// the caller whole.
func TestTransportResignsOnceWhenExpired(t *testing.T) {
	longBody := strings.Repeat("denied ", 1000) // longer than the peek
	var bodies []string
	up := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if r.Header.Get("Authorization") == "Bearer token-1" {
			http.Error(w, longBody, http.StatusUnauthorized)
			return
		}
		w.WriteHeader(204)
	})
	for _, tc := range []struct {
		name       string
		expire     bool
		wantStatus int
		wantSigns  int32
	}{
		{"expired: re-signed", true, 204, 2},
		{"not expired: passed on", false, 401, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bodies = nil
			signer := &countingSigner{expire: tc.expire}
			tr, _ := auth.NewTransport(up.srv.URL, signer, http.DefaultTransport)
			req, _ := http.NewRequest(http.MethodPost, up.srv.URL+"/w", strings.NewReader("payload"))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || signer.signs.Load() != tc.wantSigns {
				t.Fatalf("status %d after %d signatures", resp.StatusCode, signer.signs.Load())
			}
			if tc.wantStatus == 401 && strings.TrimSpace(string(got)) != strings.TrimSpace(longBody) {
				t.Errorf("the 401's body was cut: %d bytes", len(got))
			}
			for _, b := range bodies {
				if b != "payload" {
					t.Errorf("body sent %q", b)
				}
			}
		})
	}
}

// TestTransportBodies checks the request bodies a Transport can sign:
// none, rewindable, BytesBody, and one read once.
func TestTransportBodies(t *testing.T) {
	var got []string
	up := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
	})
	tr, _ := auth.NewTransport(up.srv.URL, &auth.Static{}, http.DefaultTransport)
	reqs := []*http.Request{}
	r1, _ := http.NewRequest(http.MethodGet, up.srv.URL, nil)
	r2, _ := http.NewRequest(http.MethodPost, up.srv.URL, strings.NewReader("rewindable"))
	r3, _ := http.NewRequest(http.MethodPost, up.srv.URL, &bytesBody{[]byte("bytes")})
	r4, _ := http.NewRequest(http.MethodPost, up.srv.URL, io.NopCloser(strings.NewReader("once")))
	reqs = append(reqs, r1, r2, r3, r4)
	for _, r := range reqs {
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if strings.Join(got, ",") != ",rewindable,bytes,once" {
		t.Errorf("bodies %q", got)
	}
	r5, _ := http.NewRequest(http.MethodPost, up.srv.URL, strings.NewReader("x"))
	r5.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
	if _, err := tr.RoundTrip(r5); err == nil || !strings.Contains(err.Error(), "cannot rewind") {
		t.Errorf("GetBody failure: %v", err)
	}
}

// TestSignFailureIsACredentialsError checks that any signing failure is a
// *CredentialsError with the generic message, the cause in Detail with
// signed URLs cut, and nothing sent.
func TestSignFailureIsACredentialsError(t *testing.T) {
	up := newPeer(t, nil)
	cause := &url.Error{Op: "Post", URL: "https://sts.example/?AccessKeyId=LTAIsource&SecurityToken=tok-secret&Signature=sig", Err: errors.New("connection refused")}
	for _, err := range []error{cause, auth.NewCredentialsError(cause)} {
		tr, _ := auth.NewTransport(up.srv.URL, &countingSigner{err: err}, http.DefaultTransport)
		req, _ := http.NewRequest(http.MethodPost, up.srv.URL, strings.NewReader("x"))
		_, got := tr.RoundTrip(req)
		var ce *auth.CredentialsError
		if !errors.As(got, &ce) || got.Error() != "cannot obtain upstream credentials" || !errors.Is(got, cause) {
			t.Fatalf("err = %v", got)
		}
		if ce.Detail != `Post "https://sts.example/": connection refused` {
			t.Errorf("Detail %q", ce.Detail)
		}
	}
	if up.requests.Load() != 0 {
		t.Errorf("%d requests sent without credentials", up.requests.Load())
	}
}

func TestRedactText(t *testing.T) {
	for in, want := range map[string]string{
		`Post "https://sts.aliyuncs.com/?AccessKeyId=LTAI&Signature=x": EOF`: `Post "https://sts.aliyuncs.com/": EOF`,
		"see http://alice:pw@host:9090/api/v1/write?api_key=k#frag now":      "see http://host:9090/api/v1/write now",
		"no url here":                   "no url here",
		"bad http://host/%zz?key=v end": "bad http://… end",
		"<a href='https://h/p?q=1'>":    "<a href='https://h/p'>",
	} {
		if got := auth.RedactText(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	var buf bytes.Buffer
	buf.WriteString(auth.RedactURL(&url.URL{Scheme: "https", User: url.UserPassword("u", "p"), Host: "h", Path: "/a b", RawQuery: "k=v"}))
	if buf.String() != "https://h/a%20b" {
		t.Errorf("RedactURL: %s", buf.String())
	}
}

func TestRegionFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write": "eu-west-1",
		"https://aps-workspaces-fips.us-east-1.amazonaws.com/workspaces/ws-1":                "us-east-1",
		"https://prometheus.example/api/v1/write":                                            "",
	} {
		if got := auth.RegionFromURL(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func TestStaticAndExpired(t *testing.T) {
	req, _ := http.NewRequest("POST", "http://x", nil)
	(&auth.Static{Username: "u", Password: "p"}).Sign(req, nil)
	if u, p, ok := req.BasicAuth(); !ok || u != "u" || p != "p" {
		t.Fatal("basic auth not set")
	}
	req.Header.Del("Authorization")
	(&auth.Static{BearerToken: "tok"}).Sign(req, nil)
	if req.Header.Get("Authorization") != "Bearer tok" {
		t.Fatal("bearer not set")
	}
	req.Header.Del("Authorization")
	(&auth.Static{}).Sign(req, nil)
	if req.Header.Get("Authorization") != "" {
		t.Fatal("empty static credentials signed")
	}
	if (&auth.Static{}).Expired(req, 401, nil, nil) {
		t.Fatal("static credentials cannot expire")
	}
}
