package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/mirror"
)

// fixture is one case of testdata/*.json: a request to the mirror, the
// upstream calls it must make (endpoint and parameters) with their canned
// answers, and the answer the mirror must give.
type fixture struct {
	Name        string          `json:"name"`
	Method      string          `json:"method"` // default POST
	Path        string          `json:"path"`
	Request     json.RawMessage `json:"request"`
	RequestText *string         `json:"requestText"` // a body that is not JSON
	Calls       []call          `json:"calls"`       // in order; none: nothing may reach the upstream
	Connection  *connJSON       `json:"connection"`  // the Connection every call must carry
	Status      int             `json:"status"`
	Response    json.RawMessage `json:"response"`
}

type call struct {
	Endpoint string            `json:"endpoint"`
	Params   map[string]string `json:"params"`
	Status   int               `json:"status"`
	Body     json.RawMessage   `json:"body"`
	BodyText *string           `json:"bodyText"`
	Error    string            `json:"error"`   // the Querier fails with this
	Refused  string            `json:"refused"` // the Querier refuses with this reason
}

type connJSON struct {
	URL                   string `json:"url"`
	RequestTimeoutSeconds int    `json:"requestTimeoutSeconds"`
	NaNInterpretation     string `json:"nanInterpretation"`
	AWS                   *struct {
		RoleARN, ExternalID, AccessKeyID, SecretAccessKey, SessionToken string
		TokenExpirySeconds                                              int
		Region, RoleSessionName                                         string
	} `json:"aws"`
}

// recorded is one call the fake Querier received.
type recorded struct {
	conn     mirror.Connection
	endpoint string
	params   url.Values
	deadline bool
}

// fakeQuerier records every call and answers the canned calls in order.
type fakeQuerier struct {
	mu      sync.Mutex
	answers []call
	calls   []recorded
}

func (f *fakeQuerier) Query(ctx context.Context, conn mirror.Connection, endpoint string, params url.Values) (int, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, dl := ctx.Deadline()
	f.calls = append(f.calls, recorded{conn, endpoint, params, dl})
	if len(f.answers) == 0 {
		return 0, nil, errors.New("unexpected upstream call")
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	switch {
	case a.Refused != "":
		return 0, nil, &mirror.RefusedError{Reason: a.Refused}
	case a.Error != "":
		return 0, nil, errors.New(a.Error)
	case a.BodyText != nil:
		return a.Status, []byte(*a.BodyText), nil
	}
	return a.Status, a.Body, nil
}

const testAPIKey = "k3y-for-tests"

func newHandler(t testing.TB, q mirror.Querier) *mirror.Handler {
	t.Helper()
	h, err := mirror.New(mirror.Options{Querier: q, APIKey: testAPIKey, MaxBodyBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func loadFixtures(t *testing.T) map[string][]fixture {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	all := map[string][]fixture{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fs []fixture
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all[strings.TrimSuffix(filepath.Base(f), ".json")] = fs
	}
	return all
}

// TestFixtures runs every case of testdata/*.json through the Handler with
// a fake Querier, asserting the upstream calls (endpoint, parameters,
// connection, a deadline) and the answer (status, X-MIRROR-API-KEY, JSON
// compared decoded).
func TestFixtures(t *testing.T) {
	n := 0
	for file, fs := range loadFixtures(t) {
		for _, fx := range fs {
			n++
			t.Run(file+"/"+fx.Name, func(t *testing.T) { runFixture(t, fx) })
		}
	}
	t.Logf("%d fixture cases", n)
}

func runFixture(t *testing.T, fx fixture) {
	q := &fakeQuerier{answers: append([]call(nil), fx.Calls...)}
	h := newHandler(t, q)
	method := fx.Method
	if method == "" {
		method = http.MethodPost
	}
	body := []byte(fx.Request)
	if fx.RequestText != nil {
		body = []byte(*fx.RequestText)
	}
	r := httptest.NewRequest(method, fx.Path, bytes.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	if got := w.Header().Get("X-MIRROR-API-KEY"); got != testAPIKey {
		t.Errorf("X-MIRROR-API-KEY = %q", got)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if w.Code != fx.Status {
		t.Errorf("status %d, want %d; body %s", w.Code, fx.Status, w.Body)
	}
	var got, want any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, w.Body)
	}
	if err := json.Unmarshal(fx.Response, &want); err != nil {
		t.Fatalf("fixture response: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Errorf("answer\n got %s\nwant %s", g, wj)
	}

	if len(q.calls) != len(fx.Calls) {
		t.Fatalf("%d upstream calls, want %d: %+v", len(q.calls), len(fx.Calls), q.calls)
	}
	for i, c := range q.calls {
		w := fx.Calls[i]
		if c.endpoint != w.Endpoint {
			t.Errorf("call %d: endpoint %q, want %q", i, c.endpoint, w.Endpoint)
		}
		wantParams := url.Values{}
		for k, v := range w.Params {
			wantParams.Set(k, v)
		}
		if (len(c.params) > 0 || len(wantParams) > 0) && !reflect.DeepEqual(c.params, wantParams) {
			t.Errorf("call %d: params\n got %v\nwant %v", i, c.params, wantParams)
		}
		if !c.deadline {
			t.Errorf("call %d: no deadline", i)
		}
		if fx.Connection != nil {
			checkConnection(t, c.conn, fx.Connection)
		}
	}
}

func checkConnection(t *testing.T, got mirror.Connection, w *connJSON) {
	t.Helper()
	want := mirror.Connection{URL: w.URL, RequestTimeout: time.Duration(w.RequestTimeoutSeconds) * time.Second, NaNInterpretation: w.NaNInterpretation}
	if a := w.AWS; a != nil {
		want.AWS = &mirror.AWSDetails{RoleARN: a.RoleARN, ExternalID: a.ExternalID, AccessKeyID: a.AccessKeyID,
			SecretAccessKey: a.SecretAccessKey, SessionToken: a.SessionToken, TokenExpiry: time.Duration(a.TokenExpirySeconds) * time.Second,
			Region: a.Region, RoleSessionName: a.RoleSessionName}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("connection\n got %#v %+v\nwant %#v %+v", got, got.AWS, want, want.AWS)
	}
}
