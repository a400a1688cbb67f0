package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/promrelay/promrelay/internal/testpeer"
)

// capture is an http.RoundTripper that keeps the body of every request it
// passes on: what the OTel exporter really sent.
type capture struct {
	mu     sync.Mutex
	bodies [][]byte
	status []int
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	resp, err := http.DefaultTransport.RoundTrip(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodies = append(c.bodies, b)
	if resp != nil {
		c.status = append(c.status, resp.StatusCode)
	}
	return resp, err
}

// otelProvider is a meter provider exporting with the real OTel Go SDK
// exporter (otlpmetrichttp) to url, by hand (ForceFlush), with temporality
// sel and gzip; the "payload.size" histogram is exponential.
func otelProvider(t *testing.T, url string, sel sdkmetric.TemporalitySelector, rt http.RoundTripper) *sdkmetric.MeterProvider {
	t.Helper()
	exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpointURL(url),
		otlpmetrichttp.WithTemporalitySelector(sel), otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
		otlpmetrichttp.WithHTTPClient(&http.Client{Transport: rt, Timeout: 10 * time.Second}),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "checkout"), attribute.String("service.namespace", "shop"),
		attribute.String("service.instance.id", "i-1"), attribute.String("deployment.environment", "prod"),
		attribute.String("host.name", "fc-1"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "payload.size"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// record makes one of each instrument kind record known values.
func record(t *testing.T, mp *sdkmetric.MeterProvider) {
	t.Helper()
	ctx := context.Background()
	m := mp.Meter("shop/orders", metric.WithInstrumentationVersion("1.2.3"))
	eu := metric.WithAttributes(attribute.String("region", "eu"))
	orders, _ := m.Int64Counter("orders", metric.WithUnit("{order}"), metric.WithDescription("Orders placed."))
	orders.Add(ctx, 5, eu)
	queue, _ := m.Int64UpDownCounter("queue.depth", metric.WithUnit("{item}"))
	queue.Add(ctx, 7, eu)
	queue.Add(ctx, -2, eu)
	temp, _ := m.Float64Gauge("room.temperature", metric.WithUnit("Cel"))
	temp.Record(ctx, 21.5, eu)
	dur, _ := m.Float64Histogram("http.server.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
	for _, v := range []float64{0.05, 0.2, 0.3, 2} {
		dur.Record(ctx, v, eu)
	}
	size, _ := m.Int64Histogram("payload.size", metric.WithUnit("By"))
	for _, v := range []int64{100, 200, 4000} {
		size.Record(ctx, v, eu)
	}
}

// TestOTLPExporter exports with the real OTel Go SDK exporter through the
// relay to a real Prometheus 2.42 (native histograms on): the series are
// named and labelled as Prometheus' OTLP receiver names them (job from
// service.namespace/service.name, instance from service.instance.id, the
// other resource attributes on target_info), with the recorded values.
func TestOTLPExporter(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Args: []string{"--enable-feature=native-histograms"}})
	relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL(), "PROMRELAY_EXTERNAL_LABELS": "via=promrelay"})
	var c capture
	mp := otelProvider(t, relay.URL+"/v1/metrics", sdkmetric.CumulativeTemporalitySelector, &c)
	record(t, mp)
	if err := mp.ForceFlush(context.Background()); err != nil {
		t.Fatalf("export: %v", err)
	}
	sel := `{job="shop/checkout",instance="i-1",via="promrelay"}`
	want := map[string]float64{
		`orders_total` + sel:                                   5,
		`queue_depth` + sel:                                    5,
		`room_temperature_celsius` + sel:                       21.5,
		`http_server_duration_seconds_count` + sel:             4,
		`http_server_duration_seconds_sum` + sel:               2.55,
		`http_server_duration_seconds_bucket{le="0.5"}` + sel:  3,
		`http_server_duration_seconds_bucket{le="+Inf"}` + sel: 4,
		`histogram_count(payload_size_bytes` + sel + `)`:       3,
		`histogram_sum(payload_size_bytes` + sel + `)`:         4300,
	}
	for q, v := range want {
		q = strings.Replace(q, `}{`, `,`, 1)
		got := prom.WaitFor(t, q, 1, 10*time.Second)
		if got[0].Value < v-1e-9 || got[0].Value > v+1e-9 {
			t.Errorf("%s = %v, want %v", q, got[0].Value, v)
		}
		if _, ok := got[0].Metric["region"]; !ok && !strings.HasPrefix(q, "histogram_") {
			t.Errorf("%s lost the data point attribute region: %v", q, got[0].Metric)
		}
	}
	ti := prom.WaitFor(t, `target_info{job="shop/checkout",instance="i-1"}`, 1, 10*time.Second)
	if ti[0].Metric["deployment_environment"] != "prod" || ti[0].Metric["host_name"] != "fc-1" || ti[0].Value != 1 {
		t.Errorf("target_info: %v", ti[0])
	}
	if v := prom.Query(t, `orders_total{region="eu"}`); len(v) != 1 || v[0].Metric["deployment_environment"] != "" {
		t.Errorf("resource attributes must stay on target_info unless promoted: %v", v)
	}
	if len(c.status) != 1 || c.status[0] != 200 {
		t.Errorf("exporter saw %v, want one 200", c.status)
	}
}

// TestOTLPDelta: delta temporality is 400 naming the metric (the SDK's
// ForceFlush fails, the exporter does not retry it); with
// PROMRELAY_OTLP_DELTA=ingest the deltas are stored.
func TestOTLPDelta(t *testing.T) {
	needsPeers(t)
	prom := testpeer.StartPrometheus(t, testpeer.PrometheusOptions{Args: []string{"--enable-feature=native-histograms"}})
	deltaSel := func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }
	relay := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL()})
	var c capture
	mp := otelProvider(t, relay.URL+"/v1/metrics", deltaSel, &c)
	record(t, mp)
	err := mp.ForceFlush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "delta") {
		t.Errorf("a delta export: %v, want a 400 naming delta temporality", err)
	}
	if len(c.status) != 1 || c.status[0] != 400 {
		t.Errorf("exporter saw %v, want one 400", c.status)
	}
	// The gauge has no temporality: it was relayed.
	prom.WaitFor(t, `room_temperature_celsius{job="shop/checkout"}`, 1, 10*time.Second)

	ingest := startRelay(t, map[string]string{"PROMRELAY_UPSTREAM_URL": prom.RemoteWriteURL(), "PROMRELAY_OTLP_DELTA": "ingest", "PROMRELAY_EXTERNAL_LABELS": "delta=ingest"})
	mp2 := otelProvider(t, ingest.URL+"/v1/metrics", deltaSel, &capture{})
	record(t, mp2)
	if err := mp2.ForceFlush(context.Background()); err != nil {
		t.Fatalf("a delta export with PROMRELAY_OTLP_DELTA=ingest: %v", err)
	}
	got := prom.WaitFor(t, `{__name__=~"orders.*",delta="ingest"}`, 1, 10*time.Second)
	if got[0].Value != 5 {
		t.Errorf("ingested delta: %v", got)
	}
}
