package ledger

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orch/agent/internal/replay"
)

func open(t *testing.T, f string) *Ledger {
	l, err := Open(f, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLifecycleAndCrashStates(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ledger.db")
	l := open(t, f)
	d := ArgvDigest([]string{"echo", "hi"}, nil)
	if c, _ := l.Claim("p", "a", d, 1); c.Kind != Run {
		t.Fatal(c)
	}
	// crash after `received`: a duplicate runs
	l.Close()
	l = open(t, f)
	if c, _ := l.Claim("p", "a", d, 2); c.Kind != Run {
		t.Fatal("received must run again")
	}
	if err := l.MarkStarted("p", "a", 3); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkStarted("p", "a", 3); err == nil {
		t.Fatal("started twice")
	}
	// crash after `started`: indeterminate
	l.Close()
	l = open(t, f)
	if c, _ := l.Claim("p", "a", d, 4); c.Kind != Indeterminate || c.StartedAt != 3 {
		t.Fatal(c)
	}
	res := json.RawMessage(`{"kind":"result","commandId":"a","status":"finished","exitCode":0}`)
	if err := l.MarkFinished("p", "a", res, 5); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = open(t, f)
	defer l.Close()
	if c, _ := l.Claim("p", "a", d, 6); c.Kind != AlreadyFinished || string(c.Result) != string(res) {
		t.Fatal(c)
	}
	if c, _ := l.Claim("p", "a", ArgvDigest([]string{"echo", "other"}, nil), 7); c.Kind != Conflict {
		t.Fatal("reused id not a conflict")
	}
	cwd := "/tmp"
	if ArgvDigest([]string{"echo"}, &cwd) == ArgvDigest([]string{"echo"}, nil) {
		t.Fatal("cwd not in digest")
	}
	// another peer has its own ids
	if c, _ := l.Claim("q", "a", d, 8); c.Kind != Run {
		t.Fatal(c)
	}
	if got := l.CommandCounts(); got["finished"] != 1 || got["received"] != 1 {
		t.Fatal(got)
	}
}

func TestWindowCounterAndCountersSurviveRestart(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ledger.db")
	l := open(t, f)
	w, _ := l.LoadWindow("p")
	_ = w.Accept(5)
	if err := l.SaveWindow("p", w, "accepted"); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 3; i++ {
		if n, _ := l.NextOutgoingCounter("p"); n != i {
			t.Fatal(n)
		}
	}
	_ = l.Bump("reject.replay", "reject.replay")
	l.Close()
	l = open(t, f)
	defer l.Close()
	w, _ = l.LoadWindow("p")
	if w.Check(5) != replay.Replay {
		t.Fatal("window lost")
	}
	if n, _ := l.NextOutgoingCounter("p"); n != 4 {
		t.Fatal(n)
	}
	c := l.Counters()
	if c["accepted"] != 1 || c["reject.replay"] != 2 {
		t.Fatal(c)
	}
}

func TestLockedWhileOpen(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ledger.db")
	l := open(t, f)
	defer l.Close()
	if _, err := Open(f, true, 100*time.Millisecond); err != ErrLocked {
		t.Fatalf("got %v", err)
	}
}

func TestRaiseOutgoingCounterNeverLowers(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	if err := l.RaiseOutgoingCounter("p", 1000); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.NextOutgoingCounter("p"); n != 1001 {
		t.Fatalf("after raising to 1000: got %d, want 1001", n)
	}
	if err := l.RaiseOutgoingCounter("p", 5); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.NextOutgoingCounter("p"); n != 1002 {
		t.Fatalf("a lower floor must not lower the counter: got %d, want 1002", n)
	}
	if n, _ := l.NextOutgoingCounter("other"); n != 1 {
		t.Fatalf("other peers are untouched: got %d, want 1", n)
	}
}

// Carried over from test/unit/agent-ledger.test.ts: the file is 0600, and a window with out-of-order counters and
// the outgoing counter survive a reopen.
func TestFileModeAndWindowSurviveReopen(t *testing.T) {
	f := filepath.Join(t.TempDir(), "persist.db")
	a := open(t, f)
	w, _ := a.LoadWindow("peer")
	_ = w.Accept(5)
	_ = w.Accept(3)
	if err := a.SaveWindow("peer", w, "accepted"); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		if n, _ := a.NextOutgoingCounter("peer"); n != want {
			t.Fatalf("counter %d, want %d", n, want)
		}
	}
	a.Close()
	if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", err, st.Mode().Perm())
	}
	b := open(t, f)
	defer b.Close()
	again, _ := b.LoadWindow("peer")
	if again.Check(5) != replay.Replay || again.Check(3) != replay.Replay || again.Check(4) != replay.OK {
		t.Fatal("window not restored")
	}
	if n, _ := b.NextOutgoingCounter("peer"); n != 3 {
		t.Fatalf("counter %d, want 3", n)
	}
}

// Group commit: concurrent writes share transactions, each gets its own answer, and a failing write in a shared
// transaction fails only itself.
func TestConcurrentWritesGroupCommit(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ledger.db")
	l := open(t, f)
	const n = 200
	var wg sync.WaitGroup
	got := make([]uint64, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%10 == 0 {
				// no record for this id: an error for this write alone
				errs[i] = l.MarkStarted("p", "wf/none", 1)
				return
			}
			got[i], errs[i] = l.NextOutgoingCounter("p")
			if errs[i] == nil {
				errs[i] = l.Bump("x")
			}
		}(i)
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i := 0; i < n; i++ {
		if i%10 == 0 {
			if errs[i] == nil {
				t.Fatalf("write %d should have failed", i)
			}
			continue
		}
		if errs[i] != nil || got[i] == 0 || seen[got[i]] {
			t.Fatalf("write %d: counter %d, err %v", i, got[i], errs[i])
		}
		seen[got[i]] = true
	}
	l.Close()
	l = open(t, f)
	defer l.Close()
	if c := l.Counters(); c["x"] != n-n/10 {
		t.Fatalf("bumps after reopen: %d", c["x"])
	}
	if next, _ := l.NextOutgoingCounter("p"); next != uint64(n-n/10+1) {
		t.Fatalf("next counter %d", next)
	}
}

func TestSaveWindowAndNextCounterIsOneCommit(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ledger.db")
	l := open(t, f)
	w, _ := l.LoadWindow("p")
	_ = w.Accept(7)
	if n, err := l.SaveWindowAndNextCounter("p", w, "accepted", "ping"); err != nil || n != 1 {
		t.Fatalf("%d %v", n, err)
	}
	if n, _ := l.NextOutgoingCounter("p"); n != 2 {
		t.Fatalf("next %d", n)
	}
	l.Close()
	l = open(t, f)
	defer l.Close()
	again, _ := l.LoadWindow("p")
	if again.Check(7) != replay.Replay || l.Counters()["ping"] != 1 || l.Counters()["accepted"] != 1 {
		t.Fatal("window or counters not persisted")
	}
}
