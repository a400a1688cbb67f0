package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// metric answers a MetricsRequest (src/prometheus_mirror/metric_request.py,
// fetch_metric): query_range from startTime to endTime (seconds, truncated)
// at a step of the bucket size (30 s without aggregation, at least 30 s
// with one), one series turned into telemetry.
func (h *Handler) metric(ctx context.Context, body []byte) (int, any) {
	req, conn, verr := decodeRequest(body, true)
	if verr != nil {
		return http.StatusInternalServerError, validationErrors(verr)
	}
	q := req.Query
	if verr := checkConditions(q.Conditions); verr != nil {
		return http.StatusInternalServerError, validationErrors(verr)
	}
	startMs, endMs, limit := int64(0), int64(0), int64(1000)
	for _, f := range []struct {
		dst  *int64
		src  *number
		name string
		lo   int64
	}{{&startMs, q.StartTime, "startTime", math.MinInt64 / 2}, {&endMs, q.EndTime, "endTime", math.MinInt64 / 2}, {&limit, q.Limit, "limit", 0}} {
		if f.src != nil {
			v, verr := intField(*f.src, f.lo, math.MaxInt64/2, "query", f.name)
			if verr != nil {
				return http.StatusInternalServerError, validationErrors(verr)
			}
			*f.dst = v
		}
	}
	var agg *aggregation
	windowMs := int64(minBucketMilli)
	if a := q.Aggregation; a != nil {
		if a.Method == nil {
			return http.StatusInternalServerError, validationErrors(missing("query", "aggregation", "method"))
		}
		ag, ok := aggregations[strings.ToLower(*a.Method)]
		if !ok {
			return http.StatusInternalServerError, validationErrors(invalid("unknown aggregation method "+strconv.Quote(truncate(*a.Method, 64)), "value_error.aggregation", "query", "aggregation", "method"))
		}
		agg = &ag
		windowMs = 10_000 // the original's default bucketSizeMillis
		if a.BucketSizeMillis != nil {
			v, verr := intField(*a.BucketSizeMillis, math.MinInt64/2, math.MaxInt64/2, "query", "aggregation", "bucketSizeMillis")
			if verr != nil {
				return http.StatusInternalServerError, validationErrors(verr)
			}
			windowMs = v
		}
		windowMs = max(windowMs, minBucketMilli)
	}
	start, end, step := startMs/1000, endMs/1000, windowMs/1000
	if end < start {
		return http.StatusInternalServerError, validationErrors(invalid("endTime before startTime", "value_error.time_range", "query", "endTime"))
	}
	if (end-start)/step+1 > maxPoints {
		return http.StatusInternalServerError, validationErrors(invalid("time range of "+strconv.FormatInt(end-start, 10)+" s at a step of "+
			strconv.FormatInt(step, 10)+" s exceeds "+strconv.Itoa(maxPoints)+" points per series; use a larger bucket", "value_error.time_range", "query"))
	}
	promql, err := buildQuery(q.Conditions, agg, step)
	if err != nil {
		var rf *requiredFieldError
		var ve *validationError
		switch {
		case errors.As(err, &rf):
			return http.StatusInternalServerError, metricNotFoundError{Type: "MetricNotFoundError", Metric: queryRepr(q), Details: rf.msg}
		case errors.As(err, &ve):
			return http.StatusInternalServerError, validationErrors(ve)
		}
		return http.StatusInternalServerError, remoteError(summaryInternal, err.Error())
	}
	params := url.Values{
		"query": {promql},
		"start": {strconv.FormatInt(start, 10)},
		"end":   {strconv.FormatInt(end, 10)},
		"step":  {strconv.FormatInt(step, 10)},
	}
	status, data, answer := h.query(ctx, conn, "query_range", params)
	if answer != nil {
		return status, answer
	}
	vals, status, answer := seriesValues(data, promql)
	if answer != nil {
		return status, answer
	}
	pts, err := telemetryPoints(vals, limit, endMs, windowMs, agg != nil, conn.NaNInterpretation == NaNAsZero)
	if err != nil {
		return http.StatusInternalServerError, remoteError(summaryInvalid, err.Error())
	}
	t := telemetry{Type: "RawMetricTelemetry", Points: pts, DataFormat: rawFormat}
	if agg != nil {
		t.Type, t.DataFormat = "AggregatedMetricTelemetry", aggregatedFormat
	}
	return http.StatusOK, metricsResponse{Type: "MetricsResponse", Telemetry: t}
}

var (
	rawFormat        = []string{"value", "timestamp"}
	aggregatedFormat = []string{"value", "startTimestamp", "endTimestamp"}
)

// checkConditions checks that there are at most maxConditions conditions
// and that each has a key and a value, as the original's model requires.
func checkConditions(conds []conditionJSON) *validationError {
	if len(conds) > maxConditions {
		return invalid("more than "+strconv.Itoa(maxConditions)+" conditions", "value_error.list.max_items", "query", "conditions")
	}
	for i, c := range conds {
		if c.Key == nil {
			return missing("query", "conditions", i, "key")
		}
		if c.Value == nil {
			return missing("query", "conditions", i, "value")
		}
		if c.Type != nil && *c.Type != "EqualityCondition" {
			return invalid("unsupported condition type "+strconv.Quote(truncate(*c.Type, 64))+" (only EqualityCondition)", "value_error.condition", "query", "conditions", i, "_type")
		}
	}
	return nil
}

func remoteError(summary string, details any) remoteMirrorError {
	return remoteMirrorError{Type: "RemoteMirrorError", Summary: summary, Details: details}
}

// query runs one upstream request within the connection's time budget.
// It returns the 2xx body, or the status and protocol error to answer.
func (h *Handler) query(ctx context.Context, conn Connection, endpoint string, params url.Values) (int, []byte, any) {
	ctx, cancel := context.WithTimeout(ctx, conn.RequestTimeout)
	defer cancel()
	status, body, err := h.q.Query(ctx, conn, endpoint, params)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return http.StatusInternalServerError, nil, remoteError(summaryRefused, re.Reason)
		}
		return http.StatusInternalServerError, nil, remoteError(summaryPrometheus, truncate(err.Error(), maxDetailBytes))
	}
	if status < 200 || status > 299 {
		// The original's text, "Failed to call [<url>] . Status code <n>.
		// <body>", which it answers as "Unexpected error.".
		u := conn.URL + "/api/v1/" + endpoint
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
		return http.StatusInternalServerError, nil, remoteError(summaryPrometheus,
			"Failed to call ["+truncate(u, 1024)+"] . Status code "+strconv.Itoa(status)+". "+truncate(string(body), maxDetailBytes))
	}
	return status, body, nil
}

// rangeResponse is a query_range answer with its series undecoded.
type rangeResponse struct {
	Status *string `json:"status"`
	Data   *struct {
		Result *[]json.RawMessage `json:"result"`
	} `json:"data"`
}

type rangeSeries struct {
	Values json.RawMessage `json:"values"`
}

// seriesValues returns the values of the one series of a query_range answer
// (prometheus.py, _validate_metric_data): status "error" is "Prometheus
// error.", no data.result "Invalid prometheus response.", more than one
// series "Too many metrics." with the labels whose values differ, none a
// MetricNotFoundError for the query.
func seriesValues(body []byte, promql string) (json.RawMessage, int, any) {
	var resp rangeResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, http.StatusInternalServerError, remoteError(summaryInvalid, upstreamRepr(body))
	}
	if resp.Status != nil && *resp.Status == "error" {
		return nil, http.StatusInternalServerError, remoteError(summaryPrometheus, upstreamRepr(body))
	}
	if resp.Data == nil || resp.Data.Result == nil {
		return nil, http.StatusInternalServerError, remoteError(summaryInvalid, upstreamRepr(body))
	}
	result := *resp.Data.Result
	switch {
	case len(result) == 0:
		return nil, http.StatusInternalServerError, metricNotFoundError{Type: "MetricNotFoundError", Metric: promql}
	case len(result) > 1:
		return nil, http.StatusInternalServerError, remoteError(summaryTooMany, pyStrList(differingLabels(result)))
	}
	var s rangeSeries
	if err := json.Unmarshal(result[0], &s); err != nil || len(s.Values) == 0 || string(s.Values) == "null" {
		return nil, http.StatusInternalServerError, remoteError(summaryInvalid, "the series has no values")
	}
	return s.Values, 0, nil
}

// upstreamRepr is the original's str() of the upstream's decoded JSON, or
// the text itself when it is not JSON, cut to maxDetailBytes.
func upstreamRepr(body []byte) string {
	if s, err := pyReprJSON(body, maxDetailBytes); err == nil {
		return s
	}
	return truncate(string(body), maxDetailBytes)
}

// differingLabels returns the label names with more than one value across
// the first maxSeriesNames series, in the order they first appear
// (prometheus.py, _compute_differentiating_fields).
func differingLabels(result []json.RawMessage) []string {
	var order []string
	values := map[string]map[string]struct{}{}
	for i, raw := range result {
		if i == maxSeriesNames {
			break
		}
		var s struct {
			Metric json.RawMessage `json:"metric"`
		}
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(s.Metric))
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			continue
		}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				break
			}
			var v string
			if dec.Decode(&v) != nil {
				break
			}
			k := kt.(string)
			set, ok := values[k]
			if !ok {
				set = map[string]struct{}{}
				values[k] = set
				order = append(order, k)
			}
			set[v] = struct{}{}
		}
	}
	diff := []string{}
	for _, k := range order {
		if len(values[k]) > 1 {
			diff = append(diff, k)
		}
	}
	return diff
}

// telemetryPoints turns a series' [timestamp s, "value"] pairs into
// points (metric_request.py, _make_raw_metric_response and
// _make_agg_metric_response): the first limit pairs, a raw point kept when
// its timestamp is at most endMs, an aggregated one when its bucket
// [t, t+windowMs] ends at most at endMs; NaN as 0.0 when nanZero, else
// dropped; ±Inf dropped (JSON cannot carry it; the original fails to
// encode it). At most maxPoints pairs are read.
func telemetryPoints(vals json.RawMessage, limit, endMs, windowMs int64, aggregated, nanZero bool) (points, error) {
	limit = min(limit, maxPoints)
	pts := points{aggregated: aggregated, p: make([]point, 0, min(limit, 1024))}
	sc := scanner{b: vals}
	if !sc.consume('[') {
		return points{}, errNotPairs
	}
	for n := int64(0); !sc.consume(']'); n++ {
		if n > 0 && !sc.consume(',') {
			return points{}, errNotPairs
		}
		ts, v, err := sc.pair()
		if err != nil {
			return points{}, err
		}
		if n >= limit {
			continue // the original slices the pairs; the rest are still checked for syntax
		}
		ms := int64(math.Round(ts * 1000))
		p := point{v: v, t: ms, end: ms + windowMs}
		if aggregated && p.end > endMs || !aggregated && ms > endMs {
			continue
		}
		switch {
		case math.IsNaN(v):
			if !nanZero {
				continue
			}
			p.v = 0
		case math.IsInf(v, 0):
			continue
		}
		pts.p = append(pts.p, p)
	}
	return pts, nil
}

var errNotPairs = errors.New("the values are not a list of [timestamp, value] pairs")

// scanner reads a Prometheus range vector's values, [[t, "v"], …], without
// an allocation per pair.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) skip() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *scanner) consume(c byte) bool {
	s.skip()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// pair reads one [timestamp, "value"] pair; the value may also be a bare
// number.
func (s *scanner) pair() (float64, float64, error) {
	if !s.consume('[') {
		return 0, 0, errNotPairs
	}
	s.skip()
	j := s.i
	for j < len(s.b) && strings.IndexByte("+-.0123456789eE", s.b[j]) >= 0 {
		j++
	}
	ts, err := strconv.ParseFloat(string(s.b[s.i:j]), 64)
	if err != nil || math.IsInf(ts, 0) || math.Abs(ts) > 1e15 {
		return 0, 0, errors.New("invalid sample timestamp " + strconv.Quote(truncate(string(s.b[s.i:j]), 64)))
	}
	s.i = j
	if !s.consume(',') {
		return 0, 0, errNotPairs
	}
	s.skip()
	var text string
	if s.i < len(s.b) && s.b[s.i] == '"' {
		j = s.i + 1
		for j < len(s.b) && s.b[j] != '"' && s.b[j] != '\\' {
			j++
		}
		if j >= len(s.b) || s.b[j] != '"' {
			return 0, 0, errors.New("invalid sample value")
		}
		text = string(s.b[s.i+1 : j])
		s.i = j + 1
	} else {
		j = s.i
		for j < len(s.b) && strings.IndexByte("+-.0123456789eE", s.b[j]) >= 0 {
			j++
		}
		text = string(s.b[s.i:j])
		s.i = j
	}
	if !s.consume(']') {
		return 0, 0, errNotPairs
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, 0, errors.New("invalid sample value " + strconv.Quote(truncate(text, 64)))
	}
	return ts, v, nil
}

// point is one telemetry point; end is used for aggregated points only.
type point struct {
	v      float64
	t, end int64
}

// points are written [value, t] or [value, start, end], values as Python
// prints floats (1.0), as the original's JSON has them.
type points struct {
	aggregated bool
	p          []point
}

// MarshalJSON writes the points.
func (ps points) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(ps.p)*40)
	b = append(b, '[')
	for i, p := range ps.p {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendPyFloat(b, p.v)
		b = append(b, ',')
		b = strconv.AppendInt(b, p.t, 10)
		if ps.aggregated {
			b = append(b, ',')
			b = strconv.AppendInt(b, p.end, 10)
		}
		b = append(b, ']')
	}
	return append(b, ']'), nil
}
