package wire_test

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/promrelay/promrelay/shared/wire"
)

// FuzzParseText checks on arbitrary input that ParseText and expfmt's text
// parser make the same accept/reject decision and, on acceptance, decode
// the same families with bit-identical values. The two deliberate
// differences are excluded: a last line without its newline, and metric
// names in braces or quotes.
//
// Seeds are small on purpose, as for FuzzParseDelimited.
func FuzzParseText(f *testing.F) {
	for _, s := range smallExpositions {
		f.Add([]byte(s))
	}
	for _, s := range []string{"m 1\n", "m{a=\"\\\\\\\"\\n\"} -Inf 5\n", "# HELP m x\\ny\n# TYPE m gauge\nm 0x1p3\n", "\n\n# comment\nm{} 1e-309\n",
		"m{a=\"1\",} 1 -2\n", "m\t+Inf\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 0 && in[len(in)-1] != '\n' {
			// promrelay accepts a missing final newline, expfmt does
			// not: compare on the input with one.
			in = append(in[:len(in):len(in)], '\n')
		}
		var e wire.Exposition
		err := e.ParseText(in, wire.Limits{})
		want, refErr := referenceText(in)
		if err != nil && (strings.Contains(err.Error(), "inside braces") || strings.Contains(err.Error(), "quoted")) {
			return // UTF-8 name syntax, deliberately unsupported
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("ParseText error %v, expfmt error %v", err, refErr)
		}
		if err != nil {
			return
		}
		if got, w := canonical(toDTO(&e)), canonical(want); got != w {
			t.Fatalf("decoded families differ from expfmt\n%s", firstDiff(got, w))
		}
	})
}

// FuzzParseDelimited checks that whatever ParseDelimited accepts, the
// protobuf schema (client_model through protodelim) decodes to the same
// families, and that it rejects what the schema cannot decode.
//
// Seeds are small on purpose: the fuzzing engine minimizes every input that
// finds new coverage, for up to -fuzzminimizetime (60 s by default), and
// minimizing a multi-kilobyte input spends a short run entirely on that.
func FuzzParseDelimited(f *testing.F) {
	for _, text := range smallExpositions {
		fams, err := referenceText([]byte(text))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeDelimited(f, fams))
	}
	f.Add(appendPackedNativeF())
	// Multi-byte tags, so that single-byte mutations reach field numbers
	// at and beyond the largest valid one (2^29-1) and wire types inside
	// long tags: the seeds above only hold one-byte tags.
	for _, tag := range [][]byte{
		{0xf8, 0xff, 0xff, 0xff, 0x0f}, // field 2^29-1, varint
		{0xfa, 0xff, 0xff, 0xff, 0x0f}, // field 2^29-1, length-delimited
		{0xc2, 0x3e},                   // field 1000, length-delimited
		{0x80, 0x01},                   // field 16, varint
		{0xfd, 0xff, 0xff, 0xff, 0x0f}, // field 2^29-1, fixed32
		{0xf9, 0xff, 0xff, 0xff, 0x0f}, // field 2^29-1, fixed64
	} {
		// name "A", type GAUGE, the unknown field, one metric
		body := append([]byte{0x0a, 0x01, 'A', 0x18, 0x01}, tag...)
		switch tag[0] & 7 {
		case 2:
			body = append(body, 0x01, '0')
		case 5:
			body = append(body, 0, 0, 0, 0)
		case 1:
			body = append(body, 0, 0, 0, 0, 0, 0, 0, 0)
		default:
			body = append(body, 0x00)
		}
		body = append(body, 0x22, 0x0b, 0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0, 0)
		f.Add(append([]byte{byte(len(body))}, body...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDelimited(t, in)
		// The input as the body of one family too: a mutation that
		// inserts or removes bytes then still reaches the fields instead
		// of breaking the length prefix.
		checkDelimited(t, append(binary.AppendUvarint(nil, uint64(len(in))), in...))
	})
}

// delimitedValidation are the reasons ParseDelimited may reject input the
// schema accepts: what the Pushgateway's consistency check rejects; groups
// (wire types 3 and 4, deprecated, and used by none of the messages); and a
// known field of the wrong wire type, which protobuf-go keeps as an unknown
// field (a corrupt or foreign message, better rejected than misread).
var delimitedValidation = []string{"invalid metric name", "invalid label name", "not valid UTF-8", "duplicate label name", "has no", "unknown type", "unsupported wire type", "wrong wire type"}

// checkDelimited fails when ParseDelimited and the protobuf schema
// (protodelim over client_model, the last family of a name winning as on
// the Pushgateway) disagree on in: one accepts what the other rejects (bar
// delimitedValidation), or they decode different families.
func checkDelimited(t *testing.T, in []byte) {
	t.Helper()
	var e wire.Exposition
	err := e.ParseDelimited(in, wire.Limits{})
	ref := map[string]*dto.MetricFamily{}
	r := bytes.NewReader(in)
	var refErr error
	for r.Len() > 0 {
		mf := &dto.MetricFamily{}
		if refErr = (protodelim.UnmarshalOptions{MaxSize: int64(len(in))}).UnmarshalFrom(r, mf); refErr != nil {
			break
		}
		ref[mf.GetName()] = mf
	}
	if refErr != nil && err == nil {
		t.Fatalf("ParseDelimited accepted %q, which the schema rejects: %v", in, refErr)
	}
	if err != nil {
		if refErr == nil && !slices.ContainsFunc(delimitedValidation, func(r string) bool { return strings.Contains(err.Error(), r) }) {
			t.Fatalf("ParseDelimited rejected %q, which the schema accepts: %v", in, err)
		}
		return
	}
	for name, mf := range ref {
		if len(mf.Metric) == 0 {
			delete(ref, name)
		}
	}
	if got, w := canonical(toDTO(&e)), canonical(ref); got != w {
		t.Fatalf("decoded families differ from the schema\n%s", firstDiff(got, w))
	}
}

func appendPackedNativeF() []byte {
	h := []byte{0x08, 0x01, 0x28, 0x00, 0x6a, 0x03, 0x02, 0x01, 0x04}
	m := append([]byte{0x3a, byte(len(h))}, h...)
	fam := []byte{0x0a, 0x01, 'h', 0x18, 0x04, 0x22, byte(len(m))}
	fam = append(fam, m...)
	return append([]byte{byte(len(fam))}, fam...)
}

// smallExpositions are one short exposition per metric type and text
// format feature, the seeds of the fuzz targets.
var smallExpositions = []string{
	"# HELP c_total Help with \\\\ and \\n.\n# TYPE c_total counter\nc_total{cpu=\"0\",mode=\"idle\"} 1610.5\nc_total{cpu=\"1\",mode=\"idle\"} NaN\n",
	"# TYPE g gauge\ng{mountpoint=\"/mnt/with \\\"quotes\\\"\"} -0\ng{ device = \"lo\" , } 6.02E+23\n",
	"# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n",
	"# TYPE s summary\ns{quantile=\"0.5\"} 0.25\ns_sum 1\ns_count 3\n",
	"u 1\nu{instance=\"a:9100\"} 2\n",
}
