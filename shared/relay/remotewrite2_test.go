package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"google.golang.org/protobuf/proto"

	"github.com/promrelay/promrelay/shared/relay"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// A remote write 2.0 request whose label strings are shared by many
// series would grow thousands of times as 1.0: it is refused with 413
// naming PROMRELAY_MAX_DECODED_BYTES before it is re-encoded.
func TestRemoteWrite2Amplification(t *testing.T) {
	symbols := []string{"", "__name__", "m", strings.Repeat("v", 8000)}
	var refs []uint32
	refs = append(refs, 1, 2)
	for i := range 200 {
		symbols = append(symbols, fmt.Sprintf("l%03d", i))
		refs = append(refs, uint32(len(symbols)-1), 3)
	}
	req := &writev2.Request{Symbols: symbols}
	for i := range 100 {
		req.Timeseries = append(req.Timeseries, &writev2.TimeSeries{LabelsRefs: refs, Samples: []*writev2.Sample{{Value: float64(i), Timestamp: int64(i + 1)}}})
	}
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	up := &recordingUpstream{}
	h := newHandler(up, func(o *relay.Options) {
		o.MaxBodyBytes, o.MaxDecodedBytes, o.Limits.MaxLabelBytes = 1<<20, 1<<20, 1<<14
	})
	rec := serve(h, "POST", "/api/v1/write", wire.EncodeSnappy(nil, raw), "Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "Content-Encoding", "snappy")
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "PROMRELAY_MAX_DECODED_BYTES") || len(up.series) != 0 || rec.Header().Get("X-Prometheus-Remote-Write-Samples-Written") != "0" {
		t.Errorf("%d %q, %d series relayed, written %q", rec.Code, rec.Body.String(), len(up.series), rec.Header().Get("X-Prometheus-Remote-Write-Samples-Written"))
	}
}

// resultUpstream takes everything and answers res.
type resultUpstream struct{ res upstream.Result }

func (u *resultUpstream) Write(context.Context, *wire.WriteRequest) (upstream.Result, error) {
	return u.res, nil
}
func (u *resultUpstream) WriteEncoded(context.Context, []byte) (upstream.Result, error) {
	return u.res, nil
}

// TestRemoteWrite2WrittenIsWhatTheUpstreamTook: the Written headers leave
// out the exemplars and native histograms an upstream profile dropped or
// sent as classic histograms.
func TestRemoteWrite2WrittenIsWhatTheUpstreamTook(t *testing.T) {
	symbols := []string{"", "__name__", "m", "trace_id", "abc"}
	req := &writev2.Request{Symbols: symbols, Timeseries: []*writev2.TimeSeries{{LabelsRefs: []uint32{1, 2},
		Samples:   []*writev2.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}},
		Exemplars: []*writev2.Exemplar{{LabelsRefs: []uint32{3, 4}, Value: 1, Timestamp: 1}}}}}
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	up := &resultUpstream{res: upstream.Result{Requests: 1, UpstreamStatus: 204, Profile: wire.ProfileCounts{ExemplarsDropped: 1}}}
	h := newHandler(up, func(o *relay.Options) { o.MaxBodyBytes, o.MaxDecodedBytes = 1<<20, 1<<20 })
	rec := serve(h, "POST", "/api/v1/write", wire.EncodeSnappy(nil, raw), "Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "Content-Encoding", "snappy")
	if rec.Code != 204 || rec.Header().Get("X-Prometheus-Remote-Write-Samples-Written") != "2" || rec.Header().Get("X-Prometheus-Remote-Write-Exemplars-Written") != "0" {
		t.Errorf("%d, written %v", rec.Code, rec.Header())
	}
}
