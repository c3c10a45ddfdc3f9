package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"orch/agent/internal/envelope"
	"orch/agent/internal/identity"
	"orch/agent/internal/join"
	"orch/agent/internal/ledger"
	"orch/agent/internal/policy"
	"orch/agent/internal/relay"
)

// systemdUnit is infra/systemd/orch-agent.service (a test keeps the two copies equal; go:embed cannot reach outside
// the module).
//
//go:embed orch-agent.service
var systemdUnit string

// systemdDir is where --install writes the unit; ORCH_AGENT_SYSTEMD_DIR overrides it (tests).
func systemdDir() string {
	if d := os.Getenv("ORCH_AGENT_SYSTEMD_DIR"); d != "" {
		return d
	}
	return "/etc/systemd/system"
}

type joinOutcome struct {
	StateDir      string   `json:"stateDir"`
	Created       bool     `json:"created"`
	Name          string   `json:"name"`
	SignKey       string   `json:"signKey"`
	Fingerprint   string   `json:"fingerprint"`
	Tier          string   `json:"tier"`
	Tenants       []string `json:"tenants"`
	Relay         string   `json:"relay"`
	AllowlistFile string   `json:"allowlistFile"`
	Unit          string   `json:"unit,omitempty"`
	Started       bool     `json:"started"`
	// AddedDesktop is the sign key of the desktop this join added to an enrolled agent.
	AddedDesktop string `json:"addedDesktop,omitempty"`
}

func joinFlags(fs *flag.FlagSet) runFunc {
	stateDir := fs.String("state-dir", "", "")
	install := fs.Bool("install", false, "")
	timeout := fs.Duration("timeout", 60*time.Second, "")
	asJSON := fs.Bool("json", false, "")
	return func(args []string, out, errOut io.Writer) (int, error) {
		if len(args) != 1 {
			return 2, usageError{"give the invite token `orch agent invite` printed (orchjoin1....)"}
		}
		// 1. The token, checked against this server's clock: nothing is sent for a bad or expired one.
		tok, err := join.DecodeToken(args[0], uint64(time.Now().UnixMilli()))
		if err != nil {
			return 1, err
		}
		if *install && os.Geteuid() != 0 {
			return 1, errors.New("--install writes the systemd unit and starts the service, which needs root: run it with sudo")
		}
		syscall.Umask(0o077)
		dir, err := identity.EnsureStateDir(identity.ResolveStateDir(*stateDir))
		if err != nil {
			return 1, err
		}
		// An enrolled agent may join another worker of its cluster: it then trusts one more desktop (addDesktop).
		var existing *identity.Config
		if _, err := os.Lstat(filepath.Join(dir, identity.ConfigFile)); err == nil {
			if existing, err = identity.LoadConfig(dir); err != nil {
				return 1, err
			}
			if p := addDesktopProblem(existing, tok); p != "" {
				return 1, errors.New(p)
			}
		}
		// 2. Keys, made here and never copied.
		id, created, err := identity.LoadOrCreate(dir)
		if err != nil {
			return 1, err
		}
		l, err := ledger.Open(filepath.Join(dir, LedgerFile), false, 2*time.Second)
		if err == ledger.ErrLocked {
			return 1, fmt.Errorf("another orch-agent is running with %s (its ledger is locked); stop it first", dir)
		}
		if err != nil {
			return 1, err
		}
		defer l.Close()
		log := &logger{w: errOut}
		res, err := sendJoin(tok, id, l, *timeout, log)
		if err != nil {
			return 1, err
		}
		if res.Status != "ok" {
			return 1, fmt.Errorf("the desktop refused this join: %s", res.Reason)
		}
		if existing != nil {
			return addDesktop(dir, existing, tok, res, id, *asJSON, out)
		}
		// 5. Write what the desktop said, as enroll does: the allowlist (validated first), then agent.json.
		allowText := []byte("# Nothing is allowed until you list commands here; see agent/README.md.\nversion: 1\ncommands: []\n")
		if res.Allowlist != nil {
			allowText = []byte(*res.Allowlist)
		}
		if _, err := policy.ParseAllowlist(allowText, "the allowlist from the desktop"); err != nil {
			return 1, fmt.Errorf("the desktop's allowlist for this agent is not valid here (%v); the agent is pinned on the desktop but not configured: fix the allowlist, then run `orch-agent enroll` with it", err)
		}
		allowFile := filepath.Join(dir, identity.AllowlistFile)
		if err := identity.WriteFileSync(allowFile, allowText, 0o600, false); err != nil {
			return 1, err
		}
		cfg := &identity.Config{V: 1, Tier: res.Tier, AllowlistFile: allowFile, EnrolledAt: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			Name: res.Name, Tenants: res.Tenants}
		cfg.Relay.URL, cfg.Relay.Pin = tok.RelayURL, tok.PinText()
		cfg.Desktop.SignKey, cfg.Desktop.BoxKey = hex.EncodeToString(tok.DesktopSign), hex.EncodeToString(tok.DesktopBox)
		if err := identity.WriteConfig(dir, cfg); err != nil {
			return 1, err
		}
		if err := storeJoinApprovers(dir, res.Approvers); err != nil {
			return 1, fmt.Errorf("joined as %q, but storing the tenants' approver keys failed: %v", res.Name, err)
		}
		o := joinOutcome{StateDir: dir, Created: created, Name: res.Name, SignKey: hex.EncodeToString(id.SignPub), Fingerprint: id.Fingerprint,
			Tier: res.Tier, Tenants: res.Tenants, Relay: tok.RelayURL, AllowlistFile: allowFile}
		var notes []string
		if *install {
			unit, started, note, err := installUnit(dir)
			if err != nil {
				return 1, fmt.Errorf("joined as %q, but installing the service failed: %v", res.Name, err)
			}
			o.Unit, o.Started = unit, started
			notes = append(notes, note)
		}
		if *asJSON {
			printJSON(out, o)
			return 0, nil
		}
		keys := "Kept the existing keys"
		if created {
			keys = "Created the agent's keys"
		}
		fmt.Fprintf(out, "Joined as agent %q (tier %s, tenants %s) through %s.\n", res.Name, res.Tier, strings.Join(res.Tenants, ", "), tok.RelayURL)
		fmt.Fprintf(out, "  %s in %s (fingerprint %s); the desktop pinned them.\n", keys, dir, id.Fingerprint)
		fmt.Fprintf(out, "  allowlist: %s\n  config:    %s\n", allowFile, filepath.Join(dir, identity.ConfigFile))
		for _, n := range notes {
			fmt.Fprintln(out, n)
		}
		if !*install {
			fmt.Fprintf(out, "Start it: orch-agent run --state-dir %s (or run join again with --install as root for the systemd service).\n", dir)
		}
		return 0, nil
	}
}

// sendJoin logs in with AUTH_JOIN, sends the join_request and waits for the join_result (JOIN.md "The agent's side").
func sendJoin(tok *join.Token, id *identity.Identity, l *ledger.Ledger, timeout time.Duration, log *logger) (*join.Result, error) {
	peer := hex.EncodeToString(tok.DesktopSign)
	window, err := l.LoadWindow(peer)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	body, err := join.NewRequest(id.SignPub, id.BoxPub, host, version, tok)
	if err != nil {
		return nil, err
	}
	counter, err := l.NextOutgoingCounter(peer)
	if err != nil {
		return nil, err
	}
	var hd envelope.Header
	copy(hd.From[:], id.SignPub)
	copy(hd.To[:], tok.DesktopSign)
	if _, err := rand.Read(hd.MsgID[:]); err != nil {
		return nil, err
	}
	hd.Counter, hd.TS, hd.Type = counter, uint64(time.Now().UnixMilli()), "join_request"
	wire, err := envelope.Seal(envelope.SealInput{Header: hd, Body: body, SenderSign: id.SignPriv, RecipientBoxPub: tok.DesktopBox})
	if err != nil {
		return nil, err
	}

	results := make(chan *join.Result, 1)
	refusals := make(chan string, 4)
	client := &relay.Client{URL: tok.RelayURL, Pin: tok.PinText(), Key: id.SignPriv, JoinPermit: join.PermitSecret(tok.Secret),
		Backoff: relay.Backoff{Min: 500 * time.Millisecond, Max: 5 * time.Second}, Log: func(ev map[string]any) {
			// Errors only, and not permit_refused, which is retried for a while and then reported once.
			if ev["level"] == "error" && ev["event"] != "permit_refused" {
				log.log(ev)
			}
		}}
	client.OnRelayError = func(code string, _ []byte) {
		select {
		case refusals <- code:
		default:
		}
	}
	client.OnEnvelope = func(w []byte) {
		trial := window.Clone()
		opened, reason := envelope.Open(w, envelope.OpenInput{RecipientSignPub: id.SignPub, RecipientBoxSec: id.BoxSec, RecipientBoxPub: id.BoxPub,
			PinnedSenderSign: tok.DesktopSign, NowMs: uint64(time.Now().UnixMilli()), Window: trial})
		if reason != "" || opened.Header.Type != "join_result" {
			log.log(map[string]any{"level": "warn", "event": "envelope_rejected", "reason": string(reason), "type": typeOf(opened)})
			return
		}
		r, err := join.DecodeResult(opened.Body)
		if err != nil {
			log.log(map[string]any{"level": "warn", "event": "bad_message", "error": err.Error()})
			return
		}
		// Persisted, so the `orch-agent run` that follows refuses this envelope as a replay.
		if err := l.SaveWindow(peer, trial, "accepted"); err != nil {
			log.log(map[string]any{"level": "error", "event": "ledger_failed", "error": err.Error()})
			return
		}
		window = trial
		select {
		case results <- r:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The desktop's worker registers an invite's permit with the relay within seconds of `orch agent invite`; a join
	// run right after it may reach the relay first. permit_refused (unknown, expired or reused: the relay does not
	// say which) is therefore retried for a while before it is reported.
	permitGrace := time.Now().Add(min(timeout/2, 20*time.Second))
	var done chan error
	var stopped chan struct{}
	for {
		loggedIn := make(chan struct{})
		done = make(chan error, 1)
		stopped = make(chan struct{})
		go func(stopped chan struct{}, done chan error) {
			err := client.Run(ctx, loggedIn)
			close(stopped)
			done <- err
		}(stopped, done)
		var err error
		select {
		case <-loggedIn:
		case err = <-done:
		case <-ctx.Done():
			cancel()
			<-stopped
			return nil, fmt.Errorf("join_timeout: could not log in to the relay %s within %s; check that this server reaches it (firewall, DNS) and that the relay runs", tok.RelayURL, timeout)
		}
		if err == nil {
			break
		}
		if errors.Is(err, relay.ErrPermitRefused) && time.Now().Before(permitGrace) {
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
			}
		}
		return nil, joinRelayError(tok, err)
	}
	defer func() {
		cancel()
		<-stopped
	}()
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	err = client.Send(sctx, wire)
	scancel()
	if err != nil {
		return nil, fmt.Errorf("could not send the join request to the relay: %v", err)
	}
	for {
		select {
		case r := <-results:
			return r, nil
		case code := <-refusals:
			if code == "join_restricted" || code == "unknown_recipient" {
				return nil, fmt.Errorf("the relay refused the join request (%s): the invite's desktop is not this relay's admin; ask for a new invite", code)
			}
		case err := <-done:
			return nil, joinRelayError(tok, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("join_timeout: no answer from the desktop within %s; its worker must be running (orch up) and connected to the relay %s; the invite may now be used, so ask for a new one if it does not come", timeout, tok.RelayURL)
		}
	}
}

func typeOf(o *envelope.Opened) string {
	if o == nil {
		return ""
	}
	return o.Header.Type
}

func joinRelayError(tok *join.Token, err error) error {
	switch {
	case errors.Is(err, relay.ErrPinMismatch):
		return fmt.Errorf("pin_mismatch: the relay at %s does not present the pinned certificate (%s); nothing was sent. Check the URL, or ask for a new invite if the relay's certificate changed", tok.RelayURL, tok.PinText())
	case errors.Is(err, relay.ErrPermitRefused):
		return errors.New("permit_refused: the relay refused this invite (already used, expired, or the desktop has not registered it with this relay: its worker must be running); ask for a new invite")
	case errors.Is(err, relay.ErrAuthFailed):
		return errors.New("auth_failed: the relay refused the login (check this server's clock)")
	}
	return fmt.Errorf("relay %s: %v", tok.RelayURL, err)
}

// installUnit writes the systemd unit (the embedded template, pointed at this binary and state directory) and runs
// `systemctl enable --now orch-agent` when systemctl exists. Returns the unit file, whether it started, and a note.
func installUnit(stateDir string) (string, bool, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", false, "", err
	}
	if abs, err := filepath.EvalSymlinks(exe); err == nil {
		exe = abs
	}
	unit := strings.NewReplacer(
		"ExecStart=/usr/bin/env orch-agent run --state-dir /var/lib/orch-agent", "ExecStart="+exe+" run --state-dir "+stateDir,
		"Environment=ORCH_AGENT_HOME=/var/lib/orch-agent", "Environment=ORCH_AGENT_HOME="+stateDir,
		"ReadWritePaths=/var/lib/orch-agent", "ReadWritePaths="+stateDir,
	).Replace(systemdUnit)
	dir := systemdDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, "", err
	}
	file := filepath.Join(dir, "orch-agent.service")
	if err := identity.WriteFileSync(file, []byte(unit), 0o644, false); err != nil {
		return "", false, "", err
	}
	if err := os.Chmod(file, 0o644); err != nil {
		return "", false, "", err
	}
	systemctl, err := exec.LookPath("systemctl")
	if err != nil || os.Getenv("ORCH_AGENT_SYSTEMD_DIR") != "" {
		return file, false, fmt.Sprintf("Wrote %s. systemctl is not available here: start the agent with `orch-agent run --state-dir %s` under your service manager.", file, stateDir), nil
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", "orch-agent"}} {
		if msg, err := exec.Command(systemctl, args...).CombinedOutput(); err != nil {
			return file, false, "", fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(msg)))
		}
	}
	return file, true, fmt.Sprintf("Wrote %s and started it: systemctl status orch-agent; journalctl -u orch-agent.", file), nil
}

// addDesktopProblem says why an enrolled agent cannot add the desktop of tok; "" when it can. An agent talks to one
// relay, so the new desktop (another worker of the same cluster) must be reached through the agent's relay.
func addDesktopProblem(cfg *identity.Config, tok *join.Token) string {
	if cfg.Trusts(hex.EncodeToString(tok.DesktopSign)) {
		return "this agent already trusts the desktop that made this invite; nothing to do (to re-enroll from scratch, stop the agent and remove its agent.json first)"
	}
	if identity.WithRelayPath(cfg.Relay.URL) != identity.WithRelayPath(tok.RelayURL) || cfg.Relay.Pin != tok.PinText() {
		return fmt.Sprintf("this agent is enrolled through the relay %s (pin %s) and the invite is for %s (pin %s); an agent uses one relay, so ask for an invite through its relay (orch agent invite --relay NAME)",
			cfg.Relay.URL, cfg.Relay.Pin, tok.RelayURL, tok.PinText())
	}
	return ""
}

// addDesktop records a second (third, ...) trusted desktop after its worker accepted the join. The agent keeps its
// tier and allowlist (a worker that asks for another tier is refused: the cluster's workers must agree), and adds the
// worker's tenants to its own.
func addDesktop(dir string, cfg *identity.Config, tok *join.Token, res *join.Result, id *identity.Identity, asJSON bool, out io.Writer) (int, error) {
	if res.Tier != cfg.Tier {
		return 1, fmt.Errorf("the worker invited this agent as tier %s, but it is enrolled as %s; the workers of one cluster must agree: on that worker, remove the agent (orch agent remove %s) and invite it with --tier %s", res.Tier, cfg.Tier, res.Name, cfg.Tier)
	}
	var notes []string
	if res.Allowlist != nil {
		if cur, err := os.ReadFile(cfg.AllowlistFile); err == nil && string(cur) != *res.Allowlist {
			notes = append(notes, "  note: the worker's allowlist for this agent differs from "+cfg.AllowlistFile+"; the agent keeps its own")
		}
	}
	seen := map[string]bool{}
	for _, t := range cfg.Tenants {
		seen[t] = true
	}
	if len(cfg.Tenants) > 0 {
		for _, t := range res.Tenants {
			if !seen[t] {
				cfg.Tenants = append(cfg.Tenants, t)
				seen[t] = true
			}
		}
	}
	cfg.Desktops = append(cfg.Desktops, identity.DesktopKeys{SignKey: hex.EncodeToString(tok.DesktopSign), BoxKey: hex.EncodeToString(tok.DesktopBox),
		AddedAt: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
	if err := identity.WriteConfig(dir, cfg); err != nil {
		return 1, err
	}
	// The worker's approver lists for its tenants, as a first join stores them (a newer list held already is kept).
	if err := storeJoinApprovers(dir, res.Approvers); err != nil {
		return 1, fmt.Errorf("added the worker, but storing its tenants' approver keys failed: %v", err)
	}
	if asJSON {
		printJSON(out, joinOutcome{StateDir: dir, Name: cfg.Name, SignKey: hex.EncodeToString(id.SignPub), Fingerprint: id.Fingerprint,
			Tier: cfg.Tier, Tenants: cfg.Tenants, Relay: cfg.Relay.URL, AllowlistFile: cfg.AllowlistFile, AddedDesktop: hex.EncodeToString(tok.DesktopSign)})
		return 0, nil
	}
	fmt.Fprintf(out, "Added a trusted desktop (worker %s...) to agent %q; it now trusts %d desktops.\n", hex.EncodeToString(tok.DesktopSign)[:16], cfg.Name, len(cfg.AllDesktops()))
	fmt.Fprintf(out, "  Kept the agent's keys (fingerprint %s), tier %s and allowlist; the worker pinned them.\n", id.Fingerprint, cfg.Tier)
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}
	fmt.Fprintf(out, "Start the agent again: orch-agent run --state-dir %s (or systemctl start orch-agent).\n", dir)
	return 0, nil
}
