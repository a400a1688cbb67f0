package query_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/query"
	"github.com/promrelay/promrelay/shared/upstream"
)

func newUpstream(t *testing.T, h http.HandlerFunc) (*query.Upstream, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := query.New(query.Config{QueryURL: srv.URL + "/ws/1", Transport: upstream.NewTransport()})
	if err != nil {
		t.Fatal(err)
	}
	return u, srv
}

// A gzip-encoded error answer is decoded before the upstream's address is
// scrubbed from it, and passed on decoded; only allow-listed headers pass.
func TestErrorBodyScrubbedThroughGzip(t *testing.T) {
	var host string
	u, srv := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		io.WriteString(zw, `{"status":"error","error":"see http://`+host+`/ws/1 for details"}`)
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "upstream-session=1")
		w.WriteHeader(http.StatusUnprocessableEntity)
		w.Write(b.Bytes())
	})
	host = strings.TrimPrefix(srv.URL, "http://")
	resp, err := u.API(context.Background(), "GET", "query", nil, http.Header{"Accept-Encoding": {"gzip"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if _, err := u.Copy(rec, resp, query.CopyOptions{Buffer: make([]byte, 1024)}); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if rec.Code != 422 || strings.Contains(body, host) || !strings.Contains(body, "<upstream>") || rec.Header().Get("Content-Encoding") != "" ||
		rec.Header().Get("Set-Cookie") != "" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("%d %v %q", rec.Code, rec.Header(), body)
	}
}

// An answer cut off after its status went out is a *StreamError, so the
// relay aborts the connection instead of ending a short answer cleanly.
func TestCutOffAnswerIsAStreamError(t *testing.T) {
	u, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(200)
		w.Write(bytes.Repeat([]byte("x"), 1000))
		// The handler returns short of its Content-Length: the client
		// sees an unexpected EOF.
	})
	resp, err := u.API(context.Background(), "GET", "query", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	n, err := u.Copy(rec, resp, query.CopyOptions{Buffer: make([]byte, 512)})
	var se *query.StreamError
	if !errors.As(err, &se) || n != 1000 || rec.Code != 200 {
		t.Errorf("n %d, err %v, status %d", n, err, rec.Code)
	}
}

// Transport failures never show the upstream's URL.
func TestTransportErrorsHideTheURL(t *testing.T) {
	u, err := query.New(query.Config{QueryURL: "http://127.0.0.1:1/secret-workspace", Transport: upstream.NewTransport()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = u.API(ctx, "GET", "query", nil, nil)
	var qe *query.Error
	if !errors.As(err, &qe) || qe.Status != 502 || strings.Contains(qe.Msg, "secret-workspace") || strings.Contains(qe.Detail, "secret-workspace") {
		t.Errorf("%#v", err)
	}
}

func TestEncodedSize(t *testing.T) {
	for _, c := range []struct {
		in     string
		binary bool
		want   int
	}{{"abc", true, 4}, {"abcd", true, 8}, {`{"a":"<b>"}`, false, 11 + 4 + 10}, {"a\nb", false, 4}, {"\x01", false, 6}} {
		if got := query.EncodedSize([]byte(c.in), c.binary); got != c.want {
			t.Errorf("EncodedSize(%q, %v) = %d, want %d", c.in, c.binary, got, c.want)
		}
	}
}
