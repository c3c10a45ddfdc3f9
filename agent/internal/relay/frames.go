// Package relay is the agent's side of the Orch relay protocol, version 1 (protocol/RELAY.md): the frames, the
// login, and a client that keeps a pinned TLS WebSocket connection with reconnect and backoff.
package relay

import (
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/binary"
	"regexp"

	"orch/agent/internal/envelope"
)

// Frame types and sizes.
const (
	TypeChallenge = 0x01
	TypeAuth      = 0x02
	TypeAuthOK    = 0x03
	TypeEnvelope  = 0x04
	TypeError     = 0x05
	TypeAuthJoin  = 0x06

	Version          = 1
	MaxFrameBytes    = 1 + envelope.MaxEnvelopeBytes
	challengePayload = 73
	authPayload      = 105
	authOKPayload    = 37
	authJoinPayload  = 137
	PermitSecretSize = 32
	maxTime          = 1<<53 - 1
	AnswerWindowMs   = 30_000
	MaxClockSkewMs   = 5 * 60 * 1000
)

// AuthLabel separates login signatures from envelope signatures.
var AuthLabel = append([]byte("orch/relay/v1/auth"), 0)

// AuthJoinLabel is AUTH_JOIN's label (RELAY.md "Login"): it differs from AuthLabel at byte 18, so no AUTH signature
// is an AUTH_JOIN signature or the reverse.
var AuthJoinLabel = append([]byte("orch/relay/v1/auth-join"), 0)

// Frame is one decoded frame; the fields used depend on Type.
type Frame struct {
	Type      byte
	Version   byte
	RelayID   []byte
	RelayTime uint64
	Challenge []byte
	ClientKey []byte
	Time      uint64
	Signature []byte
	Queued    uint32
	Permit    []byte
	Envelope  []byte
	Code      string
	Ref       []byte
}

var errorCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Decode is strict: exact lengths, no trailing bytes, known types only. The reason is "oversize",
// "malformed_frame" or "unknown_frame_type".
func Decode(b []byte) (*Frame, string) {
	if len(b) > MaxFrameBytes {
		return nil, "oversize"
	}
	if len(b) < 1 {
		return nil, "malformed_frame"
	}
	p := b[1:]
	f := &Frame{Type: b[0]}
	switch b[0] {
	case TypeChallenge:
		var ok bool
		if f.Version, f.RelayID, f.RelayTime, ok = loginFields(p, challengePayload); !ok {
			return nil, "malformed_frame"
		}
		f.Challenge = p[41:73]
	case TypeAuth, TypeAuthJoin:
		size := authPayload
		if b[0] == TypeAuthJoin {
			size = authJoinPayload
		}
		var ok bool
		if f.Version, f.ClientKey, f.Time, ok = loginFields(p, size); !ok {
			return nil, "malformed_frame"
		}
		f.Signature = p[41:105]
		if b[0] == TypeAuthJoin {
			f.Permit = p[105:137]
		}
	case TypeAuthOK:
		if len(p) != authOKPayload {
			return nil, "malformed_frame"
		}
		f.Version, f.ClientKey, f.Queued = p[0], p[1:33], binary.BigEndian.Uint32(p[33:37])
	case TypeEnvelope:
		f.Envelope = p
	case TypeError:
		if len(p) < 2 {
			return nil, "malformed_frame"
		}
		n := int(p[0])
		if len(p) < 1+n+1 {
			return nil, "malformed_frame"
		}
		code := string(p[1 : 1+n])
		refLen := int(p[1+n])
		if !errorCode.MatchString(code) || (refLen != 0 && refLen != 16) || len(p) != 2+n+refLen {
			return nil, "malformed_frame"
		}
		f.Code, f.Ref = code, p[2+n:]
	default:
		return nil, "unknown_frame_type"
	}
	return f, ""
}

// loginFields checks a CHALLENGE, AUTH or AUTH_JOIN payload's exact size and reads the layout the three share:
// the version, a 32-byte relay id or client key, and a big-endian u64 time in milliseconds, at most 2^53-1.
func loginFields(p []byte, size int) (version byte, id []byte, ms uint64, ok bool) {
	if len(p) != size {
		return 0, nil, 0, false
	}
	ms = binary.BigEndian.Uint64(p[33:41])
	return p[0], p[1:33], ms, ms <= maxTime
}

// EncodeChallenge builds a CHALLENGE frame (for tests and vectors).
func EncodeChallenge(relayID []byte, relayTime uint64, challenge []byte) []byte {
	b := []byte{TypeChallenge, Version}
	b = append(b, relayID...)
	b = binary.BigEndian.AppendUint64(b, relayTime)
	return append(b, challenge...)
}

// AuthMessage is what the client signs: AUTH_LABEL || challenge || relay_id || client_key || client_time.
func AuthMessage(challenge, relayID, clientKey []byte, clientTime uint64) []byte {
	m := append([]byte{}, AuthLabel...)
	m = append(m, challenge...)
	m = append(m, relayID...)
	m = append(m, clientKey...)
	return binary.BigEndian.AppendUint64(m, clientTime)
}

// EncodeAuth answers a challenge.
func EncodeAuth(priv ed25519.PrivateKey, challenge, relayID []byte, clientTime uint64) []byte {
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, AuthMessage(challenge, relayID, pub, clientTime))
	b := []byte{TypeAuth, Version}
	b = append(b, pub...)
	b = binary.BigEndian.AppendUint64(b, clientTime)
	return append(b, sig...)
}

// AuthJoinMessage is what a joining client signs: AUTH_JOIN_LABEL || challenge || relay_id || client_key ||
// client_time || permit_secret.
func AuthJoinMessage(challenge, relayID, clientKey []byte, clientTime uint64, permit []byte) []byte {
	m := append([]byte{}, AuthJoinLabel...)
	m = append(m, challenge...)
	m = append(m, relayID...)
	m = append(m, clientKey...)
	m = binary.BigEndian.AppendUint64(m, clientTime)
	return append(m, permit...)
}

// EncodeAuthJoin answers a challenge with a join permit's secret (RELAY.md "Join permits").
func EncodeAuthJoin(priv ed25519.PrivateKey, challenge, relayID []byte, clientTime uint64, permit []byte) []byte {
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, AuthJoinMessage(challenge, relayID, pub, clientTime, permit))
	b := []byte{TypeAuthJoin, Version}
	b = append(b, pub...)
	b = binary.BigEndian.AppendUint64(b, clientTime)
	b = append(b, sig...)
	return append(b, permit...)
}

// EncodeAuthOK builds an AUTH_OK frame (for tests and vectors).
func EncodeAuthOK(clientKey []byte, queued uint32) []byte {
	b := append([]byte{TypeAuthOK, Version}, clientKey...)
	return binary.BigEndian.AppendUint32(b, queued)
}

// EncodeError builds an ERROR frame (for tests and vectors).
func EncodeError(code string, ref []byte) []byte {
	b := []byte{TypeError, byte(len(code))}
	b = append(b, code...)
	b = append(b, byte(len(ref)))
	return append(b, ref...)
}

// Issued is what the relay remembers about a challenge; nil when it was already answered.
type Issued struct {
	Challenge []byte
	RelayID   []byte
	IssuedAt  uint64
}

// VerifyAuth is the relay's check of an AUTH frame, in the order of RELAY.md "Login"; "ok" or the reason. The
// agent never runs it; it is here so the vectors' verify cases check this implementation's reading of the spec.
func VerifyAuth(frame []byte, issued *Issued, now uint64) string {
	f, r := Decode(frame)
	if r != "" {
		return r
	}
	if f.Type != TypeAuth && f.Type != TypeAuthJoin {
		return "unexpected_frame"
	}
	if f.Version != Version {
		return "bad_version"
	}
	if issued == nil {
		return "challenge_used"
	}
	if now > issued.IssuedAt && now-issued.IssuedAt > AnswerWindowMs {
		return "challenge_expired"
	}
	diff := now - f.Time
	if f.Time > now {
		diff = f.Time - now
	}
	if diff > MaxClockSkewMs {
		return "clock_skew"
	}
	m := AuthMessage(issued.Challenge, issued.RelayID, f.ClientKey, f.Time)
	if f.Type == TypeAuthJoin {
		m = AuthJoinMessage(issued.Challenge, issued.RelayID, f.ClientKey, f.Time, f.Permit)
	}
	if !envelope.Verify(f.ClientKey, m, f.Signature) {
		return "bad_signature"
	}
	return "ok"
}

// ConstantTimeEqual compares two byte strings in constant time (for pins and keys).
func ConstantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
