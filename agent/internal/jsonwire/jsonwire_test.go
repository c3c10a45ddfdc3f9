package jsonwire

import (
	"encoding/json"
	"testing"
)

func TestUTF16LenCountsAsJavaScriptDoes(t *testing.T) {
	for s, want := range map[string]int{"": 0, "abc": 3, "é": 1, "€": 1, "😀": 2, "a😀b": 4} {
		if got := UTF16Len(s); got != want {
			t.Errorf("UTF16Len(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestStrTakesOnlyStrings(t *testing.T) {
	for raw, ok := range map[string]bool{`"x"`: true, ` "y" `: true, `null`: false, `1`: false, `["x"]`: false, `"\u00e9"`: true, `"unterminated`: false} {
		if _, got := Str(json.RawMessage(raw)); got != ok {
			t.Errorf("Str(%s) ok = %v, want %v", raw, got, ok)
		}
	}
}
