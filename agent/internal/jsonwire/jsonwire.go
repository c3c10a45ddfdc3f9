// Package jsonwire holds the small JSON helpers the agent's strict message decoders share (messages, join, approval):
// what the TypeScript side means by a string and by its length.
package jsonwire

import (
	"bytes"
	"encoding/json"
)

// Str decodes a JSON string (not null, not another type).
func Str(v json.RawMessage) (string, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(t, &s) != nil {
		return "", false
	}
	return s, true
}

// UTF16Len is JavaScript's String.prototype.length, which the TypeScript side limits.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}
