// Package executor runs one allowed command: no shell, argv as an array, a scrubbed environment, stdin from
// /dev/null, its own process group, a timeout that ends the whole group (SIGTERM, then SIGKILL after a grace
// period), and output capped per stream. Whatever the command leaves running in its group is killed when it
// exits: a command must not leave processes behind (use systemd-run for work that should outlive it).
package executor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"orch/agent/internal/policy"
)

// DefaultKillGrace is the time between SIGTERM and SIGKILL after a timeout.
const DefaultKillGrace = 2 * time.Second

// ErrorCode says why nothing was started.
type ErrorCode string

const (
	NotFound    ErrorCode = "executable_not_found"
	BadCwd      ErrorCode = "bad_cwd"
	SpawnFailed ErrorCode = "spawn_failed"
)

// Error: the command could not be started (nothing ran).
type Error struct {
	Code ErrorCode
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Request is one command to run.
type Request struct {
	// Argv[0] is the resolved executable (absolute path); Name is what argv[0] should read as in the child.
	Argv           []string
	Cwd            string
	Timeout        time.Duration
	MaxOutputBytes int
	Home           string
	KillGrace      time.Duration
}

// Result of a command that started.
type Result struct {
	ExitCode  int // -1 when a signal ended it
	Signal    syscall.Signal
	Signaled  bool
	TimedOut  bool
	Stdout    []byte
	Stderr    []byte
	Truncated bool
	Duration  time.Duration
	Pid       int
}

// ShellStatus is the exit status a shell reports: the code, or 128 + the signal number.
func (r Result) ShellStatus() int {
	if r.Signaled {
		return 128 + int(r.Signal)
	}
	return r.ExitCode
}

// SignalName is like "SIGKILL", or "" when no signal ended the process.
func (r Result) SignalName() string {
	if !r.Signaled {
		return ""
	}
	return signalNames[r.Signal]
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGILL: "SIGILL",
	syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
	syscall.SIGKILL: "SIGKILL", syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM", syscall.SIGCHLD: "SIGCHLD",
	syscall.SIGCONT: "SIGCONT", syscall.SIGSTOP: "SIGSTOP", syscall.SIGTSTP: "SIGTSTP", syscall.SIGTTIN: "SIGTTIN",
	syscall.SIGTTOU: "SIGTTOU", syscall.SIGURG: "SIGURG", syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ",
	syscall.SIGVTALRM: "SIGVTALRM", syscall.SIGPROF: "SIGPROF", syscall.SIGWINCH: "SIGWINCH", syscall.SIGIO: "SIGIO",
	syscall.SIGPWR: "SIGPWR", syscall.SIGSYS: "SIGSYS",
}

// ScrubbedEnv is the whole environment a command sees.
func ScrubbedEnv(home string) []string {
	return []string{"PATH=" + policy.SafePath, "LANG=C.UTF-8", "HOME=" + home}
}

// cappedSink keeps the first cap bytes and counts the rest as truncated; it never blocks the writer.
type cappedSink struct {
	mu        sync.Mutex
	cap       int
	buf       []byte
	truncated bool
}

func (s *cappedSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	room := s.cap - len(s.buf)
	if room <= 0 {
		if len(p) > 0 {
			s.truncated = true
		}
		return len(p), nil
	}
	keep := p
	if len(keep) > room {
		keep = keep[:room]
		s.truncated = true
	}
	s.buf = append(s.buf, keep...)
	return len(p), nil
}

func killGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig) // ESRCH: the group is gone
}

// Run starts the command and waits for it. An *Error when it cannot be started; everything after a successful
// start (non-zero exit, signal, timeout) is a Result.
func Run(req Request) (*Result, error) {
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return nil, &Error{NotFound, "argument 0 is empty"}
	}
	exe := req.Argv[0]
	if policy.ResolveExecutable(exe, policy.SafePath) == "" {
		return nil, &Error{NotFound, "argument 0 is not an executable file"}
	}
	cwd := req.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if st, err := os.Stat(cwd); err != nil || !st.IsDir() {
		return nil, &Error{BadCwd, "the working directory does not exist or is not a directory"}
	}
	grace := req.KillGrace
	if grace == 0 {
		grace = DefaultKillGrace
	}
	out := &cappedSink{cap: req.MaxOutputBytes}
	errs := &cappedSink{cap: req.MaxOutputBytes}

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, &Error{SpawnFailed, "cannot create pipes: " + err.Error()}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, &Error{SpawnFailed, "cannot create pipes: " + err.Error()}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, &Error{SpawnFailed, "cannot open /dev/null: " + err.Error()}
	}
	defer devnull.Close()

	cmd := &exec.Cmd{
		Path:   exe,
		Args:   req.Argv,
		Env:    ScrubbedEnv(req.Home),
		Dir:    cwd,
		Stdin:  devnull,
		Stdout: outW,
		Stderr: errW,
		// Setpgid: the command leads its own process group, so the whole group can be signalled.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		code := SpawnFailed
		if errors.Is(err, os.ErrNotExist) {
			code = NotFound
		}
		return nil, &Error{code, fmt.Sprintf("cannot start the executable: %v", errors.Unwrap(err))}
	}
	outW.Close()
	errW.Close()
	pid := cmd.Process.Pid

	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); _, _ = io.Copy(out, outR); outR.Close() }()
	go func() { defer readers.Done(); _, _ = io.Copy(errs, errR); errR.Close() }()

	var timedOut bool
	var mu sync.Mutex
	term := time.AfterFunc(req.Timeout, func() {
		mu.Lock()
		timedOut = true
		mu.Unlock()
		killGroup(pid, syscall.SIGTERM)
	})
	kill := time.AfterFunc(req.Timeout+grace, func() { killGroup(pid, syscall.SIGKILL) })

	waitErr := cmd.Wait()
	// Leftovers in the group would keep our pipes open and outlive the command: end them now.
	killGroup(pid, syscall.SIGKILL)
	readers.Wait()
	term.Stop()
	kill.Stop()

	res := &Result{Pid: pid, Duration: time.Since(started)}
	mu.Lock()
	res.TimedOut = timedOut
	mu.Unlock()
	st, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if st.Signaled() {
		res.Signaled, res.Signal, res.ExitCode = true, st.Signal(), -1
	} else {
		res.ExitCode = st.ExitStatus()
	}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return nil, &Error{SpawnFailed, "waiting for the command failed: " + waitErr.Error()}
	}
	res.Stdout, res.Stderr = out.buf, errs.buf
	res.Truncated = out.truncated || errs.truncated
	return res, nil
}
