package join

import (
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"

	"orch/agent/internal/envelope"
	"orch/agent/internal/replay"
	"orch/agent/internal/vectortest"
)

type vectors struct {
	ProofKeyLabel string           `json:"proof_key_label"`
	ProofLabel    string           `json:"proof_label"`
	Desktop       vectortest.Party `json:"desktop"`
	Agent         vectortest.Party `json:"agent"`
	JoinSecret    string           `json:"join_secret"`
	RelayPin      string           `json:"relay_pin"`
	RelayURL      string           `json:"relay_url"`
	ExpiresAt     uint64           `json:"expires_at"`
	Token         string           `json:"token"`
	SecretHash    string           `json:"secret_hash"`
	PermitSecret  string           `json:"permit_secret"`
	ProofKey      string           `json:"proof_key"`
	ProofMessage  string           `json:"proof_message"`
	Proof         string           `json:"proof"`
	JoinRequest   struct {
		Body     string `json:"body"`
		Envelope string `json:"envelope"`
		OpenAt   uint64 `json:"open_at"`
	} `json:"join_request"`
	JoinResultOK struct {
		Body     string `json:"body"`
		Envelope string `json:"envelope"`
		TS       uint64 `json:"ts"`
	} `json:"join_result_ok"`
	JoinResultRefused struct {
		Body string `json:"body"`
	} `json:"join_result_refused"`
	BadTokens []struct {
		Name  string `json:"name"`
		Token string `json:"token"`
	} `json:"bad_tokens"`
	BadResults []struct {
		Name string `json:"name"`
		Body string `json:"body"`
	} `json:"bad_results"`
}

var hx = vectortest.Hex

// loadSeed reads the vectors for the fuzz corpus; nil when they cannot be read.
func loadSeed() *vectors {
	var v vectors
	if vectortest.Read("join-v1.json", &v) != nil {
		return nil
	}
	return &v
}

func load(t *testing.T) *vectors {
	v := vectortest.Load[vectors](t, "join-v1.json")
	return &v
}

func TestTokenVectors(t *testing.T) {
	v := load(t)
	tok, err := DecodeToken(v.Token, v.ExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RelayURL != v.RelayURL || hex.EncodeToString(tok.RelayPin) != v.RelayPin || hex.EncodeToString(tok.DesktopSign) != v.Desktop.SignPublic ||
		hex.EncodeToString(tok.DesktopBox) != v.Desktop.BoxPublic || hex.EncodeToString(tok.Secret) != v.JoinSecret || tok.ExpiresAt != v.ExpiresAt {
		t.Fatal("decoded token differs from the fixed inputs")
	}
	if EncodeToken(tok) != v.Token {
		t.Fatal("re-encoded token differs")
	}
	if _, err := DecodeToken(v.Token, v.ExpiresAt+1); err == nil || err.(*Error).Code != "expired_token" {
		t.Fatalf("expired token: %v", err)
	}
	for _, c := range v.BadTokens {
		if _, err := DecodeToken(c.Token, 0); err == nil || err.(*Error).Code != "bad_token" {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}

func TestDerivedValues(t *testing.T) {
	v := load(t)
	tok, _ := DecodeToken(v.Token, 0)
	if hex.EncodeToString(ProofKeyLabel) != v.ProofKeyLabel || hex.EncodeToString(ProofLabel) != v.ProofLabel {
		t.Fatal("labels")
	}
	if hex.EncodeToString(SecretHash(tok.Secret)) != v.SecretHash {
		t.Fatal("secret hash")
	}
	if hex.EncodeToString(PermitSecret(tok.Secret)) != v.PermitSecret {
		t.Fatal("permit secret")
	}
	if hex.EncodeToString(ProofKey(tok.Secret)) != v.ProofKey {
		t.Fatal("proof key")
	}
	as, ab := hx(t, v.Agent.SignPublic), hx(t, v.Agent.BoxPublic)
	if hex.EncodeToString(ProofMessage(as, ab, tok)) != v.ProofMessage {
		t.Fatal("proof message")
	}
	if hex.EncodeToString(Proof(as, ab, tok)) != v.Proof {
		t.Fatal("proof")
	}
	body, err := NewRequest(as, ab, "web-1.example", "0.1.0", tok)
	if err != nil || string(body) != v.JoinRequest.Body {
		t.Fatalf("request body:\n%s\n%s", body, v.JoinRequest.Body)
	}
}

func TestEnvelopes(t *testing.T) {
	v := load(t)
	desktop := ed25519.NewKeyFromSeed(hx(t, v.Desktop.SignSeed))
	opened, reason := envelope.Open(hx(t, v.JoinRequest.Envelope), envelope.OpenInput{
		RecipientSignPub: desktop.Public().(ed25519.PublicKey), RecipientBoxSec: hx(t, v.Desktop.BoxSecret), RecipientBoxPub: hx(t, v.Desktop.BoxPublic),
		PinnedSenderSign: hx(t, v.Agent.SignPublic), NowMs: v.JoinRequest.OpenAt, Window: replay.NewDefault(),
	})
	if reason != "" || string(opened.Body) != v.JoinRequest.Body || opened.Header.Type != "join_request" {
		t.Fatalf("join_request envelope: %s", reason)
	}
	opened, reason = envelope.Open(hx(t, v.JoinResultOK.Envelope), envelope.OpenInput{
		RecipientSignPub: hx(t, v.Agent.SignPublic), RecipientBoxSec: hx(t, v.Agent.BoxSecret), RecipientBoxPub: hx(t, v.Agent.BoxPublic),
		PinnedSenderSign: hx(t, v.Desktop.SignPublic), NowMs: v.JoinResultOK.TS, Window: replay.NewDefault(),
	})
	if reason != "" || string(opened.Body) != v.JoinResultOK.Body {
		t.Fatalf("join_result envelope: %s", reason)
	}
	r, err := DecodeResult(opened.Body)
	if err != nil || r.Status != "ok" || r.Name != "web-1" || r.Tier != "standard" || len(r.Tenants) != 1 || r.Tenants[0] != "acme" || r.Allowlist == nil {
		t.Fatalf("ok result: %+v %v", r, err)
	}
	r, err = DecodeResult([]byte(v.JoinResultRefused.Body))
	if err != nil || r.Status != "refused" || r.Reason == "" {
		t.Fatalf("refused result: %+v %v", r, err)
	}
	for _, c := range v.BadResults {
		if _, err := DecodeResult([]byte(c.Body)); err == nil {
			t.Errorf("%s: accepted", c.Name)
		}
	}
}

// A join_result may carry the approver keys of the agent's tenants (APPROVAL.md); only for tenants it joins, each
// exactly { version >= 1, keys }.
func TestDecodeResultApprovers(t *testing.T) {
	k := strings.Repeat("c", 64)
	base := `{"kind":"join_result","status":"ok","name":"web-1","tier":"standard","tenants":["acme","ops"]`
	r, err := DecodeResult([]byte(base + `,"approvers":{"acme":{"version":3,"keys":["` + k + `"]}}}`))
	if err != nil || r.Approvers["acme"].Version != 3 || r.Approvers["acme"].Keys[0] != k {
		t.Fatalf("valid approvers: %v %+v", err, r)
	}
	if r, err := DecodeResult([]byte(base + `}`)); err != nil || r.Approvers != nil {
		t.Fatalf("no approvers: %v", err)
	}
	for _, bad := range []string{
		`"approvers":{"globex":{"version":1,"keys":[]}}`,
		`"approvers":{"acme":{"version":0,"keys":[]}}`,
		`"approvers":{"acme":{"version":1.5,"keys":[]}}`,
		`"approvers":{"acme":{"version":1,"keys":["AB"]}}`,
		`"approvers":{"acme":{"version":1,"keys":["` + k + `","` + k + `"]}}`,
		`"approvers":{"acme":{"version":1,"keys":[],"x":1}}`,
		`"approvers":{"acme":{"version":1}}`,
		`"approvers":[]`,
		`"approvers":null`,
	} {
		if _, err := DecodeResult([]byte(base + `,` + bad + `}`)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
