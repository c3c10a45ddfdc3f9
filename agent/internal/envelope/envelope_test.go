package envelope

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"

	"orch/agent/internal/replay"
	"orch/agent/internal/vectortest"
)

type vectorFile struct {
	Parties  map[string]vectortest.Party `json:"parties"`
	Labels   map[string]string           `json:"labels"`
	Positive []struct {
		Name   string `json:"name"`
		Header struct {
			From, To, MsgID string
			Counter         string `json:"counter"`
			TS              uint64 `json:"ts"`
			Type            string `json:"type"`
		} `json:"header"`
		BodyHex      string            `json:"body_hex"`
		EphSecret    string            `json:"ephemeral_secret"`
		EphPublic    string            `json:"ephemeral_public"`
		Nonce        string            `json:"nonce"`
		Intermediate map[string]string `json:"intermediate"`
		WireHex      string            `json:"wire_hex"`
		Open         struct {
			Now uint64 `json:"now"`
		} `json:"open"`
	} `json:"positive"`
	Negative []struct {
		Name     string `json:"name"`
		WireHex  string `json:"wire_hex"`
		WireFill *struct {
			Byte   string `json:"byte"`
			Length int    `json:"length"`
		} `json:"wire_fill"`
		Open struct {
			Now    uint64          `json:"now"`
			Window json.RawMessage `json:"window"`
		} `json:"open"`
		Expected string `json:"expected"`
	} `json:"negative"`
}

var h = vectortest.Hex

func loadVectors(t *testing.T) vectorFile { return vectortest.Load[vectorFile](t, "envelope-v1.json") }

func TestLabelsMatchVectors(t *testing.T) {
	v := loadVectors(t)
	if !bytes.Equal(h(t, v.Labels["kdf"]), KDFLabel) || !bytes.Equal(h(t, v.Labels["signature"]), SignatureLabel) {
		t.Fatal("labels differ from the vectors")
	}
}

func TestPositiveVectors(t *testing.T) {
	v := loadVectors(t)
	snd, rcp := v.Parties["sender"], v.Parties["recipient"]
	for _, p := range v.Positive {
		t.Run(p.Name, func(t *testing.T) {
			var hd Header
			copy(hd.From[:], h(t, p.Header.From))
			copy(hd.To[:], h(t, p.Header.To))
			copy(hd.MsgID[:], h(t, p.Header.MsgID))
			hd.Counter, _ = strconv.ParseUint(p.Header.Counter, 10, 64)
			hd.TS = p.Header.TS
			hd.Type = p.Header.Type
			hb, err := EncodeHeader(hd)
			if err != nil || !bytes.Equal(hb, h(t, p.Intermediate["header_bytes"])) {
				t.Fatalf("header_bytes: %x %v", hb, err)
			}
			eph := h(t, p.EphSecret)
			ephPub, _ := X25519Public(eph)
			if !bytes.Equal(ephPub, h(t, p.EphPublic)) {
				t.Fatal("ephemeral public")
			}
			shared, err := X25519(eph, h(t, rcp.BoxPublic))
			if err != nil || !bytes.Equal(shared, h(t, p.Intermediate["shared_secret"])) {
				t.Fatal("shared_secret")
			}
			info := append(append(append([]byte{}, ephPub...), h(t, rcp.BoxPublic)...), KDFLabel...)
			if !bytes.Equal(info, h(t, p.Intermediate["kdf_info"])) {
				t.Fatal("kdf_info")
			}
			if !bytes.Equal(KDF(shared, info), h(t, p.Intermediate["body_key"])) {
				t.Fatal("body_key")
			}
			wire, err := Seal(SealInput{Header: hd, Body: h(t, p.BodyHex), SenderSign: ed25519.NewKeyFromSeed(h(t, snd.SignSeed)),
				RecipientBoxPub: h(t, rcp.BoxPublic), EphSecret: eph, Nonce: h(t, p.Nonce)})
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(wire) != p.WireHex {
				t.Fatalf("wire differs")
			}
			parsed, r := Parse(wire)
			if r != "" || !bytes.Equal(parsed.CT, h(t, p.Intermediate["ciphertext_with_tag"])) || !bytes.Equal(parsed.Sig, h(t, p.Intermediate["signature"])) {
				t.Fatal("ciphertext or signature")
			}
			w := replay.NewDefault()
			o, r := Open(wire, openInput(t, v, p.Open.Now, w))
			if r != "" || !bytes.Equal(o.Body, h(t, p.BodyHex)) || o.Header != hd {
				t.Fatalf("open: %s", r)
			}
			if w.Top() != hd.Counter {
				t.Fatal("window did not accept")
			}
		})
	}
}

func openInput(t *testing.T, v vectorFile, now uint64, w *replay.Window) OpenInput {
	rcp, snd := v.Parties["recipient"], v.Parties["sender"]
	return OpenInput{RecipientSignPub: h(t, rcp.SignPublic), RecipientBoxSec: h(t, rcp.BoxSecret), RecipientBoxPub: h(t, rcp.BoxPublic),
		PinnedSenderSign: h(t, snd.SignPublic), NowMs: now, Window: w}
}

func TestNegativeVectors(t *testing.T) {
	v := loadVectors(t)
	for _, n := range v.Negative {
		t.Run(n.Name, func(t *testing.T) {
			var wire []byte
			if n.WireFill != nil {
				wire = bytes.Repeat(h(t, n.WireFill.Byte), n.WireFill.Length)
			} else {
				wire = h(t, n.WireHex)
			}
			w := replay.NewDefault()
			if len(n.Open.Window) > 0 && string(n.Open.Window) != "null" {
				var err error
				if w, err = replay.Parse(n.Open.Window); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := w.MarshalJSON()
			_, r := Open(wire, openInput(t, v, n.Open.Now, w))
			if string(r) != n.Expected {
				t.Fatalf("got %q, want %q", r, n.Expected)
			}
			after, _ := w.MarshalJSON()
			if !bytes.Equal(before, after) {
				t.Fatal("a rejected envelope changed the window")
			}
			if n.Open.Window != nil && string(n.Open.Window) != "null" {
				// The window serialises back to exactly the vector's state.
				var a, b any
				_ = json.Unmarshal(after, &a)
				_ = json.Unmarshal(n.Open.Window, &b)
				if !jsonEqual(a, b) {
					t.Fatalf("window round trip: %s", after)
				}
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestSealRefusesTooLarge(t *testing.T) {
	_, sk, _ := ed25519.GenerateKey(nil)
	box := make([]byte, 32)
	box[0] = 9
	hd := Header{Type: "command", TS: 1}
	max := MaxEnvelopeBytes - Overhead - (HeaderFixedBytes + len("command"))
	if _, err := Seal(SealInput{Header: hd, Body: make([]byte, max), SenderSign: sk, RecipientBoxPub: box}); err != nil {
		t.Fatalf("largest body refused: %v", err)
	}
	if _, err := Seal(SealInput{Header: hd, Body: make([]byte, max+1), SenderSign: sk, RecipientBoxPub: box}); err != ErrTooLarge {
		t.Fatalf("got %v", err)
	}
}
