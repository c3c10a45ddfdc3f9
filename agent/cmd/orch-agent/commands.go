package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"orch/agent/internal/approval/trust"
	"orch/agent/internal/identity"
	"orch/agent/internal/ledger"
	"orch/agent/internal/policy"
)

// LedgerFile is the bbolt ledger in the state directory (the TypeScript agent used ledger.sqlite).
const LedgerFile = "ledger.db"

// legacyLedgerFile is the TypeScript agent's ledger: when it is present and ledger.db is not, run starts its outgoing
// counter above anything that agent can have sent.
const legacyLedgerFile = "ledger.sqlite"

// SnapshotFile holds the running agent's counters for `status` (bbolt admits one process at a time).
const SnapshotFile = "status.json"

type runFunc = func(args []string, out, errOut io.Writer) (int, error)

func printJSON(out io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(out, string(b))
}

// ------------------------------------------------------------------------------------------------ enroll

func enrollFlags(fs *flag.FlagSet) runFunc {
	relayURL := fs.String("relay", "", "")
	pin := fs.String("relay-pin", "", "")
	desktop := fs.String("desktop", "", "")
	desktopBox := fs.String("desktop-box-key", "", "")
	tier := fs.String("tier", "read-only", "")
	allow := fs.String("allow", "", "")
	stateDir := fs.String("state-dir", "", "")
	asJSON := fs.Bool("json", false, "")
	return func(_ []string, out, _ io.Writer) (int, error) {
		for _, f := range []struct{ name, v string }{{"relay", *relayURL}, {"relay-pin", *pin}, {"desktop", *desktop}, {"desktop-box-key", *desktopBox}} {
			if f.v == "" {
				return 2, usageError{"--" + f.name + " is required"}
			}
		}
		relay := identity.WithRelayPath(*relayURL)
		d, db := strings.ToLower(*desktop), strings.ToLower(*desktopBox)
		for _, p := range []string{identity.RelayURLProblem(relay), identity.PinProblem(*pin), identity.SignKeyProblem("--desktop", d),
			identity.BoxKeyProblem("--desktop-box-key", db), identity.TierProblem(*tier)} {
			if p != "" {
				return 2, usageError{p}
			}
		}
		// Validate the allowlist before touching anything, so a typo leaves the server as it was.
		var allowText []byte
		if *allow != "" {
			var err error
			if allowText, err = os.ReadFile(*allow); err != nil {
				return 2, usageError{fmt.Sprintf("--allow %s: cannot read it (%v)", *allow, errnoName(err))}
			}
			if _, err := policy.ParseAllowlist(allowText, *allow); err != nil {
				return 1, err
			}
		}
		dir, err := identity.EnsureStateDir(identity.ResolveStateDir(*stateDir))
		if err != nil {
			return 1, err
		}
		id, created, err := identity.LoadOrCreate(dir)
		if err != nil {
			return 1, err
		}
		allowFile := filepath.Join(dir, identity.AllowlistFile)
		if allowText != nil {
			if err := identity.WriteFileSync(allowFile, allowText, 0o600, false); err != nil {
				return 1, err
			}
		} else if _, err := os.Lstat(allowFile); err != nil {
			def := "# Nothing is allowed until you list commands here; see agent/README.md.\nversion: 1\ncommands: []\n"
			if err := identity.WriteFileSync(allowFile, []byte(def), 0o600, false); err != nil {
				return 1, err
			}
		}
		al, err := policy.LoadAllowlistFile(allowFile, nil)
		if err != nil {
			return 1, err
		}
		cfg := &identity.Config{V: 1, Tier: *tier, AllowlistFile: allowFile, EnrolledAt: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
		cfg.Relay.URL, cfg.Relay.Pin = relay, *pin
		cfg.Desktop.SignKey, cfg.Desktop.BoxKey = d, db
		if err := identity.WriteConfig(dir, cfg); err != nil {
			return 1, err
		}
		signKey, boxKey := hex.EncodeToString(id.SignPub), hex.EncodeToString(id.BoxPub)
		allowArg := "FILE"
		if *allow != "" {
			allowArg = *allow
		}
		addLine := fmt.Sprintf("orch agent add NAME --key %s --box-key %s --tier %s --allow %s", signKey, boxKey, *tier, allowArg)
		n := len(al.Entries)
		if *asJSON {
			printJSON(out, struct {
				StateDir         string `json:"stateDir"`
				Created          bool   `json:"created"`
				SignKey          string `json:"signKey"`
				BoxKey           string `json:"boxKey"`
				Fingerprint      string `json:"fingerprint"`
				Tier             string `json:"tier"`
				AllowlistFile    string `json:"allowlistFile"`
				AllowlistEntries int    `json:"allowlistEntries"`
				AddCommand       string `json:"addCommand"`
			}{dir, created, signKey, boxKey, id.Fingerprint, *tier, allowFile, n, addLine})
			return 0, nil
		}
		if created {
			fmt.Fprintf(out, "Created the agent identity in %s.\n", dir)
		} else {
			fmt.Fprintf(out, "Kept the existing agent identity in %s.\n", dir)
		}
		entries := "entries"
		if n == 1 {
			entries = "entry"
		}
		fmt.Fprintf(out, "  sign key:    %s\n  box key:     %s\n  fingerprint: %s\n  tier:        %s\n", signKey, boxKey, id.Fingerprint, *tier)
		fmt.Fprintf(out, "  allowlist:   %s (%d %s)\n  relay:       %s (pinned %s)\n\n", allowFile, n, entries, relay, *pin)
		fmt.Fprintln(out, "On the desktop, pin this agent (replace NAME; FILE is the same allowlist):")
		fmt.Fprintf(out, "  %s\n", addLine)
		fmt.Fprintln(out, "Then start the agent: systemctl enable --now orch-agent (or: orch-agent run).")
		return 0, nil
	}
}

func errnoName(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// ------------------------------------------------------------------------------------------------ status

type statusReport struct {
	StateDir    string   `json:"stateDir"`
	Version     string   `json:"version"`
	SignKey     string   `json:"signKey"`
	BoxKey      string   `json:"boxKey"`
	Fingerprint string   `json:"fingerprint"`
	Tier        string   `json:"tier"`
	Name        string   `json:"name,omitempty"`
	Tenants     []string `json:"tenants"`
	Relay       struct {
		URL string `json:"url"`
		Pin string `json:"pin"`
	} `json:"relay"`
	Desktop identity.DesktopKeys `json:"desktop"`
	// Desktops is every desktop (or worker) this agent trusts, the first one (Desktop) first.
	Desktops         []identity.DesktopKeys `json:"desktops"`
	AllowlistFile    string                 `json:"allowlistFile"`
	AllowlistEntries any                    `json:"allowlistEntries"`
	Commands         map[string]int         `json:"commands"`
	Counters         map[string]uint64      `json:"counters"`
	CountersFrom     string                 `json:"countersFrom"`
	// Approvers are the approver keys this agent trusts, per tenant, with each list's version (APPROVAL.md).
	Approvers map[string]trust.TenantKeys `json:"approvers"`
}

type snapshot struct {
	At       string            `json:"at"`
	Commands map[string]int    `json:"commands"`
	Counters map[string]uint64 `json:"counters"`
}

func statusFlags(fs *flag.FlagSet) runFunc {
	stateDir := fs.String("state-dir", "", "")
	asJSON := fs.Bool("json", false, "")
	return func(_ []string, out, _ io.Writer) (int, error) {
		dir := identity.ResolveStateDir(*stateDir)
		id, err := identity.Load(dir)
		if err != nil {
			return 1, err
		}
		cfg, err := identity.LoadConfig(dir)
		if err != nil {
			return 1, err
		}
		r := statusReport{StateDir: dir, Version: version, SignKey: hex.EncodeToString(id.SignPub), BoxKey: hex.EncodeToString(id.BoxPub),
			Fingerprint: id.Fingerprint, Tier: cfg.Tier, AllowlistFile: cfg.AllowlistFile, Commands: map[string]int{}, Counters: map[string]uint64{}}
		r.Relay.URL, r.Relay.Pin = cfg.Relay.URL, cfg.Relay.Pin
		r.Desktop, r.Desktops = cfg.Desktop, cfg.AllDesktops()
		r.Name, r.Tenants = cfg.Name, cfg.Tenants
		if r.Tenants == nil {
			r.Tenants = []string{}
		}
		if al, err := policy.LoadAllowlistFile(cfg.AllowlistFile, allowlistCheck); err == nil {
			r.AllowlistEntries = len(al.Entries)
			t, _ := policy.ParseTier(cfg.Tier)
			r.Tier = string(policy.Stricter(t, al.Tier))
		} else {
			r.AllowlistEntries = "invalid: " + err.Error()
		}
		if r.Approvers, err = approverStatus(dir); err != nil {
			return 1, err
		}
		ledgerFile := filepath.Join(dir, LedgerFile)
		if _, err := os.Stat(ledgerFile); err == nil {
			l, err := ledger.Open(ledgerFile, true, 300*time.Millisecond)
			switch {
			case err == nil:
				r.Counters, r.Commands, r.CountersFrom = l.Counters(), l.CommandCounts(), "ledger"
				l.Close()
			case err == ledger.ErrLocked:
				// A running agent holds the ledger; it writes a snapshot of its counters once a second.
				r.CountersFrom = "running agent (snapshot)"
				if raw, err := os.ReadFile(filepath.Join(dir, SnapshotFile)); err == nil {
					var s snapshot
					if json.Unmarshal(raw, &s) == nil {
						r.Counters, r.Commands, r.CountersFrom = s.Counters, s.Commands, "running agent (snapshot at "+s.At+")"
					}
				}
			default:
				return 1, err
			}
		}
		if *asJSON {
			printJSON(out, r)
			return 0, nil
		}
		fmt.Fprintf(out, "orch-agent %s in %s\n", version, dir)
		fmt.Fprintf(out, "  sign key:    %s\n  box key:     %s\n  fingerprint: %s\n  tier:        %s\n", r.SignKey, r.BoxKey, r.Fingerprint, r.Tier)
		fmt.Fprintf(out, "  relay:       %s (pin %s)\n", cfg.Relay.URL, cfg.Relay.Pin)
		for i, d := range r.Desktops {
			label := "  desktop:     "
			if len(r.Desktops) > 1 {
				label = fmt.Sprintf("  desktop %d:   ", i+1)
			}
			fmt.Fprintf(out, "%s%s\n", label, d.SignKey)
		}
		fmt.Fprintf(out, "  allowlist:   %s (%v entries)\n", cfg.AllowlistFile, r.AllowlistEntries)
		tenants := "every tenant of its desktop (enrolled before tenants)"
		if len(r.Tenants) > 0 {
			tenants = strings.Join(r.Tenants, ", ")
		}
		fmt.Fprintf(out, "  tenants:     %s\n", tenants)
		printApprovers(out, r.Approvers)
		fmt.Fprintf(out, "  commands:    %s\n  counters:    %s\n", joinCounts(r.Commands), joinCounts(r.Counters))
		return 0, nil
	}
}

func joinCounts[V int | uint64](m map[string]V) string {
	var parts []string
	for _, k := range ledger.SortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none yet"
	}
	return strings.Join(parts, ", ")
}

// allowlistCheck: the allowlist decides what runs as root, so like a key file it must belong to the agent's user
// and not be writable by anyone else.
func allowlistCheck(file string) error {
	return identity.CheckOwnedAndPrivate(file, 0o022, "allowlist")
}

// ----------------------------------------------------------------------------------------------- version

func versionFlags(fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "")
	return func(_ []string, out, _ io.Writer) (int, error) {
		if *asJSON {
			printJSON(out, map[string]string{"version": version, "commit": commit, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH})
			return 0, nil
		}
		fmt.Fprintf(out, "orch-agent %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0, nil
	}
}

// --------------------------------------------------------------------------------------- check-allowlist

func checkAllowlistFlags(fs *flag.FlagSet) runFunc {
	return func(args []string, out, _ io.Writer) (int, error) {
		text, err := os.ReadFile(args[0])
		if err != nil {
			return 1, fmt.Errorf("%s: cannot read it (%s)", args[0], errnoName(err))
		}
		al, err := policy.ParseAllowlist(text, args[0])
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s: valid, %d entries\n", args[0], len(al.Entries))
		if al.Tier != "" {
			fmt.Fprintf(out, "  tier: caps the enrolled tier at %s\n", al.Tier)
		}
		for i, e := range al.Entries {
			resolved := policy.ResolveExecutable(e.Executable, policy.SafePath)
			note := ""
			if resolved == "" {
				note = " (not found on this server)"
			}
			fmt.Fprintf(out, "  commands[%d]: %s%s\n", i, e.Describe(), note)
		}
		if err := identity.CheckOwnedAndPrivate(args[0], 0o022, "allowlist"); err != nil {
			fmt.Fprintf(out, "  warning: %s\n", err.Error())
		}
		fmt.Fprintln(out, "Every command must also fit the tier, and below infrastructure match no destructive pattern; protected paths are refused in every tier (agent/README.md).")
		return 0, nil
	}
}

// ----------------------------------------------------------------------------------------------- explain

func explainFlags(fs *flag.FlagSet) runFunc {
	stateDir := fs.String("state-dir", "", "")
	tierFlag := fs.String("tier", "", "")
	allow := fs.String("allow", "", "")
	cwd := fs.String("cwd", "/", "")
	asJSON := fs.Bool("json", false, "")
	fromStdin := fs.Bool("stdin", false, "")
	return func(args []string, out, _ io.Writer) (int, error) {
		if *fromStdin && len(args) > 0 {
			return 2, usageError{"give the commands either after -- or on standard input (--stdin), not both"}
		}
		if !*fromStdin && len(args) == 0 {
			return 2, usageError{"give the command after --, for example: orch-agent explain -- systemctl restart nginx"}
		}
		dir := identity.ResolveStateDir(*stateDir)
		p := policy.Policy{StateDir: dir}
		cfg, cfgErr := identity.LoadConfig(dir)
		switch {
		case *tierFlag != "":
			t, ok := policy.ParseTier(*tierFlag)
			if !ok {
				return 2, usageError{identity.TierProblem(*tierFlag)}
			}
			p.Tier = t
		case cfgErr == nil:
			p.Tier, _ = policy.ParseTier(cfg.Tier)
		default:
			return 1, fmt.Errorf("%v (or give --tier and --allow)", cfgErr)
		}
		allowFile := *allow
		if allowFile == "" {
			if cfgErr != nil {
				return 1, fmt.Errorf("%v (or give --tier and --allow)", cfgErr)
			}
			allowFile = cfg.AllowlistFile
		}
		al, err := policy.LoadAllowlistFile(allowFile, nil)
		if err != nil {
			return 1, err
		}
		p.Allowlist = al
		if *fromStdin {
			return explainLines(stdin, out, *cwd, p)
		}
		d := policy.Evaluate(args, *cwd, p)
		v := explained(args, d, p)
		if *asJSON {
			b, _ := json.Marshal(v)
			fmt.Fprintln(out, string(b))
		} else {
			fmt.Fprintf(out, "tier %s, allowlist %s (%d entries), state dir %s\n", p.EffectiveTier(), allowFile, len(al.Entries), dir)
			for _, line := range d.Explanation {
				fmt.Fprintf(out, "  %s\n", line)
			}
			switch {
			case d.Allowed && v.ApprovalRequired:
				fmt.Fprintf(out, "would run only with an approval: allowed by allowlist entry %d (commands[%d]), but its read-only check does not clear it, so this %s agent needs an attestation signed by an approver key it trusts for the tenant (else approval_required)\n", d.EntryIndex, d.EntryIndex, p.EffectiveTier())
			case d.Allowed:
				fmt.Fprintf(out, "would run: allowed by allowlist entry %d (commands[%d])\n", d.EntryIndex, d.EntryIndex)
			default:
				fmt.Fprintf(out, "would be refused by rule %s: %s\n", d.Rule, d.Reason)
			}
		}
		if d.Allowed {
			return 0, nil
		}
		return 1, nil
	}
}

// stdin is what `explain --stdin` reads (a variable so tests can give it lines).
var stdin io.Reader = os.Stdin

// explanation is one decision of `orch-agent explain --json` / `--stdin`.
type explanation struct {
	Allowed bool   `json:"allowed"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Entry   *int   `json:"entry,omitempty"`
	// ReadOnly: the agent's own read-only check clears the command (it needs no approval on any tier).
	ReadOnly bool `json:"readOnly"`
	// ApprovalRequired: allowed, but on this standard or infrastructure agent it runs only with an approval
	// attestation (protocol/APPROVAL.md).
	ApprovalRequired bool `json:"approvalRequired"`
}

func explained(argv []string, d policy.Decision, p policy.Policy) explanation {
	v := explanation{Allowed: d.Allowed, Rule: d.Rule, Reason: d.Reason}
	// The read-only check on its own, whatever the allowlist says (as the handler makes it, on the resolved
	// executable): an unresolvable executable never clears it.
	searchPath := p.SearchPath
	if searchPath == "" {
		searchPath = policy.SafePath
	}
	relative := !strings.HasPrefix(argv[0], "/") && strings.Contains(argv[0], "/")
	if exe := policy.ResolveExecutable(argv[0], searchPath); exe != "" && !relative {
		v.ReadOnly = policy.ClearsReadOnly(exe, argv[1:], searchPath)
	}
	if d.Allowed {
		e := d.EntryIndex
		v.Entry = &e
		v.ApprovalRequired = p.EffectiveTier() != policy.ReadOnly && !v.ReadOnly
	}
	return v
}

// explainQuery is one line of `explain --stdin`: an argv and, optionally, the working directory it would get
// (else --cwd's).
type explainQuery struct {
	Argv []string `json:"argv"`
	Cwd  *string  `json:"cwd"`
}

// explainBadLine is the answer to a line that is neither form.
const explainBadLine = `each line must be a JSON array of one or more strings, or an object {"argv": [...], "cwd": "DIR"}`

// parseExplainLine reads one line of `explain --stdin`: a JSON array of strings (the argv, run in defaultCwd), or
// an object {"argv": [...], "cwd": "DIR"} (cwd optional) for tools that ask about commands of several directories.
func parseExplainLine(line, defaultCwd string) ([]string, string, bool) {
	if strings.HasPrefix(line, "{") {
		var q explainQuery
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&q); err != nil || dec.More() || len(q.Argv) == 0 {
			return nil, "", false
		}
		cwd := defaultCwd
		if q.Cwd != nil {
			cwd = *q.Cwd
		}
		return q.Argv, cwd, true
	}
	var argv []string
	if err := json.Unmarshal([]byte(line), &argv); err != nil || len(argv) == 0 {
		return nil, "", false
	}
	return argv, defaultCwd, true
}

// explainLines answers one query per input line (parseExplainLine) with one JSON explanation per output line, in
// order (a bad line gets {"error": ...} and the rest go on), for tools that ask about many argvs: one process, not
// one each.
func explainLines(in io.Reader, out io.Writer, cwd string, p policy.Policy) (int, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	w := bufio.NewWriter(out)
	code := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var b []byte
		if argv, dir, ok := parseExplainLine(line, cwd); !ok {
			b, _ = json.Marshal(map[string]string{"error": explainBadLine})
			code = 1
		} else {
			b, _ = json.Marshal(explained(argv, policy.Evaluate(argv, dir, p), p))
		}
		w.Write(b)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return 1, err
		}
	}
	if err := sc.Err(); err != nil {
		return 1, fmt.Errorf("reading standard input: %v", err)
	}
	return code, nil
}
