// Package policy decides what the agent is willing to run: the tiers, the allowlist, the destructive patterns
// and the protected paths. The desktop only asks; this package decides, so a stolen desktop key can do no more
// on a server than its operator granted there.
//
// Checks, in order (the first failure is the refusal, `command_not_allowed: <rule>: <detail>`):
//
//	input        empty-argv, nul-byte, arg-too-long, argv-too-long, too-many-args, cwd
//	executable   executable-path, executable-not-found (bare names only in SafePath)
//	destructive  destructive-pattern (tiers below infrastructure)
//	tier         tier
//	protected    protected-path (every tier, unless the matching allowlist entry names that exact path)
//	allowlist    not-allowlisted, args-mismatch, path-traversal, cwd
//
// Refusal details name arguments by their index in argv (0 is the executable) and never quote argument text:
// a secret in argv must not come back in an error, a log line or an audit row.
package policy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"orch/agent/internal/messages"
)

// SafePath is the only PATH the agent searches or hands to a command.
const SafePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Rules, in check order.
var Rules = []string{"empty-argv", "nul-byte", "arg-too-long", "argv-too-long", "too-many-args", "executable-path",
	"executable-not-found", "destructive-pattern", "tier", "protected-path", "not-allowlisted", "args-mismatch",
	"path-traversal", "cwd"}

// Policy is what the agent enforces.
type Policy struct {
	Tier      Tier
	Allowlist *Allowlist
	// StateDir is the agent's own state directory: always protected.
	StateDir string
	// SearchPath is a test hook; production uses SafePath.
	SearchPath string
}

// EffectiveTier is the enrolled tier capped by the allowlist's own tier.
func (p Policy) EffectiveTier() Tier {
	if p.Allowlist == nil {
		return p.Tier
	}
	return Stricter(p.Tier, p.Allowlist.Tier)
}

// Decision is the verdict on one command.
type Decision struct {
	Allowed    bool
	Rule       string
	Reason     string
	Executable string
	Argv       []string
	Cwd        string
	EntryIndex int
	// Why, in words, for `orch-agent explain`.
	Explanation []string
}

func refuse(d *Decision, rule, detail string) Decision {
	d.Allowed = false
	d.Rule = rule
	d.Reason = "command_not_allowed: " + rule + ": " + detail
	return *d
}

func isExecutableFile(p string) bool {
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	return syscall.Access(p, 1) == nil
}

// ResolveExecutable resolves a bare name in searchPath (never the caller's PATH) or checks an absolute path, and
// returns the directory with symlinks resolved and the file name kept (busybox applets act on their name).
func ResolveExecutable(name, searchPath string) string {
	if name == "" || strings.ContainsRune(name, 0) {
		return ""
	}
	var candidates []string
	if strings.HasPrefix(name, "/") {
		candidates = []string{name}
	} else if !strings.Contains(name, "/") {
		for _, d := range strings.Split(searchPath, ":") {
			if strings.HasPrefix(d, "/") {
				candidates = append(candidates, path.Join(d, name))
			}
		}
	}
	for _, c := range candidates {
		if !isExecutableFile(c) {
			continue
		}
		dir, err := filepath.EvalSymlinks(path.Dir(c))
		if err != nil {
			continue
		}
		return path.Join(dir, path.Base(c))
	}
	return ""
}

func systemDirs(searchPath string) map[string]bool {
	out := map[string]bool{}
	for _, d := range strings.Split(searchPath, ":") {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			out[r] = true
		}
	}
	return out
}

// Evaluate decides whether argv may run in cwd ("" means /). It reads the file system (executable lookup,
// symbolic links) and nothing else.
func Evaluate(argv []string, cwd string, p Policy) Decision {
	d := &Decision{EntryIndex: -1}
	searchPath := p.SearchPath
	if searchPath == "" {
		searchPath = SafePath
	}
	tier := p.EffectiveTier()
	al := p.Allowlist
	if al == nil {
		al = &Allowlist{}
	}

	// 1. input
	if len(argv) == 0 || argv[0] == "" {
		return refuse(d, "empty-argv", "argv must name an executable")
	}
	if len(argv) > messages.MaxArgvEntries {
		return refuse(d, "too-many-args", fmt.Sprintf("more than %d arguments", messages.MaxArgvEntries))
	}
	total := 0
	for i, a := range argv {
		if strings.ContainsRune(a, 0) {
			return refuse(d, "nul-byte", fmt.Sprintf("argument %d contains a NUL byte", i))
		}
		if len(a) > messages.MaxArgBytes {
			return refuse(d, "arg-too-long", fmt.Sprintf("argument %d is longer than %d bytes", i, messages.MaxArgBytes))
		}
		total += len(a)
	}
	if total > messages.MaxArgvBytes {
		return refuse(d, "argv-too-long", fmt.Sprintf("arguments are longer than %d bytes together", messages.MaxArgvBytes))
	}
	if cwd == "" {
		cwd = "/"
	}
	if !isCleanAbsolute(cwd) {
		return refuse(d, "cwd", "cwd must be an absolute path without . or .. segments")
	}
	d.Cwd = cwd

	// 2. executable
	name := argv[0]
	if !strings.HasPrefix(name, "/") && strings.Contains(name, "/") {
		return refuse(d, "executable-path", "argument 0 is a relative path; use a bare name or an absolute path")
	}
	exe := ResolveExecutable(name, searchPath)
	if exe == "" {
		if strings.HasPrefix(name, "/") {
			return refuse(d, "executable-not-found", "argument 0 is not an executable file")
		}
		return refuse(d, "executable-not-found", "argument 0 is not in "+searchPath)
	}
	d.Executable = exe
	args := argv[1:]
	d.Explanation = append(d.Explanation, "executable: "+exe)

	// 3. destructive patterns, on the argv as it will run
	if tier != Infrastructure {
		if m := DestructivePattern(append([]string{exe}, args...)); m != "" {
			return refuse(d, "destructive-pattern", fmt.Sprintf("matches %s, which tier %s never runs", m, tier))
		}
		d.Explanation = append(d.Explanation, "destructive patterns: none matched")
	} else {
		d.Explanation = append(d.Explanation, "destructive patterns: not checked in tier infrastructure (the desktop gates them)")
	}

	// 4. tier
	if issue := tierProblem(tier, exe, args, searchPath); issue != "" {
		return refuse(d, "tier", fmt.Sprintf("%s (tier %s)", issue, tier))
	}
	d.Explanation = append(d.Explanation, fmt.Sprintf("tier %s: allowed", tier))

	// 5. protected paths (argument index -> rule), exempted only by an entry naming that exact path
	hits := ProtectedArgs(argv, cwd, p.StateDir)
	for _, h := range hits {
		d.Explanation = append(d.Explanation, fmt.Sprintf("protected path: %s (rule %s)", h.describe(), h.Rule))
	}

	// 6. allowlist: the first entry that matches (and exempts every protected hit) wins
	var closest *matchFailure
	sawExe, cwdRefused := false, false
	var protectedRefused *ProtectedHit
	for i, e := range al.Entries {
		if ResolveExecutable(e.Executable, searchPath) != exe {
			continue
		}
		sawExe = true
		if f := matchEntry(e, args); f != nil {
			if closest == nil || f.rule == "path-traversal" {
				closest = f
			}
			continue
		}
		if len(e.Cwd) > 0 && !contains(e.Cwd, path.Clean(cwd)) {
			cwdRefused = true
			continue
		}
		if h := firstUnexempted(hits, e, args, cwd); h != nil {
			if protectedRefused == nil {
				protectedRefused = h
			}
			continue
		}
		d.Allowed, d.EntryIndex, d.Argv = true, i, append([]string{exe}, args...)
		d.Explanation = append(d.Explanation, fmt.Sprintf("allowlist: entry %d matches", i))
		return *d
	}
	if protectedRefused != nil || (len(hits) > 0 && !sawExe) {
		h := protectedRefused
		if h == nil {
			h = &hits[0]
		}
		if h.Contains {
			return refuse(d, "protected-path", fmt.Sprintf("%s is a directory above a protected path, given to a tool that walks it (rule %s); name a directory that holds no protected path", h.what(), h.Rule))
		}
		return refuse(d, "protected-path", fmt.Sprintf("%s is inside a protected path (rule %s); only an allowlist entry naming that exact path allows it", h.what(), h.Rule))
	}
	if !sawExe {
		return refuse(d, "not-allowlisted", "no allowlist entry for "+exe)
	}
	if cwdRefused {
		return refuse(d, "cwd", "the working directory is not one of the directories the matching entry allows")
	}
	return refuse(d, closest.rule, exe+": "+closest.detail)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// firstUnexempted returns the first protected hit the entry does not exempt. An entry exempts argument i when its
// pattern at i is an exact string equal to the argument, which is an absolute path; the working directory when
// its cwd list names it.
func firstUnexempted(hits []ProtectedHit, e Entry, args []string, cwd string) *ProtectedHit {
	for k := range hits {
		h := hits[k]
		if h.Index < 0 {
			if contains(e.Cwd, path.Clean(cwd)) {
				continue
			}
			return &hits[k]
		}
		if h.Index == 0 || h.Contains {
			return &hits[k] // the executable itself, or a whole tree above a protected path: never exempted
		}
		ai := h.Index - 1
		if ai < len(e.Args) && e.Args[ai].Kind == PatternExact && e.Args[ai].Text == args[ai] && strings.HasPrefix(args[ai], "/") {
			continue
		}
		return &hits[k]
	}
	return nil
}

type matchFailure struct{ rule, detail string }

func inside(root, p string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

func matchPattern(p Pattern, arg string) *matchFailure {
	switch p.Kind {
	case PatternAny:
		return nil
	case PatternExact:
		if arg == p.Text {
			return nil
		}
		return &matchFailure{"args-mismatch", "expected " + p.String}
	case PatternRegex:
		if p.regex.MatchString(arg) {
			return nil
		}
		return &matchFailure{"args-mismatch", "does not match " + p.String}
	}
	if !strings.HasPrefix(arg, "/") {
		return &matchFailure{"args-mismatch", "must be an absolute path inside " + p.Text}
	}
	for _, s := range strings.Split(arg, "/") {
		if s == ".." {
			return &matchFailure{"path-traversal", "contains a .. segment"}
		}
	}
	normal := path.Clean(arg)
	if !inside(p.Text, normal) {
		return &matchFailure{"path-traversal", "is outside " + p.Text}
	}
	if real, err := filepath.EvalSymlinks(normal); err == nil {
		root := p.Text
		if r, err := filepath.EvalSymlinks(p.Text); err == nil {
			root = r
		}
		if !inside(root, real) {
			return &matchFailure{"path-traversal", "leads outside " + p.Text + " through a symbolic link"}
		}
	}
	return nil
}

func matchEntry(e Entry, args []string) *matchFailure {
	if len(args) < len(e.Args) || (e.Rest == nil && len(args) != len(e.Args)) {
		more := ""
		if e.Rest != nil {
			more = " or more"
		}
		return &matchFailure{"args-mismatch", fmt.Sprintf("expects %d%s arguments, got %d", len(e.Args), more, len(args))}
	}
	for i, a := range args {
		p := e.Rest
		if i < len(e.Args) {
			p = &e.Args[i]
		}
		if f := matchPattern(*p, a); f != nil {
			return &matchFailure{f.rule, fmt.Sprintf("argument %d %s", i+1, f.detail)}
		}
	}
	return nil
}
