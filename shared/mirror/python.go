package mirror

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The original mirror is Python: it writes condition values into PromQL
// with str(), floats with repr(), and error details with str() of the
// decoded upstream JSON (a dict's repr). These functions reproduce that
// text from JSON, so that answers and queries read as the original's.

// pyFloat is Python's repr(float): the shortest text that reads back as f,
// in scientific notation when the decimal exponent is below -4 or at least
// 16, with ".0" on integral values ("2.0", "1e+16", "1.5e-07", "nan").
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	var buf [32]byte
	return string(appendPyFloat(buf[:0], f))
}

// appendPyFloat appends pyFloat(f) for a finite f.
func appendPyFloat(b []byte, f float64) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	if a := math.Abs(f); a < 1e-4 || a >= 1e16 {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b
}

// pyNumber is Python's str() of a JSON number as json.loads reads it: an
// integer literal is an int (any size), anything else a float.
func pyNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		var i big.Int
		if _, ok := i.SetString(lit, 10); ok {
			return i.String()
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return lit
	}
	return pyFloat(f)
}

// pyString is Python's repr(str): single quotes unless the text holds a
// single quote and no double quote; backslash, the quote and unprintable
// characters escaped.
func pyString(b *strings.Builder, s string) {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\' || r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError || (r != ' ' && !unicode.IsPrint(r)):
			switch {
			case r < 0x100:
				b.WriteString(`\x`)
				writeHex(b, uint32(r), 2)
			case r < 0x10000:
				b.WriteString(`\u`)
				writeHex(b, uint32(r), 4)
			default:
				b.WriteString(`\U`)
				writeHex(b, uint32(r), 8)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
}

func writeHex(b *strings.Builder, v uint32, n int) {
	s := strconv.FormatUint(uint64(v), 16)
	for i := len(s); i < n; i++ {
		b.WriteByte('0')
	}
	b.WriteString(s)
}

// pyStrJSON is Python's str() of the value json.loads makes of raw: a
// string as is, a number as pyNumber, true/false/null as True/False/None,
// a list or dict as its repr.
func pyStrJSON(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	return pyReprJSON(raw, math.MaxInt)
}

// pyReprJSON is Python's repr() of the value json.loads makes of raw, keys
// in the order the JSON has them, cut after about max bytes.
func pyReprJSON(raw []byte, max int) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	if err := pyReprValue(dec, &b, max, 0); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("data after the JSON value")
	}
	return truncate(b.String(), max), nil
}

const maxReprDepth = 64

func pyReprValue(dec *json.Decoder, b *strings.Builder, max, depth int) error {
	if depth > maxReprDepth {
		return errors.New("JSON nested too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		open, end := "[", json.Delim(']')
		if t == '{' {
			open, end = "{", '}'
		}
		b.WriteString(open)
		for i := 0; dec.More(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				pyString(b, k.(string))
				b.WriteString(": ")
			}
			if b.Len() > max { // keep scanning for validity, stop writing
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
				continue
			}
			if err := pyReprValue(dec, b, max, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
		b.WriteByte(byte(end))
	case string:
		pyString(b, t)
	case json.Number:
		b.WriteString(pyNumber(t.String()))
	case bool:
		if t {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case nil:
		b.WriteString("None")
	}
	return nil
}

// pyStrList is Python's repr of a list of strings: ['a', 'b'].
func pyStrList(items []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		pyString(&b, s)
	}
	b.WriteByte(']')
	return b.String()
}
