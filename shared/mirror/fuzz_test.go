package mirror_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/mirror"
)

// FuzzHandler sends any request body to every POST route, with any
// upstream answer: the mirror never panics, always answers JSON with the
// API key, and never queries a label values path that is not one label.
func FuzzHandler(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		var fs []fixture
		json.Unmarshal(b, &fs)
		for _, fx := range fs {
			up := []byte(`{"status":"success","data":{"result":[{"metric":{},"values":[[1,"1"]]}]}}`)
			if len(fx.Calls) > 0 && fx.Calls[0].Body != nil {
				up = fx.Calls[0].Body
			}
			f.Add(fx.Path, []byte(fx.Request), up)
		}
	}
	f.Fuzz(func(t *testing.T, path string, body, upstream []byte) {
		q := querierFunc(func(_ context.Context, _ mirror.Connection, endpoint string, _ url.Values) (int, []byte, error) {
			if strings.HasPrefix(endpoint, "label/") && strings.ContainsAny(strings.TrimSuffix(strings.TrimPrefix(endpoint, "label/"), "/values"), "/.?#%") {
				t.Errorf("endpoint %q", endpoint)
			}
			return 200, upstream, nil
		})
		h := newHandler(t, q)
		for _, route := range []string{"/api/metric", "/api/field/name", "/api/field/value", "/api/connection"} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", route, strings.NewReader(string(body))))
			if w.Header().Get("X-MIRROR-API-KEY") != testAPIKey || !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s: %d %v %q", route, w.Code, w.Header(), w.Body)
			}
		}
	})
}
