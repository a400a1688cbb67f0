package wire

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// maxFieldNumber is the largest field number protobuf allows, 2^29-1
// (https://protobuf.dev/programming-guides/proto3/#assigning).
const maxFieldNumber = 1<<29 - 1

var (
	errTruncated = errors.New("unexpected end of data")
	errOverflow  = errors.New("varint overflows 64 bits")
)

// varintSize returns the number of bytes the varint encoding of v takes.
func varintSize(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// appendVarint appends the varint encoding of v to b.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendFixed64 appends v in little-endian order.
func appendFixed64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

// readVarint decodes a varint at b[i:] and returns it with the index after it.
func readVarint(b []byte, i int) (uint64, int, error) {
	// Fast path for one byte, the most common case for tags and lengths.
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, nil
	}
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, i, errTruncated
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if shift == 63 && c > 1 {
				return 0, i, errOverflow
			}
			return v, i, nil
		}
	}
	return 0, i, errOverflow
}

// readFixed64 decodes a little-endian 64-bit value at b[i:].
func readFixed64(b []byte, i int) (uint64, int, error) {
	if len(b)-i < 8 {
		return 0, i, errTruncated
	}
	_ = b[i+7]
	v := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
		uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
	return v, i + 8, nil
}

// readBytes decodes a length-delimited field body at b[i:].
func readBytes(b []byte, i int) ([]byte, int, error) {
	n, i, err := readVarint(b, i)
	if err != nil {
		return nil, i, err
	}
	if n > uint64(len(b)-i) {
		return nil, i, fmt.Errorf("length %d exceeds the %d bytes left: %w", n, len(b)-i, errTruncated)
	}
	end := i + int(n)
	return b[i:end:end], end, nil
}

// field is one decoded protobuf field: its number, wire type and value. A
// varint, fixed64 or fixed32 value is in u; a length-delimited body in data
// (a sub-slice of the message). start and end are the offsets of the whole
// field, tag included, in the message.
type field struct {
	num        uint64
	typ        int
	u          uint64
	data       []byte
	start, end int
}

// fields iterates over the fields of one encoded protobuf message, the one
// loop every decoder in this package uses:
//
//	it := fields{b: msg}
//	for it.next() {
//		switch it.f.num { ... }
//	}
//	if it.err != nil { ... }
//
// next reads the tag and the whole value, so unknown fields are skipped by
// ignoring them. It rejects what the protobuf wire format rejects: field
// numbers outside 1..2^29-1, wire types other than varint, fixed64,
// length-delimited and fixed32 (groups are used by no message read here),
// truncated values and varints longer than 64 bits.
type fields struct {
	b   []byte
	i   int
	f   field
	err error
}

// next decodes the next field into it.f and reports whether there was one;
// on a malformed field it sets it.err and returns false. One-byte tags,
// lengths and varints, the common case, take the inlined fast paths.
func (it *fields) next() bool {
	b, i := it.b, it.i
	if i >= len(b) {
		return false
	}
	f := &it.f
	f.start = i
	var t uint64
	if c := b[i]; c < 0x80 {
		t, i = uint64(c), i+1
	} else {
		var err error
		if t, i, err = readVarint(b, i); err != nil {
			return it.fail(err)
		}
		if t>>3 > maxFieldNumber {
			return it.fail(fmt.Errorf("invalid field number %d", t>>3))
		}
	}
	f.num, f.typ, f.data = t>>3, int(t&7), nil
	if f.num == 0 {
		return it.fail(errors.New("invalid field number 0"))
	}
	switch f.typ {
	case wireBytes:
		if i < len(b) && b[i] < 0x80 && int(b[i]) < len(b)-i {
			n := int(b[i])
			i++
			f.data = b[i : i+n : i+n]
			i += n
		} else {
			var err error
			if f.data, i, err = readBytes(b, i); err != nil {
				return it.fail(err)
			}
		}
	case wireVarint:
		if i < len(b) && b[i] < 0x80 {
			f.u, i = uint64(b[i]), i+1
		} else {
			var err error
			if f.u, i, err = readVarint(b, i); err != nil {
				return it.fail(err)
			}
		}
	case wireFixed64:
		if len(b)-i < 8 {
			return it.fail(errTruncated)
		}
		f.u, i, _ = readFixed64(b, i)
	case wireFixed32:
		if len(b)-i < 4 {
			return it.fail(errTruncated)
		}
		f.u = uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24
		i += 4
	default:
		return it.fail(fmt.Errorf("unsupported wire type %d in field %d", f.typ, f.num))
	}
	f.end, it.i = i, i
	return true
}

// fail records err, ends the iteration and returns false.
func (it *fields) fail(err error) bool {
	it.err, it.i = err, len(it.b)
	return false
}

// wrongType is the error for a field of the wrong wire type.
func (f *field) wrongType(want string) error {
	return fmt.Errorf("wrong wire type %d for %s field %d", f.typ, want, f.num)
}

// double returns the value of a double field.
func (f *field) double() (float64, error) {
	if f.typ != wireFixed64 {
		return 0, f.wrongType("a double")
	}
	return math.Float64frombits(f.u), nil
}

// varint returns the value of a varint field (int64, uint64, int32, enum,
// or sint before zigzag decoding).
func (f *field) varint() (uint64, error) {
	if f.typ != wireVarint {
		return 0, f.wrongType("a varint")
	}
	return f.u, nil
}

// bytes returns the body of a length-delimited field (string, bytes, or an
// embedded message).
func (f *field) bytes() ([]byte, error) {
	if f.typ != wireBytes {
		return nil, f.wrongType("a length-delimited")
	}
	return f.data, nil
}

// zigzag decodes a sint64/sint32 varint.
func zigzag(v uint64) int64 {
	return int64(v>>1) ^ -int64(v&1)
}

// gather appends to dst the values of every occurrence of repeated scalar
// field num in message b, packed (one length-delimited run) or not (one
// field per value), as protobuf parsers must accept both. scalar is the wire
// type of one unpacked value; decode turns the raw value into T. It returns
// dst grown and the new values as a sub-slice (nil when there are none).
func gather[T any](dst []T, b []byte, num uint64, scalar int, decode func(uint64) T) ([]T, []T, error) {
	start := len(dst)
	it := fields{b: b}
	for it.next() {
		f := &it.f
		if f.num != num {
			continue
		}
		switch f.typ {
		case scalar:
			dst = append(dst, decode(f.u))
		case wireBytes:
			data := f.data
			switch scalar {
			case wireFixed64:
				if len(data)%8 != 0 {
					return dst, nil, fmt.Errorf("packed fixed64 values of %d bytes: %w", len(data), errTruncated)
				}
				for j := 0; j < len(data); j += 8 {
					v, _, _ := readFixed64(data, j)
					dst = append(dst, decode(v))
				}
			default: // varint
				for j := 0; j < len(data); {
					v, next, err := readVarint(data, j)
					if err != nil {
						return dst, nil, err
					}
					j = next
					dst = append(dst, decode(v))
				}
			}
		default:
			return dst, nil, f.wrongType("a repeated scalar")
		}
	}
	if it.err != nil {
		return dst, nil, it.err
	}
	if len(dst) == start {
		return dst, nil, nil
	}
	return dst, dst[start:len(dst):len(dst)], nil
}
