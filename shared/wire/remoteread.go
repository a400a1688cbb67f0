package wire

import (
	"errors"
	"fmt"
)

// Remote read 1.0 (https://prometheus.io/docs/prometheus/latest/querying/remote_read_api/;
// schema prometheus/prompb/remote.proto and types.proto).
//
//	message ReadRequest {
//	  repeated Query queries = 1;
//	  repeated ResponseType accepted_response_types = 2; // packed or not
//	}
//	message Query {
//	  int64 start_timestamp_ms = 1;
//	  int64 end_timestamp_ms = 2;
//	  repeated LabelMatcher matchers = 3;
//	  ReadHints hints = 4;
//	}
//	message LabelMatcher {
//	  enum Type { EQ = 0; NEQ = 1; RE = 2; NRE = 3; }
//	  Type type = 1;
//	  string name = 2;
//	  string value = 3;
//	}
//	message ReadHints {
//	  int64 step_ms = 1; string func = 2; int64 start_ms = 3; int64 end_ms = 4;
//	  repeated string grouping = 5; bool by = 6; int64 range_ms = 7;
//	}

// Remote-read limit names, as ReadLimitError.What gives them.
const (
	LimitReadQueries  = "queries per read request"
	LimitReadMatchers = "matchers per query"
)

// ReadLimitError is a remote-read request that crossed a limit of
// AppendEnforcedReadRequest while it was decoded; nothing after that point
// was decoded. A receiver answers it with 413 Payload Too Large.
type ReadLimitError struct {
	What  string // LimitReadQueries or LimitReadMatchers
	Limit int
	// Query is the index of the query that crossed LimitReadMatchers, or
	// of the first query over LimitReadQueries.
	Query int
}

func (e *ReadLimitError) Error() string {
	if e.What == LimitReadMatchers {
		return fmt.Sprintf("query %d: more than %d %s", e.Query, e.Limit, e.What)
	}
	return fmt.Sprintf("more than %d %s", e.Limit, e.What)
}

// errEmptyTenant is the error for a tenant label with an empty name or
// value: an equality matcher name="" selects the series without the label,
// which is no tenant.
var errEmptyTenant = errors.New("tenant label with an empty name or value")

// AppendEnforcedReadRequest appends to dst the uncompressed remote-read
// request raw with labels forced onto every query and returns it: each
// matcher on one of the label names (of any type) is removed and one EQ
// matcher name=value appended per label, after the query's last matcher
// (so that a canonically encoded request stays canonical). Every other
// field is copied byte for byte, unknown fields and the hints too, so the
// upstream reads exactly what the reader sent, restricted to the tenant.
//
// maxQueries bounds the queries of the request and maxMatchers the
// matchers of one query as sent (before enforcement); both are checked while
// decoding and answered with a *ReadLimitError. A zero or negative limit is
// no limit. labels must have non-empty names and values. Malformed
// protobuf (truncated fields, wrong wire types, groups, field numbers over
// 2^29-1) is an error naming the message and field. With no labels raw is
// validated and appended as it is. When dst has room for the result,
// nothing is allocated.
func AppendEnforcedReadRequest(dst, raw []byte, labels []Label, maxQueries, maxMatchers int) ([]byte, error) {
	for _, l := range labels {
		if l.Name == "" || l.Value == "" {
			return dst, fmt.Errorf("%w: %q=%q", errEmptyTenant, l.Name, l.Value)
		}
	}
	start := len(dst)
	queries := 0
	it := fields{b: raw}
	for it.next() {
		f := &it.f
		switch f.num {
		case 1:
			if maxQueries > 0 && queries >= maxQueries {
				return dst[:start], &ReadLimitError{What: LimitReadQueries, Limit: maxQueries, Query: queries}
			}
			q, err := f.bytes()
			if err != nil {
				return dst[:start], fmt.Errorf("ReadRequest.queries[%d]: %w", queries, err)
			}
			size, at, err := scanQuery(q, labels, queries, maxMatchers)
			if err != nil {
				return dst[:start], err
			}
			if len(labels) == 0 {
				dst = append(dst, raw[f.start:f.end]...)
			} else {
				dst = append(dst, 1<<3|wireBytes)
				dst = appendVarint(dst, uint64(size))
				dst = appendQuery(dst, q, labels, at)
			}
			queries++
		case 2:
			if err := checkResponseTypes(f); err != nil {
				return dst[:start], err
			}
			dst = append(dst, raw[f.start:f.end]...)
		default:
			dst = append(dst, raw[f.start:f.end]...)
		}
	}
	if it.err != nil {
		return dst[:start], fmt.Errorf("ReadRequest field: %w", it.err)
	}
	return dst, nil
}

// checkResponseTypes checks one accepted_response_types field: a varint,
// or a packed run of them.
func checkResponseTypes(f *field) error {
	switch f.typ {
	case wireVarint:
		return nil
	case wireBytes:
		for j := 0; j < len(f.data); {
			_, next, err := readVarint(f.data, j)
			if err != nil {
				return fmt.Errorf("ReadRequest.accepted_response_types: %w", err)
			}
			j = next
		}
		return nil
	}
	return fmt.Errorf("ReadRequest.accepted_response_types: %w", f.wrongType("an enum"))
}

// scanQuery checks the encoded Query q (index n of its request) and returns
// the size of its enforced encoding and the offset in q where the tenant's
// matchers go: after the last matcher, else before the first field
// numbered after matchers, else at the end.
func scanQuery(q []byte, tenant []Label, n, maxMatchers int) (size, at int, err error) {
	size, at = len(q), -1
	matchers := 0
	it := fields{b: q}
	for it.next() {
		f := &it.f
		switch f.num {
		case 1, 2:
			if _, err := f.varint(); err != nil {
				return 0, 0, fmt.Errorf("ReadRequest.queries[%d].%s: %w", n, queryField(f.num), err)
			}
		case 3:
			if maxMatchers > 0 && matchers >= maxMatchers {
				return 0, 0, &ReadLimitError{What: LimitReadMatchers, Limit: maxMatchers, Query: n}
			}
			m, err := f.bytes()
			if err != nil {
				return 0, 0, fmt.Errorf("ReadRequest.queries[%d].matchers[%d]: %w", n, matchers, err)
			}
			name, err := matcherName(m)
			if err != nil {
				return 0, 0, fmt.Errorf("ReadRequest.queries[%d].matchers[%d].%w", n, matchers, err)
			}
			if isTenantName(tenant, name) {
				size -= f.end - f.start
			}
			matchers++
			at = f.end
		case 4:
			h, err := f.bytes()
			if err != nil {
				return 0, 0, fmt.Errorf("ReadRequest.queries[%d].hints: %w", n, err)
			}
			if err := checkHints(h); err != nil {
				return 0, 0, fmt.Errorf("ReadRequest.queries[%d].hints.%w", n, err)
			}
		}
		if f.num > 3 && matchers == 0 && at < 0 {
			at = f.start
		}
	}
	if it.err != nil {
		return 0, 0, fmt.Errorf("ReadRequest.queries[%d] field: %w", n, it.err)
	}
	if at < 0 {
		at = len(q)
	}
	for _, l := range tenant {
		ms := matcherSize(l)
		size += 1 + varintSize(uint64(ms)) + ms
	}
	return size, at, nil
}

// queryField names Query's varint fields for messages.
func queryField(num uint64) string {
	if num == 1 {
		return "start_timestamp_ms"
	}
	return "end_timestamp_ms"
}

// appendQuery appends the body of the Query q, checked by scanQuery, with
// its matchers on tenant names left out and the tenant's matchers inserted
// at offset at.
func appendQuery(dst, q []byte, tenant []Label, at int) []byte {
	run := 0 // start of the run of q not yet copied
	it := fields{b: q}
	for it.next() {
		f := &it.f
		if f.start == at {
			dst = append(dst, q[run:at]...)
			run = at
			dst = appendTenantMatchers(dst, tenant)
		}
		if f.num == 3 {
			if name, _ := matcherName(f.data); isTenantName(tenant, name) {
				dst = append(dst, q[run:f.start]...)
				run = f.end
			}
		}
	}
	dst = append(dst, q[run:]...)
	if at == len(q) {
		dst = appendTenantMatchers(dst, tenant)
	}
	return dst
}

// appendTenantMatchers appends one EQ LabelMatcher field per label, encoded
// as prompb encodes it (type EQ, the zero value, omitted).
func appendTenantMatchers(dst []byte, tenant []Label) []byte {
	for _, l := range tenant {
		dst = append(dst, 3<<3|wireBytes)
		dst = appendVarint(dst, uint64(matcherSize(l)))
		dst = appendString(dst, 2, l.Name)
		dst = appendString(dst, 3, l.Value)
	}
	return dst
}

// matcherSize is the size of the EQ LabelMatcher body for l.
func matcherSize(l Label) int {
	return 1 + varintSize(uint64(len(l.Name))) + len(l.Name) + 1 + varintSize(uint64(len(l.Value))) + len(l.Value)
}

// matcherName checks the encoded LabelMatcher m and returns its name (the
// last name field, as protobuf parsers take it). Its error starts with the
// field's name, for the caller's path.
func matcherName(m []byte) ([]byte, error) {
	var name []byte
	it := fields{b: m}
	for it.next() {
		f := &it.f
		switch f.num {
		case 1:
			if _, err := f.varint(); err != nil {
				return nil, fmt.Errorf("type: %w", err)
			}
		case 2, 3:
			b, err := f.bytes()
			switch {
			case err != nil && f.num == 2:
				return nil, fmt.Errorf("name: %w", err)
			case err != nil:
				return nil, fmt.Errorf("value: %w", err)
			case f.num == 2:
				name = b
			}
		}
	}
	if it.err != nil {
		return nil, fmt.Errorf("field: %w", it.err)
	}
	return name, nil
}

// checkHints checks the encoded ReadHints h. Its error starts with the
// field's name, for the caller's path.
func checkHints(h []byte) error {
	it := fields{b: h}
	for it.next() {
		f := &it.f
		var err error
		switch f.num {
		case 1, 3, 4, 6, 7:
			_, err = f.varint()
		case 2, 5:
			_, err = f.bytes()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", hintsField[f.num], err)
		}
	}
	if it.err != nil {
		return fmt.Errorf("field: %w", it.err)
	}
	return nil
}

// hintsField names ReadHints' fields for messages.
var hintsField = [...]string{1: "step_ms", 2: "func", 3: "start_ms", 4: "end_ms", 5: "grouping", 6: "by", 7: "range_ms"}

// isTenantName reports whether one of tenant has the name n.
func isTenantName(tenant []Label, n []byte) bool {
	for i := range tenant {
		if tenant[i].Name == bytesToString(n) {
			return true
		}
	}
	return false
}
