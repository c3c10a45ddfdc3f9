// Package approval is the agent's side of protocol/APPROVAL.md: the approval attestation a sealed command carries,
// the check a standard or infrastructure agent makes before it runs a command its own read-only check does not
// clear, and the approver keys it trusts per tenant (store.go). The desktop's side is protocol/approval.ts; both
// replay protocol/vectors/approval.json.
package approval

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"orch/agent/internal/jsonwire"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"orch/agent/internal/envelope"
)

// Limits (APPROVAL.md).
const (
	SignatureDomain  = "orch-approval-v1\n"
	MaxApprovals     = 16
	MaxReleased      = 256
	MaxCommentLength = 4096
	MaxIDLength      = 1000
	maxCommandID     = 512
	maxArgvEntries   = 256
	maxArgBytes      = 32 * 1024
	maxSafeInteger   = 1<<53 - 1
	// MaxKeys is the most approver keys one tenant can have on an agent.
	MaxKeys = 256
)

// Statement is what an approver signs.
type Statement struct {
	V             int64  `json:"v"`
	Type          string `json:"type"`
	Tenant        string `json:"tenant"`
	WorkflowID    string `json:"workflowId"`
	RunID         string `json:"runId"`
	Gate          string `json:"gate"`
	Decision      string `json:"decision"`
	ReleaseDigest string `json:"releaseDigest"`
	ApproverKey   string `json:"approverKey"`
	At            int64  `json:"at"`
	Comment       string `json:"comment"`
}

// Signed is one signed approval.
type Signed struct {
	Statement Statement `json:"statement"`
	Signature string    `json:"signature"`
}

// Entry is one command a gate releases; Argv is a template (APPROVAL.md).
type Entry struct {
	CommandID   string   `json:"commandId"`
	Node        string   `json:"node"`
	Agent       string   `json:"agent"`
	Tier        string   `json:"tier"`
	Argv        []string `json:"argv"`
	Destructive bool     `json:"destructive"`
}

// Attestation is a command message's `approval` field.
type Attestation struct {
	Approvals []Signed `json:"approvals"`
	Released  []Entry  `json:"released"`
}

// Failure codes, in check order (APPROVAL.md "The check").
const (
	NoAttestation     = "no_attestation"
	Malformed         = "malformed"
	NotReleased       = "not_released"
	WrongAgent        = "wrong_agent"
	ArgvMismatch      = "argv_mismatch"
	UntrustedApprover = "untrusted_approver"
	BadSignature      = "bad_signature"
	NotApproved       = "not_approved"
	WrongTenant       = "wrong_tenant"
	WrongRun          = "wrong_run"
	DigestMismatch    = "digest_mismatch"
)

// Failure says which check failed; Detail never quotes argv.
type Failure struct {
	Code   string
	Detail string
}

func (f *Failure) Error() string { return f.Code + ": " + f.Detail }

var (
	hex64  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex128 = regexp.MustCompile(`^[0-9a-f]{128}$`)
	// TenantRule is a tenant name.
	TenantRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	secretRef  = regexp.MustCompile(`^secrets\.[A-Za-z0-9_-]+$`)
)

// Decode validates an attestation exactly (the fields, their types and limits); an error naming the problem.
func Decode(raw json.RawMessage) (*Attestation, error) {
	obj, err := object(raw, "approval", "approvals", "released")
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if !isArray(obj["approvals"]) || json.Unmarshal(obj["approvals"], &items) != nil || len(items) < 1 || len(items) > MaxApprovals {
		return nil, fmt.Errorf("approval.approvals must hold 1..%d signed approvals", MaxApprovals)
	}
	a := &Attestation{}
	for i, it := range items {
		s, err := decodeSigned(it)
		if err != nil {
			return nil, fmt.Errorf("approvals[%d]: %w", i, err)
		}
		a.Approvals = append(a.Approvals, *s)
	}
	items = nil
	if !isArray(obj["released"]) || json.Unmarshal(obj["released"], &items) != nil || len(items) < 1 || len(items) > MaxReleased {
		return nil, fmt.Errorf("approval.released must hold 1..%d commands", MaxReleased)
	}
	seen := map[string]bool{}
	for i, it := range items {
		e, err := decodeEntry(it)
		if err != nil {
			return nil, fmt.Errorf("released[%d]: %w", i, err)
		}
		if seen[e.CommandID] {
			return nil, fmt.Errorf("released[%d].commandId appears twice", i)
		}
		seen[e.CommandID] = true
		a.Released = append(a.Released, *e)
	}
	return a, nil
}

func isArray(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	return len(t) > 0 && t[0] == '['
}

// object decodes a JSON object with exactly the given keys.
func object(raw json.RawMessage, what string, keys ...string) (map[string]json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	var m map[string]json.RawMessage
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &m) != nil || m == nil {
		return nil, fmt.Errorf("%s must be an object", what)
	}
	if len(m) != len(keys) {
		return nil, fmt.Errorf("%s must have exactly the fields %s", what, strings.Join(keys, ", "))
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%s must have exactly the fields %s", what, strings.Join(keys, ", "))
		}
	}
	return m, nil
}

func printable(s string, max int) bool {
	if jsonwire.UTF16Len(s) < 1 || jsonwire.UTF16Len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// integer accepts a JSON number whose value is an integer in min..max (1.0 is 1, as in JSON.parse).
func integer(v json.RawMessage, min, max int64) (int64, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || !(t[0] == '-' || t[0] >= '0' && t[0] <= '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f) || f < float64(min) || f > float64(max) {
		return 0, false
	}
	return int64(f), true
}

func decodeSigned(raw json.RawMessage) (*Signed, error) {
	m, err := object(raw, "a signed approval", "statement", "signature")
	if err != nil {
		return nil, err
	}
	sig, ok := jsonwire.Str(m["signature"])
	if !ok || !hex128.MatchString(sig) {
		return nil, fmt.Errorf("signature must be 128 lowercase hex")
	}
	sm, err := object(m["statement"], "statement", "v", "type", "tenant", "workflowId", "runId", "gate", "decision", "releaseDigest", "approverKey", "at", "comment")
	if err != nil {
		return nil, err
	}
	s := Statement{}
	if v, ok := integer(sm["v"], 1, 1); !ok || v != 1 {
		return nil, fmt.Errorf("statement v must be 1")
	}
	s.V = 1
	if s.Type, ok = jsonwire.Str(sm["type"]); !ok || s.Type != "orch-approval" {
		return nil, fmt.Errorf("statement type must be orch-approval")
	}
	if s.Tenant, ok = jsonwire.Str(sm["tenant"]); !ok || !TenantRule.MatchString(s.Tenant) {
		return nil, fmt.Errorf("statement tenant must be 1..100 of [A-Za-z0-9_-]")
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"workflowId", &s.WorkflowID}, {"runId", &s.RunID}, {"gate", &s.Gate}} {
		if *f.dst, ok = jsonwire.Str(sm[f.name]); !ok || !printable(*f.dst, MaxIDLength) {
			return nil, fmt.Errorf("statement %s must be 1..%d printable chars", f.name, MaxIDLength)
		}
	}
	if s.Decision, ok = jsonwire.Str(sm["decision"]); !ok || (s.Decision != "approve" && s.Decision != "reject") {
		return nil, fmt.Errorf("statement decision must be approve or reject")
	}
	if s.ReleaseDigest, ok = jsonwire.Str(sm["releaseDigest"]); !ok || !hex64.MatchString(s.ReleaseDigest) {
		return nil, fmt.Errorf("statement releaseDigest must be 64 lowercase hex")
	}
	if s.ApproverKey, ok = jsonwire.Str(sm["approverKey"]); !ok || !hex64.MatchString(s.ApproverKey) {
		return nil, fmt.Errorf("statement approverKey must be 64 lowercase hex")
	}
	if s.At, ok = integer(sm["at"], 0, maxSafeInteger); !ok {
		return nil, fmt.Errorf("statement at must be an integer of ms since the epoch")
	}
	if s.Comment, ok = jsonwire.Str(sm["comment"]); !ok || jsonwire.UTF16Len(s.Comment) > MaxCommentLength {
		return nil, fmt.Errorf("statement comment must be a string of at most %d chars", MaxCommentLength)
	}
	return &Signed{Statement: s, Signature: sig}, nil
}

func decodeEntry(raw json.RawMessage) (*Entry, error) {
	m, err := object(raw, "a released command", "commandId", "node", "agent", "tier", "argv", "destructive")
	if err != nil {
		return nil, err
	}
	e := &Entry{}
	var ok bool
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"commandId", &e.CommandID, maxCommandID}, {"node", &e.Node, MaxIDLength}, {"agent", &e.Agent, MaxIDLength}, {"tier", &e.Tier, MaxIDLength}} {
		if *f.dst, ok = jsonwire.Str(m[f.name]); !ok || !printable(*f.dst, f.max) {
			return nil, fmt.Errorf("%s must be a short printable string", f.name)
		}
	}
	var items []json.RawMessage
	if !isArray(m["argv"]) || json.Unmarshal(m["argv"], &items) != nil || len(items) < 1 || len(items) > maxArgvEntries {
		return nil, fmt.Errorf("argv must be 1..%d strings", maxArgvEntries)
	}
	for _, it := range items {
		s, ok := jsonwire.Str(it)
		if !ok || strings.ContainsRune(s, 0) || jsonwire.UTF16Len(s) > maxArgBytes {
			return nil, fmt.Errorf("argv holds a value that is not an argument")
		}
		e.Argv = append(e.Argv, s)
	}
	t := bytes.TrimSpace(m["destructive"])
	if !bytes.Equal(t, []byte("true")) && !bytes.Equal(t, []byte("false")) {
		return nil, fmt.Errorf("destructive must be a boolean")
	}
	e.Destructive = bytes.Equal(t, []byte("true"))
	return e, nil
}

// ReleaseDigest is the lowercase hex SHA-256 of canonicalJson({ v: 1, commands: entries sorted by commandId }).
func ReleaseDigest(entries []Entry) (string, error) {
	sorted := append([]Entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return lessUTF16(sorted[i].CommandID, sorted[j].CommandID) })
	cmds := make([]any, len(sorted))
	for i, e := range sorted {
		cmds[i] = map[string]any{"commandId": e.CommandID, "node": e.Node, "agent": e.Agent, "tier": e.Tier, "argv": e.Argv, "destructive": e.Destructive}
	}
	b, err := canonical(map[string]any{"v": int64(1), "commands": cmds})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Message is the signed bytes: "orch-approval-v1\n" || canonicalJson(statement).
func Message(s Statement) ([]byte, error) {
	b, err := canonical(map[string]any{"v": s.V, "type": s.Type, "tenant": s.Tenant, "workflowId": s.WorkflowID, "runId": s.RunID,
		"gate": s.Gate, "decision": s.Decision, "releaseDigest": s.ReleaseDigest, "approverKey": s.ApproverKey, "at": s.At, "comment": s.Comment})
	if err != nil {
		return nil, err
	}
	return append([]byte(SignatureDomain), b...), nil
}

// VerifySignature checks the signature under the statement's approverKey (strict Ed25519, as envelopes).
func VerifySignature(a Signed) bool {
	key, err1 := hex.DecodeString(a.Statement.ApproverKey)
	sig, err2 := hex.DecodeString(a.Signature)
	msg, err3 := Message(a.Statement)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	return envelope.Verify(key, msg, sig)
}

type segment struct {
	literal string
	wild    bool
}

// parseTemplate splits an argv template element; ok is false for a `${...}` other than `${secrets.NAME}`.
func parseTemplate(t string) ([]segment, bool) {
	var out []segment
	var text strings.Builder
	for i := 0; i < len(t); {
		switch {
		case strings.HasPrefix(t[i:], "$${"):
			text.WriteString("${")
			i += 3
		case strings.HasPrefix(t[i:], "${"):
			end := strings.IndexByte(t[i+2:], '}')
			if end < 0 || !secretRef.MatchString(t[i+2:i+2+end]) {
				return nil, false
			}
			if text.Len() > 0 {
				out = append(out, segment{literal: text.String()})
				text.Reset()
			}
			out = append(out, segment{wild: true})
			i += 2 + end + 1
		default:
			text.WriteByte(t[i])
			i++
		}
	}
	if text.Len() > 0 {
		out = append(out, segment{literal: text.String()})
	}
	return out, true
}

// MatchTemplate says whether arg is what template element t renders to for some values of the secrets it names
// (each `${secrets.NAME}` matches any string, possibly empty; `$${` is a literal `${`).
func MatchTemplate(t, arg string) bool {
	segs, ok := parseTemplate(t)
	if !ok || !utf8.ValidString(arg) {
		return false
	}
	pieces := []string{""}
	for _, s := range segs {
		if s.wild {
			pieces = append(pieces, "")
		} else {
			pieces[len(pieces)-1] += s.literal
		}
	}
	if len(pieces) == 1 {
		return arg == pieces[0]
	}
	first, last := pieces[0], pieces[len(pieces)-1]
	if len(arg) < len(first)+len(last) || !strings.HasPrefix(arg, first) || !strings.HasSuffix(arg, last) {
		return false
	}
	pos, end := len(first), len(arg)-len(last)
	for _, p := range pieces[1 : len(pieces)-1] {
		at := strings.Index(arg[pos:], p)
		if at < 0 || pos+at+len(p) > end {
			return false
		}
		pos += at + len(p)
	}
	return true
}

// MatchArgv is MatchTemplate element by element, with equal lengths.
func MatchArgv(template, argv []string) bool {
	if len(template) != len(argv) {
		return false
	}
	for i := range template {
		if !MatchTemplate(template[i], argv[i]) {
			return false
		}
	}
	return true
}

// Subject is the command as the agent received it.
type Subject struct {
	CommandID string
	Tenant    string // "" when the command names none: then no key is trusted
	Argv      []string
	Agent     string // the agent's own name when it knows it (from its join); "" skips that check
}

// Check is the agent's rule (APPROVAL.md "The check"): nil when one signed approval holds, else the first failing
// check. trusted are the approver keys (64 lowercase hex) the agent holds for the command's tenant.
func Check(cmd Subject, a *Attestation, trusted []string) *Failure {
	if a == nil {
		return &Failure{NoAttestation, "the command carries no approval attestation"}
	}
	var entry *Entry
	for i := range a.Released {
		if a.Released[i].CommandID == cmd.CommandID {
			entry = &a.Released[i]
			break
		}
	}
	if entry == nil {
		return &Failure{NotReleased, "no released command has this command id"}
	}
	if cmd.Agent != "" && entry.Agent != cmd.Agent {
		return &Failure{WrongAgent, "the gate released this command for another agent"}
	}
	if !MatchArgv(entry.Argv, cmd.Argv) {
		return &Failure{ArgvMismatch, "the argv is not the one the gate released"}
	}
	digest, err := ReleaseDigest(a.Released)
	if err != nil {
		return &Failure{Malformed, "the released commands cannot be encoded"}
	}
	trust := map[string]bool{}
	for _, k := range trusted {
		trust[k] = true
	}
	var fails []string
	firstCode := ""
	for i, ap := range a.Approvals {
		s := ap.Statement
		code, why := "", ""
		switch {
		case !trust[s.ApproverKey]:
			code, why = UntrustedApprover, fmt.Sprintf("key %s… is not an approver this agent trusts for the tenant", s.ApproverKey[:16])
		case !VerifySignature(ap):
			code, why = BadSignature, "the signature does not verify"
		case s.Decision != "approve":
			code, why = NotApproved, "the decision is reject"
		case cmd.Tenant == "" || s.Tenant != cmd.Tenant:
			code, why = WrongTenant, "signed for another tenant"
		case !strings.HasPrefix(cmd.CommandID, s.WorkflowID+"/"+s.RunID+"/"):
			code, why = WrongRun, "signed for another workflow run"
		case s.ReleaseDigest != digest:
			code, why = DigestMismatch, "the released commands are not the ones signed"
		default:
			return nil
		}
		if firstCode == "" {
			firstCode = code
		}
		fails = append(fails, fmt.Sprintf("approval %d: %s", i, why))
	}
	return &Failure{firstCode, strings.Join(fails, "; ")}
}

// KeysProblem says why keys is not a list of approver keys, or "".
func KeysProblem(keys []string) string {
	if len(keys) > MaxKeys {
		return fmt.Sprintf("at most %d approver keys", MaxKeys)
	}
	seen := map[string]bool{}
	for i, k := range keys {
		if !hex64.MatchString(k) {
			return fmt.Sprintf("keys[%d] must be 64 lowercase hex", i)
		}
		if seen[k] {
			return fmt.Sprintf("keys[%d] appears twice", i)
		}
		seen[k] = true
	}
	return ""
}
