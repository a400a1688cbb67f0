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

// readTag decodes a field tag and returns the field number and wire type.
func readTag(b []byte, i int) (num uint64, typ int, next int, err error) {
	t, next, err := readVarint(b, i)
	if err != nil {
		return 0, 0, next, err
	}
	num = t >> 3
	if num == 0 {
		return 0, 0, next, errors.New("invalid field number 0")
	}
	return num, int(t & 7), next, nil
}

// skipField skips the body of a field of wire type typ at b[i:].
func skipField(b []byte, i int, typ int) (int, error) {
	switch typ {
	case wireVarint:
		_, i, err := readVarint(b, i)
		return i, err
	case wireFixed64:
		if len(b)-i < 8 {
			return i, errTruncated
		}
		return i + 8, nil
	case wireBytes:
		_, i, err := readBytes(b, i)
		return i, err
	case wireFixed32:
		if len(b)-i < 4 {
			return i, errTruncated
		}
		return i + 4, nil
	default:
		// Groups (3, 4) are not used by any message we read.
		return i, fmt.Errorf("unsupported wire type %d", typ)
	}
}

// readDouble reads a double field body, checking the wire type.
func readDouble(b []byte, i int, typ int) (float64, int, error) {
	if typ != wireFixed64 {
		return 0, i, fmt.Errorf("wrong wire type %d for a double", typ)
	}
	v, i, err := readFixed64(b, i)
	return math.Float64frombits(v), i, err
}

// readUvarintField reads a varint field body, checking the wire type.
func readUvarintField(b []byte, i int, typ int) (uint64, int, error) {
	if typ != wireVarint {
		return 0, i, fmt.Errorf("wrong wire type %d for a varint", typ)
	}
	return readVarint(b, i)
}

// readBytesField reads a length-delimited field body, checking the wire type.
func readBytesField(b []byte, i int, typ int) ([]byte, int, error) {
	if typ != wireBytes {
		return nil, i, fmt.Errorf("wrong wire type %d for a length-delimited field", typ)
	}
	return readBytes(b, i)
}

// zigzag decodes a sint64/sint32 varint.
func zigzag(v uint64) int64 {
	return int64(v>>1) ^ -int64(v&1)
}
