package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/promrelay/promrelay/shared/wire"
)

var readTenant = []wire.Label{{Name: "env", Value: "prod"}, {Name: "tenant", Value: "a"}}

// enforceReference applies AppendEnforcedReadRequest's rule to a decoded
// prompb.ReadRequest: in every query, the matchers on tenant names go and
// one EQ matcher per tenant label is appended.
func enforceReference(req *prompb.ReadRequest, tenant []wire.Label) {
	if len(tenant) == 0 {
		return
	}
	for _, q := range req.Queries {
		kept := q.Matchers[:0]
		for _, m := range q.Matchers {
			if !hasTenantName(tenant, m.Name) {
				kept = append(kept, m)
			}
		}
		for _, l := range tenant {
			kept = append(kept, &prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: l.Name, Value: l.Value})
		}
		q.Matchers = kept
	}
}

func hasTenantName(tenant []wire.Label, n string) bool {
	for _, l := range tenant {
		if l.Name == n {
			return true
		}
	}
	return false
}

// dumpRead prints a decoded request, unknown fields included, without
// prompb's size caches, for comparing two decodings.
func dumpRead(req *prompb.ReadRequest) string {
	var b strings.Builder
	for i, q := range req.Queries {
		fmt.Fprintf(&b, "query %d: %d..%d unknown=%x\n", i, q.StartTimestampMs, q.EndTimestampMs, q.XXX_unrecognized)
		for _, m := range q.Matchers {
			fmt.Fprintf(&b, "  matcher %d %q %q unknown=%x\n", m.Type, m.Name, m.Value, m.XXX_unrecognized)
		}
		if h := q.Hints; h != nil {
			fmt.Fprintf(&b, "  hints %d %q %d %d %q %v %d unknown=%x\n", h.StepMs, h.Func, h.StartMs, h.EndMs, h.Grouping, h.By, h.RangeMs, h.XXX_unrecognized)
		}
	}
	fmt.Fprintf(&b, "types %v unknown=%x\n", req.AcceptedResponseTypes, req.XXX_unrecognized)
	return b.String()
}

// checkAgainstPrompb runs AppendEnforcedReadRequest on raw and checks its
// output against prompb's decoding of raw with the rule applied. It
// returns the output, and false when it rejects raw.
func checkAgainstPrompb(t *testing.T, raw []byte, tenant []wire.Label) ([]byte, bool) {
	t.Helper()
	out, err := wire.AppendEnforcedReadRequest(nil, raw, tenant, 0, 0)
	var want prompb.ReadRequest
	refErr := want.Unmarshal(raw)
	if err != nil {
		if refErr == nil && !stricterThanPrompb(err) {
			t.Fatalf("AppendEnforcedReadRequest(%x): %v; prompb accepts it", raw, err)
		}
		return nil, false
	}
	if refErr != nil {
		t.Fatalf("AppendEnforcedReadRequest(%x) accepts what prompb rejects: %v", raw, refErr)
	}
	var got prompb.ReadRequest
	if err := got.Unmarshal(out); err != nil {
		t.Fatalf("output %x does not decode: %v", out, err)
	}
	enforceReference(&want, tenant)
	if g, w := dumpRead(&got), dumpRead(&want); g != w {
		t.Fatalf("input %x\ngot\n%swant\n%s", raw, g, w)
	}
	return out, true
}

// stricterThanPrompb reports whether err is one of the deliberate
// differences from gogo-protobuf's decoder: groups (unknown fields of wire
// type 3, which gogo skips), field numbers over 2^29-1 (which gogo
// truncates to 32 bits), 10-byte varints over 64 bits (whose extra bits
// gogo drops), and a packed accepted_response_types run whose last varint is
// cut off by the run's end (gogo reads on past the run, into the next
// field; seed dfa774254e4c469d).
func stricterThanPrompb(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unsupported wire type 3") || strings.Contains(s, "invalid field number") ||
		strings.Contains(s, "overflows 64 bits") || strings.HasPrefix(s, "ReadRequest.accepted_response_types: unexpected end")
}

func readRequestSamples() []*prompb.ReadRequest {
	return []*prompb.ReadRequest{
		{},
		{Queries: []*prompb.Query{{}}},
		{Queries: []*prompb.Query{{StartTimestampMs: 1, EndTimestampMs: 2, Matchers: []*prompb.LabelMatcher{
			{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "up"},
		}}}},
		{Queries: []*prompb.Query{{StartTimestampMs: -5, EndTimestampMs: 1 << 40, Matchers: []*prompb.LabelMatcher{
			{Type: prompb.LabelMatcher_RE, Name: "tenant", Value: ".*"},
			{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "up"},
			{Type: prompb.LabelMatcher_NEQ, Name: "env", Value: "prod"},
			{Type: prompb.LabelMatcher_NRE, Name: "tenant", Value: "a"},
			{Type: prompb.LabelMatcher_EQ, Name: "tenant", Value: "b"},
			{Type: prompb.LabelMatcher_EQ, Name: "job", Value: "x"},
		}, Hints: &prompb.ReadHints{StepMs: 15000, Func: "rate", StartMs: 1, EndMs: 2, Grouping: []string{"tenant", "job"}, By: true, RangeMs: 300000}}},
			AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}},
		{Queries: []*prompb.Query{
			{Hints: &prompb.ReadHints{Func: "series"}},
			{Matchers: []*prompb.LabelMatcher{{Name: "tenant", Value: "b"}}},
			{Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "tenant", Value: "a|b"}, {Name: "tenant", Value: "a"}}},
		}, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES}},
	}
}

// TestEnforcedReadRequestMatchesPrompb checks the output against prompb
// with the rule applied, and, for canonical input (prompb's own encoding),
// that the output is byte for byte prompb's encoding of the enforced
// request.
func TestEnforcedReadRequestMatchesPrompb(t *testing.T) {
	for i, req := range readRequestSamples() {
		for _, tenant := range [][]wire.Label{nil, readTenant, {{Name: "tenant", Value: "a"}}} {
			raw, err := req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			out, ok := checkAgainstPrompb(t, raw, tenant)
			if !ok {
				t.Fatalf("request %d rejected", i)
			}
			var want prompb.ReadRequest
			if err := want.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			enforceReference(&want, tenant)
			wantRaw, _ := want.Marshal()
			if !bytes.Equal(out, wantRaw) {
				t.Errorf("request %d, tenant %v: output\n%x\nis not prompb's canonical encoding\n%x", i, tenant, out, wantRaw)
			}
		}
	}
}

// TestEnforcedReadRequestRandom compares with prompb on random requests.
func TestEnforcedReadRequestRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"tenant", "env", "job", "__name__", "", "tenantx"}
	for i := 0; i < 2000; i++ {
		var req prompb.ReadRequest
		for range r.IntN(4) {
			q := &prompb.Query{StartTimestampMs: r.Int64N(1e13) - 5e12, EndTimestampMs: r.Int64N(1e13)}
			for range r.IntN(6) {
				q.Matchers = append(q.Matchers, &prompb.LabelMatcher{Type: prompb.LabelMatcher_Type(r.IntN(5)),
					Name: names[r.IntN(len(names))], Value: strings.Repeat("v", r.IntN(200))})
			}
			if r.IntN(2) == 0 {
				q.Hints = &prompb.ReadHints{StepMs: r.Int64N(1e6), Func: "sum", Grouping: names[:r.IntN(3)], By: r.IntN(2) == 0}
			}
			req.Queries = append(req.Queries, q)
		}
		for range r.IntN(3) {
			req.AcceptedResponseTypes = append(req.AcceptedResponseTypes, prompb.ReadRequest_ResponseType(r.IntN(2)))
		}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := checkAgainstPrompb(t, raw, readTenant); !ok {
			t.Fatalf("request %x rejected", raw)
		}
	}
}

// pb builds protobuf bytes by hand, for unknown and out-of-order fields.
type pb []byte

func (b pb) varint(num int, v uint64) pb {
	return appendUvarint(appendUvarint(b, uint64(num)<<3), v)
}

func (b pb) bytes(num int, v []byte) pb {
	b = appendUvarint(b, uint64(num)<<3|2)
	return append(appendUvarint(b, uint64(len(v))), v...)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestEnforcedReadRequestKeepsUnknownFields(t *testing.T) {
	matcher := pb{}.bytes(2, []byte("job")).varint(9, 7).bytes(3, []byte("x")).varint(1, 1)
	tenantMatcher := pb{}.bytes(3, []byte("b")).bytes(2, []byte("tenant")).bytes(15, []byte("gone with it"))
	hints := pb{}.bytes(2, []byte("rate")).bytes(20, []byte("new hint")).varint(6, 1)
	query := pb{}.bytes(4, hints).varint(2, 9).bytes(3, tenantMatcher).bytes(3, matcher).varint(1000, 5).varint(1, 3).bytes(4, pb{}.varint(7, 60))
	raw := pb{}.varint(2, 1).bytes(99, []byte("unknown top")).bytes(1, query).bytes(2, []byte{0, 1, 0}).bytes(1, pb{}.varint(5, 5)).
		append(0x0d, 1, 2, 3, 4) // field 1 as fixed32 would be wrong: this is field 1 wire type 5
	// The last field makes queries of the wrong wire type: rejected.
	if _, err := wire.AppendEnforcedReadRequest(nil, raw, readTenant, 0, 0); err == nil || !strings.Contains(err.Error(), "ReadRequest.queries[2]") {
		t.Fatalf("query field of wire type fixed32: error %v, want one naming ReadRequest.queries[2]", err)
	}
	raw = raw[:len(raw)-5]
	out, _ := checkAgainstPrompb(t, raw, readTenant)
	for _, keep := range [][]byte{[]byte("unknown top"), []byte("new hint"), matcher, hints} {
		if !bytes.Contains(out, keep) {
			t.Errorf("output %x lost %x", out, keep)
		}
	}
	if bytes.Contains(out, []byte("gone with it")) {
		t.Errorf("output %x kept the removed tenant matcher", out)
	}
}

func (b pb) append(v ...byte) pb { return append(b, v...) }

func TestEnforcedReadRequestRejectsMalformed(t *testing.T) {
	okQuery := pb{}.bytes(3, pb{}.bytes(2, []byte("job")))
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"truncated query", pb{}.bytes(1, okQuery)[:4], "ReadRequest field: length"},
		{"query varint", pb{}.varint(1, 3), "ReadRequest.queries[0]: wrong wire type 0"},
		{"start fixed32", pb{}.bytes(1, pb{}.append(1<<3|5, 0, 0, 0, 0)), "ReadRequest.queries[0].start_timestamp_ms: wrong wire type 5"},
		{"end bytes", pb{}.bytes(1, pb{}.bytes(2, nil)), "ReadRequest.queries[0].end_timestamp_ms: wrong wire type 2"},
		{"matcher varint", pb{}.bytes(1, okQuery).bytes(1, pb{}.varint(3, 1)), "ReadRequest.queries[1].matchers[0]: wrong wire type 0"},
		{"matcher type bytes", pb{}.bytes(1, pb{}.bytes(3, pb{}.bytes(1, nil))), "ReadRequest.queries[0].matchers[0].type: wrong wire type 2"},
		{"matcher name varint", pb{}.bytes(1, okQuery.bytes(3, pb{}.varint(2, 1))), "ReadRequest.queries[0].matchers[1].name: wrong wire type 0"},
		{"matcher value varint", pb{}.bytes(1, pb{}.bytes(3, pb{}.varint(3, 1))), "ReadRequest.queries[0].matchers[0].value: wrong wire type 0"},
		{"matcher truncated", pb{}.bytes(1, pb{}.bytes(3, pb{}.append(2<<3|2, 5, 'a'))), "ReadRequest.queries[0].matchers[0].field: length 5"},
		{"hints varint", pb{}.bytes(1, pb{}.varint(4, 1)), "ReadRequest.queries[0].hints: wrong wire type 0"},
		{"hints func varint", pb{}.bytes(1, pb{}.bytes(4, pb{}.varint(2, 1))), "ReadRequest.queries[0].hints.func: wrong wire type 0"},
		{"hints grouping varint", pb{}.bytes(1, pb{}.bytes(4, pb{}.varint(5, 1))), "ReadRequest.queries[0].hints.grouping: wrong wire type 0"},
		{"hints by bytes", pb{}.bytes(1, pb{}.bytes(4, pb{}.bytes(6, nil))), "ReadRequest.queries[0].hints.by: wrong wire type 2"},
		{"types fixed64", pb{}.append(2<<3|1, 0, 0, 0, 0, 0, 0, 0, 0), "ReadRequest.accepted_response_types: wrong wire type 1"},
		{"types packed truncated", pb{}.bytes(2, []byte{0x80}), "ReadRequest.accepted_response_types: unexpected end"},
		{"field number 0", pb{}.append(0, 0), "ReadRequest field: invalid field number 0"},
		{"end group", pb{}.append(1<<3 | 4), "ReadRequest field: unsupported wire type 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, tenant := range [][]wire.Label{nil, readTenant} {
				dst := []byte("prefix")
				out, err := wire.AppendEnforcedReadRequest(dst, tt.raw, tenant, 0, 0)
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("tenant %v: error %v, want one starting %q", tenant, err, tt.want)
				}
				if string(out) != "prefix" {
					t.Errorf("on error dst is %q, want it as it was", out)
				}
				var ref prompb.ReadRequest
				if ref.Unmarshal(tt.raw) == nil {
					t.Errorf("prompb accepts %x", tt.raw)
				}
			}
		})
	}
}

func TestEnforcedReadRequestLimits(t *testing.T) {
	q := func(matchers int) pb {
		b := pb{}
		for range matchers {
			b = b.bytes(3, pb{}.bytes(2, []byte("job")).bytes(3, []byte("x")))
		}
		return b
	}
	raw := pb{}.bytes(1, q(2)).bytes(1, q(3)).bytes(1, q(1))
	tests := []struct {
		name                    string
		maxQueries, maxMatchers int
		want                    *wire.ReadLimitError
	}{
		{"no limits", 0, 0, nil},
		{"at the limits", 3, 3, nil},
		{"queries", 2, 0, &wire.ReadLimitError{What: wire.LimitReadQueries, Limit: 2, Query: 2}},
		{"matchers", 0, 2, &wire.ReadLimitError{What: wire.LimitReadMatchers, Limit: 2, Query: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, tenant := range [][]wire.Label{nil, readTenant} {
				_, err := wire.AppendEnforcedReadRequest(nil, raw, tenant, tt.maxQueries, tt.maxMatchers)
				if tt.want == nil {
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				var le *wire.ReadLimitError
				if !errors.As(err, &le) || *le != *tt.want {
					t.Fatalf("error %#v, want %#v", err, tt.want)
				}
			}
		})
	}
	// Matchers are counted as sent, tenant matchers included: a request
	// cannot pass the limit by sending matchers that are then removed.
	tenantOnly := pb{}.bytes(1, pb{}.bytes(3, pb{}.bytes(2, []byte("tenant"))).bytes(3, pb{}.bytes(2, []byte("tenant"))))
	if _, err := wire.AppendEnforcedReadRequest(nil, tenantOnly, readTenant, 0, 1); err == nil {
		t.Error("two tenant matchers pass a limit of 1")
	}
	var le *wire.ReadLimitError
	_, err := wire.AppendEnforcedReadRequest(nil, raw, nil, 0, 2)
	if !errors.As(err, &le) || err.Error() != "query 1: more than 2 matchers per query" {
		t.Errorf("error message %q", err)
	}
	_, err = wire.AppendEnforcedReadRequest(nil, raw, nil, 1, 0)
	if !errors.As(err, &le) || err.Error() != "more than 1 queries per read request" {
		t.Errorf("error message %q", err)
	}
}

func TestEnforcedReadRequestRejectsEmptyTenant(t *testing.T) {
	for _, tenant := range [][]wire.Label{{{Name: "tenant"}}, {{Value: "a"}}} {
		if _, err := wire.AppendEnforcedReadRequest(nil, nil, tenant, 0, 0); err == nil {
			t.Errorf("tenant %v accepted", tenant)
		}
	}
}

func TestEnforcedReadRequestNoLabelsCopies(t *testing.T) {
	// Non-canonical on purpose: copied as it is.
	raw := pb{}.bytes(1, pb{}.bytes(3, pb{}.bytes(3, []byte("v")).bytes(2, []byte("tenant"))).varint(1, 5)).bytes(7, []byte("x"))
	out, err := wire.AppendEnforcedReadRequest([]byte("p"), raw, nil, 0, 0)
	if err != nil || !bytes.Equal(out, append([]byte("p"), raw...)) {
		t.Fatalf("got %x, %v; want the input after the prefix", out, err)
	}
}

func TestEnforcedReadRequestZeroAllocations(t *testing.T) {
	raw, _ := readRequestSamples()[3].Marshal()
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = wire.AppendEnforcedReadRequest(dst[:0], raw, readTenant, 16, 64); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call, want 0", allocs)
	}
}

func BenchmarkAppendEnforcedReadRequest(b *testing.B) {
	raw, _ := readRequestSamples()[3].Marshal()
	dst := make([]byte, 0, 4096)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = wire.AppendEnforcedReadRequest(dst[:0], raw, readTenant, 16, 64)
	}
}

// FuzzEnforceReadRequest checks AppendEnforcedReadRequest against prompb on
// arbitrary bytes: it accepts only what prompb decodes, rejects what prompb
// decodes only for the deliberate differences (stricterThanPrompb), and its
// output decodes to prompb's decoding of the input with the rule applied,
// unknown fields included.
func FuzzEnforceReadRequest(f *testing.F) {
	for _, req := range readRequestSamples() {
		raw, _ := req.Marshal()
		f.Add(raw)
	}
	f.Add([]byte(pb{}.bytes(1, pb{}.bytes(4, pb{}.bytes(20, []byte("h"))).bytes(3, pb{}.bytes(2, []byte("tenant")).varint(9, 1)))))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkAgainstPrompb(t, raw, readTenant)
		checkAgainstPrompb(t, raw, nil)
	})
}
