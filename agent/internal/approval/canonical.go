package approval

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// canonical is RFC 8785 (JCS) for the values approvals hold: objects (map[string]any), arrays ([]any, []string),
// strings, booleans and integers below 2^53 (protocol/canonical-json.ts is the desktop's side). Object members are
// sorted by their names as UTF-16 code units; strings are escaped as ECMAScript's JSON.stringify escapes them.
func canonical(v any) ([]byte, error) {
	var b strings.Builder
	if err := writeCanonical(&b, v); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func writeCanonical(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case string:
		writeString(b, x)
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		if x > maxSafeInteger || x < -maxSafeInteger {
			return fmt.Errorf("canonical: integer out of range")
		}
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		return writeCanonical(b, int64(x))
	case []string:
		return writeArray(b, x, func(s string) error { writeString(b, s); return nil })
	case []any:
		return writeArray(b, x, func(e any) error { return writeCanonical(b, e) })
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return lessUTF16(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeCanonical(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("canonical: unsupported type %T", v)
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// writeString is JSON.stringify's string form: only '"', '\' and control characters below U+0020 are escaped.
// writeArray writes a JSON array whose elements write writes.
func writeArray[T any](b *strings.Builder, xs []T, write func(T) error) error {
	b.WriteByte('[')
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := write(x); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[r>>4])
				b.WriteByte(hexDigits[r&0xf])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// lessUTF16 orders strings as JavaScript does: by UTF-16 code units (which differs from UTF-8 byte order for
// characters above U+FFFF against U+E000..U+FFFF).
func lessUTF16(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}
