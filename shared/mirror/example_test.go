package mirror_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"

	"github.com/promrelay/promrelay/shared/mirror"
)

// httpQuerier queries the Prometheus HTTP API of allowed URLs, unsigned.
type httpQuerier struct{ allowed []string }

func (q httpQuerier) Query(ctx context.Context, c mirror.Connection, endpoint string, params url.Values) (int, []byte, error) {
	if !slices.Contains(q.allowed, c.URL) {
		return 0, nil, &mirror.RefusedError{Reason: "url " + c.URL + " is not allowed"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/api/v1/"+endpoint+"?"+params.Encode(), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, body, err
}

// A mirror in front of one Prometheus, mounted below /stackstate.
func Example() {
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("upstream:", r.URL.Path, r.URL.Query().Get("query"))
		io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1"]]}]}}`)
	}))
	defer prom.Close()

	h, err := mirror.New(mirror.Options{Querier: httpQuerier{allowed: []string{prom.URL}}, APIKey: "secret-key", MaxBodyBytes: 1 << 20})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/stackstate/", http.StripPrefix("/stackstate", h))

	body := `{"connectionDetails":{"url":"` + prom.URL + `"},"query":{"conditions":[` +
		`{"key":"__gauge__","value":{"value":"up","_type":"StringValue"},"_type":"EqualityCondition"}],` +
		`"startTime":1700000000000,"endTime":1700000060000,"_type":"MetricsQuery"},"_type":"MetricsRequest"}`
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("POST", "/stackstate/api/metric", strings.NewReader(body)))
	fmt.Println(w.Code, w.Header().Get("X-MIRROR-API-KEY"))
	fmt.Println(w.Body)
	// Output:
	// upstream: /api/v1/query_range up{}
	// 200 secret-key
	// {"_type":"MetricsResponse","telemetry":{"_type":"RawMetricTelemetry","points":[[1.0,1700000000000]],"dataFormat":["value","timestamp"],"isPartial":false}}
}
