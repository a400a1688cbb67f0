package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/promrelay/promrelay/shared/wire"
)

// Job is the job label of the self-written series.
const Job = "promrelay"

// AppendSelf resets wr and fills it with one sample per series of a
// Gather of the registry, every sample at now (or at the metric's own
// timestamp, as honor_timestamps does), with job="promrelay" and
// instance=instance replacing any labels of those names. The series are
// those a Prometheus 3 scrape of Handler() stores (scrape of the text
// format, model/textparse): a counter, gauge or untyped metric is one
// series; a summary is name{quantile=φ}, name_sum and name_count; a
// histogram is name_bucket{le=b} for every bucket plus le="+Inf" when the
// registry leaves it out, name_sum and name_count; le and quantile values
// are normalised to the OpenMetrics float form ("1.0", "0.005", "+Inf"),
// and labels with an empty value are dropped. wr.Metadata gets one entry
// per family (type, help). Each series' labels are sorted by name. It
// returns the error of the Gather (wr then holds what was gathered), or an
// error naming a family of a type the text format cannot express.
func (m *Metrics) AppendSelf(wr *wire.WriteRequest, instance string, now time.Time) error {
	wr.Reset()
	fams, gatherErr := m.reg.Gather()
	a := appender{wr: wr, instance: instance, ts: now.UnixMilli()}
	for _, f := range fams {
		if err := a.family(f); err != nil {
			return err
		}
	}
	return gatherErr
}

// appender converts gathered families into wr's series.
type appender struct {
	wr       *wire.WriteRequest
	instance string
	ts       int64
	buf      []byte
}

func (a *appender) family(f *dto.MetricFamily) error {
	name := f.GetName()
	var typ wire.MetadataType
	switch f.GetType() {
	case dto.MetricType_COUNTER:
		typ = wire.MetadataCounter
	case dto.MetricType_GAUGE:
		typ = wire.MetadataGauge
	case dto.MetricType_UNTYPED:
		typ = wire.MetadataUnknown
	case dto.MetricType_SUMMARY:
		typ = wire.MetadataSummary
	case dto.MetricType_HISTOGRAM:
		typ = wire.MetadataHistogram
	default:
		return fmt.Errorf("metrics: family %s: type %s has no text exposition", name, f.GetType())
	}
	a.wr.Metadata = append(a.wr.Metadata, wire.Metadata{Type: typ, FamilyName: name, Help: f.GetHelp()})
	for _, mt := range f.GetMetric() {
		ts := a.ts
		if mt.TimestampMs != nil {
			ts = mt.GetTimestampMs()
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			a.series(name, mt.GetLabel(), "", "", mt.GetCounter().GetValue(), ts)
		case dto.MetricType_GAUGE:
			a.series(name, mt.GetLabel(), "", "", mt.GetGauge().GetValue(), ts)
		case dto.MetricType_UNTYPED:
			a.series(name, mt.GetLabel(), "", "", mt.GetUntyped().GetValue(), ts)
		case dto.MetricType_SUMMARY:
			s := mt.GetSummary()
			for _, q := range s.GetQuantile() {
				a.buf = wire.AppendOpenMetricsFloat(a.buf[:0], q.GetQuantile())
				a.series(name, mt.GetLabel(), "quantile", a.wr.Intern(a.buf), q.GetValue(), ts)
			}
			a.series(name+"_sum", mt.GetLabel(), "", "", s.GetSampleSum(), ts)
			a.series(name+"_count", mt.GetLabel(), "", "", float64(s.GetSampleCount()), ts)
		case dto.MetricType_HISTOGRAM:
			// As expfmt's text writer: float counts when the
			// histogram has them, and a +Inf bucket of the
			// sample count when the last bucket is not +Inf.
			h := mt.GetHistogram()
			count := float64(h.GetSampleCount())
			if h.SampleCountFloat != nil && h.GetSampleCountFloat() > 0 {
				count = h.GetSampleCountFloat()
			}
			inf := false
			for _, b := range h.GetBucket() {
				c := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil && b.GetCumulativeCountFloat() > 0 {
					c = b.GetCumulativeCountFloat()
				}
				inf = math.IsInf(b.GetUpperBound(), +1)
				a.buf = wire.AppendOpenMetricsFloat(a.buf[:0], b.GetUpperBound())
				a.series(name+"_bucket", mt.GetLabel(), "le", a.wr.Intern(a.buf), c, ts)
			}
			if !inf {
				a.series(name+"_bucket", mt.GetLabel(), "le", "+Inf", count, ts)
			}
			a.series(name+"_sum", mt.GetLabel(), "", "", h.GetSampleSum(), ts)
			a.series(name+"_count", mt.GetLabel(), "", "", count, ts)
		}
	}
	return nil
}

// series appends one series: __name__=name, the metric's labels (empty
// values dropped, job and instance replaced), extra=extraValue when extra
// is set, job and instance; sorted by name.
func (a *appender) series(name string, ls []*dto.LabelPair, extra, extraValue string, v float64, ts int64) {
	store := a.wr.LabelStore()
	start := len(store)
	store = append(store, wire.Label{Name: "__name__", Value: name})
	for _, l := range ls {
		if n := l.GetName(); l.GetValue() != "" && n != "job" && n != "instance" && n != extra {
			store = append(store, wire.Label{Name: n, Value: l.GetValue()})
		}
	}
	if extra != "" {
		store = append(store, wire.Label{Name: extra, Value: extraValue})
	}
	store = append(store, wire.Label{Name: "job", Value: Job})
	if a.instance != "" {
		store = append(store, wire.Label{Name: "instance", Value: a.instance})
	}
	wire.SortLabels(store[start:])
	a.wr.AppendSample(a.wr.CommitLabels(store, start), wire.Sample{Value: v, Timestamp: ts})
}

// SelfWriter writes the relay's own metrics upstream every Interval, from
// whoever calls MaybeWrite (the request path after its answer, the
// scheduled timer). At most one write runs at a time; a call while one
// runs, or within Interval of the start of the last one, returns at once.
// A failed write is logged and counted (promrelay_self_writes_total
// {result="error"}), never returned, and is not retried before the next
// Interval. Set the exported fields before the first MaybeWrite and do not
// change them after; MaybeWrite is safe for concurrent use.
type SelfWriter struct {
	Metrics  *Metrics
	Instance string        // the instance label (InstanceName)
	Interval time.Duration // ≤ 0 disables the writer
	// Write sends one write request through the relay's pipeline
	// (the upstream client's Write); it must not keep wr after it
	// returns.
	Write  func(ctx context.Context, wr *wire.WriteRequest) error
	Logger *slog.Logger     // optional; nil drops the log lines
	Now    func() time.Time // optional; nil is time.Now

	mu   sync.Mutex // held by the one write in progress
	last time.Time  // start of the last write; guarded by mu
	wr   wire.WriteRequest
}

// MaybeWrite writes the metrics if Interval (less a tenth, for a timer of
// that period that fires a little early) has passed since the start of
// the last write (or none was made yet; or 10 s since a failed one) and no
// write is in progress, and reports whether it tried. It blocks for the write, bounded by ctx: call
// it beside the request, or after its answer, with a context of its own
// deadline.
func (s *SelfWriter) MaybeWrite(ctx context.Context) (wrote bool) {
	return s.write(ctx, false)
}

// WriteNow writes the metrics unless a write is in progress or Interval
// is ≤ 0, whenever the last one was: for a ticker of period Interval,
// whose ticks MaybeWrite could find a little early. It reports whether it
// tried.
func (s *SelfWriter) WriteNow(ctx context.Context) (wrote bool) {
	return s.write(ctx, true)
}

func (s *SelfWriter) write(ctx context.Context, force bool) bool {
	if s.Interval <= 0 || s.Metrics == nil || s.Write == nil {
		return false
	}
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	if !force && !s.last.IsZero() && t.Sub(s.last) < s.Interval-s.Interval/10 {
		return false
	}
	s.last = t
	ctx = context.WithValue(ctx, selfKey{}, true)
	gatherErr := s.Metrics.AppendSelf(&s.wr, s.Instance, t)
	var err error
	if len(s.wr.Series) > 0 {
		// What was gathered is written even when a collector failed.
		err = s.Write(ctx, &s.wr)
	}
	if s.Logger != nil && gatherErr != nil {
		s.Logger.LogAttrs(ctx, slog.LevelWarn, "gathering the relay's own metrics", slog.String("error", gatherErr.Error()),
			slog.Int("series", len(s.wr.Series)))
	}
	result := ResultOK
	if err != nil {
		result = ResultError
		// Due again soon, not an interval later: a write the
		// platform froze mid-flight fails when the instance thaws.
		s.last = t.Add(-(s.Interval - s.Interval/10) + min(s.Interval, selfRetry))
		if s.Logger != nil {
			s.Logger.LogAttrs(ctx, slog.LevelWarn, "writing the relay's own metrics", slog.String("error", err.Error()),
				slog.Int("series", len(s.wr.Series)))
		}
	}
	s.Metrics.SelfWrites.WithLabelValues(result).Inc()
	// Drop the references into the gathered families.
	s.wr.Reset()
	return true
}

// selfRetry is how soon a failed self-write is due again.
const selfRetry = 10 * time.Second

type selfKey struct{}

// IsSelfWrite reports whether ctx is a SelfWriter's write: its upstream
// requests are not the users' traffic, and the upstream metrics leave
// them out (promrelay_self_writes_total counts them).
func IsSelfWrite(ctx context.Context) bool {
	v, _ := ctx.Value(selfKey{}).(bool)
	return v
}

// InstanceName returns the instance label value of this process: on AWS
// Lambda AWS_LAMBDA_LOG_STREAM_NAME, which names the execution
// environment (one per concurrent instance, the OpenTelemetry faas.instance
// convention); on Alibaba Cloud Function Compute FC_INSTANCE_ID, the
// function instance's id (a system environment variable of FC); else
// hostname:pid. getenv is os.Getenv outside tests.
func InstanceName(getenv func(string) string) string {
	if v := getenv("AWS_LAMBDA_LOG_STREAM_NAME"); v != "" {
		return v
	}
	if v := getenv("FC_INSTANCE_ID"); v != "" {
		return v
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}
