package wire_test

import (
	"bytes"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/promrelay/promrelay/internal/corpus"
	"github.com/promrelay/promrelay/shared/wire"
)

// FuzzParseText checks on arbitrary input that ParseText and expfmt's text
// parser make the same accept/reject decision and, on acceptance, decode
// the same families with bit-identical values. The two deliberate
// differences are excluded: a last line without its newline, and metric
// names in braces or quotes.
func FuzzParseText(f *testing.F) {
	for seed := uint64(1); seed <= 4; seed++ {
		f.Add(corpus.Exposition(seed, corpus.Options{Families: 2, Quirks: true, Timestamps: true}))
	}
	for _, s := range []string{"m 1\n", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 2\n", "# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 1\n",
		"m{a=\"\\\\\\\"\\n\"} -Inf 5\n", "# HELP m x\\ny\n# TYPE m gauge\nm 0x1p3\n", "\n\n# comment\nm{} 1e-309\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 0 && in[len(in)-1] != '\n' {
			return // promrelay accepts a missing final newline; expfmt does not
		}
		var e wire.Exposition
		err := e.ParseText(in)
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
func FuzzParseDelimited(f *testing.F) {
	for seed := uint64(1); seed <= 3; seed++ {
		fams, err := referenceText(corpus.Exposition(seed, corpus.Options{Families: 6}))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeDelimited(f, fams))
	}
	f.Add(appendPackedNativeF())
	f.Fuzz(func(t *testing.T, in []byte) {
		var e wire.Exposition
		err := e.ParseDelimited(in)
		// The reference: protodelim over client_model, last family of a
		// name wins as on the Pushgateway.
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
			t.Fatalf("ParseDelimited accepted what the schema rejects: %v", refErr)
		}
		if err != nil {
			return // stricter validation (names, UTF-8, types) is allowed
		}
		for name, mf := range ref {
			if len(mf.Metric) == 0 {
				delete(ref, name)
			}
		}
		if got, w := canonical(toDTO(&e)), canonical(ref); got != w {
			t.Fatalf("decoded families differ from the schema\n%s", firstDiff(got, w))
		}
	})
}

func appendPackedNativeF() []byte {
	h := []byte{0x08, 0x01, 0x28, 0x00, 0x6a, 0x03, 0x02, 0x01, 0x04}
	m := append([]byte{0x3a, byte(len(h))}, h...)
	fam := []byte{0x0a, 0x01, 'h', 0x18, 0x04, 0x22, byte(len(m))}
	fam = append(fam, m...)
	return append([]byte{byte(len(fam))}, fam...)
}
