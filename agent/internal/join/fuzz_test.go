package join

import (
	"strings"
	"testing"
)

// FuzzJoinDecoders: the token and join_result decoders never panic, and a token that decodes re-encodes to itself
// (one encoding per token).
func FuzzJoinDecoders(f *testing.F) {
	v := loadSeed()
	if v != nil {
		f.Add(v.Token, []byte(v.JoinResultOK.Body))
		f.Add(v.Token+"A", []byte(v.JoinResultRefused.Body))
	}
	f.Add("orchjoin1.", []byte(`{"kind":"join_result","status":"ok","name":"a","tier":"standard","tenants":["t"],"allowlist":"x"}`))
	f.Fuzz(func(t *testing.T, token string, result []byte) {
		if tok, err := DecodeToken(token, 0); err == nil {
			if EncodeToken(tok) != token && EncodeToken(tok) != strings.TrimSpace(token) {
				t.Fatalf("token %q re-encodes as %q", token, EncodeToken(tok))
			}
		}
		_, _ = DecodeResult(result)
	})
}
