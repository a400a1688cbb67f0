package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// connection answers a TestConnectionRequest (src/prometheus_mirror/
// mirror.py, check_connection; prometheus.py, test_connection): GET
// /api/v1/labels; 200 is {"status":"OK"}, any other status is answered with
// that status and a MetricStoreConnectionError holding the upstream's text.
// The original asks /-/healthy of an unsigned Prometheus; every connection
// here goes through the Prometheus HTTP API, so it asks labels of all.
func (h *Handler) connection(ctx context.Context, body []byte) (int, any) {
	_, conn, verr := decodeRequest(body, false)
	if verr != nil {
		return http.StatusInternalServerError, validationErrors(verr)
	}
	ctx, cancel := context.WithTimeout(ctx, conn.RequestTimeout)
	defer cancel()
	status, text, err := h.q.Query(ctx, conn, "labels", nil)
	failure := func(status int, details string) (int, any) {
		return status, testConnectionResponse{Type: "TestConnectionResponse", Status: "FAILURE",
			Error: &testConnectionError{Type: "MetricStoreConnectionError", Details: truncate(details, maxDetailBytes)}}
	}
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return failure(http.StatusInternalServerError, re.Error())
		}
		return failure(http.StatusBadGateway, err.Error())
	}
	if status != http.StatusOK {
		if status < 400 || status > 599 {
			return failure(http.StatusBadGateway, "upstream status "+strconv.Itoa(status)+": "+string(text))
		}
		return failure(status, string(text))
	}
	return http.StatusOK, testConnectionResponse{Type: "TestConnectionResponse", Status: "OK"}
}

// fieldNames answers a FieldNamesRequest (mirror.py, fetch_field_name;
// prometheus.py, list_labels): __counter__, __gauge__ and ~ (those not
// already among the conditions) and then the upstream's label names, the
// latter cut to limit (default 1000) with isPartial when cut.
func (h *Handler) fieldNames(ctx context.Context, body []byte) (int, any) {
	req, conn, verr := decodeRequest(body, true)
	if verr != nil {
		return http.StatusInternalServerError, validationErrors(verr)
	}
	q := req.Query
	if verr := checkConditions(q.Conditions); verr != nil {
		return http.StatusInternalServerError, validationErrors(verr)
	}
	limit := int64(1000)
	if q.Limit != nil {
		if limit, verr = intField(*q.Limit, 0, 1<<40, "query", "limit"); verr != nil {
			return http.StatusInternalServerError, validationErrors(verr)
		}
	}
	status, data, answer := h.query(ctx, conn, "labels", nil)
	if answer != nil {
		return status, answer
	}
	labels, answer := stringList(data)
	if answer != nil {
		return http.StatusInternalServerError, answer
	}
	resp := fieldNamesResponse{Type: "FieldNamesResponse", Fields: []fieldDescriptor{}}
	if int64(len(labels)) > limit {
		labels, resp.IsPartial = labels[:limit], true
	}
	names := []string{keyCounter, keyGauge, keyTilde}
	names = slices.DeleteFunc(names, func(n string) bool {
		return slices.ContainsFunc(q.Conditions, func(c conditionJSON) bool { return *c.Key == n })
	})
	for _, n := range append(names, labels...) {
		resp.Fields = append(resp.Fields, fieldDescriptor{Type: "FieldDescriptor", FieldType: "STRING", FieldName: n})
	}
	return http.StatusOK, resp
}

// fieldValues answers a FieldValuesRequest (mirror.py, fetch_field_value;
// prometheus.py, list_label_values): GET /api/v1/label/<name>/values, where
// __counter__ and __gauge__ mean __name__; the values that start with
// fieldValuePrefix, from offset (default 0), at most limit (default 1000),
// with isPartial when more remain.
func (h *Handler) fieldValues(ctx context.Context, body []byte) (int, any) {
	req, conn, verr := decodeRequest(body, true)
	if verr != nil {
		return http.StatusInternalServerError, validationErrors(verr)
	}
	q := req.Query
	if q.Field == nil || q.Field.FieldName == nil {
		return http.StatusInternalServerError, validationErrors(missing("query", "field", "fieldName"))
	}
	name := *q.Field.FieldName
	if name == keyCounter || name == keyGauge {
		name = "__name__"
	}
	if !validLabelName(name) {
		return http.StatusInternalServerError, validationErrors(invalid("invalid label name "+strconv.Quote(truncate(name, 256)), "value_error.label_name", "query", "field", "fieldName"))
	}
	limit, offset := int64(1000), int64(0)
	for _, f := range []struct {
		dst  *int64
		src  any
		name string
	}{{&limit, q.Limit, "limit"}, {&offset, q.Offset, "offset"}} {
		if n, ok := f.src.(*number); ok && n != nil {
			if *f.dst, verr = intField(*n, 0, 1<<40, "query", f.name); verr != nil {
				return http.StatusInternalServerError, validationErrors(verr)
			}
		}
	}
	status, data, answer := h.query(ctx, conn, "label/"+name+"/values", nil)
	if answer != nil {
		return status, answer
	}
	values, answer := stringList(data)
	if answer != nil {
		return http.StatusInternalServerError, answer
	}
	if q.Prefix != nil && *q.Prefix != "" {
		values = slices.DeleteFunc(values, func(v string) bool { return !strings.HasPrefix(v, *q.Prefix) })
	}
	n := int64(len(values))
	start := min(offset, n)
	end := min(start+limit, n)
	resp := fieldValuesResponse{Type: "FieldValuesResponse", Values: make([]valueDescriptor, 0, end-start), IsPartial: end < n}
	for _, v := range values[start:end] {
		resp.Values = append(resp.Values, valueDescriptor{Type: "CompleteValue", Value: v})
	}
	return http.StatusOK, resp
}

// stringList reads the data of a labels or label values answer: a list of
// strings, or "Invalid prometheus response.".
func stringList(body []byte) ([]string, any) {
	var resp struct {
		Data *[]string `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Data == nil {
		return nil, remoteError(summaryInvalid, upstreamRepr(body))
	}
	return *resp.Data, nil
}

// queryRepr is the text the original answers as the "metric" of a
// MetricNotFoundError for a query without one reserved key: pydantic's
// str() of its Query model (model.py), fields in the model's order.
func queryRepr(q *queryJSON) string {
	var b strings.Builder
	str := func(s *string) {
		if s == nil {
			b.WriteString("None")
			return
		}
		pyString(&b, *s)
	}
	num := func(n *number, def string) {
		if n == nil {
			b.WriteString(def)
			return
		}
		if v, err := intField(*n, -1<<62, 1<<62); err == nil {
			b.WriteString(strconv.FormatInt(v, 10))
			return
		}
		b.WriteString(string(*n))
	}
	boolean := func(v *bool) {
		if v != nil && *v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	}
	b.WriteString("conditions=[")
	for i, c := range q.Conditions {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("Condition(key=")
		str(c.Key)
		b.WriteString(", value=ConditionValue(value=")
		if r, err := pyReprJSON(c.Value.Value, 1024); err == nil && len(c.Value.Value) > 0 {
			b.WriteString(r)
		} else {
			b.WriteString("None")
		}
		b.WriteString(", type_descriptor=")
		t := valueString
		if c.Value.Type != nil {
			t = *c.Value.Type
		}
		pyString(&b, t)
		b.WriteString("))")
	}
	b.WriteString("] field=")
	if f := q.Field; f != nil {
		b.WriteString("FieldDescriptor(type_descriptor=")
		if f.Type == nil {
			f.Type = new(string)
			*f.Type = "FieldDescriptor"
		}
		str(f.Type)
		b.WriteString(", classified=")
		boolean(f.Classified)
		b.WriteString(", field_type=")
		if f.FieldType == nil {
			pyString(&b, "STRING")
		} else {
			str(f.FieldType)
		}
		b.WriteString(", field_name=")
		str(f.FieldName)
		b.WriteString(")")
	} else {
		b.WriteString("None")
	}
	b.WriteString(" aggregation=")
	if a := q.Aggregation; a != nil {
		b.WriteString("Aggregation(method=")
		str(a.Method)
		b.WriteString(", bucket_size_millis=")
		num(a.BucketSizeMillis, "10000")
		b.WriteString(", type_descriptor=")
		if a.Type == nil {
			pyString(&b, "Aggregation")
		} else {
			str(a.Type)
		}
		b.WriteString(")")
	} else {
		b.WriteString("None")
	}
	b.WriteString(" metric_field=")
	if q.MetricField == nil {
		pyString(&b, "")
	} else {
		str(q.MetricField)
	}
	b.WriteString(" start_time=")
	num(q.StartTime, "0")
	b.WriteString(" end_time=")
	num(q.EndTime, "0")
	b.WriteString(" last_first=")
	boolean(q.LastFirst)
	b.WriteString(" prefix=")
	if q.Prefix == nil {
		pyString(&b, "")
	} else {
		str(q.Prefix)
	}
	b.WriteString(" limit=")
	num(q.Limit, "1000")
	b.WriteString(" offset=")
	num(q.Offset, "0")
	b.WriteString(" type_descriptor=")
	str(q.Type)
	return truncate(b.String(), maxDetailBytes)
}
