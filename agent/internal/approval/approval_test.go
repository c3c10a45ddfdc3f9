package approval

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"orch/agent/internal/vectortest"
)

type vectorFile struct {
	Keys struct {
		AliceSeed string `json:"aliceSeed"`
		Alice     string `json:"alice"`
	} `json:"keys"`
	Digest struct {
		Released  []Entry `json:"released"`
		Canonical string  `json:"canonical"`
		Digest    string  `json:"digest"`
	} `json:"digest"`
	Signature struct {
		Statement Statement `json:"statement"`
		Message   string    `json:"message"`
		Signature string    `json:"signature"`
	} `json:"signature"`
	Templates []struct {
		Template string `json:"template"`
		Arg      string `json:"arg"`
		Match    bool   `json:"match"`
	} `json:"templates"`
	Checks []struct {
		Name    string `json:"name"`
		Command struct {
			CommandID string   `json:"commandId"`
			Tenant    string   `json:"tenant"`
			Argv      []string `json:"argv"`
			Agent     string   `json:"agent"`
		} `json:"command"`
		TrustedKeys []string        `json:"trustedKeys"`
		Approval    json.RawMessage `json:"approval"`
		Expect      string          `json:"expect"`
	} `json:"checks"`
}

func loadVectors(t *testing.T) vectorFile { return vectortest.Load[vectorFile](t, "approval.json") }

func TestVectorsDigestAndSignature(t *testing.T) {
	v := loadVectors(t)
	d, err := ReleaseDigest(v.Digest.Released)
	if err != nil || d != v.Digest.Digest {
		t.Fatalf("digest %s, want %s (%v)", d, v.Digest.Digest, err)
	}
	// Any order of released gives the same digest (it is sorted by command id).
	rev := append([]Entry(nil), v.Digest.Released...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if d2, _ := ReleaseDigest(rev); d2 != d {
		t.Fatal("digest depends on the order of released")
	}
	msg, err := Message(v.Signature.Statement)
	if err != nil || string(msg) != v.Signature.Message {
		t.Fatalf("message\n%s\nwant\n%s", msg, v.Signature.Message)
	}
	seed, _ := hex.DecodeString(v.Keys.AliceSeed)
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(seed), msg)
	if hex.EncodeToString(sig) != v.Signature.Signature {
		t.Fatal("signature differs from the vector")
	}
	if !VerifySignature(Signed{Statement: v.Signature.Statement, Signature: v.Signature.Signature}) {
		t.Fatal("vector signature does not verify")
	}
}

func TestVectorsTemplates(t *testing.T) {
	for _, c := range loadVectors(t).Templates {
		if got := MatchTemplate(c.Template, c.Arg); got != c.Match {
			t.Errorf("MatchTemplate(%q, %q) = %v, want %v", c.Template, c.Arg, got, c.Match)
		}
	}
}

// Every check case of the vectors: the Go agent reaches the same verdict as the desktop's verifier, and every
// failure code has a case.
func TestVectorsChecks(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range loadVectors(t).Checks {
		got := "ok"
		var att *Attestation
		if string(c.Approval) != "null" {
			a, err := Decode(c.Approval)
			if err != nil {
				got = Malformed
			}
			att = a
		}
		if got == "ok" {
			if f := Check(Subject{CommandID: c.Command.CommandID, Tenant: c.Command.Tenant, Argv: c.Command.Argv, Agent: c.Command.Agent}, att, c.TrustedKeys); f != nil {
				got = f.Code
				for _, a := range c.Command.Argv {
					if len(a) > 3 && strings.Contains(f.Detail, a) {
						t.Errorf("%s: detail quotes argv", c.Name)
					}
				}
			}
		}
		if got != c.Expect {
			t.Errorf("%s: got %s, want %s", c.Name, got, c.Expect)
		}
		seen[got] = true
	}
	for _, code := range []string{"ok", NoAttestation, Malformed, NotReleased, WrongAgent, ArgvMismatch, UntrustedApprover, BadSignature, NotApproved, WrongTenant, WrongRun, DigestMismatch} {
		if !seen[code] {
			t.Errorf("no vector reaches %s", code)
		}
	}
}

func TestCanonicalStrings(t *testing.T) {
	b, err := canonical(map[string]any{"b": "\u2028\x7f\x01\"\\/é😀", "a": []any{true, int64(-0), int64(9007199254740991)}, "\U0001F600": int64(1), "\uE000": int64(2)})
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"a\":[true,0,9007199254740991],\"b\":\"\u2028\x7f\\u0001\\\"\\\\/é😀\",\"\U0001F600\":1,\"\uE000\":2}"
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if _, err := canonical(int64(1 << 53)); err == nil {
		t.Fatal("an integer above 2^53-1 was encoded")
	}
}
