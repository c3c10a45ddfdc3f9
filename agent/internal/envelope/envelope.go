package envelope

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"orch/agent/internal/replay"
)

// Sizes and labels from protocol/ENVELOPE.md.
const (
	Version          = 1
	MaxEnvelopeBytes = 1 << 20
	HeaderFixedBytes = 98
	MaxTypeLen       = 32
	// Overhead beyond header and body: eph_pub 32, nonce 24, ct_len 4, tag 16, sig 64.
	Overhead     = 140
	MaxTimestamp = 1<<53 - 1
	DefaultSkew  = 5 * 60 * 1000
)

var (
	KDFLabel       = []byte("orch/envelope/v1/body-key")
	SignatureLabel = append([]byte("orch/envelope/v1/signature"), 0)
)

// Reason is a stable rejection reason (ENVELOPE.md, "Rejection reasons").
type Reason string

const (
	Oversize        Reason = "oversize"
	Malformed       Reason = "malformed"
	BadVersion      Reason = "bad_version"
	WrongRecipient  Reason = "wrong_recipient"
	UnknownSender   Reason = "unknown_sender"
	BadSignature    Reason = "bad_signature"
	LowOrderKey     Reason = "low_order_key"
	DecryptFailed   Reason = "decrypt_failed"
	Stale           Reason = "stale"
	ReplayReason    Reason = "replay"
	TooOldForWindow Reason = "too_old_for_window"
)

// Reasons lists every reason in check order.
var Reasons = []Reason{Oversize, Malformed, BadVersion, WrongRecipient, UnknownSender, BadSignature, LowOrderKey, DecryptFailed, Stale, ReplayReason, TooOldForWindow}

// Header is the envelope header; keys are raw 32-byte Ed25519 public keys.
type Header struct {
	From    [32]byte
	To      [32]byte
	MsgID   [16]byte
	Counter uint64
	TS      uint64
	Type    string
}

func validType(t string) bool {
	if len(t) < 1 || len(t) > MaxTypeLen || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 1; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// EncodeHeader is the canonical encoding; an error for a header no decoder would accept.
func EncodeHeader(h Header) ([]byte, error) {
	if !validType(h.Type) {
		return nil, errors.New("envelope: type must match [a-z][a-z0-9_.-]* and be 1..32 bytes")
	}
	if h.TS > MaxTimestamp {
		return nil, errors.New("envelope: ts above 2^53-1")
	}
	b := make([]byte, 0, HeaderFixedBytes+len(h.Type))
	b = append(b, Version)
	b = append(b, h.From[:]...)
	b = append(b, h.To[:]...)
	b = append(b, h.MsgID[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Counter)
	b = binary.BigEndian.AppendUint64(b, h.TS)
	b = append(b, byte(len(h.Type)))
	b = append(b, h.Type...)
	return b, nil
}

// DecodeHeader parses a header at the start of b and returns it with its length; Malformed or BadVersion.
func DecodeHeader(b []byte) (Header, int, Reason) {
	var h Header
	if len(b) == 0 {
		return h, 0, Malformed
	}
	if b[0] != Version {
		return h, 0, BadVersion
	}
	if len(b) < HeaderFixedBytes {
		return h, 0, Malformed
	}
	copy(h.From[:], b[1:33])
	copy(h.To[:], b[33:65])
	copy(h.MsgID[:], b[65:81])
	h.Counter = binary.BigEndian.Uint64(b[81:89])
	h.TS = binary.BigEndian.Uint64(b[89:97])
	n := int(b[97])
	if h.TS > MaxTimestamp || n < 1 || n > MaxTypeLen || len(b) < HeaderFixedBytes+n {
		return h, 0, Malformed
	}
	h.Type = string(b[98 : 98+n])
	if !validType(h.Type) {
		return h, 0, Malformed
	}
	return h, HeaderFixedBytes + n, ""
}

// Parsed is an envelope split into its fields, not yet authenticated.
type Parsed struct {
	Header      Header
	HeaderBytes []byte
	EphPub      []byte
	Nonce       []byte
	CT          []byte
	Signed      []byte
	Sig         []byte
}

// Parse checks steps 1 to 3 of "Opening": size, version, exact layout. It is what the relay calls
// parseHeaderUnverified, and its result is unauthenticated.
func Parse(wire []byte) (*Parsed, Reason) {
	if len(wire) > MaxEnvelopeBytes {
		return nil, Oversize
	}
	if len(wire) == 0 {
		return nil, Malformed
	}
	if wire[0] != Version {
		return nil, BadVersion
	}
	h, hl, r := DecodeHeader(wire)
	if r != "" {
		return nil, r
	}
	rest := wire[hl:]
	if len(rest) < 32+24+4 {
		return nil, Malformed
	}
	ctLen := binary.BigEndian.Uint32(rest[56:60])
	if ctLen < 16 || uint64(len(rest)) != 60+uint64(ctLen)+64 {
		return nil, Malformed
	}
	end := hl + 60 + int(ctLen)
	return &Parsed{
		Header:      h,
		HeaderBytes: wire[:hl],
		EphPub:      rest[0:32],
		Nonce:       rest[32:56],
		CT:          rest[60 : 60+ctLen],
		Signed:      wire[:end],
		Sig:         wire[end:],
	}, ""
}

func derive(shared, ephPub, recipientBox []byte) []byte {
	info := make([]byte, 0, 64+len(KDFLabel))
	info = append(info, ephPub...)
	info = append(info, recipientBox...)
	info = append(info, KDFLabel...)
	return KDF(shared, info)
}

// SealInput is what a sender needs. EphSecret and Nonce are for known-answer tests only; leave them nil.
type SealInput struct {
	Header          Header
	Body            []byte
	SenderSign      ed25519.PrivateKey
	RecipientBoxPub []byte
	EphSecret       []byte
	Nonce           []byte
}

// ErrTooLarge: the body does not fit in one envelope.
var ErrTooLarge = errors.New("envelope: too_large")

// Seal builds a v1 envelope (ENVELOPE.md, "Sealing").
func Seal(in SealInput) ([]byte, error) {
	hb, err := EncodeHeader(in.Header)
	if err != nil {
		return nil, err
	}
	if len(hb)+Overhead+len(in.Body) > MaxEnvelopeBytes {
		return nil, ErrTooLarge
	}
	if len(in.RecipientBoxPub) != 32 || len(in.SenderSign) != ed25519.PrivateKeySize {
		return nil, errors.New("envelope: bad key length")
	}
	eph := in.EphSecret
	if eph == nil {
		eph = make([]byte, 32)
		if _, err := rand.Read(eph); err != nil {
			return nil, err
		}
		defer Zero(eph)
	}
	ephPub, err := X25519Public(eph)
	if err != nil {
		return nil, err
	}
	shared, err := X25519(eph, in.RecipientBoxPub)
	if err != nil {
		return nil, err
	}
	defer Zero(shared)
	key := derive(shared, ephPub, in.RecipientBoxPub)
	defer Zero(key)
	nonce := in.Nonce
	if nonce == nil {
		nonce = make([]byte, 24)
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
	}
	ct, err := SealXChaCha(key, nonce, in.Body, hb)
	if err != nil {
		return nil, err
	}
	wire := make([]byte, 0, len(hb)+60+len(ct)+64)
	wire = append(wire, hb...)
	wire = append(wire, ephPub...)
	wire = append(wire, nonce...)
	wire = binary.BigEndian.AppendUint32(wire, uint32(len(ct)))
	wire = append(wire, ct...)
	msg := make([]byte, 0, len(SignatureLabel)+len(wire))
	msg = append(msg, SignatureLabel...)
	msg = append(msg, wire...)
	return append(wire, ed25519.Sign(in.SenderSign, msg)...), nil
}

// OpenInput is what a receiver knows.
type OpenInput struct {
	RecipientSignPub []byte
	RecipientBoxSec  []byte
	RecipientBoxPub  []byte
	PinnedSenderSign []byte
	NowMs            uint64
	MaxSkewMs        uint64 // 0 means DefaultSkew
	Window           *replay.Window
}

// Opened is an authenticated envelope.
type Opened struct {
	Header Header
	Body   []byte
}

// Open runs the checks of "Opening (receiver): check order" and stops at the first failure. Only step 8 changes
// state: on success the window accepts the counter, and the caller persists it before acting on the body.
func Open(wire []byte, in OpenInput) (*Opened, Reason) {
	p, r := Parse(wire)
	if r != "" {
		return nil, r
	}
	return OpenParsed(p, in)
}

// OpenParsed is Open after its steps 1 to 3, for a caller that already ran Parse (to pick the pinned key and window
// from the unauthenticated header) and so need not parse the envelope a second time.
func OpenParsed(p *Parsed, in OpenInput) (*Opened, Reason) {
	if subtle.ConstantTimeCompare(p.Header.To[:], in.RecipientSignPub) != 1 {
		return nil, WrongRecipient
	}
	if subtle.ConstantTimeCompare(p.Header.From[:], in.PinnedSenderSign) != 1 {
		return nil, UnknownSender
	}
	msg := make([]byte, 0, len(SignatureLabel)+len(p.Signed))
	msg = append(msg, SignatureLabel...)
	msg = append(msg, p.Signed...)
	if !Verify(in.PinnedSenderSign, msg, p.Sig) {
		return nil, BadSignature
	}
	shared, err := X25519(in.RecipientBoxSec, p.EphPub)
	if err != nil {
		return nil, LowOrderKey
	}
	key := derive(shared, p.EphPub, in.RecipientBoxPub)
	Zero(shared)
	body, err := OpenXChaCha(key, p.Nonce, p.CT, p.HeaderBytes)
	Zero(key)
	if err != nil {
		return nil, DecryptFailed
	}
	skew := in.MaxSkewMs
	if skew == 0 {
		skew = DefaultSkew
	}
	var diff uint64
	if in.NowMs > p.Header.TS {
		diff = in.NowMs - p.Header.TS
	} else {
		diff = p.Header.TS - in.NowMs
	}
	if diff > skew {
		return nil, Stale
	}
	switch in.Window.Check(p.Header.Counter) {
	case replay.Replay:
		return nil, ReplayReason
	case replay.TooOld:
		return nil, TooOldForWindow
	}
	if err := in.Window.Accept(p.Header.Counter); err != nil {
		return nil, ReplayReason
	}
	return &Opened{Header: p.Header, Body: body}, ""
}
