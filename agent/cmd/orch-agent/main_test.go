package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orch/agent/internal/identity"
	"orch/agent/internal/policy"
)

func cli(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := runCLI(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestExitCodesAndHelp(t *testing.T) {
	if c, _, _ := cli(); c != 2 {
		t.Fatal(c)
	}
	if c, _, _ := cli("--help"); c != 0 {
		t.Fatal(c)
	}
	if c, _, e := cli("nope"); c != 2 || !strings.Contains(e, "unknown command") {
		t.Fatal(c, e)
	}
	for _, name := range order {
		if c, out, _ := cli(name, "--help"); c != 0 || !strings.HasPrefix(out, "usage: orch-agent "+name) {
			t.Errorf("%s --help: %d %q", name, c, out)
		}
	}
	dir := t.TempDir()
	c, _, e := cli("enroll", "--relay", "ws://plain:80", "--relay-pin", "x", "--desktop", "zz", "--desktop-box-key", "zz", "--state-dir", filepath.Join(dir, "bad"))
	if c != 2 || !strings.Contains(e, "--relay must use wss://") {
		t.Fatal(c, e)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
		t.Fatal("a refused enroll created the state dir")
	}
	if c, _, e := cli("status", "--state-dir", filepath.Join(dir, "none")); c != 1 || !strings.Contains(e, "orch-agent enroll") {
		t.Fatal(c, e)
	}
	if c, _, _ := cli("run", "--bogus"); c != 2 {
		t.Fatal(c)
	}
	if c, _, _ := cli("check-allowlist"); c != 2 {
		t.Fatal(c)
	}
	if c, out, _ := cli("version"); c != 0 || !strings.HasPrefix(out, "orch-agent ") {
		t.Fatal(c, out)
	}
}

func TestEnrollStatusExplain(t *testing.T) {
	dir := t.TempDir()
	allow := filepath.Join(dir, "allow.yaml")
	_ = os.WriteFile(allow, []byte("version: 1\ncommands:\n  - executable: echo\n    rest: any\n"), 0o644)
	state := filepath.Join(dir, "state")
	pin := "sha256/AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	desk := "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
	box := "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"
	c, out, e := cli("enroll", "--relay", "wss://127.0.0.1:9", "--relay-pin", pin, "--desktop", desk, "--desktop-box-key", box, "--tier", "standard", "--allow", allow, "--state-dir", state, "--json")
	if c != 0 || !strings.Contains(out, `"signKey"`) || !strings.Contains(out, `"created": true`) {
		t.Fatal(c, out, e)
	}
	if c, out, _ := cli("status", "--state-dir", state); c != 0 || !strings.Contains(out, "  tier:        standard") || !strings.Contains(out, "(1 entries)") {
		t.Fatal(c, out)
	}
	if c, out, _ := cli("explain", "--state-dir", state, "--", "echo", "hi"); c != 0 || !strings.Contains(out, "would run") {
		t.Fatal(c, out)
	}
	if c, out, _ := cli("explain", "--state-dir", state, "--", "echo", filepath.Join(state, "agent-ed25519.key")); c != 1 || !strings.Contains(out, "rule agent-state") {
		t.Fatal(c, out)
	}
	if c, _, _ := cli("check-allowlist", allow); c != 0 {
		t.Fatal(c)
	}
	explainMany(t, allow)
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("version: 2\n"), 0o600)
	if c, _, e := cli("check-allowlist", bad); c != 1 || !strings.Contains(e, "version") {
		t.Fatal(c, e)
	}
	// an allowlist others can write stops the agent
	_ = os.Chmod(filepath.Join(state, "allowlist.yaml"), 0o666)
	if c, _, e := cli("run", "--stdio", "--state-dir", state); c != 1 || !strings.Contains(e, "chmod") {
		t.Fatal(c, e)
	}
}

// Carried over from test/unit/agent-policy.test.ts: an allowlist file others can write is refused when loaded.
func TestAllowlistFileOthersCanWriteIsRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "allow.yaml")
	_ = os.WriteFile(f, []byte("version: 1\ncommands: []\n"), 0o600)
	al, err := policy.LoadAllowlistFile(f, allowlistCheck)
	if err != nil || len(al.Entries) != 0 {
		t.Fatal(err)
	}
	_ = os.Chmod(f, 0o666)
	_, err = policy.LoadAllowlistFile(f, allowlistCheck)
	var se *identity.SetupError
	if !errors.As(err, &se) || se.Code != "insecure_permissions" {
		t.Fatalf("a world-writable allowlist was loaded: %v", err)
	}
}

// The embedded unit is infra/systemd/orch-agent.service (go:embed cannot reach outside the module).
func TestEmbeddedUnitIsTheTemplate(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "..", "infra", "systemd", "orch-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != systemdUnit {
		t.Fatal("agent/cmd/orch-agent/orch-agent.service differs from infra/systemd/orch-agent.service: copy it over")
	}
}

// explain --json and --stdin say, per argv, whether the policy allows it and whether this standard or infrastructure
// agent would need an approval (its read-only check does not clear it); read-only agents never need one.
func explainMany(t *testing.T, allow string) {
	t.Helper()
	wide := filepath.Join(t.TempDir(), "wide.yaml")
	_ = os.WriteFile(wide, []byte("version: 1\ncommands:\n  - executable: echo\n    rest: any\n  - executable: touch\n    rest: any\n"), 0o644)
	if c, out, e := cli("explain", "--tier", "infrastructure", "--allow", wide, "--json", "--", "touch", "/tmp/x"); c != 0 || strings.TrimSpace(out) != `{"allowed":true,"entry":1,"readOnly":false,"approvalRequired":true}` {
		t.Fatal(c, out, e)
	}
	if c, out, e := cli("explain", "--tier", "infrastructure", "--allow", wide, "--", "touch", "/tmp/x"); c != 0 || !strings.Contains(out, "would run only with an approval") {
		t.Fatal(c, out, e)
	}
	stdin = strings.NewReader("[\"echo\",\"hi\"]\n\n[\"touch\",\"/tmp/x\"]\nnot json\n[\"rm\",\"-f\",\"/tmp/x\"]\n")
	defer func() { stdin = os.Stdin }()
	c, out, e := cli("explain", "--tier", "infrastructure", "--allow", wide, "--stdin")
	want := []string{
		`{"allowed":true,"entry":0,"readOnly":true,"approvalRequired":false}`,
		`{"allowed":true,"entry":1,"readOnly":false,"approvalRequired":true}`,
		`{"error":"each line must be a JSON array of one or more strings, or an object {\"argv\": [...], \"cwd\": \"DIR\"}"}`,
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if c != 1 || len(lines) != 4 || lines[0] != want[0] || lines[1] != want[1] || lines[2] != want[2] || !strings.Contains(lines[3], `"allowed":false`) {
		t.Fatal(c, out, e)
	}
	explainBatch(t)
	if c, _, e := cli("explain", "--tier", "standard", "--allow", wide, "--stdin", "--", "echo"); c != 2 || !strings.Contains(e, "not both") {
		t.Fatal(c, e)
	}
	// a read-only agent runs only what its read-only check clears anyway: no approval is ever asked
	if c, out, e := cli("explain", "--tier", "read-only", "--allow", allow, "--json", "--", "echo", "hi"); c != 0 || !strings.Contains(out, `"approvalRequired":false`) {
		t.Fatal(c, out, e)
	}
}

// explain --stdin with {"argv", "cwd"} lines (what the desktop's `orch dag validate` sends, one process per agent):
// each answer is, in order, byte for byte what `explain --json --cwd DIR -- ARGV` prints for that command alone,
// and a line's own cwd decides (an entry allowed only in /srv is refused elsewhere).
func explainBatch(t *testing.T) {
	t.Helper()
	allow := filepath.Join(t.TempDir(), "cwd.yaml")
	_ = os.WriteFile(allow, []byte("version: 1\ncommands:\n  - executable: echo\n    rest: any\n  - executable: touch\n    rest: any\n    cwd: [/srv]\n"), 0o644)
	queries := []struct {
		line string
		cwd  string
		argv []string
	}{
		{`{"argv":["touch","x"],"cwd":"/srv"}`, "/srv", []string{"touch", "x"}},
		{`{"argv":["touch","x"],"cwd":"/tmp"}`, "/tmp", []string{"touch", "x"}},
		{`{"argv":["echo","hi"]}`, "/srv", []string{"echo", "hi"}}, // no cwd: --cwd's
		{`["touch","y"]`, "/srv", []string{"touch", "y"}},
		{`{"argv":["df","-h"],"cwd":"/"}`, "/", []string{"df", "-h"}},
		{`{"argv":["echo","a b"],"cwd":"/tmp"}`, "/tmp", []string{"echo", "a b"}},
		{`{"argv":["touch","z"],"cwd":"relative"}`, "relative", []string{"touch", "z"}},
	}
	var in strings.Builder
	for _, q := range queries {
		in.WriteString(q.line + "\n")
	}
	in.WriteString(`{"argv":[]}` + "\n" + `{"argv":["echo"],"extra":1}` + "\n" + `{"argv":["echo"]} x` + "\n")
	stdin = strings.NewReader(in.String())
	defer func() { stdin = os.Stdin }()
	c, out, e := cli("explain", "--tier", "infrastructure", "--allow", allow, "--cwd", "/srv", "--stdin")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if c != 1 || len(lines) != len(queries)+3 {
		t.Fatal(c, out, e)
	}
	for i, q := range queries {
		_, one, _ := cli(append([]string{"explain", "--tier", "infrastructure", "--allow", allow, "--cwd", q.cwd, "--json", "--"}, q.argv...)...)
		if lines[i] != strings.TrimSpace(one) {
			t.Fatalf("line %d (%s): batch %s, alone %s", i, q.line, lines[i], one)
		}
	}
	if !strings.Contains(lines[0], `"allowed":true`) || !strings.Contains(lines[1], `"rule":"cwd"`) || !strings.Contains(lines[3], `"allowed":true`) || !strings.Contains(lines[6], `"rule":"cwd"`) {
		t.Fatal(out)
	}
	for _, l := range lines[len(queries):] {
		if !strings.HasPrefix(l, `{"error":`) {
			t.Fatal(out)
		}
	}
}
