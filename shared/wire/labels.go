package wire

import (
	"encoding/binary"
	"slices"
	"strings"
)

// MergeLabels appends to dst the label set ls with overrides applied and
// returns it: each override replaces the label of the same name in ls, or is
// added where its name sorts; an override with an empty value removes the
// label of its name (in Prometheus an empty label value is the same as no
// label). ls and overrides must each be sorted by name with unique names;
// the result is then sorted and unique too. Labels of ls with empty values
// are kept as they are.
func MergeLabels(dst, ls, overrides []Label) []Label {
	return mergeLabels(dst, ls, overrides, false)
}

// MergeOverrides appends to dst the override set a with the override set b
// applied (b wins for a name in both) and returns it, for combining two
// override sets into one that MergeLabels or Rewriter.Rewrite apply in one
// pass: unlike MergeLabels it keeps the overrides with empty values, so that
// they still remove their label. a and b must be sorted by name with unique
// names.
func MergeOverrides(dst, a, b []Label) []Label {
	return mergeLabels(dst, a, b, true)
}

func mergeLabels(dst, ls, overrides []Label, keepEmpty bool) []Label {
	j := 0
	for _, l := range ls {
		for j < len(overrides) && nameLess(overrides[j].Name, l.Name) {
			if keepEmpty || overrides[j].Value != "" {
				dst = append(dst, overrides[j])
			}
			j++
		}
		if j < len(overrides) && overrides[j].Name == l.Name {
			if keepEmpty || overrides[j].Value != "" {
				dst = append(dst, overrides[j])
			}
			j++
			continue
		}
		dst = append(dst, l)
	}
	for ; j < len(overrides); j++ {
		if keepEmpty || overrides[j].Value != "" {
			dst = append(dst, overrides[j])
		}
	}
	return dst
}

// nameLess reports whether a sorts before b, deciding by the first bytes
// when they differ (the usual case for label names) without a call.
func nameLess(a, b string) bool {
	if len(a) > 0 && len(b) > 0 && a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

// AppendLabelsKey appends to dst an unambiguous encoding of the label set
// ls, for hashing or as a map key: for each label in order,
// uvarint(len(name)) name uvarint(len(value)) value. Because every string is
// length-prefixed, no two different label sequences encode the same, whatever
// bytes (NUL included) names and values hold. Sort ls first for a key that
// does not depend on label order.
func AppendLabelsKey(dst []byte, ls []Label) []byte {
	for _, l := range ls {
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	}
	return dst
}

// SortLabels sorts ls by name in place. Small sets (the usual case, often
// nearly sorted already) are insertion-sorted without allocating.
func SortLabels(ls []Label) {
	if len(ls) > 16 {
		slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
		return
	}
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && nameLess(ls[j].Name, ls[j-1].Name); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}
