package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"orch/agent/internal/approval/trust"
	"orch/agent/internal/handler"
	"orch/agent/internal/identity"
	"orch/agent/internal/ledger"
	"orch/agent/internal/policy"
	"orch/agent/internal/relay"
)

// logger writes JSON lines on stderr: ts first, then the fields in name order. Metadata only.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) log(ev map[string]any) {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		if k != "ts" {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := keyRank(keys[i]), keyRank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	b.WriteString(`{"ts":"` + time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + `"`)
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(ev[k])
		if err != nil {
			vb = []byte(`"?"`)
		}
		b.WriteString("," + string(kb) + ":" + string(vb))
	}
	b.WriteString("}\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, b.String())
}

// logKeyOrder is the order of the TypeScript agent's log lines (tests and operators grep for
// `"event":"envelope_rejected","reason":"replay"`); other keys follow in name order.
var logKeyOrder = []string{"level", "component", "event", "reason", "count", "hint", "commandId", "state", "rule", "code",
	"executable", "entry", "exitCode", "signal", "timedOut", "durationMs", "truncated", "startedAt", "type", "msgId", "kind",
	"version", "fingerprint", "signKey", "tier", "transport", "relay", "running", "error"}

func keyRank(k string) int {
	for i, x := range logKeyOrder {
		if x == k {
			return i
		}
	}
	return len(logKeyOrder)
}

type loaded struct {
	dir     string
	cfg     *identity.Config
	id      *identity.Identity
	ledger  *ledger.Ledger
	handler *handler.Handler
	tier    policy.Tier
}

// load checks everything the agent needs; it fails before any connection when something is wrong.
func load(stateDirFlag string, log *logger, onCounters func()) (*loaded, error) {
	dir := identity.ResolveStateDir(stateDirFlag)
	id, err := identity.Load(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := identity.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	al, err := policy.LoadAllowlistFile(cfg.AllowlistFile, allowlistCheck)
	if err != nil {
		return nil, err
	}
	tier, _ := policy.ParseTier(cfg.Tier)
	_, statErr := os.Stat(filepath.Join(dir, LedgerFile))
	fresh := os.IsNotExist(statErr)
	l, err := ledger.Open(filepath.Join(dir, LedgerFile), false, 2*time.Second)
	if err == ledger.ErrLocked {
		return nil, &identity.SetupError{Code: "bad_config", Msg: "another orch-agent is running with " + dir + " (its ledger is locked); stop it first"}
	}
	if err != nil {
		return nil, err
	}
	sign, _ := hex.DecodeString(cfg.Desktop.SignKey)
	if _, err := os.Stat(filepath.Join(dir, legacyLedgerFile)); fresh && err == nil {
		// This state directory was the TypeScript agent's. Its replies' counters are in the desktop's replay window, so
		// number ours from above anything it can have sent (a microsecond clock), instead of from 1.
		if err := l.RaiseOutgoingCounter(hex.EncodeToString(sign), uint64(time.Now().UnixMicro())); err != nil {
			l.Close()
			return nil, err
		}
		log.log(map[string]any{"level": "info", "event": "ledger_migrated", "from": legacyLedgerFile,
			"hint": "the TypeScript agent's ledger.sqlite is no longer read (its command records do not carry over); delete it when this agent works"})
	}
	box, _ := hex.DecodeString(cfg.Desktop.BoxKey)
	pol := policy.Policy{Tier: tier, Allowlist: al, StateDir: dir}
	var more []handler.Desktop
	for _, d := range cfg.Desktops {
		s, _ := hex.DecodeString(d.SignKey)
		b, _ := hex.DecodeString(d.BoxKey)
		more = append(more, handler.Desktop{Sign: s, Box: b})
	}
	approvers, err := trust.OpenStore(dir)
	if err != nil {
		l.Close()
		return nil, &identity.SetupError{Code: "bad_config", Msg: err.Error()}
	}
	h, err := handler.New(handler.Options{Identity: id, DesktopSign: sign, DesktopBox: box, MoreDesktops: more, Policy: pol, Ledger: l, Home: dir,
		Version: version, Log: log.log, OnCounters: onCounters, Tenants: cfg.Tenants, Approvers: approvers, Name: cfg.Name})
	if err != nil {
		l.Close()
		return nil, err
	}
	return &loaded{dir: dir, cfg: cfg, id: id, ledger: l, handler: h, tier: pol.EffectiveTier()}, nil
}

// snapshotter writes the counters for `orch-agent status` (the ledger admits one process) after every envelope, before
// its reply goes out, so a status read after a reply sees it; the per-state command counts, which scan the ledger,
// are refreshed at most once a second.
type snapshotter struct {
	mu         sync.Mutex
	file       string
	l          *ledger.Ledger
	commands   map[string]int
	commandsAt time.Time
}

func (s *snapshotter) poke() { s.write(false) }

func (s *snapshotter) write(final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		return
	}
	if final || s.commands == nil || time.Since(s.commandsAt) >= time.Second {
		s.commands, s.commandsAt = s.l.CommandCounts(), time.Now()
	}
	b, _ := json.Marshal(snapshot{At: time.Now().UTC().Format(time.RFC3339), Commands: s.commands, Counters: s.l.Counters()})
	tmp := s.file + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, s.file)
	}
}

func runFlags(fs *flag.FlagSet) runFunc {
	stateDir := fs.String("state-dir", "", "")
	stdio := fs.Bool("stdio", false, "")
	return func(_ []string, out, errOut io.Writer) (int, error) {
		// Everything the agent creates (ledger, snapshots) is private to its user.
		syscall.Umask(0o077)
		log := &logger{w: errOut}
		snap := &snapshotter{}
		a, err := load(*stateDir, log, snap.poke)
		if err != nil {
			return 1, err
		}
		snap.file, snap.l = filepath.Join(a.dir, SnapshotFile), a.ledger
		defer func() {
			snap.mu.Lock()
			snap.l = nil
			snap.mu.Unlock()
			a.ledger.Close()
		}()

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sigs)

		var pending sync.WaitGroup
		// Envelopes are opened one at a time in arrival order (Accept: authenticate, persist the replay window), in the
		// transport's read loop, so hostile ones cost no goroutine. Only the enrolled desktop's messages are then acted
		// on concurrently, at most maxHandlers at once (long commands hold a slot); beyond that the read loop waits for
		// a slot, which pushes back on the desktop instead of dropping what it sent.
		slots := make(chan struct{}, maxHandlers)
		dispatch := func(wire []byte, send func([]byte) error) {
			m, err := a.handler.Accept(wire)
			if err != nil {
				// Nothing was acted on: the desktop retries with a new envelope.
				log.log(map[string]any{"level": "error", "event": "handle_failed", "error": err.Error()})
				return
			}
			if m == nil {
				return
			}
			slots <- struct{}{}
			pending.Add(1)
			go func() {
				defer func() { <-slots }()
				defer pending.Done()
				reply, err := a.handler.Act(m)
				if err != nil {
					// A lost reply is safe: the desktop retries with the same commandId and gets the ledger's answer.
					log.log(map[string]any{"level": "error", "event": "handle_failed", "error": err.Error()})
					return
				}
				if reply != nil {
					if err := send(reply); err != nil {
						log.log(map[string]any{"level": "warn", "event": "reply_not_sent", "error": err.Error(), "hint": "the desktop retries and gets the ledger's answer"})
					}
				}
			}()
		}
		ready := func(transport string) {
			log.log(map[string]any{"level": "info", "event": "ready", "version": version, "fingerprint": a.id.Fingerprint,
				"signKey": hex.EncodeToString(a.id.SignPub), "tier": a.tier, "transport": transport})
		}

		exit := 0
		if *stdio {
			var outMu sync.Mutex
			write := func(reply []byte) error {
				outMu.Lock()
				defer outMu.Unlock()
				_, err := io.WriteString(out, base64.StdEncoding.EncodeToString(reply)+"\n")
				return err
			}
			lines := make(chan []byte)
			go func() {
				sc := bufio.NewScanner(os.Stdin)
				sc.Buffer(make([]byte, 64*1024), 8<<20)
				for sc.Scan() {
					lines <- append([]byte{}, sc.Bytes()...)
				}
				close(lines)
			}()
			ready("stdio")
		loop:
			for {
				select {
				case line, ok := <-lines:
					if !ok {
						break loop
					}
					text := strings.TrimSpace(string(line))
					if text == "" {
						continue
					}
					dispatch(decodeBase64(text), write)
				case s := <-sigs:
					log.log(map[string]any{"level": "info", "event": "stopping", "signal": s.String(), "running": a.handler.Running()})
					break loop
				}
			}
		} else {
			client := &relay.Client{URL: a.cfg.Relay.URL, Pin: a.cfg.Relay.Pin, Key: a.id.SignPriv, Log: log.log}
			client.OnEnvelope = func(wire []byte) {
				dispatch(wire, func(reply []byte) error {
					sctx, c := context.WithTimeout(ctx, 30*time.Second)
					defer c()
					return client.Send(sctx, reply)
				})
			}
			loggedIn := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- client.Run(ctx, loggedIn) }()
			select {
			case <-loggedIn:
				ready("relay")
			case err := <-done:
				return 1, fmt.Errorf("relay %s: %v", a.cfg.Relay.URL, err)
			case s := <-sigs:
				log.log(map[string]any{"level": "info", "event": "stopping", "signal": s.String(), "running": 0})
				cancel()
				<-done
				return 0, nil
			}
			select {
			case s := <-sigs:
				log.log(map[string]any{"level": "info", "event": "stopping", "signal": s.String(), "running": a.handler.Running()})
				cancel()
				<-done
			case err := <-done:
				log.log(map[string]any{"level": "error", "event": "relay_stopped", "error": fmt.Sprint(err)})
				exit = 1
			}
		}
		pending.Wait()
		a.handler.Drain()
		snap.write(true)
		log.log(map[string]any{"level": "info", "event": "stopped"})
		return exit, nil
	}
}

// maxHandlers bounds the envelopes handled at once.
const maxHandlers = 256

// decodeBase64 is lenient like Node's Buffer.from(text, 'base64'): standard or URL alphabet, padding optional.
// Text that is not base64 at all becomes an empty envelope, which the handler counts as malformed.
func decodeBase64(text string) []byte {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			return b
		}
	}
	return nil
}
