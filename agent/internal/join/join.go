// Package join is the agent's side of the join flow, version 1 (protocol/JOIN.md): the invite token, the join
// proof, the join_request it sends and the join_result it reads.
package join

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"orch/agent/internal/jsonwire"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"orch/agent/internal/approval"
	"orch/agent/internal/envelope"
)

// Constants from JOIN.md.
const (
	TokenPrefix          = "orchjoin1."
	TokenVersion         = 1
	SecretBytes          = 32
	MaxRelayURLLength    = 512
	tokenFixedBytes      = 1 + 32 + 32 + 32 + 32 + 8 + 2
	maxTime              = 1<<53 - 1
	MaxAllowlistBytes    = 64 * 1024
	MaxTenants           = 64
	maxRefusalReasonChar = 512
)

var (
	ProofKeyLabel     = append([]byte("orch/join/v1/proof-key"), 0)
	ProofLabel        = append([]byte("orch/join/v1/proof"), 0)
	PermitSecretLabel = append([]byte("orch/relay/v1/join-permit"), 0)
	urlRule           = regexp.MustCompile(`^wss://[\x21-\x7e]+$`)
	nameRule          = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Error is a token or result problem with a stable code: bad_token, expired_token, bad_result.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Token is a decoded invite token.
type Token struct {
	RelayURL    string
	RelayPin    []byte // 32 bytes: SHA-256 of the relay certificate's SPKI
	DesktopSign []byte
	DesktopBox  []byte
	Secret      []byte
	ExpiresAt   uint64 // ms since the epoch
}

// PinText is the pin as `sha256/<base64>`.
func (t *Token) PinText() string { return "sha256/" + base64.StdEncoding.EncodeToString(t.RelayPin) }

func urlProblem(u string) string {
	if len(u) < 1 || len(u) > MaxRelayURLLength {
		return fmt.Sprintf("the relay URL must be 1..%d characters", MaxRelayURLLength)
	}
	if !urlRule.MatchString(u) {
		return "the relay URL must be wss://HOST[:PORT][/PATH] in printable ASCII"
	}
	return ""
}

// EncodeToken is the canonical encoding (for tests and vectors; the desktop makes tokens).
func EncodeToken(t *Token) string {
	b := []byte{TokenVersion}
	b = append(b, t.RelayPin...)
	b = append(b, t.DesktopSign...)
	b = append(b, t.DesktopBox...)
	b = append(b, t.Secret...)
	b = binary.BigEndian.AppendUint64(b, t.ExpiresAt)
	b = binary.BigEndian.AppendUint16(b, uint16(len(t.RelayURL)))
	b = append(b, t.RelayURL...)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// DecodeToken is strict (JOIN.md "Invite token"); nowMs > 0 also refuses an expired token (expired_token).
func DecodeToken(text string, nowMs uint64) (*Token, error) {
	bad := func(why string) error {
		return &Error{Code: "bad_token", Msg: "not a valid Orch invite token: " + why + "; copy the whole line `orch agent invite` printed"}
	}
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, TokenPrefix) {
		return nil, bad("it must start with " + TokenPrefix)
	}
	body := text[len(TokenPrefix):]
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || base64.RawURLEncoding.EncodeToString(raw) != body {
		return nil, bad("its base64url is not canonical")
	}
	if len(raw) < tokenFixedBytes {
		return nil, bad("it is too short")
	}
	if raw[0] != TokenVersion {
		return nil, bad(fmt.Sprintf("version %d is not supported (this agent reads version %d)", raw[0], TokenVersion))
	}
	expires := binary.BigEndian.Uint64(raw[129:137])
	if expires > maxTime {
		return nil, bad("its expiry is out of range")
	}
	n := int(binary.BigEndian.Uint16(raw[137:139]))
	if len(raw) != tokenFixedBytes+n {
		return nil, bad("its length does not match")
	}
	url := string(raw[139:])
	if p := urlProblem(url); p != "" {
		return nil, bad(p)
	}
	t := &Token{RelayURL: url, RelayPin: raw[1:33], DesktopSign: raw[33:65], DesktopBox: raw[65:97], Secret: raw[97:129], ExpiresAt: expires}
	for _, k := range [][]byte{t.RelayPin, t.DesktopSign, t.DesktopBox, t.Secret} {
		if allZero(k) {
			return nil, bad("it holds an all-zero key")
		}
	}
	if nowMs > 0 && nowMs > expires {
		at := time.UnixMilli(int64(expires)).UTC().Format(time.RFC3339)
		return nil, &Error{Code: "expired_token", Msg: "this invite expired at " + at + "; ask for a new one (orch agent invite)"}
	}
	return t, nil
}

// SecretHash is what the desktop stores: SHA-256(join_secret).
func SecretHash(secret []byte) []byte {
	s := sha256.Sum256(secret)
	return s[:]
}

// PermitSecret is what AUTH_JOIN shows the relay: KDF(join_secret, "orch/relay/v1/join-permit" || 0x00).
func PermitSecret(secret []byte) []byte { return envelope.KDF(secret, PermitSecretLabel) }

// ProofKey is KDF(join_secret, "orch/join/v1/proof-key" || 0x00).
func ProofKey(secret []byte) []byte { return envelope.KDF(secret, ProofKeyLabel) }

// ProofMessage is PROOF_LABEL || agent_sign || agent_box || desktop_sign || desktop_box || relay_pin || expires_at.
func ProofMessage(agentSign, agentBox []byte, t *Token) []byte {
	m := append([]byte{}, ProofLabel...)
	for _, k := range [][]byte{agentSign, agentBox, t.DesktopSign, t.DesktopBox, t.RelayPin} {
		m = append(m, k...)
	}
	return binary.BigEndian.AppendUint64(m, t.ExpiresAt)
}

// Proof binds the join secret to these agent keys, this desktop and this relay.
func Proof(agentSign, agentBox []byte, t *Token) []byte {
	key := ProofKey(t.Secret)
	defer envelope.Zero(key)
	return envelope.KDF(key, ProofMessage(agentSign, agentBox, t))
}

// Request is the join_request body; field order is JOIN.md's.
type Request struct {
	Kind         string `json:"kind"`
	SignKey      string `json:"signKey"`
	BoxKey       string `json:"boxKey"`
	Hostname     string `json:"hostname"`
	AgentVersion string `json:"agentVersion"`
	JoinSecret   string `json:"joinSecret"`
	Proof        string `json:"proof"`
}

// NewRequest builds the request body; hostname and version are cut to their limits and stripped of control chars.
func NewRequest(agentSign, agentBox []byte, hostname, version string, t *Token) ([]byte, error) {
	r := Request{Kind: "join_request", SignKey: hex.EncodeToString(agentSign), BoxKey: hex.EncodeToString(agentBox),
		Hostname: printable(hostname, 253, "unknown"), AgentVersion: printable(version, 64, "unknown"),
		JoinSecret: hex.EncodeToString(t.Secret), Proof: hex.EncodeToString(Proof(agentSign, agentBox, t))}
	return marshal(r)
}

func printable(s string, max int, def string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return def
	}
	return b.String()
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Result is a decoded join_result.
type Result struct {
	Status    string // ok or refused
	Name      string
	Tier      string
	Tenants   []string
	Allowlist *string
	Reason    string
	// Approvers are the approver keys of the agent's tenants that have any (APPROVAL.md), with their versions.
	Approvers map[string]ApproverList
}

// ApproverList is one tenant's approver keys in a join_result.
type ApproverList struct {
	Version int64    `json:"version"`
	Keys    []string `json:"keys"`
}

// DecodeResult validates a join_result body exactly (JOIN.md); an error naming the problem otherwise.
func DecodeResult(b []byte) (*Result, error) {
	bad := func(why string) error {
		return &Error{Code: "bad_result", Msg: "the desktop's join_result is not valid: " + why}
	}
	if !utf8.Valid(b) {
		return nil, bad("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, bad("not a JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, bad("trailing data")
	}
	for _, v := range raw {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, bad("a field is null")
		}
	}
	str := func(k string) (string, bool) {
		v, ok := raw[k]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	}
	only := func(keys ...string) error {
		if len(raw) != len(keys) {
			return bad("unknown or missing fields")
		}
		for _, k := range keys {
			if _, ok := raw[k]; !ok {
				return bad("missing field " + k)
			}
		}
		return nil
	}
	if k, _ := str("kind"); k != "join_result" {
		return nil, bad("kind must be join_result")
	}
	status, _ := str("status")
	switch status {
	case "refused":
		if err := only("kind", "status", "reason"); err != nil {
			return nil, err
		}
		reason, ok := str("reason")
		if !ok || reason == "" || jsonwire.UTF16Len(reason) > maxRefusalReasonChar {
			return nil, bad("reason must be 1..512 chars")
		}
		return &Result{Status: status, Reason: reason}, nil
	case "ok":
		keys := []string{"kind", "status", "name", "tier", "tenants"}
		if _, has := raw["allowlist"]; has {
			keys = append(keys, "allowlist")
		}
		if _, has := raw["approvers"]; has {
			keys = append(keys, "approvers")
		}
		if err := only(keys...); err != nil {
			return nil, err
		}
		r := &Result{Status: status}
		var ok bool
		if r.Name, ok = str("name"); !ok || len(r.Name) > 50 || !nameRule.MatchString(r.Name) {
			return nil, bad("name must be 1..50 of [A-Za-z0-9_-]")
		}
		if r.Tier, ok = str("tier"); !ok || (r.Tier != "read-only" && r.Tier != "standard" && r.Tier != "infrastructure") {
			return nil, bad("tier must be read-only, standard or infrastructure")
		}
		if json.Unmarshal(raw["tenants"], &r.Tenants) != nil || len(r.Tenants) < 1 || len(r.Tenants) > MaxTenants {
			return nil, bad("tenants must be 1..64 names")
		}
		for _, t := range r.Tenants {
			if len(t) > 100 || !nameRule.MatchString(t) {
				return nil, bad("tenants must be names of [A-Za-z0-9_-]")
			}
		}
		if _, has := raw["allowlist"]; has {
			a, ok := str("allowlist")
			if !ok || len(a) > MaxAllowlistBytes {
				return nil, bad("allowlist must be text of at most 65536 bytes")
			}
			r.Allowlist = &a
		}
		if v, has := raw["approvers"]; has {
			lists, err := decodeApprovers(v, r.Tenants)
			if err != nil {
				return nil, bad(err.Error())
			}
			r.Approvers = lists
		}
		return r, nil
	}
	return nil, bad("status must be ok or refused")
}

// decodeApprovers validates a join_result's approvers: for tenants of the join only, each a version (integer
// 1..2^53-1) and at most 256 distinct approver keys (64 lowercase hex).
func decodeApprovers(v json.RawMessage, tenants []string) (map[string]ApproverList, error) {
	t := bytes.TrimSpace(v)
	var raw map[string]json.RawMessage
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &raw) != nil || raw == nil {
		return nil, fmt.Errorf("approvers must be an object of tenant names")
	}
	out := map[string]ApproverList{}
	for tenant, lv := range raw {
		served := false
		for _, x := range tenants {
			served = served || x == tenant
		}
		if !served {
			return nil, fmt.Errorf("approvers name a tenant the agent does not join")
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(lv, &fields) != nil || len(fields) != 2 || fields["version"] == nil || fields["keys"] == nil {
			return nil, fmt.Errorf("approvers of a tenant must be exactly { version, keys }")
		}
		var l ApproverList
		var f float64
		if json.Unmarshal(fields["version"], &f) != nil || f != float64(int64(f)) || f < 1 || f > 1<<53-1 {
			return nil, fmt.Errorf("approvers version must be an integer from 1")
		}
		l.Version = int64(f)
		kt := bytes.TrimSpace(fields["keys"])
		if len(kt) == 0 || kt[0] != '[' || json.Unmarshal(kt, &l.Keys) != nil {
			return nil, fmt.Errorf("approvers keys must be an array")
		}
		if l.Keys == nil {
			l.Keys = []string{}
		}
		if p := approval.KeysProblem(l.Keys); p != "" {
			return nil, fmt.Errorf("approvers: %s", p)
		}
		out[tenant] = l
	}
	return out, nil
}
