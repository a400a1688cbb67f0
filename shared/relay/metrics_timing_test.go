package relay_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// nullUpstream takes every write without looking at it.
type nullUpstream struct{}

func (nullUpstream) Write(context.Context, *wire.WriteRequest) (upstream.Result, error) {
	return upstream.Result{Requests: 1, UpstreamStatus: 204}, nil
}

func (nullUpstream) WriteEncoded(context.Context, []byte) (upstream.Result, error) {
	return upstream.Result{Requests: 1, UpstreamStatus: 204}, nil
}

// BenchmarkRequestMetrics is the cost of the relay's own metrics on the
// request path: one small remote write relayed, with and without
// Options.Metrics (compare the two with benchstat).
func BenchmarkRequestMetrics(b *testing.B) {
	var wr wire.WriteRequest
	wr.Series = []wire.Series{{Labels: []wire.Label{{Name: "__name__", Value: "m"}, {Name: "job", Value: "j"}},
		Samples: []wire.Sample{{Value: 1, Timestamp: 1}}}}
	body := wire.EncodeSnappy(nil, wire.AppendWriteRequest(nil, wr.Series, nil))
	for _, withMetrics := range []bool{false, true} {
		name := "without"
		if withMetrics {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			h := newHandler(nullUpstream{}, func(o *relay.Options) {
				if withMetrics {
					o.Metrics = metrics.New(o.Budget.InUse, o.Budget.Size)
				}
			})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("POST", "/api/v1/write", strings.NewReader(string(body)))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 204 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
