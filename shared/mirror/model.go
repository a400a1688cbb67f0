package mirror

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The request shapes, as the original's model reads them
// (src/prometheus_mirror/model.py, pydantic: unknown fields ignored, null
// as absent). Integers are read as number, so that 2.0 and "2" read as
// pydantic reads them and a wrong one is reported where it is.

// mirrorRequest is a TestConnectionRequest, FieldNamesRequest,
// FieldValuesRequest or MetricsRequest.
type mirrorRequest struct {
	ConnectionDetails *connectionJSON `json:"connectionDetails"`
	Query             *queryJSON      `json:"query"`
}

type connectionJSON struct {
	URL                   *string  `json:"url"`
	RequestTimeoutSeconds *number  `json:"request_timeout_seconds"`
	NaNInterpretation     *string  `json:"nan_interpretation"`
	AWS                   *awsJSON `json:"aws"`
}

type awsJSON struct {
	RoleARN            *string `json:"role_arn"`
	ExternalID         *string `json:"external_id"`
	AccessKeyID        *string `json:"aws_access_key_id"`
	SecretAccessKey    *string `json:"aws_secret_access_key"`
	SessionToken       *string `json:"aws_session_token"`
	TokenExpirySeconds *number `json:"token_expiry_seconds"`
	RegionName         *string `json:"region_name"`
	RoleSessionName    *string `json:"role_session_name"`
}

type queryJSON struct {
	Conditions  []conditionJSON  `json:"conditions"`
	Field       *fieldJSON       `json:"field"`
	Aggregation *aggregationJSON `json:"aggregation"`
	MetricField *string          `json:"metricField"`
	StartTime   *number          `json:"startTime"`
	EndTime     *number          `json:"endTime"`
	LastFirst   *bool            `json:"lastFirst"`
	Prefix      *string          `json:"fieldValuePrefix"`
	Limit       *number          `json:"limit"`
	Offset      *number          `json:"offset"`
	Type        *string          `json:"_type"`
}

type conditionJSON struct {
	Key   *string         `json:"key"`
	Value *conditionValue `json:"value"`
	Type  *string         `json:"_type"`
}

type conditionValue struct {
	Value json.RawMessage `json:"value"`
	Type  *string         `json:"_type"`
}

type fieldJSON struct {
	Type       *string `json:"_type"`
	Classified *bool   `json:"classified"`
	FieldType  *string `json:"fieldType"`
	FieldName  *string `json:"fieldName"`
}

type aggregationJSON struct {
	Method           *string `json:"method"`
	BucketSizeMillis *number `json:"bucketSizeMillis"`
	Type             *string `json:"_type"`
}

// The response shapes (model.py), in the original's field order.

type fieldDescriptor struct {
	Type       string `json:"_type"`
	Classified bool   `json:"classified"`
	FieldType  string `json:"fieldType"`
	FieldName  string `json:"fieldName"`
}

type fieldNamesResponse struct {
	Type      string            `json:"_type"`
	Fields    []fieldDescriptor `json:"fields"`
	IsPartial bool              `json:"isPartial"`
}

type valueDescriptor struct {
	Type  string `json:"_type"`
	Value string `json:"value"`
}

type fieldValuesResponse struct {
	Type      string            `json:"_type"`
	Values    []valueDescriptor `json:"values"`
	IsPartial bool              `json:"isPartial"`
}

type metricsResponse struct {
	Type      string    `json:"_type"`
	Telemetry telemetry `json:"telemetry"`
}

type telemetry struct {
	Type       string   `json:"_type"`
	Points     points   `json:"points"`
	DataFormat []string `json:"dataFormat"`
	IsPartial  bool     `json:"isPartial"`
}

type metricNotFoundError struct {
	Type    string `json:"_type"`
	Metric  string `json:"metric"`
	Details any    `json:"details"`
}

type remoteMirrorError struct {
	Type    string `json:"_type"`
	Summary string `json:"summary"`
	Details any    `json:"details"`
}

type testConnectionResponse struct {
	Type   string               `json:"_type"`
	Status string               `json:"status"`
	Error  *testConnectionError `json:"error"`
}

type testConnectionError struct {
	Type    string `json:"_type"`
	Details string `json:"details"`
}

// The error summaries of the original (src/prometheus_mirror/mirror.py,
// metric_request.py), and this package's own for a refused connection.
const (
	summaryValidation   = "Request validation errors."
	summaryInternal     = "Internal server error."
	summaryPrometheus   = "Prometheus error."
	summaryInvalid      = "Invalid prometheus response."
	summaryTooMany      = "Too many metrics."
	summaryRefused      = "Connection refused by the mirror."
	maxDetailBytes      = 4096 // upstream text quoted in an error's details
	bodyTooLargeMessage = "request body too large"
)

// validationError is FastAPI's RequestValidationError detail, as the
// original answers it ({"detail":[{"loc","msg","type"}]}); the request body
// FastAPI also echoes is left out, since it carries AWS secrets.
type validationError struct {
	Detail []validationDetail `json:"detail"`
}

type validationDetail struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

func (e *validationError) Error() string { return e.Detail[0].Msg }

func invalid(msg, typ string, loc ...any) *validationError {
	return &validationError{Detail: []validationDetail{{Loc: append([]any{"body"}, loc...), Msg: msg, Type: typ}}}
}

func missing(loc ...any) *validationError {
	return invalid("field required", "value_error.missing", loc...)
}

func validationErrors(e *validationError) remoteMirrorError {
	return remoteMirrorError{Type: "RemoteMirrorError", Summary: summaryValidation, Details: e}
}

// readBody reads at most limit bytes of r's body; a larger body is a 413,
// an unreadable one a 400, both with the protocol's validation error.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, *validationError) {
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, invalid(bodyTooLargeMessage+" (limit "+strconv.FormatInt(limit, 10)+" bytes)", "value_error.body_too_large")
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, invalid(bodyTooLargeMessage+" (limit "+strconv.FormatInt(limit, 10)+" bytes)", "value_error.body_too_large")
		}
		return nil, http.StatusBadRequest, invalid("cannot read request body", "value_error.body")
	}
	return b, 0, nil
}

// decodeRequest decodes a mirror request body; needQuery says whether
// "query" is required (all but TestConnectionRequest). Errors are the
// protocol's validation errors, as FastAPI reports malformed JSON and
// missing or mistyped fields.
func decodeRequest(body []byte, needQuery bool) (*mirrorRequest, Connection, *validationError) {
	var req mirrorRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			loc := []any{}
			for _, p := range strings.Split(te.Field, ".") {
				if p != "" {
					loc = append(loc, p)
				}
			}
			return nil, Connection{}, invalid("value is not a valid "+te.Value+" for "+te.Type.String(), "type_error", loc...)
		case errors.As(err, &se):
			return nil, Connection{}, invalid("invalid JSON: "+se.Error(), "value_error.jsondecode", se.Offset)
		default:
			return nil, Connection{}, invalid("invalid JSON: "+err.Error(), "value_error.jsondecode")
		}
	}
	if dec.More() {
		return nil, Connection{}, invalid("invalid JSON: data after the request object", "value_error.jsondecode")
	}
	if msg := duplicateKey(body); msg != "" {
		// encoding/json matches keys case-insensitively and keeps the last
		// of duplicates; pydantic matches them exactly. Refuse what the two
		// would read differently.
		return nil, Connection{}, invalid(msg, "value_error.duplicate_key")
	}
	if req.ConnectionDetails == nil {
		return nil, Connection{}, missing("connectionDetails")
	}
	conn, verr := req.ConnectionDetails.decode()
	if verr != nil {
		return nil, Connection{}, verr
	}
	if needQuery && req.Query == nil {
		return nil, Connection{}, missing("query")
	}
	return &req, conn, nil
}

// maxObjectKeys bounds the keys of one JSON object of a request; the
// protocol's objects have a dozen.
const maxObjectKeys = 256

// duplicateKey names a key that an object of body holds twice, compared
// as encoding/json matches keys (case-insensitively, bytes.EqualFold), or
// an object with more than maxObjectKeys keys; "" if none. body is valid
// JSON.
func duplicateKey(body []byte) string {
	var keys [][]byte // the keys of the objects open, innermost last
	var open []int    // per open object its first index in keys; -1 for an array
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			open = append(open, len(keys))
		case '[':
			open = append(open, -1)
		case '}', ']':
			if top := open[len(open)-1]; top >= 0 {
				keys = keys[:top]
			}
			open = open[:len(open)-1]
		case '"':
			j, esc := i+1, false
			for ; j < len(body) && body[j] != '"'; j++ {
				if body[j] == '\\' {
					j++
					esc = true
				}
			}
			str := body[i+1 : j]
			k := j + 1
			for k < len(body) && (body[k] == ' ' || body[k] == '\t' || body[k] == '\n' || body[k] == '\r') {
				k++
			}
			if len(open) > 0 && open[len(open)-1] >= 0 && k < len(body) && body[k] == ':' {
				if esc {
					var u string
					if json.Unmarshal(body[i:j+1], &u) == nil {
						str = []byte(u)
					}
				}
				top := open[len(open)-1]
				for _, prev := range keys[top:] {
					if bytes.EqualFold(prev, str) {
						return "duplicate key " + strconv.Quote(truncate(string(str), 64)) + " (keys are matched case-insensitively)"
					}
				}
				if len(keys)-top >= maxObjectKeys {
					return "more than " + strconv.Itoa(maxObjectKeys) + " keys in an object"
				}
				keys = append(keys, str)
			}
			i = j
		}
	}
	return ""
}

// maxTimeoutSeconds bounds request_timeout_seconds so that it converts to a
// time.Duration; the caller's context bounds it further.
const maxTimeoutSeconds = 1 << 31

func (c *connectionJSON) decode() (Connection, *validationError) {
	loc := []any{"connectionDetails"}
	var conn Connection
	if c.URL == nil {
		return conn, missing(append(loc, "url")...)
	}
	u, err := url.Parse(*c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return conn, invalid("url must be an absolute http(s) URL without user, query or fragment", "value_error.url", append(loc, "url")...)
	}
	conn.URL = strings.TrimSuffix(*c.URL, "/")
	conn.RequestTimeout = DefaultRequestTimeout
	if c.RequestTimeoutSeconds != nil {
		s, verr := intField(*c.RequestTimeoutSeconds, 0, maxTimeoutSeconds, append(loc, "request_timeout_seconds")...)
		if verr != nil {
			return conn, verr
		}
		if s > 0 {
			conn.RequestTimeout = time.Duration(s) * time.Second
		}
	}
	conn.NaNInterpretation = DefaultNaNInterpretation
	if c.NaNInterpretation != nil {
		conn.NaNInterpretation = *c.NaNInterpretation
	}
	if a := c.AWS; a != nil {
		loc := append(loc, "aws")
		d := &AWSDetails{Region: DefaultRegion, RoleSessionName: DefaultRoleSessionName, TokenExpiry: DefaultTokenExpiry}
		for _, f := range []struct {
			dst *string
			src *string
		}{{&d.RoleARN, a.RoleARN}, {&d.ExternalID, a.ExternalID}, {&d.AccessKeyID, a.AccessKeyID},
			{&d.SecretAccessKey, a.SecretAccessKey}, {&d.SessionToken, a.SessionToken},
			{&d.Region, a.RegionName}, {&d.RoleSessionName, a.RoleSessionName}} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		if a.TokenExpirySeconds != nil {
			// AssumeRole's DurationSeconds range.
			s, verr := intField(*a.TokenExpirySeconds, 900, 43200, append(loc, "token_expiry_seconds")...)
			if verr != nil {
				return conn, verr
			}
			d.TokenExpiry = time.Duration(s) * time.Second
		}
		conn.AWS = d
	}
	return conn, nil
}

// number is the JSON text of an integer field, checked by intField.
type number string

// UnmarshalJSON keeps the text; intField reads it.
func (n *number) UnmarshalJSON(b []byte) error {
	*n = number(b)
	return nil
}

// intField reads n as pydantic reads an int (a number, or a string
// holding one; a float truncated toward zero) and checks lo ≤ n ≤ hi.
func intField(n number, lo, hi int64, loc ...any) (int64, *validationError) {
	s := string(n)
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal([]byte(s), &s); err != nil {
			return 0, invalid("value is not a valid integer", "type_error.integer", loc...)
		}
		s = strings.TrimSpace(s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || f < -(1<<62) || f > 1<<62 {
			return 0, invalid("value is not a valid integer", "type_error.integer", loc...)
		}
		v = int64(f)
	}
	if v < lo || v > hi {
		return 0, invalid("value must be between "+strconv.FormatInt(lo, 10)+" and "+strconv.FormatInt(hi, 10), "value_error.number.range", loc...)
	}
	return v, nil
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"_type":"RemoteMirrorError","summary":"Internal server error.","details":{"message":"cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// logSummary is the part of an error answer worth a log field.
func logSummary(v any) string {
	switch e := v.(type) {
	case remoteMirrorError:
		return e.Summary
	case metricNotFoundError:
		return "MetricNotFoundError"
	case testConnectionResponse:
		return "MetricStoreConnectionError"
	}
	return ""
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
