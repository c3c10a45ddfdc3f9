package policy

// A faithful Go port of workflows/dag/destructive.ts (the desktop's destructive-pattern check), used by the agent
// to refuse known destructive commands below the infrastructure tier. Keep the two in step: the pattern names,
// wrappers, shells, interpreters and the work budget are the same; test/destructive_test.go holds shared cases.
//
// Differences forced by Go's regexp (RE2, no backreferences): the fork-bomb check finds the function name first
// and then looks for `name | name &` in that function's body, which is what the TypeScript regex's
// backreference does. JavaScript's \s is spelled out as jsSpace.

import (
	"regexp"
	"strings"
)

// MaxDepth is how deep nested shells, interpreters and find -exec are followed.
const MaxDepth = 8

// WorkBudget is the number of characters and words examined per call; past it the command is called
// destructive ('too-complex-to-check').
const WorkBudget = 4_000_000

// JavaScript's \s (ECMAScript WhiteSpace and LineTerminator).
const jsSpace = `[\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}]`
const jsNonSpace = `[^\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}]`

func jsre(s string) *regexp.Regexp {
	s = strings.ReplaceAll(s, `\S`, jsNonSpace)
	s = strings.ReplaceAll(s, `\s`, jsSpace)
	return regexp.MustCompile(s)
}

type outOfBudget struct{}

type scanner struct{ budget int }

func (s *scanner) spend(units int) {
	s.budget -= units
	if s.budget < 0 {
		panic(outOfBudget{})
	}
}

// DestructivePattern returns the name of the known destructive pattern argv matches, or "".
func DestructivePattern(argv []string) (name string) {
	s := &scanner{budget: WorkBudget}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(outOfBudget); ok {
				name = "too-complex-to-check"
				return
			}
			panic(r)
		}
	}()
	return s.matchArgv(argv, 0)
}

func (s *scanner) matchArgv(argv []string, depth int) string {
	if depth > MaxDepth || len(argv) == 0 {
		return ""
	}
	if m := s.matchCommandAt(argv, 0, depth, map[int]*string{}); m != "" {
		return m
	}
	return s.matchSQLInArgs(argv)
}

func (s *scanner) matchCommandAt(argv []string, start, depth int, memo map[int]*string) string {
	if c, ok := memo[start]; ok {
		if c == nil {
			return ""
		}
		return *c
	}
	memo[start] = nil
	r := s.matchCommand(argv, start, depth, memo)
	memo[start] = &r
	return r
}

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

var (
	wrappers = set("sudo", "doas", "env", "nohup", "nice", "ionice", "timeout", "stdbuf", "chroot", "xargs", "exec", "command",
		"builtin", "busybox", "setsid", "flock", "time", "strace", "ltrace", "unbuffer", "chrt", "taskset", "runuser",
		"su", "watch", "eval", "ssh", "script", "systemd-run", "nsenter", "unshare", "firejail", "torsocks", "proxychains",
		"parallel", "caffeinate", "fakeroot", "sg", "catchsegv")
	scriptWrappers = set("su", "watch", "eval", "ssh", "script", "runuser", "parallel", "sg")
	containerTools = set("docker", "podman", "nerdctl")
	kubeTools      = set("kubectl", "oc")
	shells         = set("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "yash", "fish", "csh", "tcsh", "pwsh", "powershell")
	interpreter    = regexp.MustCompile(`^(python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit|tclsh[0-9.]*|awk|gawk|mawk|nawk|osascript)$`)
	assignment     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	shellCFlag     = regexp.MustCompile(`^-[A-Za-z]*c[A-Za-z]*$`)
	shellCommand   = regexp.MustCompile(`(?i)^-(command|c)$`)
	envSplitInline = regexp.MustCompile(`^-[A-Za-z]*S.`)
	envSplitAlone  = regexp.MustCompile(`^-[A-Za-z]*S$`)
)

func basename(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func isOption(a string) bool { return len(a) > 1 && a[0] == '-' }

func (s *scanner) matchCommand(argv []string, start, depth int, memo map[int]*string) string {
	s.spend(len(argv) - start)
	cmd := basename(argv[start])
	args := argv[start+1:]

	if m := s.matchSpecific(cmd, args, depth); m != "" {
		return m
	}
	if shells[cmd] {
		runsScript := false
		for _, a := range args {
			if shellCFlag.MatchString(a) || shellCommand.MatchString(a) {
				runsScript = true
			}
		}
		if runsScript {
			for _, a := range args {
				if isOption(a) {
					continue
				}
				if m := s.scanScript(a, depth+1, false); m != "" {
					return m
				}
			}
		}
		return ""
	}
	if interpreter.MatchString(cmd) {
		for _, a := range args {
			if isOption(a) {
				continue
			}
			if m := s.scanScript(a, depth+1, true); m != "" {
				return m
			}
		}
		return ""
	}
	if wrappers[cmd] || containerTools[cmd] || kubeTools[cmd] {
		if scriptWrappers[cmd] {
			for _, a := range args {
				if isOption(a) {
					continue
				}
				if m := s.scanScript(a, depth+1, false); m != "" {
					return m
				}
			}
		}
		if cmd == "env" {
			for i, a := range args {
				var texts []string
				if strings.HasPrefix(a, "--split-string=") {
					texts = append(texts, a[len("--split-string="):])
				} else if envSplitInline.MatchString(a) {
					texts = append(texts, a[strings.IndexByte(a, 'S')+1:])
				}
				if (a == "-S" || a == "--split-string" || envSplitAlone.MatchString(a)) && i+1 < len(args) {
					texts = append(texts, args[i+1])
				}
				for _, t := range texts {
					if m := s.scanScript(t, depth+1, false); m != "" {
						return m
					}
				}
			}
		}
		for i := start + 1; i < len(argv); i++ {
			a := argv[i]
			if isOption(a) || assignment.MatchString(a) || a == "--" {
				continue
			}
			if m := s.matchCommandAt(argv, i, depth, memo); m != "" {
				return m
			}
		}
	}
	return ""
}

func anyArg(args []string, f func(string) bool) bool {
	for _, a := range args {
		if f(a) {
			return true
		}
	}
	return false
}

var (
	systemctlPower       = set("poweroff", "reboot", "halt", "kexec", "soft-reboot", "rescue", "emergency")
	systemctlPowerTarget = regexp.MustCompile(`^(poweroff|reboot|halt|kexec|soft-reboot|rescue|emergency)\.target$`)
	crontabRemove        = regexp.MustCompile(`^-[A-Za-z]*r`)
	redisFlush           = regexp.MustCompile(`(?i)^flush(all|db)$`)
)

func (s *scanner) matchSpecific(cmd string, args []string, depth int) string {
	switch cmd {
	case "rm":
		if rmIsRecursiveOrForced(args) {
			return "rm-recursive-or-force"
		}
		return ""
	case "mkfs", "mke2fs", "mkswap":
		return "mkfs"
	case "dd":
		if anyArg(args, func(a string) bool { return strings.HasPrefix(a, "of=") }) {
			return "dd-of"
		}
		return ""
	case "shutdown", "reboot", "halt", "poweroff", "wipefs", "shred":
		return cmd
	case "init", "telinit":
		if anyArg(args, func(a string) bool { return a == "0" || a == "6" }) {
			return "init-runlevel"
		}
		return ""
	case "systemctl":
		if anyArg(args, func(a string) bool { return systemctlPower[a] || systemctlPowerTarget.MatchString(a) }) {
			return "systemctl-power"
		}
		return ""
	case "fdisk", "sfdisk", "gdisk", "sgdisk", "cfdisk", "cgdisk":
		if partitionToolWrites(cmd, args) {
			return "partition-write"
		}
		return ""
	case "parted":
		if partedWrites(args) {
			return "partition-write"
		}
		return ""
	case "dropdb":
		return "sql-drop-database"
	case "mysqladmin":
		if anyArg(args, func(a string) bool { return strings.ToLower(a) == "drop" }) {
			return "sql-drop-database"
		}
		return ""
	case "chmod":
		return chmodPattern(args)
	case "chown", "chgrp":
		if hasRecursiveCapitalR(args) && anyArg(args, func(a string) bool { return !isOption(a) && isSystemPath(a) }) {
			return "chown-recursive-root"
		}
		return ""
	case "tee":
		if anyArg(args, func(a string) bool { return !isOption(a) && blockDevice.MatchString(a) }) {
			return "device-write"
		}
		return ""
	case "cp", "mv", "ddrescue", "pv", "install":
		var last string
		found := false
		for _, a := range args {
			if !isOption(a) {
				last, found = a, true
			}
		}
		if found && blockDevice.MatchString(last) {
			return "device-write"
		}
		return ""
	case "find":
		return s.findPattern(args, depth)
	case "crontab":
		if anyArg(args, func(a string) bool { return crontabRemove.MatchString(a) && !strings.HasPrefix(a, "--") }) {
			return "crontab-remove"
		}
		return ""
	case "lvremove", "vgremove", "pvremove":
		return "lvm-remove"
	case "zfs", "zpool":
		if anyArg(args, func(a string) bool { return a == "destroy" }) {
			return "zfs-destroy"
		}
		return ""
	case "redis-cli":
		if anyArg(args, redisFlush.MatchString) {
			return "redis-flush"
		}
		return ""
	}
	if strings.HasPrefix(cmd, "mkfs.") {
		return "mkfs"
	}
	if kubeTools[cmd] && anyArg(args, func(a string) bool { return a == "delete" }) {
		return "kubectl-delete"
	}
	if containerTools[cmd] {
		return containerPattern(args)
	}
	return ""
}

func rmIsRecursiveOrForced(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if strings.HasPrefix(a, "--") {
			name := strings.SplitN(a[2:], "=", 2)[0]
			if name == "" {
				continue
			}
			if strings.HasPrefix("recursive", name) || strings.HasPrefix("force", name) || (strings.HasPrefix("no-preserve-root", name) && len(name) >= 2) {
				return true
			}
		} else if isOption(a) && strings.ContainsAny(a[1:], "rRf") {
			return true
		}
	}
	return false
}

var digitOrEqualsTail = regexp.MustCompile(`[0-9=].*$`)

// optionNames expands -abc into -a -b -c and --name=value into --name; digits glued to a short option are values.
func optionNames(args []string) []string {
	var names []string
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--") {
			names = append(names, strings.SplitN(a, "=", 2)[0])
		} else if isOption(a) {
			// (?s) is not needed: JavaScript's `.` stops at line terminators; keep that by matching per string.
			rest := digitOrEqualsTail.ReplaceAllString(a[1:], "")
			for _, ch := range rest {
				names = append(names, "-"+string(ch))
			}
		}
	}
	return names
}

type partitionTool struct {
	readOnly  map[string]bool
	exitModes map[string]bool // nil means any
}

var partitionTools = map[string]partitionTool{
	"fdisk": {set("-l", "--list", "-x", "--list-details", "-h", "--help", "-V", "--version", "-u", "--units"),
		set("-l", "--list", "-x", "--list-details", "-h", "--help", "-V", "--version")},
	"sfdisk": {set("-l", "--list", "-d", "--dump", "-J", "--json", "-s", "--show-size", "-g", "--show-geometry",
		"-V", "--verify", "-h", "--help", "-v", "--version", "-F", "--list-free", "-q", "--quiet"),
		set("-l", "--list", "-d", "--dump", "-J", "--json", "-s", "--show-size", "-g", "--show-geometry",
			"-V", "--verify", "-h", "--help", "-v", "--version", "-F", "--list-free")},
	"gdisk": {set("-l", "-h", "--help"), set("-l", "-h", "--help")},
	"sgdisk": {set("-p", "--print", "-v", "--verify", "-i", "--info", "-O", "--print-mbr", "-L", "--list-types",
		"-P", "--pretend", "-h", "-?", "--help", "-V", "--version", "-b", "--backup"), nil},
	"cfdisk": {set("-h", "--help", "-V", "--version"), set("-h", "--help", "-V", "--version")},
	"cgdisk": {set("-h", "--help", "-V", "--version"), set("-h", "--help", "-V", "--version")},
}

func partitionToolWrites(cmd string, args []string) bool {
	tool, ok := partitionTools[cmd]
	if !ok {
		return true
	}
	names := optionNames(args)
	for _, n := range names {
		if !tool.readOnly[n] {
			return true
		}
	}
	if tool.exitModes == nil {
		return false
	}
	for _, n := range names {
		if tool.exitModes[n] {
			return false
		}
	}
	return true
}

var partedReadOnlyWords = set("print", "p", "help", "version", "unit", "s", "b", "kb", "mb", "gb", "tb",
	"kib", "mib", "gib", "tib", "%", "cyl", "chs", "compact", "free", "all", "list", "devices")

func partedWrites(args []string) bool {
	names := optionNames(args)
	info := set("-l", "--list", "-h", "--help", "-v", "--version")
	infoOK := set("-l", "--list", "-h", "--help", "-v", "--version", "-m", "--machine", "-s", "--script")
	for _, n := range names {
		if info[n] {
			for _, m := range names {
				if !infoOK[m] {
					return true
				}
			}
			return false
		}
	}
	var positionals []string
	for _, a := range args {
		if !isOption(a) {
			positionals = append(positionals, a)
		}
	}
	if len(positionals) <= 1 {
		return true // `parted /dev/sda` alone is interactive
	}
	for _, c := range positionals[1:] {
		if !partedReadOnlyWords[strings.ToLower(c)] {
			return true
		}
	}
	return false
}

func hasRecursiveCapitalR(args []string) bool {
	return anyArg(args, func(a string) bool {
		return a == "--recursive" || (isOption(a) && !strings.HasPrefix(a, "--") && strings.Contains(a[1:], "R"))
	})
}

var systemDirSet = set("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc",
	"/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/*")

func isSystemPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return true
		}
		if s != "" && s != "." {
			segs = append(segs, s)
		}
	}
	return systemDirSet["/"+strings.Join(segs, "/")]
}

var worldWritableMode = regexp.MustCompile(`^(0?0?777|[0-7]?777|(a|ugo|ogu|uog|gou|guo|oug)?[+=]rwx[Xst]*)$`)

func chmodPattern(args []string) string {
	if !hasRecursiveCapitalR(args) {
		return ""
	}
	var operands []string
	for _, a := range args {
		if !isOption(a) {
			operands = append(operands, a)
		}
	}
	if len(operands) > 1 && anyArg(operands[1:], isSystemPath) {
		return "chmod-recursive-root"
	}
	if len(operands) > 0 && worldWritableMode.MatchString(operands[0]) {
		return "chmod-recursive-777"
	}
	return ""
}

const deviceNames = `(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|md\d|dm-\d|loop\d|mapper/|disk/)`

var (
	blockDevice    = regexp.MustCompile(`^/dev/` + deviceNames)
	deviceRedirect = jsre(`[0-9&]?>[>|&]?\s*/dev/` + deviceNames)
)

func (s *scanner) findPattern(args []string, depth int) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-delete" {
			return "find-delete"
		}
		if a == "-exec" || a == "-execdir" || a == "-ok" || a == "-okdir" {
			end := i + 1
			for end < len(args) && args[end] != ";" && args[end] != "+" && args[end] != `\;` {
				end++
			}
			sub := args[i+1 : end]
			first := ""
			if len(sub) > 0 {
				first = sub[0]
			}
			switch basename(first) {
			case "rm", "shred", "unlink":
				return "find-delete"
			}
			if m := s.matchArgv(sub, depth+1); m != "" {
				return m
			}
			i = end
		}
	}
	return ""
}

var (
	containerObjects     = set("system", "container", "volume", "image", "network", "builder", "buildx", "pod")
	containerSubcommands = set("system", "container", "volume", "image", "network", "builder", "buildx", "pod",
		"rm", "rmi", "exec", "run", "ps", "logs", "inspect", "start", "stop",
		"restart", "kill", "pull", "push", "build", "images", "cp", "compose", "create", "top", "stats", "info", "version", "login", "tag")
)

func containerPattern(args []string) string {
	var positionals []string
	for _, a := range args {
		if !isOption(a) {
			positionals = append(positionals, a)
		}
	}
	at := -1
	for i, p := range positionals {
		if containerSubcommands[p] {
			at = i
			break
		}
	}
	if at < 0 {
		return ""
	}
	sub := positionals[at]
	next := ""
	if at+1 < len(positionals) {
		next = positionals[at+1]
	}
	removes := sub == "rm" || sub == "rmi" || (containerObjects[sub] && (next == "rm" || next == "remove"))
	forced := anyArg(args, func(a string) bool {
		return a == "--force" || (isOption(a) && !strings.HasPrefix(a, "--") && strings.Contains(a[1:], "f"))
	})
	if removes && forced {
		return "docker-rm-force"
	}
	if containerObjects[sub] && next == "prune" {
		return "docker-prune"
	}
	return ""
}

func (s *scanner) matchSQLInArgs(argv []string) string {
	for _, a := range argv {
		if m := s.matchSQL(a); m != "" {
			return m
		}
	}
	return ""
}

var (
	sqlHint         = regexp.MustCompile(`(?i)drop|truncate|delete`)
	sqlBlockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	sqlLineComment  = regexp.MustCompile(`--[^\n]*`)
	sqlDropTable    = jsre(`(?i)\bdrop\s+(temporary\s+)?table\b`)
	sqlDropDatabase = jsre(`(?i)\bdrop\s+(database|schema)\b`)
	sqlTruncate     = jsre("(?i)\\btruncate\\s+(table\\s+)?(only\\s+)?[A-Za-z_\"`\\[]")
	sqlDeleteFrom   = jsre(`(?i)\bdelete\s+from\s+\S`)
	sqlWhere        = regexp.MustCompile(`(?i)\bwhere\b`)
)

func (s *scanner) matchSQL(text string) string {
	s.spend(len(text))
	if !sqlHint.MatchString(text) {
		return ""
	}
	sql := sqlLineComment.ReplaceAllString(sqlBlockComment.ReplaceAllString(text, " "), " ")
	switch {
	case sqlDropTable.MatchString(sql):
		return "sql-drop-table"
	case sqlDropDatabase.MatchString(sql):
		return "sql-drop-database"
	case sqlTruncate.MatchString(sql):
		return "sql-truncate"
	case sqlDeleteFrom.MatchString(sql) && !sqlWhere.MatchString(sql):
		return "sql-delete-all"
	}
	return ""
}

var (
	pipeToShell = jsre(`\b(curl|wget|fetch)\b[^\n;&|]*\|\s*(sudo\s+(-\S+\s+)*)?(env\s+)?(/\S*/)?(ba|da|z|k|mk|a)?sh\b`)
	// The function-definition half of the TypeScript FORK_BOMB regex; the body half is checked by hand.
	forkBombHead = jsre(`^([A-Za-z_:][A-Za-z0-9_:]*)\s*\(\)\s*\{`)
	anySpace     = jsre(`\s`)
	ifsVariable  = regexp.MustCompile(`\$\{IFS\}|\$IFS\b`)
	prefixWords  = set("if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "time", "coproc")
	identChar    = func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == ':'
	}
)

// isForkBomb is /([A-Za-z_:][A-Za-z0-9_:]*)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&/ without a backreference: for every
// start of a name followed by `() {`, look for `name | name &` before the body's first `}`.
func isForkBomb(script string) bool {
	for start := 0; start < len(script); start++ {
		if !identChar(script[start]) || script[start] >= '0' && script[start] <= '9' {
			continue
		}
		loc := forkBombHead.FindStringSubmatchIndex(script[start:])
		if loc == nil {
			continue
		}
		name := script[start+loc[2] : start+loc[3]]
		body := script[start+loc[1]:]
		if i := strings.IndexByte(body, '}'); i >= 0 {
			body = body[:i]
		}
		q := regexp.QuoteMeta(name)
		if jsre(q + `\s*\|\s*` + q + `\s*&`).MatchString(body) {
			return true
		}
	}
	return false
}

func (s *scanner) scanScript(text string, depth int, stringsAreScripts bool) string {
	if depth > MaxDepth || text == "" {
		return ""
	}
	s.spend(len(text))
	script := ifsVariable.ReplaceAllString(text, " ")
	if deviceRedirect.MatchString(script) {
		return "device-write"
	}
	if pipeToShell.MatchString(script) {
		return "pipe-to-shell"
	}
	if strings.Contains(script, "()") && isForkBomb(script) {
		return "fork-bomb"
	}
	t := tokenizeShell(script)
	for _, words := range t.commands {
		i := 0
		for i < len(words) && (prefixWords[words[i]] || assignment.MatchString(words[i])) {
			i++
		}
		if m := s.matchArgv(words[i:], depth); m != "" {
			return m
		}
	}
	for _, sub := range t.substitutions {
		if m := s.scanScript(sub, depth+1, stringsAreScripts); m != "" {
			return m
		}
	}
	if stringsAreScripts {
		for _, q := range t.quoted {
			if !anySpace.MatchString(q) {
				continue
			}
			if m := s.scanScript(q, depth+1, true); m != "" {
				return m
			}
		}
	}
	return ""
}

type tokens struct {
	commands      [][]string
	substitutions []string
	quoted        []string
}

// tokenizeShell is a small POSIX-ish word splitter: enough to find command names and their arguments.
func tokenizeShell(text string) tokens {
	var t tokens
	var current []string
	var word strings.Builder
	inWord, skipNextWord := false, false
	endWord := func() {
		if inWord {
			if skipNextWord {
				skipNextWord = false
			} else {
				current = append(current, word.String())
			}
		}
		word.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		skipNextWord = false
		if len(current) > 0 {
			t.commands = append(t.commands, current)
		}
		current = nil
	}
	isDigits := func(s string) bool {
		if s == "" {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	i := 0
	for i < len(text) {
		ch := text[i]
		switch {
		case ch == '\\':
			if i+1 < len(text) {
				if text[i+1] == '\n' {
					i += 2
					continue
				}
				word.WriteByte(text[i+1])
				inWord = true
			}
			i += 2
			continue
		case ch == '\'':
			end := strings.IndexByte(text[i+1:], '\'')
			var body string
			if end < 0 {
				body = text[i+1:]
				i = len(text)
			} else {
				body = text[i+1 : i+1+end]
				i = i + 1 + end + 1
			}
			word.WriteString(body)
			inWord = true
			t.quoted = append(t.quoted, body)
			continue
		case ch == '"':
			var body strings.Builder
			j := i + 1
			for j < len(text) && text[j] != '"' {
				if text[j] == '\\' && j+1 < len(text) && strings.IndexByte("\"\\$`\n", text[j+1]) >= 0 {
					if text[j+1] != '\n' {
						body.WriteByte(text[j+1])
					}
					j += 2
				} else {
					body.WriteByte(text[j])
					j++
				}
			}
			b := body.String()
			word.WriteString(b)
			inWord = true
			t.quoted = append(t.quoted, b)
			if strings.Contains(b, "$(") || strings.Contains(b, "`") {
				t.substitutions = append(t.substitutions, b)
			}
			i = j + 1
			continue
		case ch == '#' && !inWord:
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				i = len(text)
			} else {
				i += end
			}
			continue
		case ch == ' ' || ch == '\t' || ch == '\r':
			endWord()
			i++
			continue
		case ch == '\n' || ch == ';' || ch == '&' || ch == '|' || ch == '(' || ch == ')' || ch == '`':
			endCommand()
			i++
			continue
		case ch == '$' && i+1 < len(text) && text[i+1] == '(':
			endCommand()
			i += 2
			continue
		case ch == '>' || ch == '<':
			if inWord && isDigits(word.String()) {
				word.Reset()
				inWord = false
			}
			endWord()
			i++
			for i < len(text) && strings.IndexByte("<>&|", text[i]) >= 0 {
				i++
			}
			skipNextWord = true
			continue
		}
		word.WriteByte(ch)
		inWord = true
		i++
	}
	endCommand()
	return t
}
