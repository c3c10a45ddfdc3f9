// Package handler is the agent's message handler, independent of any transport: sealed bytes in, a sealed reply
// (or nothing) out. The relay client, the stdio transport and the tests all drive Handle.
//
// For every envelope, in order:
//  1. envelope.Open with the PINNED key of the desktop the header names (an agent may trust several desktops: the
//     workers of one cluster), on a copy of that desktop's replay window. A rejection is counted and logged
//     with its reason, and gets no reply (answering an unauthenticated sender would only help it).
//  2. The window that accepted the counter is persisted (fsync) BEFORE the body is acted on, so after a crash the
//     same envelope is a replay.
//  3. The body must decode as a message whose kind equals the header type.
//  4. ping -> pong; command -> ledger claim -> policy -> started -> run -> finished -> result.
//
// Every reply takes the next outgoing counter for the desktop it answers, persisted before sealing, and is sealed to
// that desktop. Commands share one ledger across desktops: a command id retried by another worker of the cluster (its
// first worker died) is answered from the ledger, never run twice.
package handler

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"orch/agent/internal/approval/trust"
	"orch/agent/internal/envelope"
	"orch/agent/internal/executor"
	"orch/agent/internal/identity"
	"orch/agent/internal/ledger"
	"orch/agent/internal/messages"
	"orch/agent/internal/policy"
	"orch/agent/internal/replay"
)

// Log receives one structured event (metadata only: never argv or output).
type Log func(event map[string]any)

// Options are the handler's dependencies.
type Options struct {
	Identity    *identity.Identity
	DesktopSign []byte
	DesktopBox  []byte
	Policy      policy.Policy
	Ledger      *ledger.Ledger
	Home        string // HOME for commands (the state directory)
	Version     string
	Log         Log
	Now         func() time.Time
	KillGrace   time.Duration
	// OnCounters is called after each envelope (for the status snapshot); may be nil.
	OnCounters func()
	// Tenants this agent serves (agent.json); empty serves every tenant (an agent enrolled before tenants).
	Tenants []string
	// MoreDesktops are trusted besides DesktopSign/DesktopBox (agent.json "desktops": more workers of one cluster).
	MoreDesktops []Desktop
	// Approvers are the approver keys trusted per tenant (protocol/APPROVAL.md); nil trusts none.
	Approvers *trust.Store
	// Name is the agent's name on its desktop (agent.json, from its join), "" when unknown: an approval must release
	// the command for this agent.
	Name string
}

// Desktop is a trusted desktop's (or worker's) pair of public keys.
type Desktop struct {
	Sign []byte
	Box  []byte
}

// trustedDesktop is one desktop with its own replay window and outgoing counter (ledger peer = its sign key hex).
type trustedDesktop struct {
	sign, box []byte
	peer      string
	window    *replay.Window
}

// Handler handles envelopes from the agent's trusted desktops.
type Handler struct {
	o Options
	// peer is the ledger's command namespace: the first desktop's key, shared by every trusted desktop.
	peer     string
	openMu   sync.Mutex
	desktops []*trustedDesktop

	mu       sync.Mutex
	inFlight map[string]*flight
	rejects  map[envelope.Reason]int
	running  sync.WaitGroup
}

type flight struct {
	done   chan struct{}
	result messages.Result
}

// New loads the replay window from the ledger.
func New(o Options) (*Handler, error) {
	if o.Log == nil {
		o.Log = func(map[string]any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{o: o, peer: fmt.Sprintf("%x", o.DesktopSign), inFlight: map[string]*flight{}, rejects: map[envelope.Reason]int{}}
	for _, d := range append([]Desktop{{Sign: o.DesktopSign, Box: o.DesktopBox}}, o.MoreDesktops...) {
		peer := fmt.Sprintf("%x", d.Sign)
		if h.desktop(d.Sign) != nil {
			continue
		}
		w, err := o.Ledger.LoadWindow(peer)
		if err != nil {
			return nil, fmt.Errorf("ledger: replay window for desktop %s is damaged: %w", peer[:16], err)
		}
		h.desktops = append(h.desktops, &trustedDesktop{sign: d.Sign, box: d.Box, peer: peer, window: w})
	}
	return h, nil
}

// desktop is the trusted desktop with this signing key, or nil.
func (h *Handler) desktop(sign []byte) *trustedDesktop {
	for _, d := range h.desktops {
		if string(d.sign) == string(sign) {
			return d
		}
	}
	return nil
}

// Running is the number of commands running now.
func (h *Handler) Running() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.inFlight)
}

// Drain waits for every running command to finish.
func (h *Handler) Drain() { h.running.Wait() }

var rejectHints = map[envelope.Reason]string{
	envelope.Oversize:        "a buggy or hostile peer sent more than 1 MiB; nothing was parsed",
	envelope.Malformed:       "not a v1 envelope: a buggy or hostile peer or relay",
	envelope.BadVersion:      "the desktop runs an incompatible version: upgrade one side",
	envelope.WrongRecipient:  "addressed to another agent: relay misrouting or a replay at the wrong agent",
	envelope.UnknownSender:   "not from the enrolled desktop; if the desktop key changed, run orch-agent enroll again",
	envelope.BadSignature:    "tampered in transit",
	envelope.LowOrderKey:     "signed but hostile: the desktop signing key may be compromised",
	envelope.DecryptFailed:   "signed but undecryptable: check the pinned keys (re-enroll)",
	envelope.Stale:           "timestamp more than 5 minutes off: check both clocks (NTP)",
	envelope.ReplayReason:    "already accepted: a replay by the relay or network; harmless",
	envelope.TooOldForWindow: "too far behind the newest counter: heavy reordering or a late replay",
}

func (h *Handler) nowMs() uint64 { return uint64(h.o.Now().UnixMilli()) }

// Handle handles one wire envelope and returns the sealed reply, or nil when there is none. Never panics on
// hostile input; an error means the agent could not persist or seal (the desktop retries). It is Accept then Act.
func (h *Handler) Handle(wire []byte) ([]byte, error) {
	a, err := h.Accept(wire)
	if a == nil || err != nil {
		return nil, err
	}
	return h.Act(a)
}

// Accepted is a message Accept let through, for Act.
type Accepted struct {
	Msg *messages.Message
	// counter is the outgoing counter already reserved for the reply (pings: numbered in the commit that persisted
	// the window, one fsync'd commit instead of two), or 0.
	counter uint64
	// from is the desktop that sent it, which the reply is sealed to.
	from *trustedDesktop
}

// Accept opens one wire envelope and persists the replay window that accepted it (steps 1-3 above). It returns the
// message to Act on, or nil when the envelope was rejected (counted and logged) or its body is not a message.
// Transports call it in arrival order, one envelope at a time, and only then hand the message to Act, which may
// run concurrently: so an unauthenticated flood costs no goroutine, and a message answered after a batch proves
// that each envelope of the batch was opened.
func (h *Handler) Accept(wire []byte) (*Accepted, error) {
	if h.o.OnCounters != nil {
		defer h.o.OnCounters()
	}
	h.openMu.Lock()
	// The (unauthenticated) header only chooses which pinned key and window Open checks against; an unknown sender
	// is checked against the first desktop, so Open rejects it as unknown_sender.
	// The envelope is parsed once: Parse's reason is Open's first answer, and OpenParsed runs the rest on it.
	d := h.desktops[0]
	p, reason := envelope.Parse(wire)
	var opened *envelope.Opened
	var trial *replay.Window
	if reason == "" {
		if k := h.desktop(p.Header.From[:]); k != nil {
			d = k
		}
		trial = d.window.Clone()
		opened, reason = envelope.OpenParsed(p, envelope.OpenInput{
			RecipientSignPub: h.o.Identity.SignPub, RecipientBoxSec: h.o.Identity.BoxSec, RecipientBoxPub: h.o.Identity.BoxPub,
			PinnedSenderSign: d.sign, NowMs: h.nowMs(), Window: trial,
		})
	}
	if reason != "" {
		h.openMu.Unlock()
		_ = h.o.Ledger.Bump("reject." + string(reason))
		h.mu.Lock()
		h.rejects[reason]++
		count := h.rejects[reason]
		h.mu.Unlock()
		h.o.Log(map[string]any{"level": "warn", "event": "envelope_rejected", "reason": reason, "count": count, "hint": rejectHints[reason]})
		return nil, nil
	}
	// Decoded before the window is persisted, only to know whether the reply can be numbered in the same commit.
	m, derr := messages.Decode(opened.Body)
	valid := derr == nil && m.Kind == opened.Header.Type
	// Persist first: if this fails (disk full), nothing below runs and the envelope can be sent again.
	var counter uint64
	var err error
	if valid && m.Kind == "ping" {
		counter, err = h.o.Ledger.SaveWindowAndNextCounter(d.peer, trial, "accepted", "ping")
	} else {
		err = h.o.Ledger.SaveWindow(d.peer, trial, "accepted")
	}
	if err != nil {
		h.openMu.Unlock()
		return nil, err
	}
	d.window = trial
	h.openMu.Unlock()

	if !valid {
		_ = h.o.Ledger.Bump("bad_message")
		h.o.Log(map[string]any{"level": "warn", "event": "bad_message", "type": opened.Header.Type, "msgId": fmt.Sprintf("%x", opened.Header.MsgID)})
		return nil, nil
	}
	return &Accepted{Msg: m, counter: counter, from: d}, nil
}

// Act answers a message Accept returned (step 4): the sealed reply, or nil when there is none.
func (h *Handler) Act(a *Accepted) ([]byte, error) {
	m := a.Msg
	if h.o.OnCounters != nil {
		defer h.o.OnCounters()
	}
	var reply any
	kind := ""
	switch m.Kind {
	case "ping":
		// counted, and its reply numbered, in the commit that persisted the window (Accept)
		counters := h.o.Ledger.Counters()
		run, refused := counters["commands.run"], counters["commands.refused"]
		reply, kind = messages.Pong{Kind: "pong", Nonce: m.Ping.Nonce, AgentVersion: h.o.Version, Tier: string(h.o.Policy.EffectiveTier()), CommandsRun: &run, CommandsRefused: &refused}, "pong"
	case "command":
		// Which trusted desktop (worker) sent it: with several workers, the one whose activity runs it.
		h.o.Log(map[string]any{"level": "info", "event": "command_received", "commandId": m.Command.CommandID, "from": a.from.peer[:16]})
		reply, kind = h.Command(m.Command), "result"
	case "approvers":
		reply, kind = h.approvers(m.Approvers), "approvers_result"
	default:
		// result and pong travel the other way; a desktop never sends them to an agent.
		_ = h.o.Ledger.Bump("bad_message")
		h.o.Log(map[string]any{"level": "warn", "event": "unexpected_message", "kind": m.Kind})
		return nil, nil
	}
	return h.seal(kind, reply, a.counter, a.from)
}

// seal numbers (unless counter is already reserved) and seals a reply to desktop d.
func (h *Handler) seal(kind string, m any, counter uint64, d *trustedDesktop) ([]byte, error) {
	body, err := messages.Marshal(m)
	if err != nil {
		return nil, err
	}
	if counter == 0 {
		if counter, err = h.o.Ledger.NextOutgoingCounter(d.peer); err != nil {
			return nil, err
		}
	}
	var hd envelope.Header
	copy(hd.From[:], h.o.Identity.SignPub)
	copy(hd.To[:], d.sign)
	if _, err := rand.Read(hd.MsgID[:]); err != nil {
		return nil, err
	}
	hd.Counter, hd.TS, hd.Type = counter, h.nowMs(), kind
	return envelope.Seal(envelope.SealInput{Header: hd, Body: body, SenderSign: h.o.Identity.SignPriv, RecipientBoxPub: d.box})
}

// Command runs c at most once, or answers from the ledger. A duplicate that arrives while the same id runs in this
// process waits for it and gets the same result.
func (h *Handler) Command(c *messages.Command) messages.Result {
	h.mu.Lock()
	if f, ok := h.inFlight[c.CommandID]; ok {
		h.mu.Unlock()
		_ = h.o.Ledger.Bump("commands.duplicate")
		h.o.Log(map[string]any{"level": "info", "event": "command_duplicate", "commandId": c.CommandID, "state": "running"})
		<-f.done
		return f.result
	}
	f := &flight{done: make(chan struct{})}
	h.inFlight[c.CommandID] = f
	h.running.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.inFlight, c.CommandID)
		h.mu.Unlock()
		close(f.done)
		h.running.Done()
	}()
	f.result = h.commandOnce(c)
	return f.result
}

func refused(id, reason string) messages.Result {
	return messages.Result{Kind: "result", CommandID: id, Status: messages.StatusRefused, Reason: reason}
}

func (h *Handler) fail(id string, err error) messages.Result {
	// The ledger could not record a state: refuse without running (the desktop sees why and may retry).
	h.o.Log(map[string]any{"level": "error", "event": "ledger_failed", "commandId": id, "error": err.Error()})
	return messages.Result{Kind: "result", CommandID: id, Status: messages.StatusIndeterminate, Reason: "indeterminate: the agent could not record this command in its ledger; check the agent's disk"}
}

// tenantProblem says why this agent does not serve the command's tenant; "" when it does.
func (h *Handler) tenantProblem(c *messages.Command) string {
	if len(h.o.Tenants) == 0 {
		return ""
	}
	if c.Tenant == nil {
		return "the command names no tenant, and this agent serves only " + strings.Join(h.o.Tenants, ", ")
	}
	for _, t := range h.o.Tenants {
		if t == *c.Tenant {
			return ""
		}
	}
	return "this agent serves " + strings.Join(h.o.Tenants, ", ") + ", not tenant " + *c.Tenant
}

func (h *Handler) commandOnce(c *messages.Command) messages.Result {
	l := h.o.Ledger
	// Before the ledger: a command for another tenant is not this agent's to record or run.
	if p := h.tenantProblem(c); p != "" {
		_ = l.Bump("commands.refused", "commands.tenant_not_served")
		h.o.Log(map[string]any{"level": "warn", "event": "command_refused", "commandId": c.CommandID, "rule": "tenant_not_served"})
		return refused(c.CommandID, "command_not_allowed: tenant_not_served: "+p)
	}
	now := func() int64 { return h.o.Now().UnixMilli() }
	claim, err := l.Claim(h.peer, c.CommandID, ledger.ArgvDigest(c.Argv, c.Cwd), now())
	if err != nil {
		return h.fail(c.CommandID, err)
	}
	switch claim.Kind {
	case ledger.AlreadyFinished:
		_ = l.Bump("commands.duplicate")
		h.o.Log(map[string]any{"level": "info", "event": "command_duplicate", "commandId": c.CommandID, "state": "finished"})
		var r messages.Result
		if json.Unmarshal(claim.Result, &r) == nil {
			r.Kind = "result"
			return r
		}
		return h.fail(c.CommandID, fmt.Errorf("stored result is damaged"))
	case ledger.Indeterminate:
		_ = l.Bump("commands.indeterminate")
		h.o.Log(map[string]any{"level": "warn", "event": "command_indeterminate", "commandId": c.CommandID, "startedAt": claim.StartedAt})
		started := time.UnixMilli(claim.StartedAt).UTC().Format("2006-01-02T15:04:05.000Z")
		return messages.Result{Kind: "result", CommandID: c.CommandID, Status: messages.StatusIndeterminate,
			Reason: "indeterminate: the agent stopped while this command was running (started " + started + "); it may or may not have taken effect, and it will not be run again: check the server and decide"}
	case ledger.Conflict:
		_ = l.Bump("commands.conflict")
		h.o.Log(map[string]any{"level": "warn", "event": "command_id_conflict", "commandId": c.CommandID})
		return refused(c.CommandID, "command_not_allowed: command-id-reused: this command id was already used for a different command")
	}

	cwd := ""
	if c.Cwd != nil {
		cwd = *c.Cwd
	}
	d := policy.Evaluate(c.Argv, cwd, h.o.Policy)
	if !d.Allowed {
		r := refused(c.CommandID, d.Reason)
		if err := h.finish(c.CommandID, r); err != nil {
			return h.fail(c.CommandID, err)
		}
		_ = l.Bump("commands.refused")
		h.o.Log(map[string]any{"level": "warn", "event": "command_refused", "commandId": c.CommandID, "rule": d.Rule})
		return r
	}
	if r, stop := h.refuseUnapproved(c, d); stop {
		return r
	}

	// `started` is on disk before the process exists: a crash from here on answers duplicates `indeterminate`.
	if err := l.MarkStarted(h.peer, c.CommandID, now()); err != nil {
		return h.fail(c.CommandID, err)
	}
	h.o.Log(map[string]any{"level": "info", "event": "command_started", "commandId": c.CommandID, "executable": d.Executable, "entry": d.EntryIndex})
	capBytes := messages.DefaultMaxOutputBytes
	if c.MaxOutputBytes != nil {
		capBytes = int(*c.MaxOutputBytes)
	}
	res, err := executor.Run(executor.Request{Argv: d.Argv, Cwd: d.Cwd, Timeout: time.Duration(c.TimeoutSeconds) * time.Second,
		MaxOutputBytes: capBytes, Home: h.o.Home, KillGrace: h.o.KillGrace})
	var r messages.Result
	if err != nil {
		rule := "spawn-failed"
		if e, ok := err.(*executor.Error); ok {
			switch e.Code {
			case executor.BadCwd:
				rule = "cwd"
			case executor.NotFound:
				rule = "executable-not-found"
			}
		}
		r = refused(c.CommandID, "command_not_allowed: "+rule+": "+err.Error())
		_ = l.Bump("commands.refused")
		h.o.Log(map[string]any{"level": "warn", "event": "command_not_started", "commandId": c.CommandID, "rule": rule})
	} else {
		code := int64(res.ShellStatus())
		stdout, stderr := string(res.Stdout), string(res.Stderr)
		trunc := res.Truncated
		dur := res.Duration.Milliseconds()
		r = messages.Fit(messages.Result{Kind: "result", CommandID: c.CommandID, Status: messages.StatusFinished, ExitCode: &code,
			Signal: res.SignalName(), TimedOut: res.TimedOut, Stdout: &stdout, Stderr: &stderr, Truncated: &trunc, Duration: &dur}, messages.MaxMessageBytes)
		_ = l.Bump("commands.run")
		h.o.Log(map[string]any{"level": "info", "event": "command_finished", "commandId": c.CommandID, "exitCode": code,
			"signal": res.SignalName(), "timedOut": res.TimedOut, "durationMs": dur, "truncated": *r.Truncated})
	}
	if err := h.finish(c.CommandID, r); err != nil {
		return h.fail(c.CommandID, err)
	}
	return r
}

func (h *Handler) finish(id string, r messages.Result) error {
	raw, err := messages.Marshal(r)
	if err != nil {
		return err
	}
	return h.o.Ledger.MarkFinished(h.peer, id, raw, h.o.Now().UnixMilli())
}
