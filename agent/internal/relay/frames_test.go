package relay

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type handshakeVectors struct {
	AuthLabel string `json:"auth_label"`
	Client    struct {
		SignSeed   string `json:"sign_seed"`
		SignPublic string `json:"sign_public"`
	} `json:"client"`
	Login struct {
		RelayID        string `json:"relay_id"`
		Challenge      string `json:"challenge"`
		RelayTime      uint64 `json:"relay_time"`
		ClientTime     uint64 `json:"client_time"`
		ChallengeFrame string `json:"challenge_frame"`
		AuthMessage    string `json:"auth_message"`
		Signature      string `json:"signature"`
		AuthFrame      string `json:"auth_frame"`
		AuthOKFrame    string `json:"auth_ok_frame"`
		AuthOKQueued   uint32 `json:"auth_ok_queued"`
	} `json:"login"`
	ErrorFrames []struct {
		Code  string `json:"code"`
		Ref   string `json:"ref"`
		Frame string `json:"frame"`
	} `json:"error_frames"`
	Verify []struct {
		Name      string `json:"name"`
		AuthFrame string `json:"auth_frame"`
		Issued    *struct {
			Challenge string `json:"challenge"`
			RelayID   string `json:"relay_id"`
			IssuedAt  uint64 `json:"issued_at"`
		} `json:"issued"`
		Now    uint64 `json:"now"`
		Expect string `json:"expect"`
	} `json:"verify"`
}

func hx(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandshakeVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "protocol", "vectors", "relay-handshake-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v handshakeVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(AuthLabel) != v.AuthLabel {
		t.Fatal("auth label")
	}
	priv := ed25519.NewKeyFromSeed(hx(t, v.Client.SignSeed))
	l := v.Login
	if hex.EncodeToString(EncodeChallenge(hx(t, l.RelayID), l.RelayTime, hx(t, l.Challenge))) != l.ChallengeFrame {
		t.Fatal("challenge frame")
	}
	f, r := Decode(hx(t, l.ChallengeFrame))
	if r != "" || f.RelayTime != l.RelayTime || hex.EncodeToString(f.Challenge) != l.Challenge {
		t.Fatal("decode challenge")
	}
	if hex.EncodeToString(AuthMessage(hx(t, l.Challenge), hx(t, l.RelayID), hx(t, v.Client.SignPublic), l.ClientTime)) != l.AuthMessage {
		t.Fatal("auth message")
	}
	auth := EncodeAuth(priv, hx(t, l.Challenge), hx(t, l.RelayID), l.ClientTime)
	if hex.EncodeToString(auth) != l.AuthFrame || hex.EncodeToString(auth[len(auth)-64:]) != l.Signature {
		t.Fatal("auth frame")
	}
	if hex.EncodeToString(EncodeAuthOK(hx(t, v.Client.SignPublic), l.AuthOKQueued)) != l.AuthOKFrame {
		t.Fatal("auth ok frame")
	}
	if f, r := Decode(hx(t, l.AuthOKFrame)); r != "" || f.Queued != l.AuthOKQueued {
		t.Fatal("decode auth ok")
	}
	for _, e := range v.ErrorFrames {
		var ref []byte
		if e.Ref != "" {
			ref = hx(t, e.Ref)
		}
		if hex.EncodeToString(EncodeError(e.Code, ref)) != e.Frame {
			t.Fatalf("error frame %s", e.Code)
		}
		if f, r := Decode(hx(t, e.Frame)); r != "" || f.Code != e.Code || hex.EncodeToString(f.Ref) != e.Ref {
			t.Fatalf("decode error frame %s", e.Code)
		}
	}
	for _, c := range v.Verify {
		var is *Issued
		if c.Issued != nil {
			is = &Issued{Challenge: hx(t, c.Issued.Challenge), RelayID: hx(t, c.Issued.RelayID), IssuedAt: c.Issued.IssuedAt}
		}
		if got := VerifyAuth(hx(t, c.AuthFrame), is, c.Now); got != c.Expect {
			t.Errorf("%s: got %s, want %s", c.Name, got, c.Expect)
		}
	}
}

func TestDecodeRefusesBadFrames(t *testing.T) {
	for _, b := range [][]byte{{}, {TypeError}, {TypeError, 1, 'a'}, {TypeError, 1, 'A', 0}, {TypeError, 1, 'a', 3, 1, 2, 3}, {TypeError, 1, 'a', 0, 9}, {TypeAuthOK, 1}, {0x7f}} {
		if f, r := Decode(b); f != nil || r == "" {
			t.Errorf("%x accepted", b)
		}
	}
}

type joinVectors struct {
	Join struct {
		AuthJoinLabel   string `json:"auth_join_label"`
		JoinSecret      string `json:"join_secret"`
		PermitSecret    string `json:"permit_secret"`
		AuthJoinMessage string `json:"auth_join_message"`
		Signature       string `json:"signature"`
		AuthJoinFrame   string `json:"auth_join_frame"`
		Verify          []struct {
			Name   string `json:"name"`
			Frame  string `json:"frame"`
			Issued *struct {
				Challenge string `json:"challenge"`
				RelayID   string `json:"relay_id"`
				IssuedAt  uint64 `json:"issued_at"`
			} `json:"issued"`
			Now    uint64 `json:"now"`
			Expect string `json:"expect"`
		} `json:"verify"`
	} `json:"join"`
}

// AUTH_JOIN (RELAY.md "Join permits"): the same bytes as the TypeScript side, and the relay's verdicts.
func TestAuthJoinVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "protocol", "vectors", "relay-handshake-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v handshakeVectors
	var j joinVectors
	if json.Unmarshal(raw, &v) != nil || json.Unmarshal(raw, &j) != nil {
		t.Fatal("vectors")
	}
	if hex.EncodeToString(AuthJoinLabel) != j.Join.AuthJoinLabel {
		t.Fatal("auth join label")
	}
	priv := ed25519.NewKeyFromSeed(hx(t, v.Client.SignSeed))
	l := v.Login
	permit := hx(t, j.Join.PermitSecret)
	if hex.EncodeToString(AuthJoinMessage(hx(t, l.Challenge), hx(t, l.RelayID), hx(t, v.Client.SignPublic), l.ClientTime, permit)) != j.Join.AuthJoinMessage {
		t.Fatal("auth join message")
	}
	frame := EncodeAuthJoin(priv, hx(t, l.Challenge), hx(t, l.RelayID), l.ClientTime, permit)
	if hex.EncodeToString(frame) != j.Join.AuthJoinFrame {
		t.Fatal("auth join frame")
	}
	if f, r := Decode(frame); r != "" || f.Type != TypeAuthJoin || hex.EncodeToString(f.Permit) != j.Join.PermitSecret {
		t.Fatal("decode auth join")
	}
	for _, c := range j.Join.Verify {
		var is *Issued
		if c.Issued != nil {
			is = &Issued{Challenge: hx(t, c.Issued.Challenge), RelayID: hx(t, c.Issued.RelayID), IssuedAt: c.Issued.IssuedAt}
		}
		if got := VerifyAuth(hx(t, c.Frame), is, c.Now); got != c.Expect {
			t.Errorf("%s: got %s, want %s", c.Name, got, c.Expect)
		}
	}
}
