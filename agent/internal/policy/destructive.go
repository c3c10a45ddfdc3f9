package policy

// A faithful Go port of protocol/destructive.ts (the desktop's destructive-pattern check). Keep the two in
// step: the pattern names, wrappers, shells, interpreters and the work budget are the same, and
// protocol/vectors/destructive.json (written from the TypeScript, checked by destructive_vectors_test.go) holds
// their shared answers.
//
// Two entry points over the one scanner:
//   - DestructiveOrStateChangePattern is the desktop's check as it is: destructive and state-changing commands
//     (deletes, writes, signals, service/firewall/account/package/mount/sysctl/network changes, inline interpreter
//     side effects). It answers exactly as destructivePattern does.
//   - DestructivePattern is what tiers below infrastructure never run (policy.go): the same scan, but the
//     state-changing patterns (stateChangePatterns) do not count, so a standard agent still runs an allowlisted,
//     approved `systemctl restart nginx`. Whatever it flags, the desktop flags too.
//
// Differences forced by Go's regexp (RE2: no backreferences, no lookbehind) and by Go strings:
//   - the fork-bomb check finds the function name first and then looks for `name | name &` in that function's
//     body, which is what the TypeScript regex's backreference does;
//   - the `write` call of interpreterSideEffect checks its lookbehind (not after stdout./stderr./console.) by hand;
//   - JavaScript's \s and `.` are spelled out (jsSpace, jsDot), and the case-insensitive patterns match
//     ASCII-lowered text (JavaScript's /i without /u never folds ſ to s or K to k; RE2's (?i) does);
//   - the work budget counts bytes where TypeScript counts UTF-16 units: on non-ASCII text the Go side gives up
//     ('too-complex-to-check') a little earlier, the safe direction.

import (
	"regexp"
	"strings"
)

// MaxDepth is how deep nested shells, interpreters and find -exec are followed.
const MaxDepth = 8

// WorkBudget is the number of characters and words examined per call; past it the command is called
// destructive ('too-complex-to-check').
const WorkBudget = 4_000_000

// JavaScript's \s (ECMAScript WhiteSpace and LineTerminator), as the inside of a character class.
const jsSpaceChars = `\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}`
const jsSpace = `[` + jsSpaceChars + `]`
const jsNonSpace = `[^` + jsSpaceChars + `]`

// JavaScript's `.` (no s flag): anything but a line terminator.
const jsDot = `[^\n\r\x{2028}\x{2029}]`

// jsre compiles a JavaScript regex written with \s and \S outside character classes.
func jsre(s string) *regexp.Regexp {
	s = strings.ReplaceAll(s, `\S`, jsNonSpace)
	s = strings.ReplaceAll(s, `\s`, jsSpace)
	return regexp.MustCompile(s)
}

// asciiLower lowers A-Z only, as JavaScript's /i without /u compares.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// jsLower is JavaScript's toLowerCase where it differs from Go's ToLower on ASCII results: İ becomes i + U+0307.
func jsLower(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "\u0130", "i\u0307"))
}

// stateChangePatterns are the patterns DestructivePattern leaves out: changes a standard agent makes with an
// approval (protocol/APPROVAL.md), not what its tier never runs.
var stateChangePatterns = set("file-delete", "file-write", "file-truncate", "permission-change", "process-kill",
	"service-change", "crontab-change", "firewall-change", "account-change", "package-change", "mount-change",
	"sysctl-write", "network-change", "interpreter-side-effect")

type outOfBudget struct{}

type scanner struct {
	budget int
	// destructiveOnly: state-changing patterns do not count; the scan goes on as if they had not matched.
	destructiveOnly bool
}

func (s *scanner) spend(units int) {
	s.budget -= units
	if s.budget < 0 {
		panic(outOfBudget{})
	}
}

// found is how every pattern is reported: a state-changing one is "" when only destructive patterns count.
func (s *scanner) found(name string) string {
	if s.destructiveOnly && stateChangePatterns[name] {
		return ""
	}
	return name
}

// foundIf is found(name) when cond holds, else "".
func (s *scanner) foundIf(cond bool, name string) string {
	if !cond {
		return ""
	}
	return s.found(name)
}

// DestructiveOrStateChangePattern returns the name of the destructive or state-changing pattern argv matches, or
// "": the desktop's destructivePattern (protocol/destructive.ts), answer for answer.
func DestructiveOrStateChangePattern(argv []string) string {
	return (&scanner{budget: WorkBudget}).run(argv)
}

// DestructivePattern returns the name of the destructive pattern argv matches, or "": what a tier below
// infrastructure never runs. State-changing patterns (stateChangePatterns) are left out.
func DestructivePattern(argv []string) string {
	return (&scanner{budget: WorkBudget, destructiveOnly: true}).run(argv)
}

func (s *scanner) run(argv []string) (name string) {
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

// matchCommandAt is memoised per start index: wrappers try every later position, and wrappers can nest.
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
		"parallel", "caffeinate", "fakeroot", "sg", "catchsegv", "pkexec", "setpriv", "capsh", "numactl", "cgexec", "prlimit",
		"sshpass", "gosu", "su-exec", "tini", "dumb-init", "chpst", "eatmydata", "nocache", "faketime", "trickle", "cpulimit",
		"ip", "start-stop-daemon", "valgrind", "sudoedit")
	// Wrappers whose arguments are (also) joined into a shell command line.
	scriptWrappers = set("su", "watch", "eval", "ssh", "script", "runuser", "parallel", "sg")
	containerTools = set("docker", "podman", "nerdctl")
	kubeTools      = set("kubectl", "oc")
	shells         = set("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "yash", "fish", "csh", "tcsh", "pwsh", "powershell")
	interpreter    = regexp.MustCompile(`^(python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit|tclsh[0-9.]*|awk|gawk|mawk|nawk|osascript)$`)
	awk            = regexp.MustCompile(`^(awk|gawk|mawk|nawk)$`)
	assignment     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	// A path a wrapper may run as a command: in a bin/sbin/libexec directory, an init script, or ./NAME.
	executablePath = regexp.MustCompile(`(^|/)(s?bin|libexec|init\.d|rc\.d)/[^/]+$|^\.\.?/[^/]+$`)
	// The dynamic loader runs the program named by its first operand (`/lib64/ld-linux-x86-64.so.2 /bin/rm -rf /`).
	dynamicLoader  = regexp.MustCompile(`^ld(-linux[^/]*)?\.so`)
	initScript     = regexp.MustCompile(`^/etc/(init\.d|rc\.d)/`)
	scriptish      = regexp.MustCompile("[" + jsSpaceChars + ";&|`$()<>]")
	shellCFlag     = regexp.MustCompile(`^-[A-Za-z]*c[A-Za-z]*$`)
	shellCommand   = regexp.MustCompile(`(?i)^-(command|c)$`)
	inPlaceFlag    = regexp.MustCompile(`^-[A-Za-z]*i`)
	envSplitInline = regexp.MustCompile(`^-[A-Za-z]*S` + jsDot)
	envSplitAlone  = regexp.MustCompile(`^-[A-Za-z]*S$`)
)

func basename(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func isOption(a string) bool { return len(a) > 1 && a[0] == '-' }

// worthScanning: whether an argument may be script text. An option is not, and neither is a lone file path (`awk
// -F: '{...}' /etc/passwd` reads the file; it does not run `passwd`) unless it names an executable.
func worthScanning(a string) bool {
	if isOption(a) {
		return false
	}
	return scriptish.MatchString(a) || !strings.Contains(a, "/") || executablePath.MatchString(a)
}

func (s *scanner) matchCommand(argv []string, start, depth int, memo map[int]*string) string {
	s.spend(len(argv) - start)
	cmd := basename(argv[start])
	args := argv[start+1:]

	// `/etc/init.d/nginx stop`: the script's name says nothing, its action does.
	if initScript.MatchString(argv[start]) && anyArg(args, func(a string) bool { return a != "status" }) {
		if m := s.found("service-change"); m != "" {
			return m
		}
	}

	if m := s.matchSpecific(cmd, args, depth); m != "" {
		return m
	}

	if shells[cmd] {
		// Every non-option argument may be the -c script (`bash -o pipefail -c '...'`, `sh -ec '...'`).
		if anyArg(args, func(a string) bool { return shellCFlag.MatchString(a) || shellCommand.MatchString(a) }) {
			for _, a := range args {
				if !worthScanning(a) {
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
		// perl -i / ruby -i edit files in place (`perl -pi -e 's/a/b/' /etc/x`).
		if (strings.HasPrefix(cmd, "perl") || strings.HasPrefix(cmd, "ruby")) &&
			anyArg(args, func(a string) bool { return inPlaceFlag.MatchString(a) && !strings.HasPrefix(a, "--") }) {
			if m := s.found("file-write"); m != "" {
				return m
			}
		}
		inline := hasInlineCode(cmd, args)
		for _, a := range args {
			if !worthScanning(a) {
				continue
			}
			if m := s.scanScript(a, depth+1, true); m != "" {
				return m
			}
			// Code given on the command line that runs, deletes or writes something itself (os.system, unlink,
			// shutil.rmtree, awk's system() or print > file, ...): destructive whatever it names.
			if inline && (interpreterSideEffect(a) || awk.MatchString(cmd) && awkSideEffect.MatchString(a)) {
				if m := s.found("interpreter-side-effect"); m != "" {
					return m
				}
			}
		}
		return ""
	}

	if wrappers[cmd] || containerTools[cmd] || kubeTools[cmd] || dynamicLoader.MatchString(cmd) {
		if scriptWrappers[cmd] {
			for _, a := range args {
				if !worthScanning(a) {
					continue
				}
				if m := s.scanScript(a, depth+1, false); m != "" {
					return m
				}
			}
		}
		// `env -S 'rm -rf /'` splits its argument into a command line.
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
			// An operand such as /etc/passwd or /srv/kill is a file, not the `passwd` or `kill` command.
			if strings.Contains(a, "/") && !executablePath.MatchString(a) {
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

func allArgs(args []string, f func(string) bool) bool {
	for _, a := range args {
		if !f(a) {
			return false
		}
	}
	return true
}

func nonOptions(args []string) []string {
	var out []string
	for _, a := range args {
		if !isOption(a) {
			out = append(out, a)
		}
	}
	return out
}

func oneOf(words ...string) func(string) bool {
	m := set(words...)
	return func(a string) bool { return m[a] }
}

var (
	systemctlPower       = set("poweroff", "reboot", "halt", "kexec", "soft-reboot", "rescue", "emergency")
	systemctlPowerTarget = regexp.MustCompile(`^(poweroff|reboot|halt|kexec|soft-reboot|rescue|emergency)\.target$`)
	// systemctl verbs that change a unit or the manager (everything but status, show, cat, list-*, is-*, help).
	systemctlChange = set("start", "stop", "restart", "reload", "try-restart", "reload-or-restart", "try-reload-or-restart",
		"condrestart", "force-reload", "enable", "disable", "reenable", "mask", "unmask", "kill", "clean", "freeze", "thaw", "isolate",
		"set-default", "daemon-reload", "daemon-reexec", "link", "preset", "preset-all", "revert", "edit", "set-property",
		"set-environment", "unset-environment", "import-environment", "reset-failed", "switch-root", "suspend", "hibernate",
		"hybrid-sleep", "suspend-then-hibernate", "add-wants", "add-requires", "bind", "mount-image")
	packageVerbs = set("install", "reinstall", "remove", "purge", "autoremove", "upgrade", "full-upgrade", "dist-upgrade",
		"erase", "downgrade", "update", "add", "del", "uninstall", "refresh", "revert", "build-dep", "dup", "patch", "in", "rm", "up")
	// Files that writing to changes nothing on the server.
	harmlessTarget  = regexp.MustCompile(`^(/dev/(null|stdout|stderr|tty|fd/[0-9]+)|-)$`)
	crontabRemove   = regexp.MustCompile(`^-[A-Za-z]*r`)
	crontabUser     = regexp.MustCompile(`^-u` + jsDot)
	redisFlush      = regexp.MustCompile(`^flush(all|db)$`) // on asciiLower
	firewallCmd     = regexp.MustCompile(`^--(add|remove|change|set|reload|complete-reload|runtime-to-permanent|new|delete|lockdown|panic|load|reset|direct)`)
	dpkgChange      = regexp.MustCompile(`^(-[irP]|--(install|remove|purge|configure|unpack))$`)
	rpmChange       = regexp.MustCompile(`^(-[eiUF][A-Za-z]*|--(erase|install|upgrade|freshen))$`)
	pacmanShort     = regexp.MustCompile(`^-[SRU]`)
	pacmanLong      = regexp.MustCompile(`^--(sync|remove|upgrade)$`)
	sysctlWriteFlag = regexp.MustCompile(`^-[A-Za-z]*[wp]`)
	ipChange        = oneOf("add", "del", "delete", "set", "flush", "change", "replace", "append", "prepend", "attach", "detach")
	nmcliChange     = oneOf("down", "up", "delete", "modify", "disconnect", "off", "add", "reload")
	mountChange     = func(a string) bool {
		return !isOption(a) || a == "-a" || a == "--all" || strings.HasPrefix(a, "-o") || a == "--bind" || a == "--move"
	}
	sysctlWrite = func(a string) bool {
		return strings.Contains(a, "=") || sysctlWriteFlag.MatchString(a) || a == "--write" || a == "--load" || a == "--system"
	}
)

func (s *scanner) matchSpecific(cmd string, args []string, depth int) string {
	switch cmd {
	case "rm":
		if rmIsRecursiveOrForced(args) {
			return "rm-recursive-or-force"
		}
		return s.found("file-delete")
	case "unlink", "rmdir", "srm":
		return s.found("file-delete")
	case "truncate", "fallocate":
		return s.found("file-truncate")
	case "sed":
		if anyArg(args, func(a string) bool {
			return a == "--in-place" || strings.HasPrefix(a, "--in-place=") || inPlaceFlag.MatchString(a) && !strings.HasPrefix(a, "--")
		}) {
			return s.found("file-write")
		}
		return ""
	case "rsync":
		if anyArg(args, func(a string) bool {
			return strings.HasPrefix(a, "--delete") || strings.HasPrefix(a, "--remove-source-files")
		}) {
			return s.found("file-delete")
		}
		return s.found("file-write")
	case "scp", "sftp", "sudoedit", "patch":
		return s.found("file-write")
	case "curl":
		return s.foundIf(curlWrites(args), "file-write")
	case "wget":
		return s.foundIf(wgetWrites(args), "file-write")
	case "kill", "pkill", "killall", "killall5", "skill", "slay":
		return s.foundIf(killSignals(cmd, args), "process-kill")
	case "service", "rc-service", "invoke-rc.d":
		positionals := nonOptions(args)
		return s.foundIf(len(positionals) >= 2 && anyArg(positionals[1:], func(a string) bool { return a != "status" }), "service-change")
	case "iptables", "ip6tables", "iptables-legacy", "ip6tables-legacy", "iptables-nft", "ip6tables-nft", "ebtables", "arptables":
		return s.foundIf(iptablesWrites(args), "firewall-change")
	case "iptables-restore", "ip6tables-restore", "nft":
		if cmd == "nft" && nftReadOnly(args) {
			return ""
		}
		return s.found("firewall-change")
	case "ufw":
		first, found := "", false
		for _, a := range args {
			if !isOption(a) {
				first, found = a, true
				break
			}
		}
		if !found || oneOf("status", "version", "show", "help")(first) || first == "app" && anyArg(args, oneOf("list")) {
			return ""
		}
		return s.found("firewall-change")
	case "firewall-cmd":
		return s.foundIf(anyArg(args, firewallCmd.MatchString), "firewall-change")
	case "userdel", "useradd", "usermod", "groupadd", "groupdel", "groupmod", "chpasswd", "chgpasswd", "deluser", "adduser",
		"delgroup", "addgroup", "newusers", "gpasswd", "vipw", "vigr", "visudo":
		if len(args) == 1 && (args[0] == "--help" || args[0] == "-h" || cmd == "visudo" && args[0] == "-c") {
			return ""
		}
		return s.found("account-change")
	case "passwd":
		if anyArg(args, oneOf("-S", "--status")) {
			return ""
		}
		return s.found("account-change")
	case "chage":
		if anyArg(args, oneOf("-l", "--list")) {
			return ""
		}
		return s.found("account-change")
	case "apt", "apt-get", "aptitude", "yum", "dnf", "zypper", "apk", "snap", "pip", "pip3":
		return s.foundIf(anyArg(args, func(a string) bool { return packageVerbs[a] }), "package-change")
	case "dpkg":
		return s.foundIf(anyArg(args, dpkgChange.MatchString), "package-change")
	case "rpm":
		return s.foundIf(anyArg(args, rpmChange.MatchString), "package-change")
	case "pacman":
		return s.foundIf(anyArg(args, func(a string) bool { return pacmanShort.MatchString(a) || pacmanLong.MatchString(a) }), "package-change")
	case "umount", "swapoff", "swapon", "losetup":
		if len(args) == 0 ||
			cmd == "swapon" && allArgs(args, oneOf("--show", "-s", "--summary")) ||
			cmd == "losetup" && allArgs(args, oneOf("-a", "-l", "--list", "--all")) {
			return ""
		}
		return s.found("mount-change")
	case "mount":
		return s.foundIf(anyArg(args, mountChange), "mount-change")
	case "sysctl":
		return s.foundIf(anyArg(args, sysctlWrite), "sysctl-write")
	case "ip":
		return s.foundIf(anyArg(args, ipChange), "network-change")
	case "ifdown", "ifup":
		return s.found("network-change")
	case "ifconfig":
		return s.foundIf(len(nonOptions(args)) >= 2, "network-change")
	case "nmcli":
		return s.foundIf(anyArg(args, nmcliChange), "network-change")
	case "setfacl", "chattr":
		return s.found("permission-change")
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
		if anyArg(args, oneOf("0", "6")) {
			return "init-runlevel"
		}
		return ""
	case "systemctl":
		if anyArg(args, func(a string) bool { return systemctlPower[a] || systemctlPowerTarget.MatchString(a) }) {
			return "systemctl-power"
		}
		return s.foundIf(anyArg(args, func(a string) bool { return systemctlChange[a] }), "service-change")
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
		if anyArg(args, func(a string) bool { return jsLower(a) == "drop" }) {
			return "sql-drop-database"
		}
		return ""
	case "chmod":
		if m := chmodPattern(args); m != "" {
			return m
		}
		return s.foundIf(anyArg(args, func(a string) bool { return !isOption(a) || strings.HasPrefix(a, "--reference") }), "permission-change")
	case "chown", "chgrp":
		if hasRecursiveCapitalR(args) && anyArg(args, func(a string) bool { return !isOption(a) && isSystemPath(a) }) {
			return "chown-recursive-root"
		}
		return s.foundIf(anyArg(args, func(a string) bool { return !isOption(a) || strings.HasPrefix(a, "--reference") }), "permission-change")
	case "tee":
		files := nonOptions(args)
		if anyArg(files, blockDevice.MatchString) {
			return "device-write"
		}
		return s.foundIf(anyArg(files, func(a string) bool { return !harmlessTarget.MatchString(a) }), "file-write")
	case "cp", "mv", "ddrescue", "pv", "install", "ln", "link":
		operands := nonOptions(args)
		if len(operands) > 0 && blockDevice.MatchString(operands[len(operands)-1]) {
			return "device-write"
		}
		// pv only reads its files and writes stdout; the others write (or replace) their last operand or -t DIR.
		if cmd == "pv" {
			return ""
		}
		if len(operands) > 0 || anyArg(args, func(a string) bool {
			return strings.HasPrefix(a, "-t") || strings.HasPrefix(a, "--target-directory")
		}) {
			return s.found("file-write")
		}
		return ""
	case "find":
		return s.findPattern(args, depth)
	case "crontab":
		if anyArg(args, func(a string) bool { return crontabRemove.MatchString(a) && !strings.HasPrefix(a, "--") }) {
			return "crontab-remove"
		}
		// Only listing (-l, with -u USER) leaves the crontab as it is; a file, `-` or -e replaces it.
		for i, a := range args {
			if a != "-l" && a != "-u" && (i == 0 || args[i-1] != "-u") && !crontabUser.MatchString(a) {
				return s.found("crontab-change")
			}
		}
		return ""
	case "lvremove", "vgremove", "pvremove":
		return "lvm-remove"
	case "zfs", "zpool":
		if anyArg(args, oneOf("destroy")) {
			return "zfs-destroy"
		}
		return ""
	case "redis-cli":
		if anyArg(args, func(a string) bool { return redisFlush.MatchString(asciiLower(a)) }) {
			return "redis-flush"
		}
		return ""
	}
	if strings.HasPrefix(cmd, "mkfs.") {
		return "mkfs"
	}
	if kubeTools[cmd] && anyArg(args, oneOf("delete")) {
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

var curlShortOption = regexp.MustCompile(`^-[A-Za-z]`)

func curlWrites(args []string) bool {
	next := func(i int) (string, bool) {
		if i+1 < len(args) {
			return args[i+1], true
		}
		return "", false
	}
	for i, a := range args {
		if strings.HasPrefix(a, "--remote-name") {
			return true
		}
		if a == "--output" {
			if v, ok := next(i); !ok || v != "-" {
				return true
			}
		} else if strings.HasPrefix(a, "--output=") {
			if a != "--output=-" {
				return true
			}
		} else if curlShortOption.MatchString(a) && !strings.HasPrefix(a, "--") {
			// A short cluster: -O writes the remote name; after -o, the rest of the cluster (or the next argument) is
			// the file.
			o := strings.IndexAny(a, "oO")
			if o < 0 {
				continue
			}
			if a[o] == 'O' {
				return true
			}
			if len(a) > o+1 {
				if a[o+1:] != "-" {
					return true
				}
			} else if v, ok := next(i); !ok || v != "-" {
				return true
			}
		}
	}
	return false
}

var (
	wgetStdoutCluster = regexp.MustCompile(`^-[A-Za-z]*O-$`)
	wgetOutputCluster = regexp.MustCompile(`^-[A-Za-z]+O$`)
)

func wgetWrites(args []string) bool {
	if anyArg(args, oneOf("--spider")) {
		return false
	}
	for i, a := range args {
		if a == "--output-document=-" || a == "-O-" || wgetStdoutCluster.MatchString(a) {
			return false
		}
		if (a == "-O" || a == "--output-document" || wgetOutputCluster.MatchString(a)) && i+1 < len(args) && args[i+1] == "-" {
			return false
		}
	}
	return true
}

// killSignals: kill -l / -L (list signals), --help, --version and kill -0 (does the process exist?) send nothing.
func killSignals(cmd string, args []string) bool {
	if len(args) == 0 {
		return false
	}
	if anyArg(args, oneOf("-l", "-L", "--list", "--table", "--help", "-V", "--version")) {
		return false
	}
	if cmd == "kill" && (args[0] == "-0" || args[0] == "-s0" || args[0] == "-s" && len(args) > 1 && args[1] == "0") {
		return false
	}
	return true
}

var (
	iptablesChange = regexp.MustCompile(`^(-[AIDRFXNPZE][A-Za-z]*|--(append|insert|delete|replace|flush|delete-chain|new-chain|new|policy|zero|rename-chain))$`)
	iptablesRead   = regexp.MustCompile(`^-[A-Za-z]*[LSC]`)
	shortFileFlag  = regexp.MustCompile(`^-[A-Za-z]*f`)
)

func iptablesWrites(args []string) bool {
	if anyArg(args, iptablesChange.MatchString) {
		return true
	}
	// Without a change option it lists (-L, -S), checks (-C) or prints help; anything else is unknown: say so.
	readOnly := oneOf("--list", "--list-rules", "--check", "--help", "-h", "--version", "-V")
	return !anyArg(args, func(a string) bool {
		return iptablesRead.MatchString(a) && !strings.HasPrefix(a, "--") || readOnly(a)
	})
}

func nftReadOnly(args []string) bool {
	if anyArg(args, func(a string) bool {
		return a == "-f" || strings.HasPrefix(a, "--file") || shortFileFlag.MatchString(a) && !strings.HasPrefix(a, "--") ||
			a == "-i" || a == "--interactive"
	}) {
		return false
	}
	first := ""
	if positionals := nonOptions(args); len(positionals) > 0 {
		first = positionals[0]
	}
	return first == "list" || first == "describe" || first == "monitor" || anyArg(args, oneOf("--help", "-h", "-v", "--version"))
}

var inlineCodeFlag = regexp.MustCompile(`^-[A-Za-z]*[ceErp]`)

// hasInlineCode: interpreter options that take the program text from the next argument (or glued to them).
func hasInlineCode(cmd string, args []string) bool {
	if awk.MatchString(cmd) {
		return !anyArg(args, func(a string) bool {
			return a == "-f" || strings.HasPrefix(a, "--file") || shortFileFlag.MatchString(a) && !strings.HasPrefix(a, "--")
		})
	}
	longInline := oneOf("--eval", "--print", "--command", "--exec")
	return anyArg(args, func(a string) bool {
		return inlineCodeFlag.MatchString(a) && !strings.HasPrefix(a, "--") || longInline(strings.SplitN(a, "=", 2)[0]) || a == "eval"
	})
}

// interpreterSideEffects are the alternatives of the TypeScript INTERPRETER_SIDE_EFFECT regex but one: calls that run
// a program, delete, move, write or signal, in the interpreters' usual spellings. Deliberately broad (a false positive
// costs one approval).
var interpreterSideEffects = []*regexp.Regexp{
	regexp.MustCompile(`\b(system|exec[A-Za-z_]*|popen[0-9]?|spawn[A-Za-z_]*|subprocess|child_process|fork|shell_exec|passthru|proc_open|qx|syscall)\b`),
	regexp.MustCompile(`\b(unlink[A-Za-z]*|remove[A-Za-z]*|rmtree|rmdir|rmSync|rm_rf?|rm|rename[A-Za-z]*|kill[A-Za-z]*|chmod|chown|truncate|symlink|mkfifo|appendFile[A-Za-z]*|copyFile[A-Za-z]*|copyfile|copytree|cpSync)\b`),
	regexp.MustCompile(`\b(os\.replace|shutil\.(move|copy[a-z0-9]*))\b`),
	jsre(`\bopen\s*\([^)]*,\s*['"][^'"]*[wax+]`),
	jsre(`\bopen\s*\(?\s*[A-Za-z_$]*\s*,?\s*['"]\s*\+?[>|]`),
	regexp.MustCompile(`\bFile\.(write|open|delete)`),
	regexp.MustCompile(`\b(eval|__import__|importlib|ctypes)\b`),
	regexp.MustCompile(`\b(Deno\.(run|Command)|Bun\.spawn)\b`),
	regexp.MustCompile("`"),
}

// The remaining alternative, `(?<!(stdout|stderr|console|STDOUT|STDERR)\.)\b(write[A-Za-z_]*|syswrite)\b`: RE2 has
// no lookbehind, so each match (a whole word) is checked for what stands before it.
var (
	writeCall      = regexp.MustCompile(`\b(write[A-Za-z_]*|syswrite)\b`)
	writeToConsole = []string{"stdout.", "stderr.", "console.", "STDOUT.", "STDERR."}
)

func interpreterSideEffect(code string) bool {
	for _, re := range interpreterSideEffects {
		if re.MatchString(code) {
			return true
		}
	}
	for _, loc := range writeCall.FindAllStringIndex(code, -1) {
		before := code[:loc[0]]
		console := false
		for _, p := range writeToConsole {
			if strings.HasSuffix(before, p) {
				console = true
			}
		}
		if !console {
			return true
		}
	}
	return false
}

// awkSideEffect: system(), print/printf > file or | command, getline from a command, |& coprocess.
var awkSideEffect = jsre(`\bsystem\s*\(|\bprintf?\b[^;{}]*(>|\|)|\|\s*getline|\|&|\bclose\s*\(`)

// JavaScript's /[0-9=].*$/ (jsDot: `.` stops at line terminators).
var digitOrEqualsTail = regexp.MustCompile(`[0-9=]` + jsDot + `*$`)

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
			rest := a[1:]
			if loc := digitOrEqualsTail.FindStringIndex(rest); loc != nil {
				rest = rest[:loc[0]]
			}
			for _, ch := range rest {
				names = append(names, "-"+string(ch))
			}
		}
	}
	return names
}

type partitionTool struct {
	readOnly  map[string]bool // options that never write
	exitModes map[string]bool // options that do one read-only thing and exit; nil means any
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
	positionals := nonOptions(args)
	if len(positionals) <= 1 {
		return true // `parted /dev/sda` alone is interactive: anything can be typed at it
	}
	for _, c := range positionals[1:] {
		if !partedReadOnlyWords[jsLower(c)] {
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

// isSystemPath: `/`, `//`, `/./`, `/etc/`, `/usr/.` all count; `/etc/app` does not.
func isSystemPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return true // `/tmp/../` walks back to the root; be conservative
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
	operands := nonOptions(args)
	if len(operands) > 1 && anyArg(operands[1:], isSystemPath) {
		return "chmod-recursive-root"
	}
	// With --reference there is no mode operand; otherwise the first operand is the mode.
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
		if a == "-fprint" || a == "-fprint0" || a == "-fprintf" || a == "-fls" {
			if m := s.found("file-write"); m != "" {
				return m
			}
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
	positionals := nonOptions(args)
	// The subcommand is the first known word: `docker exec web rm -rf /data` is an exec, checked as a wrapper.
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

// matchSQLInArgs checks SQL in every element: psql -c, mysql -e, sqlite3 DB "...", clickhouse --query, ...
func (s *scanner) matchSQLInArgs(argv []string) string {
	for _, a := range argv {
		if m := s.matchSQL(a); m != "" {
			return m
		}
	}
	return ""
}

// The SQL patterns are case-insensitive in TypeScript; here they match asciiLower'd text.
var (
	sqlBlockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	sqlLineComment  = regexp.MustCompile(`--[^\n]*`)
	sqlDropTable    = jsre(`\bdrop\s+(temporary\s+)?table\b`)
	sqlDropDatabase = jsre(`\bdrop\s+(database|schema)\b`)
	sqlTruncate     = jsre("\\btruncate\\s+(table\\s+)?(only\\s+)?[a-z_\"`\\[]")
	sqlDeleteFrom   = jsre(`\bdelete\s+from\s+\S`)
	sqlWhere        = regexp.MustCompile(`\bwhere\b`)
)

func (s *scanner) matchSQL(text string) string {
	s.spend(len(text))
	lower := asciiLower(text)
	if !strings.Contains(lower, "drop") && !strings.Contains(lower, "truncate") && !strings.Contains(lower, "delete") {
		return ""
	}
	sql := sqlLineComment.ReplaceAllString(sqlBlockComment.ReplaceAllString(lower, " "), " ")
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
	// Words that start a compound command or prefix a simple one; skipped to find the command name.
	prefixWords = set("if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "time", "coproc")
	identChar   = func(c byte) bool {
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

// scanScript checks a shell script (or interpreter code). stringsAreScripts: for interpreter code, each quoted
// string with a space in it is also checked as a script, since such strings are what code hands to system().
func (s *scanner) scanScript(text string, depth int, stringsAreScripts bool) string {
	if depth > MaxDepth || text == "" {
		return ""
	}
	s.spend(len(text))
	// The literal checks in front of the regexes are only shortcuts (each regex needs its literal): RE2 runs these
	// patterns over the whole text on every nesting level, which is most of the cost of a budget's worth of text.
	script := text
	if strings.Contains(text, "IFS") {
		script = ifsVariable.ReplaceAllString(text, " ")
	}
	if strings.Contains(script, "/dev/") && deviceRedirect.MatchString(script) {
		return "device-write"
	}
	if (strings.Contains(script, "curl") || strings.Contains(script, "wget") || strings.Contains(script, "fetch")) && pipeToShell.MatchString(script) {
		return "pipe-to-shell"
	}
	if strings.Contains(script, "()") && isForkBomb(script) {
		return "fork-bomb"
	}
	t := tokenizeShell(script)
	if anyArg(t.redirects, func(target string) bool { return !harmlessTarget.MatchString(target) }) {
		if m := s.found("file-write"); m != "" {
			return m
		}
	}
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
	commands [][]string
	// Double-quoted words holding `$(...)` or backquotes: their commands run too.
	substitutions []string
	// Contents of every quoted string.
	quoted []string
	// Targets of output redirections (`> f`, `>> f`, `&> f`, `>| f`), not fd duplications (`2>&1`).
	redirects []string
}

// tokenizeShell is a small POSIX-ish word splitter: enough to find command names and their arguments, not a full
// parser.
func tokenizeShell(text string) tokens {
	var t tokens
	var current []string
	var word strings.Builder
	inWord, skipNextWord := false, false
	// The operator of the redirection whose target is the next word ("" for input).
	redirectOp := ""
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
	endWord := func() {
		if inWord {
			w := word.String()
			if skipNextWord {
				skipNextWord = false
				// `>&2`, `2>&1`, `>&-` duplicate or close a descriptor; any other output target is a file.
				if strings.Contains(redirectOp, ">") && !(strings.HasSuffix(redirectOp, "&") && (isDigits(w) || w == "-")) {
					t.redirects = append(t.redirects, w)
				}
			} else {
				current = append(current, w)
			}
		}
		word.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		skipNextWord = false
		redirectOp = ""
		if len(current) > 0 {
			t.commands = append(t.commands, current)
		}
		current = nil
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
			// A file descriptor number glued to the operator (`2>`) is not an argument; the next word is the target.
			if inWord && isDigits(word.String()) {
				word.Reset()
				inWord = false
			}
			endWord()
			opStart := i
			i++
			for i < len(text) && strings.IndexByte("<>&|", text[i]) >= 0 {
				i++
			}
			op := text[opStart:i]
			// `<<`, `<<<` (here-documents and strings) and `<` read; `>`, `>>`, `>|`, `<>` write.
			if strings.HasPrefix(op, "<") && !strings.HasPrefix(op, "<>") {
				redirectOp = ""
			} else {
				redirectOp = op
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
