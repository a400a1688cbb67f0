package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/promrelay/promrelay/shared/inbound"
	"github.com/promrelay/promrelay/shared/mirror"
	"github.com/promrelay/promrelay/shared/query"
)

// MirrorOptions configure the StackState mirror routes (shared/mirror's
// protocol) on top of the read path; every field is required unless
// marked optional.
type MirrorOptions struct {
	// Prefix is where the routes live, e.g. "/stackstate".
	Prefix string
	// PathToken, optional, is a secret path segment that stands for a
	// reader's credentials (read scope, no tenant):
	// <Prefix>/<PathToken>/api/…, compared in constant time. StackState's
	// mirror data source sends no credentials. Without it (or a request
	// without it), the routes need Authorization like every read route;
	// a request with neither is 404.
	PathToken string
	// Upstream returns the read upstream a request's connection may use:
	// only allow-listed URLs and roles, else a *mirror.RefusedError, and
	// nothing is sent.
	Upstream func(ctx context.Context, conn mirror.Connection) (*query.Upstream, error)
	// APIKey is sent as X-MIRROR-API-KEY on every answer.
	APIKey string
	// MaxBodyBytes bounds a request's JSON body; MaxResponseBytes one
	// upstream answer the mirror reads (and holds, charged to the budget).
	MaxBodyBytes, MaxResponseBytes int
}

// registerMirror adds the mirror routes under o.Mirror.Prefix.
func (h *Handler) registerMirror() error {
	mo := h.o.Mirror
	mh, err := mirror.New(mirror.Options{Querier: mirrorQuerier{h}, APIKey: mo.APIKey, MaxBodyBytes: mo.MaxBodyBytes, Logger: h.o.Logger, Now: h.o.Now})
	if err != nil {
		return err
	}
	serve := func(w http.ResponseWriter, r *http.Request, _ inbound.Identity) { mh.ServeHTTP(w, r) }
	tokenSum := sha256.Sum256([]byte(mo.PathToken))
	h.route(mo.Prefix+"/", "mirror", func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, mo.Prefix)
		if mo.PathToken != "" {
			seg, after, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
			// Digests compared, so that not even the token's length shows
			// in the time taken.
			got := sha256.Sum256([]byte(seg))
			if subtle.ConstantTimeCompare(got[:], tokenSum[:]) == 1 {
				ctx, cancel := h.deadline(r.Context())
				defer cancel()
				r2 := withPath(r.WithContext(ctx), "/"+after)
				h.serveAs(w, r2, inbound.Identity{Subject: "mirror-path-token", Scopes: inbound.ScopeRead}, inbound.ScopeRead, serve)
				return
			}
		}
		if (h.o.Inbound != nil && r.Header.Get("Authorization") == "") || (h.o.Inbound == nil && mo.PathToken != "") {
			// Neither the token nor credentials: nothing here. Without
			// inbound authentication, the token is the only credential.
			http.NotFound(w, r)
			return
		}
		h.authorized(inbound.ScopeRead, serve)(w, withPath(r, rest))
	})
	return nil
}

// withPath is r with its path replaced by p.
func withPath(r *http.Request, p string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = p, ""
	r2.URL = &u
	return r2
}

// mirrorQuerier runs the mirror's queries: on an allow-listed upstream,
// the reader's tenant enforced, the answer read within
// MirrorOptions.MaxResponseBytes and the memory budget.
type mirrorQuerier struct{ h *Handler }

// Query implements mirror.Querier.
func (q mirrorQuerier) Query(ctx context.Context, conn mirror.Connection, endpoint string, params url.Values) (int, []byte, error) {
	h := q.h
	up, err := h.o.Mirror.Upstream(ctx, conn)
	if err != nil {
		return 0, nil, err
	}
	if !up.HasAPI() {
		return 0, nil, &mirror.RefusedError{Reason: "the connection's URL has no PromQL API"}
	}
	if labels := identityFrom(ctx).Labels; len(labels) > 0 {
		if params == nil {
			params = url.Values{}
		}
		if rep := h.enforceParams(ctx, endpoint, params, labels); rep.status != 0 {
			// As Prometheus answers a query it cannot parse.
			return http.StatusBadRequest, fmt.Appendf(nil, `{"status":"error","errorType":"bad_data","error":%q}`, rep.msg), nil
		}
	}
	if conn.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, conn.RequestTimeout)
		defer cancel()
	}
	c := reservationFrom(ctx)
	// The answer and the mirror's decoded copies of it.
	if err := c.Grow(ctx, 3*int64(h.o.Mirror.MaxResponseBytes)); err != nil {
		return 0, nil, err
	}
	st := statsFrom(ctx)
	resp, err := up.API(ctx, http.MethodGet, endpoint, params, nil)
	if err != nil {
		var qe *query.Error
		if errors.As(err, &qe) && qe.Detail != "" {
			// The cause (an STS refusal, a dial error) for the log line.
			st.mu.Lock()
			st.detail = qe.Detail
			st.mu.Unlock()
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return 0, nil, &query.Error{Status: http.StatusBadGateway, UpstreamStatus: resp.StatusCode, Msg: fmt.Sprintf("the upstream answered status %d", resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(h.o.Mirror.MaxResponseBytes)+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the upstream's answer: %w", err)
	}
	if len(body) > h.o.Mirror.MaxResponseBytes {
		return 0, nil, fmt.Errorf("the upstream's answer is larger than %d bytes", h.o.Mirror.MaxResponseBytes)
	}
	st.mu.Lock()
	st.up.Requests++
	st.up.UpstreamStatus = resp.StatusCode
	st.mu.Unlock()
	return resp.StatusCode, body, nil
}
