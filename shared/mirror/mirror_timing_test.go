package mirror_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/mirror"
)

// BenchmarkMetric is one aggregated counter metric request (4 conditions,
// 121 points answered) through the Handler, with a fake Querier.
func BenchmarkMetric(b *testing.B) {
	var up strings.Builder
	up.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"api"},"values":[`)
	for i := range 121 {
		if i > 0 {
			up.WriteByte(',')
		}
		fmt.Fprintf(&up, `[%d,"%d.5"]`, 1700000000+i*30, i)
	}
	up.WriteString(`]}]}}`)
	answer := []byte(up.String())
	q := querierFunc(func(context.Context, mirror.Connection, string, url.Values) (int, []byte, error) {
		return 200, answer, nil
	})
	h := newHandler(b, q)
	body := `{"connectionDetails":{"url":"http://prom:9090/","request_timeout_seconds":30},"query":{"conditions":[` +
		`{"key":"__counter__","value":{"value":"http_requests_total","_type":"StringValue"},"_type":"EqualityCondition"},` +
		`{"key":"job","value":{"value":"api","_type":"StringValue"},"_type":"EqualityCondition"},` +
		`{"key":"code","value":{"value":["200","500"],"_type":"InSetValue"},"_type":"EqualityCondition"},` +
		`{"key":"tls","value":{"value":true,"_type":"BooleanValue"},"_type":"EqualityCondition"}],` +
		`"aggregation":{"method":"PERCENTILE_95","bucketSizeMillis":30000,"_type":"Aggregation"},` +
		`"startTime":1700000000000,"endTime":1700003630000,"_type":"MetricsQuery"},"_type":"MetricsRequest"}`
	b.SetBytes(int64(len(body) + len(answer)))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/metric", strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
