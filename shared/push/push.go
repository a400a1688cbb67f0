// Package push implements the Pushgateway's push API semantics on top of the
// wire codec: the grouping key in the URL path, and the conversion of a
// pushed exposition into remote-write series as a Prometheus server scraping
// a Pushgateway (with honor_labels: true) would store them.
//
// Reference: https://github.com/prometheus/pushgateway#api, and the
// behaviour of the Pushgateway 1.x handlers, which promrelay's tests compare
// against the real binary.
package push

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/promrelay/promrelay/shared/wire"
)

// Base64Suffix marks a URL path label name (or "job") whose value is
// base64url-encoded, with or without padding, as the Pushgateway defines.
const Base64Suffix = "@base64"

// JobLabel is the label that names the pushing job.
const JobLabel = "job"

// GroupingKey is the label set that identifies a group of pushed metrics:
// the job and the further label pairs of the URL path, sorted by name. A
// label with an empty value is part of the key (it removes a label of that
// name from pushed metrics) but is not sent as a label.
type GroupingKey []wire.Label

// Job returns the key's job name.
func (k GroupingKey) Job() string {
	for _, l := range k {
		if l.Name == JobLabel {
			return l.Value
		}
	}
	return ""
}

// String renders the key as name="value" pairs, for logs.
func (k GroupingKey) String() string {
	var b strings.Builder
	for i, l := range k {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	return b.String()
}

// ParseGroupingKey parses the path below /metrics/ (for example
// "job/backup/instance/db1" or "job@base64/YmFja3Vw") into a grouping key of
// at most maxLabels labels, the job included (0 means no limit). Each path
// segment is URL-unescaped on its own, so an escaped slash (%2F) stays inside
// its value. Errors carry the Pushgateway's messages: "job name is
// required", "odd number of components in label string …", "improper label
// name …", and invalid base64; and, stricter than the Pushgateway, a grouping
// value (or job name) that is not valid UTF-8 or holds a control character
// (U+0000–U+001F, U+007F–U+009F; NUL included) is an error, as is a key of
// more than maxLabels labels (counted as label pairs in the path, before a
// repeated name collapses). All are the sender's fault (400).
func ParseGroupingKey(escapedPath string, maxLabels int) (GroupingKey, error) {
	parts := strings.Split(escapedPath, "/")
	if len(parts) < 2 || (parts[0] != JobLabel && parts[0] != JobLabel+Base64Suffix) {
		return nil, fmt.Errorf("job name is required")
	}
	// Each label takes two segments; refuse before unescaping them all.
	if maxLabels > 0 && len(parts) > 2*maxLabels+1 {
		return nil, fmt.Errorf("grouping key has more than %d labels", maxLabels)
	}
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, fmt.Errorf("invalid escape in URL path segment %q: %v", p, err)
		}
		parts[i] = u
	}
	job := parts[1]
	if parts[0] == JobLabel+Base64Suffix {
		var err error
		if job, err = decodeBase64(job); err != nil {
			return nil, fmt.Errorf("invalid base64 encoding in job name %q: %v", parts[1], err)
		}
	}
	rest := parts[2:]
	// A trailing slash adds one empty segment, as in the Pushgateway.
	if len(rest) == 1 && rest[0] == "" {
		rest = rest[:0]
	}
	if len(rest)%2 != 0 {
		return nil, fmt.Errorf("odd number of components in label string %q", "/"+strings.Join(rest, "/"))
	}
	if job == "" {
		return nil, fmt.Errorf("job name is required")
	}
	if err := checkValue(JobLabel, job); err != nil {
		return nil, err
	}
	key := make(GroupingKey, 0, 1+len(rest)/2)
	put := func(name, value string) {
		for i := range key {
			if key[i].Name == name {
				key[i].Value = value
				return
			}
		}
		key = append(key, wire.Label{Name: name, Value: value})
	}
	for i := 0; i < len(rest); i += 2 {
		name, value := rest[i], rest[i+1]
		trimmed := strings.TrimSuffix(name, Base64Suffix)
		if !wire.IsValidLabelName(trimmed) || strings.HasPrefix(trimmed, "__") {
			return nil, fmt.Errorf("improper label name %q", trimmed)
		}
		if trimmed != name {
			decoded, err := decodeBase64(value)
			if err != nil {
				return nil, fmt.Errorf("invalid base64 encoding for label %s=%q: %v", trimmed, value, err)
			}
			value = decoded
		}
		if err := checkValue(trimmed, value); err != nil {
			return nil, err
		}
		put(trimmed, value)
	}
	put(JobLabel, job) // the job segment wins over a "job" label pair
	if maxLabels > 0 && len(key) > maxLabels {
		return nil, fmt.Errorf("grouping key has more than %d labels", maxLabels)
	}
	slices.SortFunc(key, func(a, b wire.Label) int { return strings.Compare(a.Name, b.Name) })
	return key, nil
}

// checkValue rejects a grouping value that is not valid UTF-8 or that holds
// a control character: such a value cannot be a label value that a query,
// a log line or a group id shows faithfully.
func checkValue(name, value string) error {
	if !utf8.ValidString(value) {
		return fmt.Errorf("value of grouping label %s is not valid UTF-8: %q", name, value)
	}
	for _, r := range value {
		if unicode.IsControl(r) {
			return fmt.Errorf("value of grouping label %s contains control character %U: %q", name, r, value)
		}
	}
	return nil
}

// decodeBase64 decodes URL-safe base64 with optional padding.
func decodeBase64(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return string(b), err
}
