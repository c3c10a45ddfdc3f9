package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/agent/internal/envelope"
	"orch/agent/internal/messages"
	"orch/agent/internal/replay"
)

// The test binary doubles as the agent: with ORCH_AGENT_TEST_AS_MAIN=1 it runs the CLI, so a test can run the real
// process and SIGKILL it (carried over from the TypeScript agent's test/unit/agent-ledger.test.ts).
func TestMain(m *testing.M) {
	if os.Getenv("ORCH_AGENT_TEST_AS_MAIN") == "1" {
		os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type agentProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan []byte
}

func startAgentProc(t *testing.T, state string) *agentProc {
	t.Helper()
	c := exec.Command(os.Args[0], "run", "--stdio", "--state-dir", state)
	c.Env = append(os.Environ(), "ORCH_AGENT_TEST_AS_MAIN=1")
	stdin, _ := c.StdinPipe()
	stdout, _ := c.StdoutPipe()
	stderr, _ := c.StderrPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), `"event":"ready"`) {
				once = true
				close(ready)
			}
		}
	}()
	p := &agentProc{cmd: c, stdin: stdin, replies: make(chan []byte, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 8<<20)
		for sc.Scan() {
			b, err := base64.StdEncoding.DecodeString(sc.Text())
			if err == nil {
				p.replies <- b
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		_ = c.Process.Kill()
		t.Fatal("agent not ready")
	}
	return p
}

func (p *agentProc) send(t *testing.T, wire []byte) {
	if _, err := io.WriteString(p.stdin, base64.StdEncoding.EncodeToString(wire)+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *agentProc) reply(t *testing.T) []byte {
	t.Helper()
	select {
	case r := <-p.replies:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no reply")
		return nil
	}
}

func lineCount(file string) int {
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "start ") {
			n++
		}
	}
	return n
}

func TestSigkillMidCommandIsIndeterminateAndNeverRunsAgain(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "crash.log")
	slow := filepath.Join(dir, "slow.sh")
	_ = os.WriteFile(slow, []byte("#!/bin/sh\necho \"start $$\" >> "+log+"\nexec sleep 100\n"), 0o755)
	allow := filepath.Join(dir, "allow.yaml")
	_ = os.WriteFile(allow, []byte("version: 1\ncommands:\n  - executable: "+slow+"\n  - executable: echo\n    rest: any\n"), 0o600)
	state := filepath.Join(dir, "state")

	signPub, signPriv, _ := ed25519.GenerateKey(nil)
	boxSec := make([]byte, 32)
	_, _ = rand.Read(boxSec)
	boxPub, _ := envelope.X25519Public(boxSec)
	code, out, errOut := cli("enroll", "--relay", "wss://127.0.0.1:1", "--relay-pin", "sha256/"+base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"--desktop", hex.EncodeToString(signPub), "--desktop-box-key", hex.EncodeToString(boxPub),
		"--tier", "infrastructure", "--allow", allow, "--state-dir", state, "--json")
	if code != 0 {
		t.Fatal(errOut)
	}
	var enrolled struct{ SignKey, BoxKey string }
	if err := json.Unmarshal([]byte(out), &enrolled); err != nil {
		t.Fatal(err)
	}
	agentSign, _ := hex.DecodeString(enrolled.SignKey)
	agentBox, _ := hex.DecodeString(enrolled.BoxKey)
	var counter uint64
	window := replay.NewDefault()
	seal := func(body map[string]any) []byte {
		b, _ := json.Marshal(body)
		counter++
		var hd envelope.Header
		copy(hd.From[:], signPub)
		copy(hd.To[:], agentSign)
		_, _ = rand.Read(hd.MsgID[:])
		hd.Counter, hd.TS, hd.Type = counter, uint64(time.Now().UnixMilli()), body["kind"].(string)
		w, err := envelope.Seal(envelope.SealInput{Header: hd, Body: b, SenderSign: signPriv, RecipientBoxPub: agentBox})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	open := func(wire []byte) *messages.Result {
		o, r := envelope.Open(wire, envelope.OpenInput{RecipientSignPub: signPub, RecipientBoxSec: boxSec, RecipientBoxPub: boxPub,
			PinnedSenderSign: agentSign, NowMs: uint64(time.Now().UnixMilli()), Window: window})
		if r != "" {
			t.Fatalf("reply rejected: %s", r)
		}
		m, err := messages.Decode(o.Body)
		if err != nil || m.Result == nil {
			t.Fatalf("not a result: %v", err)
		}
		return m.Result
	}
	command := map[string]any{"kind": "command", "commandId": "wf-1/run-1/slow", "argv": []string{slow}, "timeoutSeconds": 60, "tenant": "acme"}
	// Not read-only, on an infrastructure agent: it runs with an approval (APPROVAL.md).
	command["approval"] = approveForTest(t, state, "acme", "wf-1/run-1/slow", []string{slow})

	first := startAgentProc(t, state)
	first.send(t, seal(command))
	for end := time.Now().Add(15 * time.Second); lineCount(log) == 0 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	if lineCount(log) != 1 {
		_ = first.cmd.Process.Kill()
		t.Fatal("the command did not start")
	}
	raw, _ := os.ReadFile(log)
	orphan, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(raw)), "start")))
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	_ = first.cmd.Wait()
	// The agent died, its command did not (systemd would end it with the unit's cgroup); end it here.
	if orphan > 0 {
		_ = syscall.Kill(-orphan, syscall.SIGKILL)
	}

	second := startAgentProc(t, state)
	defer func() {
		_ = second.cmd.Process.Signal(syscall.SIGTERM)
		_ = second.cmd.Wait()
	}()
	second.send(t, seal(command))
	again := open(second.reply(t))
	if again.Status != "indeterminate" || again.CommandID != "wf-1/run-1/slow" || !strings.HasPrefix(again.Reason, "indeterminate: ") {
		t.Fatalf("%+v", again)
	}
	second.send(t, seal(map[string]any{"kind": "command", "commandId": "wf-1/run-1/echo", "argv": []string{"echo", "alive"}, "timeoutSeconds": 10}))
	echo := open(second.reply(t))
	if echo.Status != "finished" || echo.Stdout == nil || *echo.Stdout != "alive\n" {
		t.Fatalf("%+v", echo)
	}
	if n := lineCount(log); n != 1 {
		t.Fatalf("the command started %d times", n)
	}
}
