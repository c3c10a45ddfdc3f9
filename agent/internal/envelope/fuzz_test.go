package envelope

import (
	"bytes"
	"testing"

	"orch/agent/internal/replay"
)

// FuzzParse: parsing never panics, a parsed envelope's fields cover the wire exactly, and Open on hostile input
// never accepts anything the fuzzer could not sign.
func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, wire []byte) {
		p, r := Parse(wire)
		if r != "" {
			if p != nil {
				t.Fatal("parsed and rejected")
			}
			return
		}
		if len(p.Signed)+len(p.Sig) != len(wire) || len(p.Sig) != 64 || len(p.CT) < 16 {
			t.Fatal("fields do not cover the wire")
		}
		hb, err := EncodeHeader(p.Header)
		if err != nil || !bytes.Equal(hb, p.HeaderBytes) {
			t.Fatal("header does not re-encode to the same bytes")
		}
		key := make([]byte, 32)
		key[0] = 9
		if _, r := Open(wire, OpenInput{RecipientSignPub: p.Header.To[:], RecipientBoxSec: key, RecipientBoxPub: key,
			PinnedSenderSign: p.Header.From[:], NowMs: p.Header.TS, Window: replay.NewDefault()}); r == "" {
			t.Fatal("an unsigned envelope opened")
		}
	})
}

// FuzzDecodeHeader: decoding and encoding are inverse (ENVELOPE.md: one encoding per header).
func FuzzDecodeHeader(f *testing.F) {
	f.Add(append([]byte{1}, make([]byte, 97)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, r := DecodeHeader(b)
		if r != "" {
			return
		}
		enc, err := EncodeHeader(h)
		if err != nil || !bytes.Equal(enc, b[:n]) {
			t.Fatalf("decode/encode not inverse: %x", b[:n])
		}
	})
}
