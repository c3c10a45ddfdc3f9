// Command orch-agent is the Orch agent daemon for a managed server: one static binary built from the written
// protocol (protocol/*.md). Exit codes: 0 ok, 1 a failure (bad state, insecure files, relay refused us at
// start), 2 a usage error. Errors are one line saying what is wrong and what to do.
//
//	orch-agent enroll --relay wss://HOST:PORT --relay-pin sha256/... --desktop SIGNHEX --desktop-box-key BOXHEX
//	                  [--tier read-only|standard|infrastructure] [--allow FILE] [--state-dir DIR] [--json]
//	orch-agent join   [--state-dir DIR] [--install] [--timeout 60s] [--json] TOKEN
//	orch-agent run    [--state-dir DIR] [--stdio]
//	orch-agent status [--state-dir DIR] [--json]
//	orch-agent version [--json]
//	orch-agent check-allowlist FILE
//	orch-agent explain [--state-dir DIR] [--tier TIER] [--allow FILE] [--cwd DIR] [--json] -- ARGV...
//	orch-agent explain [--state-dir DIR] [--tier TIER] [--allow FILE] [--cwd DIR] --stdin
//
// The state directory is --state-dir, else $ORCH_AGENT_HOME, else /var/lib/orch-agent.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"orch/agent/internal/identity"
	"orch/agent/internal/policy"
)

// Stamped at build time: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "0.1.0-dev"
	commit  = "unknown"
)

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	usage string
	help  string
	flags func(fs *flag.FlagSet) func(args []string, out, errOut io.Writer) (int, error)
	// positional: how many positionals the command takes (-1 any, after `--` for explain)
	positional int
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"enroll": {
			usage: "orch-agent enroll --relay wss://HOST:PORT --relay-pin sha256/... --desktop SIGNHEX --desktop-box-key BOXHEX [--tier TIER] [--allow FILE] [--state-dir DIR] [--json]",
			help: strings.Join([]string{
				"Create this server's agent identity (if it has none), pin the relay and the desktop, and install the allowlist.",
				"Prints the agent's public keys and the `orch agent add` line to run on the desktop.",
				"  --relay URL             the relay, wss://HOST:PORT (as `orch relay start` prints it)",
				"  --relay-pin PIN         the relay certificate's pin, sha256/...",
				"  --desktop HEX           the desktop's Ed25519 public key (`orch whoami`)",
				"  --desktop-box-key HEX   the desktop's X25519 public key (`orch whoami`)",
				"  --tier TIER             read-only (default), standard or infrastructure",
				"  --allow FILE            the allowlist (YAML or JSON; see agent/README.md); copied into the state dir",
				"  --state-dir DIR         default $ORCH_AGENT_HOME or /var/lib/orch-agent",
				"  --json                  print the result as JSON",
			}, "\n"),
			flags: enrollFlags,
		},
		"join": {
			usage: "orch-agent join [--state-dir DIR] [--install] [--timeout 60s] [--json] TOKEN",
			help: strings.Join([]string{
				"Join the desktop that printed TOKEN (`orch agent invite`): create this server's keys if it has none, connect to",
				"the relay the token pins (a wrong pin: nothing is sent), log in with the token's one-time permit, send a join",
				"request sealed to the desktop and bound to the token's secret, and write the tier, tenants and allowlist the",
				"desktop answers (protocol/JOIN.md). No key is copied by hand.",
				"On an agent that is already enrolled (stopped first), an invite from ANOTHER worker of the same cluster adds",
				"that worker as a trusted desktop: same keys, same relay, same tier; its tenants are added. `status` lists",
				"every trusted desktop.",
				"  --install         as root: also write the systemd unit (/etc/systemd/system/orch-agent.service) and run",
				"                    systemctl enable --now orch-agent (without systemctl, says how to start it)",
				"  --timeout D       how long to wait for the relay and the desktop's answer (default 60s)",
				"  --state-dir DIR   default $ORCH_AGENT_HOME or /var/lib/orch-agent",
				"  --json            print the outcome as JSON",
			}, "\n"),
			flags:      joinFlags,
			positional: 1,
		},
		"run": {
			usage: "orch-agent run [--state-dir DIR] [--stdio]",
			help: strings.Join([]string{
				"Connect to the relay and answer the enrolled desktop until stopped (SIGTERM/SIGINT). Reconnects with backoff.",
				"  --stdio   instead of the relay, read one base64 envelope per line on stdin and write each reply as one",
				"            base64 line on stdout (for tests and debugging; the same checks apply)",
				"  --state-dir DIR   default $ORCH_AGENT_HOME or /var/lib/orch-agent",
			}, "\n"),
			flags: runFlags,
		},
		"status": {
			usage: "orch-agent status [--state-dir DIR] [--json]",
			help:  "Print the identity, tier, relay, pinned desktop and counters.",
			flags: statusFlags,
		},
		"version": {
			usage: "orch-agent version [--json]",
			help:  "Print the agent's version, the commit it was built from, and the Go toolchain and platform.",
			flags: versionFlags,
		},
		"check-allowlist": {
			usage:      "orch-agent check-allowlist FILE",
			help:       "Parse an allowlist file (YAML or JSON) and say what each entry allows. Exit 0 if valid, 1 if not.",
			flags:      checkAllowlistFlags,
			positional: 1,
		},
		"explain": {
			usage: "orch-agent explain [--state-dir DIR] [--tier TIER] [--allow FILE] [--cwd DIR] [--json] (-- ARGV... | --stdin)",
			help: strings.Join([]string{
				"Say whether this argv would run here and why, rule by rule, without running it, and whether a standard or",
				"infrastructure agent would need an approval for it (commands its read-only check does not clear).",
				"Uses the enrolled tier and allowlist of the state directory; --tier and --allow override them (and let you",
				"ask before enrolling). Exit 0 if it would run (with an approval where one is needed), 1 if it would be refused.",
				"  --cwd DIR   the working directory the command would get (default /)",
				"  --json      one JSON object: allowed, rule, reason, entry, readOnly, approvalRequired",
				"  --stdin     answer many commands in one process: read one per line, either a JSON array of strings (the",
				"              argv, run in --cwd) or {\"argv\": [...], \"cwd\": \"DIR\"}, and answer each with one JSON",
				"              object per line, in the same order (a bad line gets {\"error\": ...}); exit 0 whatever",
				"              the verdicts, 1 if a line was bad",
			}, "\n"),
			flags:      explainFlags,
			positional: -1,
		},
	}
}

var order = []string{"join", "enroll", "run", "status", "version", "check-allowlist", "explain"}

func topHelp() string {
	lines := []string{"orch-agent: the Orch agent daemon for a managed server", "", "Commands:"}
	for _, n := range order {
		lines = append(lines, "  "+commands[n].usage)
	}
	return strings.Join(append(lines, "", "orch-agent COMMAND --help for details."), "\n")
}

func main() {
	os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
}

func runCLI(argv []string, out, errOut io.Writer) int {
	if len(argv) == 0 {
		fmt.Fprintln(out, topHelp())
		return 2
	}
	name := argv[0]
	switch name {
	case "--help", "-h", "help":
		fmt.Fprintln(out, topHelp())
		return 0
	case "--version":
		fmt.Fprintln(out, version)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(errOut, "orch-agent: unknown command %q\n%s\n", name, topHelp())
		return 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := cmd.flags(fs)
	err := fs.Parse(argv[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(out, "usage: %s\n\n%s\n", cmd.usage, cmd.help)
		return 0
	}
	if err != nil {
		fmt.Fprintf(errOut, "orch-agent %s: %s\nusage: %s\n", name, err.Error(), cmd.usage)
		return 2
	}
	rest := fs.Args()
	switch {
	case cmd.positional == 0 && len(rest) > 0:
		fmt.Fprintf(errOut, "orch-agent %s: unexpected argument %q\nusage: %s\n", name, rest[0], cmd.usage)
		return 2
	case cmd.positional > 0 && len(rest) != cmd.positional:
		fmt.Fprintf(errOut, "orch-agent %s: expected %d argument(s)\nusage: %s\n", name, cmd.positional, cmd.usage)
		return 2
	}
	code, err := run(rest, out, errOut)
	if err != nil {
		var ue usageError
		var se *identity.SetupError
		var ae *policy.AllowlistError
		switch {
		case errors.As(err, &ue):
			fmt.Fprintf(errOut, "orch-agent %s: %s\nusage: %s\n", name, ue.msg, cmd.usage)
			return 2
		case errors.As(err, &se), errors.As(err, &ae):
			fmt.Fprintf(errOut, "orch-agent %s: %s\n", name, err.Error())
			return 1
		default:
			fmt.Fprintf(errOut, "orch-agent %s: %s\n", name, err.Error())
			return 1
		}
	}
	return code
}
