package handler

import (
	"path/filepath"
	"strings"
	"testing"

	"orch/agent/internal/envelope"
	"orch/agent/internal/identity"
	"orch/agent/internal/ledger"
	"orch/agent/internal/messages"
)

// Several trusted desktops: the workers of one cluster. Each has its own replay window and gets its own replies; the
// command ledger is shared, so a command id that a second worker retries is never run twice.

type cluster struct {
	t     *testing.T
	id    *identity.Identity
	dir   string
	l     *ledger.Ledger
	h     *Handler
	a, b  *desktop
	other *desktop
}

func newCluster(t *testing.T) *cluster {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	id, _, err := identity.LoadOrCreate(state)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, id: id, dir: state, a: newDesktop(t), b: newDesktop(t), other: newDesktop(t)}
	c.start()
	return c
}

func (c *cluster) start() {
	c.l, c.h = startHandler(c.t, c.id, c.dir, c.a, []Desktop{{Sign: c.b.signPub, Box: c.b.boxPub}}, allowAll, nil)
}

func (c *cluster) seal(d *desktop, kind string, body any) []byte {
	c.t.Helper()
	return d.sealTo(c.t, c.id, kind, body)
}

// open opens a reply as desktop d; reason is "" when d could open it.
func (c *cluster) open(d *desktop, reply []byte) (*messages.Message, envelope.Reason) {
	c.t.Helper()
	m, r, err := d.openFrom(c.id, reply, d.window.Clone())
	if err != nil {
		c.t.Fatal(err)
	}
	return m, r
}

func TestEveryTrustedDesktopIsAnsweredItself(t *testing.T) {
	c := newCluster(t)
	for _, d := range []*desktop{c.a, c.b} {
		reply, err := c.h.Handle(c.seal(d, "ping", map[string]any{"kind": "ping", "nonce": "n"}))
		if err != nil || reply == nil {
			t.Fatalf("no pong: %v", err)
		}
		if m, r := c.open(d, reply); r != "" || m.Pong == nil {
			t.Fatalf("the sender cannot open its pong: %s", r)
		}
		other := c.a
		if d == c.a {
			other = c.b
		}
		if _, r := c.open(other, reply); r == "" {
			t.Fatal("a reply was readable by a desktop that did not send the request")
		}
	}
	// A desktop the agent does not trust gets nothing and is counted as unknown_sender.
	if reply, _ := c.h.Handle(c.seal(c.other, "ping", map[string]any{"kind": "ping", "nonce": "n"})); reply != nil {
		t.Fatal("an untrusted desktop got a reply")
	}
	if c.l.Counters()["reject.unknown_sender"] != 1 {
		t.Fatalf("counters %v", c.l.Counters())
	}
}

func TestWindowsArePerDesktop(t *testing.T) {
	c := newCluster(t)
	// Both desktops start their counters at 1: neither is a replay of the other.
	wa := c.seal(c.a, "ping", map[string]any{"kind": "ping", "nonce": "a"})
	wb := c.seal(c.b, "ping", map[string]any{"kind": "ping", "nonce": "b"})
	for _, w := range [][]byte{wa, wb} {
		if reply, _ := c.h.Handle(w); reply == nil {
			t.Fatal("counter 1 of a second desktop was taken for a replay of the first's")
		}
	}
	// And each window survives a restart.
	c.h.Drain()
	c.l.Close()
	c.start()
	for _, w := range [][]byte{wa, wb} {
		if reply, _ := c.h.Handle(w); reply != nil {
			t.Fatal("a replay was answered after a restart")
		}
	}
	if c.l.Counters()["reject.replay"] != 2 {
		t.Fatalf("counters %v", c.l.Counters())
	}
}

func TestACommandRetriedByAnotherWorkerRunsOnce(t *testing.T) {
	c := newCluster(t)
	// Worker A sends a command and dies before the result reaches it; worker B retries the same command id.
	first, err := c.h.Handle(c.seal(c.a, "command", cmd("wf/run/node", "date", "+%s%N")))
	if err != nil || first == nil {
		t.Fatal(err)
	}
	ra, _ := c.open(c.a, first)
	second, err := c.h.Handle(c.seal(c.b, "command", cmd("wf/run/node", "date", "+%s%N")))
	if err != nil || second == nil {
		t.Fatal(err)
	}
	rb, r := c.open(c.b, second)
	if r != "" {
		t.Fatalf("worker B cannot open the answer to its retry: %s", r)
	}
	if ra.Result == nil || rb.Result == nil || *ra.Result.Stdout != *rb.Result.Stdout || strings.TrimSpace(*rb.Result.Stdout) == "" {
		t.Fatalf("the retry was not answered from the ledger: %+v / %+v", ra.Result, rb.Result)
	}
	if n := c.l.Counters()["commands.run"]; n != 1 {
		t.Fatalf("commands.run = %d, want 1", n)
	}
	if n := c.l.Counters()["commands.duplicate"]; n != 1 {
		t.Fatalf("commands.duplicate = %d, want 1", n)
	}
}
