package envelope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

type wpFile struct {
	TestGroups []struct {
		PublicKey struct {
			PK string `json:"pk"`
		} `json:"publicKey"`
		Tests []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			Flags   []string `json:"flags"`
			Result  string   `json:"result"`
			// AEAD
			Key, IV, AAD, Msg, CT, Tag string
			// x25519
			Public, Private, Shared string
			// ed25519
			Sig string `json:"sig"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func loadWP(t *testing.T, name string) wpFile {
	dir := os.Getenv("ORCH_WYCHEPROOF_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "vectors", "wycheproof")
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Skipf("Wycheproof vectors not found (%v); set ORCH_WYCHEPROOF_DIR", err)
	}
	var f wpFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func aeadOpen(x bool, key, nonce, ct, ad []byte) ([]byte, error) {
	if x {
		return OpenXChaCha(key, nonce, ct, ad)
	}
	a, err := chacha20poly1305.New(key)
	if err != nil || len(nonce) != 12 || len(ct) < 16 {
		return nil, os.ErrInvalid
	}
	return a.Open(nil, nonce, ct, ad)
}

func aeadSeal(x bool, key, nonce, pt, ad []byte) ([]byte, error) {
	if x {
		return SealXChaCha(key, nonce, pt, ad)
	}
	a, err := chacha20poly1305.New(key)
	if err != nil || len(nonce) != 12 {
		return nil, os.ErrInvalid
	}
	return a.Seal(nil, nonce, pt, ad), nil
}

func TestWycheproofAEAD(t *testing.T) {
	for _, c := range []struct {
		file string
		x    bool
	}{{"chacha20_poly1305_test.json", false}, {"xchacha20_poly1305_test.json", true}} {
		f := loadWP(t, c.file)
		n := 0
		for _, g := range f.TestGroups {
			for _, tc := range g.Tests {
				n++
				key, iv, aad, msg := h(t, tc.Key), h(t, tc.IV), h(t, tc.AAD), h(t, tc.Msg)
				ct := append(h(t, tc.CT), h(t, tc.Tag)...)
				pt, err := aeadOpen(c.x, key, iv, ct, aad)
				switch tc.Result {
				case "valid":
					if err != nil || !bytes.Equal(pt, msg) {
						t.Errorf("%s tcId %d: valid case rejected", c.file, tc.TcID)
					}
					sealed, err := aeadSeal(c.x, key, iv, msg, aad)
					if err != nil || !bytes.Equal(sealed, ct) {
						t.Errorf("%s tcId %d: seal differs", c.file, tc.TcID)
					}
				case "invalid":
					if err == nil {
						t.Errorf("%s tcId %d (%s): invalid case accepted", c.file, tc.TcID, tc.Comment)
					}
				default:
					t.Errorf("%s tcId %d: unexpected %s case", c.file, tc.TcID, tc.Result)
				}
			}
		}
		t.Logf("%s: %d cases", c.file, n)
	}
}

func TestWycheproofX25519(t *testing.T) {
	f := loadWP(t, "x25519_test.json")
	lowOrderRejected := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			want := h(t, tc.Shared)
			lowOrder := slices.Contains(tc.Flags, "LowOrderPublic") || slices.Contains(tc.Flags, "ZeroSharedSecret") || bytes.Equal(want, make([]byte, 32))
			got, err := X25519(h(t, tc.Private), h(t, tc.Public))
			if bytes.Equal(want, make([]byte, 32)) {
				if err != ErrLowOrder {
					t.Errorf("tcId %d: all-zero secret not refused", tc.TcID)
				}
				lowOrderRejected++
				continue
			}
			switch tc.Result {
			case "valid":
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("tcId %d (%s): got %x %v", tc.TcID, tc.Comment, got, err)
				}
			case "acceptable":
				if err != nil {
					if !lowOrder {
						t.Errorf("tcId %d: acceptable non-low-order case rejected", tc.TcID)
					}
					lowOrderRejected++
				} else if !bytes.Equal(got, want) {
					t.Errorf("tcId %d: acceptable case computed a wrong secret", tc.TcID)
				}
			case "invalid":
				if err == nil && bytes.Equal(got, want) {
					t.Errorf("tcId %d: invalid accepted", tc.TcID)
				}
			}
		}
	}
	if lowOrderRejected == 0 {
		t.Fatal("no low-order case exercised")
	}
}

func TestWycheproofEd25519(t *testing.T) {
	f := loadWP(t, "ed25519_test.json")
	counts := map[string]int{}
	for _, g := range f.TestGroups {
		pk := h(t, g.PublicKey.PK)
		for _, tc := range g.Tests {
			ok := Verify(pk, h(t, tc.Msg), h(t, tc.Sig))
			switch tc.Result {
			case "valid":
				if !ok {
					t.Errorf("tcId %d (%s): valid signature rejected", tc.TcID, tc.Comment)
				}
			case "invalid":
				if ok {
					t.Errorf("tcId %d (%s): invalid signature accepted", tc.TcID, tc.Comment)
				}
			}
			counts[tc.Result]++
		}
	}
	t.Logf("ed25519: %v", counts)
}
