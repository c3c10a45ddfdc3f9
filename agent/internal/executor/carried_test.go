package executor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/agent/internal/messages"
)

// Cases carried over from the TypeScript agent's test/unit/agent-executor.test.ts that executor_test.go did not
// already cover.

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(st), ") Z")
}

func waitGone(pid int, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
	}
	return !alive(pid)
}

func TestOverCapIsDrainedToTheEnd(t *testing.T) {
	s := script(t, t.TempDir(), "loud.sh", `head -c 300000 /dev/zero | tr "\0" a; echo tail >&2; exit 3`)
	r := run(t, []string{s}, 10*time.Second, 1000)
	if string(r.Stdout) != strings.Repeat("a", 1000) || string(r.Stderr) != "tail\n" || !r.Truncated || r.ExitCode != 3 {
		t.Fatalf("stdout %d bytes, stderr %q, truncated %v, exit %d", len(r.Stdout), r.Stderr, r.Truncated, r.ExitCode)
	}
}

func TestDefaultCapIsOneMiBPerStream(t *testing.T) {
	s := script(t, t.TempDir(), "big.sh", "head -c 1100000 /dev/zero")
	r := run(t, []string{s}, 10*time.Second, messages.DefaultMaxOutputBytes)
	if len(r.Stdout) != 1024*1024 || !r.Truncated {
		t.Fatalf("stdout %d bytes, truncated %v", len(r.Stdout), r.Truncated)
	}
}

func TestOutputExactlyAtTheCapIsNotTruncated(t *testing.T) {
	r := run(t, []string{"/usr/bin/printf", "abcd"}, 5*time.Second, 4)
	if string(r.Stdout) != "abcd" || r.Truncated {
		t.Fatalf("%q truncated %v", r.Stdout, r.Truncated)
	}
}

func TestExitCodesAndSignals(t *testing.T) {
	if r := run(t, []string{"/bin/false"}, 5*time.Second, 1<<20); r.ExitCode != 1 || r.ShellStatus() != 1 {
		t.Fatalf("false: %+v", r)
	}
	s := script(t, t.TempDir(), "selfkill.sh", "kill -KILL $$")
	r := run(t, []string{s}, 5*time.Second, 1<<20)
	if !r.Signaled || r.Signal != syscall.SIGKILL || r.TimedOut || r.ShellStatus() != 137 || r.SignalName() != "SIGKILL" {
		t.Fatalf("self-kill: %+v", r)
	}
}

func TestWorkingDirectoryHonouredAndStdinClosed(t *testing.T) {
	dir := t.TempDir()
	s := script(t, dir, "stdin.sh", `pwd; cat; echo "rc=$?"`)
	r, err := Run(Request{Argv: []string{s}, Cwd: dir, Timeout: 5 * time.Second, MaxOutputBytes: 1 << 20, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if string(r.Stdout) != real+"\nrc=0\n" {
		t.Fatalf("%q", r.Stdout)
	}
}

func TestTimeoutEndsAGrandchildThatIgnoresTerm(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	// The command itself dies of SIGTERM; its grandchild ignores it, so only the SIGKILL after the grace ends it.
	s := script(t, dir, "tree.sh", "sh -c 'trap \"\" TERM; echo $$ > "+pidFile+"; sleep 100' &\nsleep 100")
	start := time.Now()
	r, err := Run(Request{Argv: []string{s}, Timeout: 500 * time.Millisecond, KillGrace: 300 * time.Millisecond, MaxOutputBytes: 1 << 20, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Signal != syscall.SIGTERM || r.ShellStatus() != 143 {
		t.Fatalf("%+v", r)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
	raw, _ := os.ReadFile(pidFile)
	gc, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if gc <= 0 || !waitGone(gc, 3*time.Second) {
		t.Fatalf("grandchild %d still alive", gc)
	}
	if alive(r.Pid) {
		t.Fatalf("command %d still alive", r.Pid)
	}
}

func TestExecutablesAreNeverLookedUpOnTheCallersPath(t *testing.T) {
	dir := t.TempDir()
	for _, argv0 := range []string{"orch-no-such-command-xyz", filepath.Join(dir, "missing")} {
		if _, err := Run(Request{Argv: []string{argv0}, Timeout: time.Second, Home: dir}); !isCode(err, NotFound) {
			t.Fatalf("%s: %v", argv0, err)
		}
	}
	script(t, dir, "only-on-parent-path", "echo found")
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	if _, err := Run(Request{Argv: []string{"only-on-parent-path"}, Timeout: time.Second, Home: dir}); !isCode(err, NotFound) {
		t.Fatalf("a name only the caller's PATH holds: %v", err)
	}
}

func isCode(err error, code ErrorCode) bool {
	e, ok := err.(*Error)
	return ok && e.Code == code
}
