package policy

import (
	"fmt"
	"path"
	"strings"
)

// argCheck says why args do not fit a tier, or "". Messages name arguments by argv index (args[i] is argv[i+1])
// and never quote their text.
type argCheck func(args []string) string

func anyArgs([]string) string { return "" }

// denyOptions refuses options that write or run something. Long options are refused by any prefix getopt_long
// would accept (`--rot` is `--rotate`), short ones anywhere in a cluster. Unlike the TypeScript agent it does not
// stop at `--`: for GNU getopt a `--` can be the value of the option before it (`sort -T -- -o FILE`,
// `journalctl -u -- --vacuum-time=1s`), so everything is checked and a file name that looks like a denied option
// is refused too (fail closed).
func denyOptions(longs []string, shorts string) argCheck {
	return func(args []string) string {
		for i, a := range args {
			if a == "--" {
				continue
			}
			if strings.HasPrefix(a, "--") {
				name := strings.SplitN(a, "=", 2)[0]
				if len(name) > 2 {
					for _, l := range longs {
						if strings.HasPrefix(l, name) {
							return fmt.Sprintf("argument %d is option %s, which can change the system", i+1, l)
						}
					}
				}
			} else if strings.HasPrefix(a, "-") && len(a) > 1 {
				for _, ch := range a[1:] {
					if strings.ContainsRune(shorts, ch) {
						return fmt.Sprintf("argument %d holds option -%c, which can change the system", i+1, ch)
					}
				}
			}
		}
		return ""
	}
}

// onlyArgs: every argument must be one of allowed.
func onlyArgs(allowed ...string) argCheck {
	return func(args []string) string {
		for i, a := range args {
			if !contains(allowed, a) {
				return fmt.Sprintf("argument %d is not known to be read-only", i+1)
			}
		}
		return ""
	}
}

var (
	systemctlReadVerbs    = []string{"status", "is-active", "is-enabled", "is-failed", "show", "cat", "list-units", "list-unit-files", "list-timers", "list-sockets", "list-dependencies", "list-jobs", "get-default"}
	systemctlServiceVerbs = []string{"start", "stop", "restart", "reload", "try-restart", "reload-or-restart", "try-reload-or-restart", "reset-failed", "daemon-reload"}
	systemctlFlags        = []string{"--no-pager", "--plain", "-l", "--full", "-a", "--all", "-q", "--quiet", "--no-legend", "--value", "--system", "--no-block", "--no-ask-password", "--show-types", "--failed", "-r", "--recursive"}
	systemctlValueOptions = []string{"-t", "--type", "-p", "--property", "-P", "--state", "-n", "--lines", "-o", "--output"}
)

// systemctlVerbs checks systemctl by a real option grammar: the verb is the first argument that is not an option
// or an option's value; unknown options are refused (-H runs on another host, -M in a container).
func systemctlVerbs(verbs []string) argCheck {
	return func(args []string) string {
		verb := -1
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				return fmt.Sprintf("argument %d: systemctl \"--\" is not supported here", i+1)
			}
			if strings.HasPrefix(a, "--") {
				name := strings.SplitN(a, "=", 2)[0]
				if contains(systemctlFlags, a) {
					continue
				}
				if contains(systemctlValueOptions, name) {
					if !strings.Contains(a, "=") {
						i++
					}
					continue
				}
				return fmt.Sprintf("argument %d is a systemctl option not allowed in this tier", i+1)
			}
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				if contains(systemctlFlags, a) {
					continue
				}
				if contains(systemctlValueOptions, a[:2]) {
					if len(a) == 2 {
						i++
					}
					continue
				}
				all := true
				for _, ch := range a[1:] {
					if !contains(systemctlFlags, "-"+string(ch)) {
						all = false
					}
				}
				if all {
					continue
				}
				return fmt.Sprintf("argument %d is a systemctl option not allowed in this tier", i+1)
			}
			if verb < 0 {
				verb = i
			}
		}
		if verb < 0 {
			return "" // bare `systemctl` lists units
		}
		if contains(verbs, args[verb]) {
			return ""
		}
		return fmt.Sprintf("argument %d is a systemctl verb not allowed in this tier", verb+1)
	}
}

var (
	ipObjects = []string{"addr", "address", "a", "link", "l", "route", "r", "ro", "neigh", "neighbor", "neighbour", "n", "rule", "ru", "maddr", "maddress", "m"}
	ipFlags   = []string{"-4", "-6", "-s", "-stats", "-d", "-details", "-br", "-brief", "-c", "-color", "-j", "-json", "-p", "-pretty", "-o", "-oneline", "-h", "-human"}
)

// ipReadOnly: `ip [flags] OBJECT [show|list|ls|lst|get ...]` (iproute2 accepts verb prefixes: `ip a a` is add).
func ipReadOnly(args []string) string {
	i := 0
	for i < len(args) && contains(ipFlags, args[i]) {
		i++
	}
	if i == len(args) {
		return ""
	}
	if !contains(ipObjects, args[i]) {
		return fmt.Sprintf("argument %d is an ip object not allowed in this tier", i+1)
	}
	if i+1 >= len(args) || contains([]string{"show", "list", "ls", "lst", "get"}, args[i+1]) {
		return ""
	}
	return fmt.Sprintf("argument %d is an ip verb not allowed in this tier", i+2)
}

func dateReadOnly(args []string) string {
	if p := denyOptions([]string{"--set"}, "s")(args); p != "" {
		return p
	}
	for i, a := range args {
		if a != "--" && !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "+") {
			return fmt.Sprintf("argument %d is an operand, and date with an operand sets the clock", i+1)
		}
	}
	return ""
}

func findReadOnly(args []string) string {
	for i, a := range args {
		switch a {
		case "-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls":
			return fmt.Sprintf("argument %d is find %s, which can change the system", i+1, a)
		}
	}
	return ""
}

func showOnly(cmd string, verbs ...string) argCheck {
	return func(args []string) string {
		if p := denyOptions([]string{"--host", "--machine"}, "HM")(args); p != "" {
			return p
		}
		for i, a := range args {
			if !strings.HasPrefix(a, "-") && !contains(verbs, a) {
				return fmt.Sprintf("argument %d: %s can only show in this tier", i+1, cmd)
			}
		}
		return ""
	}
}

var readOnly = map[string]argCheck{
	"cat": anyArgs, "head": anyArgs, "tail": anyArgs, "ls": anyArgs, "stat": anyArgs, "wc": anyArgs, "grep": anyArgs,
	"readlink": anyArgs, "realpath": anyArgs, "md5sum": anyArgs, "sha1sum": anyArgs, "sha256sum": anyArgs,
	"sha512sum": anyArgs, "df": anyArgs, "du": anyArgs, "free": anyArgs, "uptime": anyArgs, "uname": anyArgs,
	"id": anyArgs, "whoami": anyArgs, "nproc": anyArgs, "pwd": anyArgs, "ps": anyArgs, "pgrep": anyArgs,
	"lsblk": anyArgs, "lscpu": anyArgs, "lsof": anyArgs, "findmnt": anyArgs, "w": anyArgs, "who": anyArgs,
	"last": anyArgs, "getent": anyArgs, "netstat": anyArgs, "echo": anyArgs, "printf": anyArgs, "true": anyArgs,
	"false": anyArgs, "sleep": anyArgs,
	"date": dateReadOnly,
	"hostname": onlyArgs("-a", "--alias", "-A", "--all-fqdns", "-d", "--domain", "-f", "--fqdn", "--long", "-i",
		"--ip-address", "-I", "--all-ip-addresses", "-s", "--short", "-y", "--yp", "--nis"),
	"ss":          denyOptions([]string{"--kill", "--diag"}, "KD"),
	"dmesg":       denyOptions([]string{"--clear", "--read-clear", "--console-off", "--console-on", "--console-level"}, "cCDEn"),
	"sort":        denyOptions([]string{"--output", "--compress-program"}, "o"),
	"find":        findReadOnly,
	"journalctl":  denyOptions([]string{"--rotate", "--vacuum-size", "--vacuum-time", "--vacuum-files", "--flush", "--sync", "--relinquish-var", "--smart-relinquish-var", "--setup-keys", "--update-catalog", "--cursor-file"}, ""),
	"systemctl":   systemctlVerbs(systemctlReadVerbs),
	"ip":          ipReadOnly,
	"timedatectl": showOnly("timedatectl", "status", "show", "show-timesync", "timesync-status", "list-timezones"),
	"hostnamectl": showOnly("hostnamectl", "status"),
	"nginx":       onlyArgs("-t", "-T", "-v", "-V", "-q"),
	"apachectl":   onlyArgs("-t", "configtest", "-v", "-V", "-S", "-M"),
	"apache2ctl":  onlyArgs("-t", "configtest", "-v", "-V", "-S", "-M"),
}

var standardExtra = map[string]argCheck{
	"systemctl": systemctlVerbs(append(append([]string{}, systemctlReadVerbs...), systemctlServiceVerbs...)),
	"service": func(args []string) string {
		if len(args) == 2 && contains([]string{"start", "stop", "restart", "reload", "force-reload", "try-restart", "status"}, args[1]) && !strings.HasPrefix(args[0], "-") {
			return ""
		}
		return "service takes NAME start|stop|restart|reload|force-reload|try-restart|status in this tier"
	},
	"nginx": func(args []string) string {
		if len(args) == 2 && args[0] == "-s" && (args[1] == "reload" || args[1] == "reopen") {
			return ""
		}
		return readOnly["nginx"](args)
	},
	"apachectl":  onlyArgs("-t", "configtest", "-v", "-V", "-S", "-M", "graceful", "restart", "-k", "start"),
	"apache2ctl": onlyArgs("-t", "configtest", "-v", "-V", "-S", "-M", "graceful", "restart", "-k", "start"),
}

func tierProblem(tier Tier, exe string, args []string, searchPath string) string {
	if tier == Infrastructure {
		return ""
	}
	if !systemDirs(searchPath)[path.Dir(exe)] {
		what := "read-only"
		if tier == Standard {
			what = "a service operation"
		}
		return fmt.Sprintf("%s is outside the system directories, so it is not known to be %s; it needs tier infrastructure", exe, what)
	}
	name := path.Base(exe)
	var check argCheck
	if tier == Standard {
		check = standardExtra[name]
	}
	if check == nil {
		check = readOnly[name]
	}
	if check == nil {
		return fmt.Sprintf("%s is not a %s command", name, tier)
	}
	return check(args)
}
