// Package messages holds what travels inside sealed envelope bodies between desktop and agent: command, result,
// ping and pong (protocol/AGENT-MESSAGES.md). Decoding validates everything and refuses anything that is not
// exactly a valid message.
package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"orch/agent/internal/jsonwire"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"orch/agent/internal/approval"
	"orch/agent/internal/envelope"
)

// Limits (AGENT-MESSAGES.md, "Limits").
const (
	MaxMessageBytes       = envelope.MaxEnvelopeBytes - envelope.Overhead - envelope.HeaderFixedBytes - 32
	MaxCommandIDLength    = 512
	MaxArgvEntries        = 256
	MaxArgBytes           = 32 * 1024
	MaxArgvBytes          = 256 * 1024
	MaxPathLength         = 4096
	MaxTimeoutSeconds     = 24 * 60 * 60
	DefaultMaxOutputBytes = 1024 * 1024
	MaxReasonLength       = 2048
	MaxNonceLength        = 128
	maxSafeInteger        = 1<<53 - 1
)

// Command asks the agent to run argv at most once under CommandID.
type Command struct {
	CommandID      string   `json:"commandId"`
	Argv           []string `json:"argv"`
	TimeoutSeconds int64    `json:"timeoutSeconds"`
	Cwd            *string  `json:"cwd,omitempty"`
	MaxOutputBytes *int64   `json:"maxOutputBytes,omitempty"`
	// Tenant is the tenant whose run sent the command (AGENT-MESSAGES.md); nil from desktops before tenants.
	Tenant *string `json:"tenant,omitempty"`
	// Approval is the gate's signed approvals and released list (protocol/APPROVAL.md); nil when none is carried.
	Approval *approval.Attestation `json:"approval,omitempty"`
}

// Approvers replaces the approver keys an agent trusts for one tenant (APPROVAL.md), if Version is newer.
type Approvers struct {
	Tenant   string   `json:"tenant"`
	Version  int64    `json:"version"`
	Keys     []string `json:"keys"`
	SignedAt int64    `json:"signedAt"`
}

// ApproversResult answers an approvers message.
type ApproversResult struct {
	Kind    string `json:"kind"`
	Tenant  string `json:"tenant"`
	Version int64  `json:"version"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// Result statuses.
const (
	StatusFinished      = "finished"
	StatusRefused       = "refused"
	StatusIndeterminate = "indeterminate"
)

// Result answers a command. Field order is the order of the TypeScript encoder.
type Result struct {
	Kind      string  `json:"kind"`
	CommandID string  `json:"commandId"`
	Status    string  `json:"status"`
	ExitCode  *int64  `json:"exitCode,omitempty"`
	Signal    string  `json:"signal,omitempty"`
	TimedOut  bool    `json:"timedOut,omitempty"`
	Stdout    *string `json:"stdout,omitempty"`
	Stderr    *string `json:"stderr,omitempty"`
	Truncated *bool   `json:"truncated,omitempty"`
	Duration  *int64  `json:"durationMs,omitempty"`
	Reason    string  `json:"reason,omitempty"`
}

// Ping asks for a pong with the same nonce.
type Ping struct {
	Nonce string `json:"nonce"`
}

// Pong answers a ping. The counts are the agent's own, carried in its authenticated reply, so `orch agent list`
// can show what each agent ran and refused.
type Pong struct {
	Kind            string  `json:"kind"`
	Nonce           string  `json:"nonce"`
	AgentVersion    string  `json:"agentVersion"`
	Tier            string  `json:"tier"`
	CommandsRun     *uint64 `json:"commandsRun,omitempty"`
	CommandsRefused *uint64 `json:"commandsRefused,omitempty"`
}

// Message is one decoded message: exactly one of the pointers is set, matching Kind.
type Message struct {
	Kind    string
	Command *Command
	Result  *Result
	Ping    *Ping
	Pong    *Pong
	// Approvers is set for kind "approvers" (desktop to agent).
	Approvers *Approvers
	// ApproversResult is set for kind "approvers_result" (agent to desktop).
	ApproversResult *ApproversResult
}

// Decode parses and validates a body; an error (naming the problem, never quoting argv) for anything else.
func Decode(b []byte) (*Message, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("message over %d bytes", MaxMessageBytes)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("trailing data after the object")
	}
	kind, ok := jsonwire.Str(raw["kind"])
	if !ok {
		return nil, fmt.Errorf("unknown kind")
	}
	switch kind {
	case "command":
		return decodeCommand(raw)
	case "result":
		return decodeResult(raw)
	case "ping":
		if err := onlyKeys(raw, "kind", "nonce"); err != nil {
			return nil, err
		}
		n, err := nonce(raw["nonce"])
		if err != nil {
			return nil, err
		}
		return &Message{Kind: kind, Ping: &Ping{Nonce: n}}, nil
	case "approvers":
		return decodeApprovers(raw)
	case "approvers_result":
		return decodeApproversResult(raw)
	case "pong":
		if err := onlyKeys(raw, "kind", "nonce", "agentVersion", "tier", "commandsRun", "commandsRefused"); err != nil {
			return nil, err
		}
		n, err := nonce(raw["nonce"])
		if err != nil {
			return nil, err
		}
		v, ok1 := jsonwire.Str(raw["agentVersion"])
		tier, ok2 := jsonwire.Str(raw["tier"])
		if !ok1 || jsonwire.UTF16Len(v) > 64 {
			return nil, fmt.Errorf("agentVersion must be a short string")
		}
		if !ok2 || jsonwire.UTF16Len(tier) > 32 {
			return nil, fmt.Errorf("tier must be a short string")
		}
		pong := &Pong{Kind: kind, Nonce: n, AgentVersion: v, Tier: tier}
		for key, dst := range map[string]**uint64{"commandsRun": &pong.CommandsRun, "commandsRefused": &pong.CommandsRefused} {
			rawCount, present := raw[key]
			if !present {
				continue
			}
			var count uint64
			if err := json.Unmarshal(rawCount, &count); err != nil || count > 1<<53-1 {
				return nil, fmt.Errorf("%s must be an integer from 0 to 2^53-1", key)
			}
			*dst = &count
		}
		return &Message{Kind: kind, Pong: pong}, nil
	}
	return nil, fmt.Errorf("unknown kind")
}

func decodeCommand(raw map[string]json.RawMessage) (*Message, error) {
	if err := onlyKeys(raw, "kind", "commandId", "argv", "timeoutSeconds", "cwd", "maxOutputBytes", "tenant", "approval"); err != nil {
		return nil, err
	}
	c := &Command{}
	var err error
	if c.CommandID, err = commandID(raw["commandId"]); err != nil {
		return nil, err
	}
	if c.Argv, err = argv(raw["argv"]); err != nil {
		return nil, err
	}
	if c.TimeoutSeconds, err = integer("timeoutSeconds", raw["timeoutSeconds"], 1, MaxTimeoutSeconds); err != nil {
		return nil, err
	}
	if v, present := raw["cwd"]; present {
		s, ok := jsonwire.Str(v)
		if !ok || jsonwire.UTF16Len(s) < 1 || jsonwire.UTF16Len(s) > MaxPathLength {
			return nil, fmt.Errorf("cwd must be 1..%d chars", MaxPathLength)
		}
		if strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("cwd must not contain NUL")
		}
		if !strings.HasPrefix(s, "/") {
			return nil, fmt.Errorf("cwd must be an absolute path")
		}
		c.Cwd = &s
	}
	if v, present := raw["maxOutputBytes"]; present {
		n, err := integer("maxOutputBytes", v, 0, MaxMessageBytes)
		if err != nil {
			return nil, err
		}
		c.MaxOutputBytes = &n
	}
	if v, present := raw["tenant"]; present {
		s, ok := jsonwire.Str(v)
		if !ok || !tenantRule.MatchString(s) {
			return nil, fmt.Errorf("tenant must be 1..100 of [A-Za-z0-9_-]")
		}
		c.Tenant = &s
	}
	if v, present := raw["approval"]; present {
		a, err := approval.Decode(v)
		if err != nil {
			return nil, err
		}
		c.Approval = a
	}
	return &Message{Kind: "command", Command: c}, nil
}

func decodeApprovers(raw map[string]json.RawMessage) (*Message, error) {
	if err := onlyKeys(raw, "kind", "tenant", "version", "keys", "signedAt"); err != nil {
		return nil, err
	}
	a := &Approvers{}
	var ok bool
	if a.Tenant, ok = jsonwire.Str(raw["tenant"]); !ok || !tenantRule.MatchString(a.Tenant) {
		return nil, fmt.Errorf("tenant must be 1..100 of [A-Za-z0-9_-]")
	}
	var err error
	if a.Version, err = integer("version", raw["version"], 0, maxSafeInteger); err != nil {
		return nil, err
	}
	if a.SignedAt, err = integer("signedAt", raw["signedAt"], 0, maxSafeInteger); err != nil {
		return nil, err
	}
	t := bytes.TrimSpace(raw["keys"])
	if len(t) == 0 || t[0] != '[' || json.Unmarshal(t, &a.Keys) != nil {
		return nil, fmt.Errorf("keys must be an array of approver keys")
	}
	if a.Keys == nil {
		a.Keys = []string{}
	}
	if p := approval.KeysProblem(a.Keys); p != "" {
		return nil, fmt.Errorf("%s", p)
	}
	return &Message{Kind: "approvers", Approvers: a}, nil
}

func decodeApproversResult(raw map[string]json.RawMessage) (*Message, error) {
	if err := onlyKeys(raw, "kind", "tenant", "version", "status", "reason"); err != nil {
		return nil, err
	}
	r := &ApproversResult{Kind: "approvers_result"}
	var ok bool
	var err error
	if r.Tenant, ok = jsonwire.Str(raw["tenant"]); !ok || !tenantRule.MatchString(r.Tenant) {
		return nil, fmt.Errorf("tenant must be 1..100 of [A-Za-z0-9_-]")
	}
	if r.Version, err = integer("version", raw["version"], 0, maxSafeInteger); err != nil {
		return nil, err
	}
	if r.Status, ok = jsonwire.Str(raw["status"]); !ok || (r.Status != "ok" && r.Status != "refused") {
		return nil, fmt.Errorf("status must be ok or refused")
	}
	if v, has := raw["reason"]; has {
		if r.Reason, ok = jsonwire.Str(v); !ok || jsonwire.UTF16Len(r.Reason) > MaxReasonLength {
			return nil, fmt.Errorf("reason must be a string of at most %d chars", MaxReasonLength)
		}
	}
	// Only the agent sends it: the handler ignores one that reaches it.
	return &Message{Kind: "approvers_result", ApproversResult: r}, nil
}

var tenantRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

var signalName = regexp.MustCompile(`^SIG[A-Z0-9]{1,12}$`)

func decodeResult(raw map[string]json.RawMessage) (*Message, error) {
	if err := onlyKeys(raw, "kind", "commandId", "status", "exitCode", "signal", "timedOut", "stdout", "stderr", "truncated", "durationMs", "reason"); err != nil {
		return nil, err
	}
	r := &Result{Kind: "result"}
	var err error
	if r.CommandID, err = commandID(raw["commandId"]); err != nil {
		return nil, err
	}
	st, _ := jsonwire.Str(raw["status"])
	if st != StatusFinished && st != StatusRefused && st != StatusIndeterminate {
		return nil, fmt.Errorf("status must be finished, refused or indeterminate")
	}
	r.Status = st
	if v, ok := raw["exitCode"]; ok {
		n, err := integer("exitCode", v, -(1 << 31), 1<<31-1)
		if err != nil {
			return nil, err
		}
		r.ExitCode = &n
	}
	if v, ok := raw["signal"]; ok {
		s, ok := jsonwire.Str(v)
		if !ok || !signalName.MatchString(s) {
			return nil, fmt.Errorf("signal must be a signal name")
		}
		r.Signal = s
	}
	if v, ok := raw["timedOut"]; ok {
		if err := json.Unmarshal(v, &r.TimedOut); err != nil || isNull(v) {
			return nil, fmt.Errorf("timedOut must be a boolean")
		}
	}
	for _, f := range []struct {
		name string
		dst  **string
	}{{"stdout", &r.Stdout}, {"stderr", &r.Stderr}} {
		if v, ok := raw[f.name]; ok {
			s, ok := jsonwire.Str(v)
			if !ok {
				return nil, fmt.Errorf("%s must be a string", f.name)
			}
			*f.dst = &s
		}
	}
	if v, ok := raw["truncated"]; ok {
		var b bool
		if err := json.Unmarshal(v, &b); err != nil || isNull(v) {
			return nil, fmt.Errorf("truncated must be a boolean")
		}
		r.Truncated = &b
	}
	if v, ok := raw["durationMs"]; ok {
		n, err := integer("durationMs", v, 0, maxSafeInteger)
		if err != nil {
			return nil, err
		}
		r.Duration = &n
	}
	_, hasReason := raw["reason"]
	if hasReason {
		s, ok := jsonwire.Str(raw["reason"])
		if !ok || jsonwire.UTF16Len(s) > MaxReasonLength {
			return nil, fmt.Errorf("reason must be a string of at most %d chars", MaxReasonLength)
		}
		r.Reason = s
	}
	if st == StatusFinished && r.ExitCode == nil {
		return nil, fmt.Errorf("a finished result needs exitCode")
	}
	if st != StatusFinished && !hasReason {
		return nil, fmt.Errorf("a %s result needs a reason", st)
	}
	return &Message{Kind: "result", Result: r}, nil
}

func isNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

func onlyKeys(raw map[string]json.RawMessage, allowed ...string) error {
	for k := range raw {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("unknown field")
		}
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func commandID(v json.RawMessage) (string, error) {
	s, ok := jsonwire.Str(v)
	if !ok || jsonwire.UTF16Len(s) < 1 || jsonwire.UTF16Len(s) > MaxCommandIDLength {
		return "", fmt.Errorf("commandId must be 1..%d chars", MaxCommandIDLength)
	}
	if hasControl(s) {
		return "", fmt.Errorf("commandId must not contain control characters")
	}
	return s, nil
}

func nonce(v json.RawMessage) (string, error) {
	s, ok := jsonwire.Str(v)
	if !ok || jsonwire.UTF16Len(s) < 1 || jsonwire.UTF16Len(s) > MaxNonceLength || hasControl(s) {
		return "", fmt.Errorf("nonce must be 1..%d printable chars", MaxNonceLength)
	}
	return s, nil
}

// integer accepts a JSON number whose value is an integer in min..max (1.0 and 1e3 are integers, as in JSON.parse).
func integer(name string, v json.RawMessage, min, max int64) (int64, error) {
	bad := fmt.Errorf("%s must be an integer in %d..%d", name, min, max)
	t := bytes.TrimSpace(v)
	if len(t) == 0 || !(t[0] == '-' || t[0] >= '0' && t[0] <= '9') {
		return 0, bad
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f) || f < float64(min) || f > float64(max) {
		return 0, bad
	}
	return int64(f), nil
}

func argv(v json.RawMessage) ([]string, error) {
	t := bytes.TrimSpace(v)
	bad := fmt.Errorf("argv must be an array of 1..%d strings", MaxArgvEntries)
	if len(t) == 0 || t[0] != '[' {
		return nil, bad
	}
	var items []json.RawMessage
	if json.Unmarshal(t, &items) != nil || len(items) < 1 || len(items) > MaxArgvEntries {
		return nil, bad
	}
	out := make([]string, len(items))
	total := 0
	for i, it := range items {
		s, ok := jsonwire.Str(it)
		if !ok {
			return nil, fmt.Errorf("argv[%d] must be a string", i)
		}
		if strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("argv[%d] contains NUL", i)
		}
		if len(s) > MaxArgBytes {
			return nil, fmt.Errorf("argv[%d] is longer than %d bytes", i, MaxArgBytes)
		}
		total += len(s)
		out[i] = s
	}
	if out[0] == "" {
		return nil, fmt.Errorf("argv[0] must not be empty")
	}
	if total > MaxArgvBytes {
		return nil, fmt.Errorf("argv is longer than %d bytes in total", MaxArgvBytes)
	}
	return out, nil
}

// Marshal encodes like JSON.stringify: no HTML escaping, no trailing newline.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(out) > MaxMessageBytes {
		return nil, fmt.Errorf("message is %d bytes, the limit is %d", len(out), MaxMessageBytes)
	}
	return out, nil
}

// truncateUTF8 keeps at most n bytes of s without splitting a character.
func truncateUTF8(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Fit shrinks a result's output until its encoding fits in maxBytes, marking it truncated (JSON escaping can grow
// binary output up to 6x, so the executor's per-stream cap alone is not enough).
func Fit(r Result, maxBytes int) Result {
	cur := r
	for i := 0; i < 64; i++ {
		b, err := Marshal(cur)
		if err == nil && len(b) <= maxBytes {
			return cur
		}
		size := len(b)
		if err != nil {
			size = MaxMessageBytes * 2
		}
		ratio := math.Max(0, float64(maxBytes-1024)/float64(size))
		out, errs := "", ""
		if cur.Stdout != nil {
			out = truncateUTF8(*cur.Stdout, int(float64(len(*cur.Stdout))*ratio*0.95))
		}
		if cur.Stderr != nil {
			errs = truncateUTF8(*cur.Stderr, int(float64(len(*cur.Stderr))*ratio*0.95))
		}
		t := true
		cur.Stdout, cur.Stderr, cur.Truncated = &out, &errs, &t
	}
	empty, t := "", true
	cur.Stdout, cur.Stderr, cur.Truncated = &empty, &empty, &t
	return cur
}
