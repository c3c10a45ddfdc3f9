package handler

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/agent/internal/envelope"
	"orch/agent/internal/identity"
	"orch/agent/internal/ledger"
	"orch/agent/internal/messages"
	"orch/agent/internal/policy"
	"orch/agent/internal/replay"
)

type desktop struct {
	sign    ed25519.PrivateKey
	signPub []byte
	box     []byte
	boxPub  []byte
	counter uint64
	window  *replay.Window
}

func newDesktop(t *testing.T) *desktop {
	pub, priv, _ := ed25519.GenerateKey(nil)
	box := make([]byte, 32)
	_, _ = rand.Read(box)
	boxPub, _ := envelope.X25519Public(box)
	return &desktop{sign: priv, signPub: pub, box: box, boxPub: boxPub, window: replay.NewDefault()}
}

// sealTo seals a request from this desktop to the agent, under the desktop's next counter.
func (d *desktop) sealTo(t *testing.T, agent *identity.Identity, kind string, body any) []byte {
	t.Helper()
	b, _ := json.Marshal(body)
	d.counter++
	var hd envelope.Header
	copy(hd.From[:], d.signPub)
	copy(hd.To[:], agent.SignPub)
	hd.Counter, hd.TS, hd.Type = d.counter, uint64(time.Now().UnixMilli()), kind
	w, err := envelope.Seal(envelope.SealInput{Header: hd, Body: b, SenderSign: d.sign, RecipientBoxPub: agent.BoxPub})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// openFrom opens the agent's reply as this desktop, against window: the message, or the reason it does not open, or
// an error when it opens but does not decode as a message of its envelope's type. It calls no t.Fatal (goroutines use it).
func (d *desktop) openFrom(agent *identity.Identity, reply []byte, window *replay.Window) (*messages.Message, envelope.Reason, error) {
	o, r := envelope.Open(reply, envelope.OpenInput{RecipientSignPub: d.signPub, RecipientBoxSec: d.box, RecipientBoxPub: d.boxPub,
		PinnedSenderSign: agent.SignPub, NowMs: uint64(time.Now().UnixMilli()), Window: window})
	if r != "" {
		return nil, r, nil
	}
	m, err := messages.Decode(o.Body)
	if err == nil && m.Kind != o.Header.Type {
		err = fmt.Errorf("a %s message in a %s envelope", m.Kind, o.Header.Type)
	}
	return m, "", err
}

// startHandler opens the ledger in dir and a Handler for the agent id that trusts d (and more), under allow.
func startHandler(t *testing.T, id *identity.Identity, dir string, d *desktop, more []Desktop, allow string, tenants []string) (*ledger.Ledger, *Handler) {
	t.Helper()
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	al, err := policy.ParseAllowlist([]byte(allow), "t")
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Identity: id, DesktopSign: d.signPub, DesktopBox: d.boxPub, MoreDesktops: more, Ledger: l, Home: dir, Version: "test",
		Policy: policy.Policy{Tier: policy.Standard, Allowlist: al, StateDir: dir}, KillGrace: 200 * time.Millisecond, Tenants: tenants})
	if err != nil {
		t.Fatal(err)
	}
	return l, h
}

type fixture struct {
	t       *testing.T
	d       *desktop
	id      *identity.Identity
	dir     string
	l       *ledger.Ledger
	h       *Handler
	allow   string
	tenants []string
}

const allowAll = "version: 1\ncommands:\n  - executable: echo\n    rest: any\n  - executable: sleep\n    rest: any\n  - executable: date\n    rest: any\n"

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	id, _, err := identity.LoadOrCreate(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, d: newDesktop(t), id: id, dir: filepath.Join(dir, "state"), allow: allowAll}
	f.start()
	return f
}

func (f *fixture) start() {
	f.l, f.h = startHandler(f.t, f.id, f.dir, f.d, nil, f.allow, f.tenants)
}

func (f *fixture) restart() {
	f.h.Drain()
	f.l.Close()
	f.start()
}

func (f *fixture) seal(kind string, body any) []byte {
	f.t.Helper()
	return f.d.sealTo(f.t, f.id, kind, body)
}

func (f *fixture) open(reply []byte) *messages.Message {
	f.t.Helper()
	m, r, err := f.d.openFrom(f.id, reply, f.d.window)
	if r != "" {
		f.t.Fatalf("reply rejected: %s", r)
	}
	if err != nil {
		f.t.Fatalf("reply does not decode: %v", err)
	}
	return m
}

func (f *fixture) do(kind string, body any) *messages.Message {
	f.t.Helper()
	reply, err := f.h.Handle(f.seal(kind, body))
	if err != nil || reply == nil {
		f.t.Fatalf("no reply: %v", err)
	}
	return f.open(reply)
}

func cmd(id string, argv ...string) map[string]any {
	return map[string]any{"kind": "command", "commandId": id, "argv": argv, "timeoutSeconds": 10}
}

func TestPingPong(t *testing.T) {
	f := newFixture(t)
	m := f.do("ping", map[string]any{"kind": "ping", "nonce": "n1"})
	if m.Pong == nil || m.Pong.Nonce != "n1" || m.Pong.Tier != "standard" || m.Pong.AgentVersion != "test" {
		t.Fatalf("%+v", m)
	}
}

func TestRunDuplicateConflictAndReplay(t *testing.T) {
	f := newFixture(t)
	w := f.seal("command", cmd("wf/1", "date", "+%s%N"))
	reply, _ := f.h.Handle(w)
	r1 := f.open(reply).Result
	if r1.Status != "finished" || *r1.ExitCode != 0 {
		t.Fatalf("%+v", r1)
	}
	// the window was persisted before the command ran
	if win, _ := f.l.LoadWindow(f.h.peer); win.Check(f.d.counter) != replay.Replay {
		t.Fatal("window not persisted")
	}
	if reply, _ := f.h.Handle(w); reply != nil {
		t.Fatal("replay answered")
	}
	r2 := f.do("command", cmd("wf/1", "date", "+%s%N")).Result
	if *r2.Stdout != *r1.Stdout {
		t.Fatal("duplicate ran again")
	}
	r3 := f.do("command", cmd("wf/1", "echo", "x")).Result
	if r3.Status != "refused" || !strings.HasPrefix(r3.Reason, "command_not_allowed: command-id-reused") {
		t.Fatalf("%+v", r3)
	}
	c := f.l.Counters()
	if c["commands.run"] != 1 || c["commands.duplicate"] != 1 || c["commands.conflict"] != 1 || c["reject.replay"] != 1 || c["accepted"] != 3 {
		t.Fatal(c)
	}
}

func TestDuplicateWhileRunningWaits(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	results := make([]*messages.Result, 2)
	wires := [][]byte{f.seal("command", cmd("wf/slow", "sleep", "0.3")), f.seal("command", cmd("wf/slow", "sleep", "0.3"))}
	for i := range wires {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			reply, err := f.h.Handle(wires[i])
			if err != nil || reply == nil {
				t.Error("no reply")
				return
			}
			m, r, err := f.d.openFrom(f.id, reply, replay.NewDefault())
			if r != "" || err != nil {
				t.Errorf("reply does not open: %s %v", r, err)
				return
			}
			results[i] = m.Result
		}(i)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	if results[0] == nil || results[1] == nil || *results[0].Duration != *results[1].Duration {
		t.Fatal("the duplicate did not get the same result")
	}
	if f.l.Counters()["commands.run"] != 1 {
		t.Fatal("ran twice")
	}
}

func TestCrashStates(t *testing.T) {
	f := newFixture(t)
	peer := f.h.peer
	// crashed after `received`: runs
	_, _ = f.l.Claim(peer, "wf/recv", ledger.ArgvDigest([]string{"echo", "a"}, nil), 1)
	// crashed after `started`: indeterminate, never run
	_, _ = f.l.Claim(peer, "wf/started", ledger.ArgvDigest([]string{"echo", "b"}, nil), 1)
	_ = f.l.MarkStarted(peer, "wf/started", 2)
	f.restart()
	if r := f.do("command", cmd("wf/recv", "echo", "a")).Result; r.Status != "finished" || *r.Stdout != "a\n" {
		t.Fatalf("%+v", r)
	}
	r := f.do("command", cmd("wf/started", "echo", "b")).Result
	if r.Status != "indeterminate" || !strings.HasPrefix(r.Reason, "indeterminate: ") {
		t.Fatalf("%+v", r)
	}
	// counters survive, and replies after the restart continue the outgoing counter (the desktop window accepts)
	if f.do("ping", map[string]any{"kind": "ping", "nonce": "x"}).Pong == nil {
		t.Fatal("no pong")
	}
}

func TestRefusalsAndBadMessages(t *testing.T) {
	f := newFixture(t)
	r := f.do("command", cmd("wf/r", "rm", "-rf", "/tmp/x")).Result
	if r.Status != "refused" || !strings.Contains(r.Reason, "destructive-pattern") {
		t.Fatalf("%+v", r)
	}
	if ok := f.do("command", cmd("wf/ok", "echo", "fine")).Result; ok.Status != "finished" {
		t.Fatalf("%+v", ok)
	}
	// the authenticated pong carries the agent's own counts (orch agent list shows them)
	pong := f.do("ping", map[string]any{"kind": "ping", "nonce": "counts"}).Pong
	if pong == nil || pong.CommandsRun == nil || pong.CommandsRefused == nil || *pong.CommandsRun != 1 || *pong.CommandsRefused != 1 {
		t.Fatalf("pong counts: %+v", pong)
	}
	// a body whose kind differs from the header type, and a result sent to the agent
	if reply, _ := f.h.Handle(f.seal("ping", cmd("wf/x", "echo"))); reply != nil {
		t.Fatal("answered a mismatched kind")
	}
	if reply, _ := f.h.Handle(f.seal("result", map[string]any{"kind": "result", "commandId": "a", "status": "finished", "exitCode": 0})); reply != nil {
		t.Fatal("answered a result")
	}
	if f.l.Counters()["bad_message"] != 2 {
		t.Fatal(f.l.Counters())
	}
}

func TestTimeoutResult(t *testing.T) {
	f := newFixture(t)
	m := cmd("wf/t", "sleep", "30")
	m["timeoutSeconds"] = 1
	r := f.do("command", m).Result
	if !r.TimedOut || r.Signal != "SIGTERM" || *r.ExitCode != 143 {
		t.Fatalf("%+v", r)
	}
}

// An agent that serves tenants refuses a command of another tenant, or of none, before its ledger; its own run.
func TestTenantNotServed(t *testing.T) {
	f := newFixture(t)
	f.tenants = []string{"acme"}
	f.restart()
	withTenant := func(id, tenant string) map[string]any {
		c := cmd(id, "echo", "hi")
		if tenant != "" {
			c["tenant"] = tenant
		}
		return c
	}
	for _, c := range []struct{ id, tenant string }{{"wf/other", "globex"}, {"wf/none", ""}} {
		r := f.do("command", withTenant(c.id, c.tenant)).Result
		if r.Status != "refused" || !strings.HasPrefix(r.Reason, "command_not_allowed: tenant_not_served: ") {
			t.Fatalf("%s: %+v", c.id, r)
		}
		if f.l.StateOf(fmt.Sprintf("%x", f.d.signPub), c.id) != "" {
			t.Fatalf("%s: recorded in the ledger", c.id)
		}
	}
	r := f.do("command", withTenant("wf/mine", "acme")).Result
	if r.Status != "finished" || *r.Stdout != "hi\n" {
		t.Fatalf("%+v", r)
	}
	if f.l.Counters()["commands.tenant_not_served"] != 2 {
		t.Fatalf("counters %v", f.l.Counters())
	}
}

// Accept parses an envelope once and opens the parsed form: what Parse refuses is rejected (and counted) under
// Parse's reason, and a good envelope after it is still opened against its own desktop's window.
func TestAcceptRejectsWhatParseRefuses(t *testing.T) {
	f := newFixture(t)
	good := f.seal("ping", map[string]any{"kind": "ping", "nonce": "n"})
	cases := map[string][]byte{
		"malformed":   good[:envelope.HeaderFixedBytes-1],
		"bad_version": append([]byte{envelope.Version + 1}, good[1:]...),
		"oversize":    make([]byte, envelope.MaxEnvelopeBytes+1),
	}
	for reason, wire := range cases {
		if a, err := f.h.Accept(wire); a != nil || err != nil {
			t.Fatalf("%s: accepted (%v, %v)", reason, a, err)
		}
		if got := f.l.Counters()["reject."+reason]; got != 1 {
			t.Fatalf("%s: counted %d times, counters %v", reason, got, f.l.Counters())
		}
	}
	reply, err := f.h.Handle(good)
	if err != nil || reply == nil {
		t.Fatalf("no reply: %v", err)
	}
	if m := f.open(reply); m.Kind != "pong" {
		t.Fatalf("reply %q", m.Kind)
	}
}
