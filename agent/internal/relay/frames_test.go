package relay

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"orch/agent/internal/vectortest"
)

// issuedChallenge is a challenge the relay issued, in the verify cases of relay-handshake-v1.json.
type issuedChallenge struct {
	Challenge string `json:"challenge"`
	RelayID   string `json:"relay_id"`
	IssuedAt  uint64 `json:"issued_at"`
}

// decode is the Issued the case names, nil when it names none.
func (c *issuedChallenge) decode(t *testing.T) *Issued {
	if c == nil {
		return nil
	}
	return &Issued{Challenge: hx(t, c.Challenge), RelayID: hx(t, c.RelayID), IssuedAt: c.IssuedAt}
}

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
		Name      string           `json:"name"`
		AuthFrame string           `json:"auth_frame"`
		Issued    *issuedChallenge `json:"issued"`
		Now       uint64           `json:"now"`
		Expect    string           `json:"expect"`
	} `json:"verify"`
	Join struct {
		AuthJoinLabel   string `json:"auth_join_label"`
		JoinSecret      string `json:"join_secret"`
		PermitSecret    string `json:"permit_secret"`
		AuthJoinMessage string `json:"auth_join_message"`
		Signature       string `json:"signature"`
		AuthJoinFrame   string `json:"auth_join_frame"`
		Verify          []struct {
			Name   string           `json:"name"`
			Frame  string           `json:"frame"`
			Issued *issuedChallenge `json:"issued"`
			Now    uint64           `json:"now"`
			Expect string           `json:"expect"`
		} `json:"verify"`
	} `json:"join"`
}

var hx = vectortest.Hex

func TestHandshakeVectors(t *testing.T) {
	v := vectortest.Load[handshakeVectors](t, "relay-handshake-v1.json")
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
		if got := VerifyAuth(hx(t, c.AuthFrame), c.Issued.decode(t), c.Now); got != c.Expect {
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

// AUTH_JOIN (RELAY.md "Join permits"): the same bytes as the TypeScript side, and the relay's verdicts.
func TestAuthJoinVectors(t *testing.T) {
	v := vectortest.Load[handshakeVectors](t, "relay-handshake-v1.json")
	if hex.EncodeToString(AuthJoinLabel) != v.Join.AuthJoinLabel {
		t.Fatal("auth join label")
	}
	priv := ed25519.NewKeyFromSeed(hx(t, v.Client.SignSeed))
	l := v.Login
	permit := hx(t, v.Join.PermitSecret)
	if hex.EncodeToString(AuthJoinMessage(hx(t, l.Challenge), hx(t, l.RelayID), hx(t, v.Client.SignPublic), l.ClientTime, permit)) != v.Join.AuthJoinMessage {
		t.Fatal("auth join message")
	}
	frame := EncodeAuthJoin(priv, hx(t, l.Challenge), hx(t, l.RelayID), l.ClientTime, permit)
	if hex.EncodeToString(frame) != v.Join.AuthJoinFrame {
		t.Fatal("auth join frame")
	}
	if f, r := Decode(frame); r != "" || f.Type != TypeAuthJoin || hex.EncodeToString(f.Permit) != v.Join.PermitSecret {
		t.Fatal("decode auth join")
	}
	for _, c := range v.Join.Verify {
		if got := VerifyAuth(hx(t, c.Frame), c.Issued.decode(t), c.Now); got != c.Expect {
			t.Errorf("%s: got %s, want %s", c.Name, got, c.Expect)
		}
	}
}

// The three login frames: exact sizes, a time of at most 2^53-1 ms, and each field read from its place.
func TestDecodeLoginFrames(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	id, challenge, permit := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	const max = 1<<53 - 1
	frames := map[string]func(ms uint64) []byte{
		"challenge": func(ms uint64) []byte { return EncodeChallenge(id, ms, challenge) },
		"auth":      func(ms uint64) []byte { return EncodeAuth(priv, challenge, id, ms) },
		"auth_join": func(ms uint64) []byte { return EncodeAuthJoin(priv, challenge, id, ms, permit) },
	}
	for name, encode := range frames {
		good := encode(max)
		f, r := Decode(good)
		if r != "" {
			t.Fatalf("%s: %s", name, r)
		}
		if name == "challenge" && (!bytes.Equal(f.RelayID, id) || f.RelayTime != max || !bytes.Equal(f.Challenge, challenge)) ||
			name != "challenge" && (!bytes.Equal(f.ClientKey, priv.Public().(ed25519.PublicKey)) || f.Time != max || len(f.Signature) != 64) ||
			name == "auth_join" && !bytes.Equal(f.Permit, permit) || name == "auth" && f.Permit != nil || f.Version != Version {
			t.Fatalf("%s: decoded %+v", name, f)
		}
		for what, bad := range map[string][]byte{"time 2^53": encode(max + 1), "short": good[:len(good)-1], "long": append(good, 0)} {
			if f, r := Decode(bad); f != nil || r != "malformed_frame" {
				t.Errorf("%s, %s: %v %q", name, what, f, r)
			}
		}
	}
}
