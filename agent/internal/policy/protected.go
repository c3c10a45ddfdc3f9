package policy

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ProtectedHit is an argument (by argv index; -1 is the working directory) that reaches a protected path.
type ProtectedHit struct {
	Index int
	Path  string // the protected path it reaches (after resolving symbolic links)
	Rule  string
	// Contains: the argument is a directory above Path, given to a tool that walks the whole tree under it.
	Contains bool
}

func (h ProtectedHit) what() string {
	if h.Index < 0 {
		return "the working directory"
	}
	return fmt.Sprintf("argument %d", h.Index)
}

// describe says how the argument reaches the protected path, without quoting the argument.
func (h ProtectedHit) describe() string {
	if h.Contains {
		return fmt.Sprintf("%s is a directory above %s, given to a tool that walks it", h.what(), h.Path)
	}
	return fmt.Sprintf("%s is inside %s", h.what(), h.Path)
}

// walksTree reports whether the command reads, copies or changes everything under a directory it is given
// (`grep -r /root` reads /root/.aws/credentials; `tar -c /etc` copies /etc/shadow), so that a directory above a
// protected path is as good as the path itself for it.
func walksTree(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	flag := func(long []string, short string) bool {
		for i, a := range argv[1:] {
			if a == "--" {
				return false
			}
			for _, l := range long {
				if a == l || strings.HasPrefix(a, l+"=") {
					return true
				}
			}
			if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.ContainsAny(a[1:], short) {
				return true
			}
			if a == "-d" && i+2 < len(argv) && argv[i+2] == "recurse" {
				return true
			}
		}
		return false
	}
	switch path.Base(argv[0]) {
	case "find", "tar", "zip", "rsync", "scp", "rgrep", "cpio", "bsdtar":
		return true
	case "grep", "egrep", "fgrep", "zgrep":
		return flag([]string{"--recursive", "--dereference-recursive", "--directories"}, "rR")
	case "cp":
		return flag([]string{"--recursive", "--archive"}, "rRa")
	case "chmod", "chown", "chgrp", "setfacl", "rm":
		return flag([]string{"--recursive"}, "rR")
	}
	return false
}

// homes are the users' home directories: /root, /home/*, and those /etc/passwd names.
func homes() []string {
	seen := map[string]bool{"/root": true}
	out := []string{"/root"}
	add := func(h string) {
		h = path.Clean(h)
		if h != "/" && strings.HasPrefix(h, "/") && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	if entries, err := os.ReadDir("/home"); err == nil {
		for _, e := range entries {
			add("/home/" + e.Name())
		}
	}
	if f, err := os.Open("/etc/passwd"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Split(sc.Text(), ":"); len(fields) >= 6 {
				add(fields[5])
			}
		}
	}
	return out
}

// protectedRoots are the protected locations a tree-walking tool could reach from a directory above them.
func protectedRoots(stateDirs []string) []string {
	roots := []string{"/etc/shadow", "/etc/gshadow", "/etc/ssh"}
	for _, sd := range stateDirs {
		if sd != "" {
			roots = append(roots, path.Clean(sd))
		}
	}
	for _, h := range homes() {
		for _, rel := range []string{".ssh", ".aws", ".azure", ".config/gcloud", ".kube/config", ".docker/config.json", ".netrc", ".git-credentials"} {
			roots = append(roots, path.Join(h, rel))
			if r := resolve(path.Join(h, rel), 0); r != path.Join(h, rel) {
				roots = append(roots, r)
			}
		}
	}
	return roots
}

// above returns the first protected root strictly below dir (dir itself resolved), or "".
func above(dir string, roots []string) string {
	for _, r := range roots {
		if dir == "/" || strings.HasPrefix(r, dir+"/") {
			return r
		}
	}
	return ""
}

// Protected path rules (issue 12): in every tier, commands may not read or write these, unless the allowlist entry
// that allows the command names that exact path as an exact-string argument.
//
//	agent-state        the agent's own state directory (keys, ledger, replay window, config)
//	ssh-host-key       ssh_host_*_key (private host keys)
//	ssh-private-key    anything in a .ssh directory except *.pub, known_hosts*, authorized_keys*, config
//	shadow             /etc/shadow, /etc/gshadow and their `-` backups
//	cloud-credentials  .aws/, .config/gcloud/, .azure/ of any user
//	tool-credentials   .kube/config, .docker/config.json, .netrc, .git-credentials of any user
func protectedRule(p, stateDir string) string {
	if stateDir != "" && inside(stateDir, p) {
		return "agent-state"
	}
	base := path.Base(p)
	dir := path.Dir(p)
	switch p {
	case "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-":
		return "shadow"
	}
	if strings.HasPrefix(base, "ssh_host_") && strings.HasSuffix(base, "_key") {
		return "ssh-host-key"
	}
	if path.Base(dir) == ".ssh" && !strings.HasSuffix(base, ".pub") && !strings.HasPrefix(base, "known_hosts") &&
		!strings.HasPrefix(base, "authorized_keys") && base != "config" {
		return "ssh-private-key"
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		switch {
		case s == ".aws" || s == ".azure":
			return "cloud-credentials"
		case s == ".config" && i+1 < len(segs) && segs[i+1] == "gcloud":
			return "cloud-credentials"
		case s == ".kube" && i+1 < len(segs) && segs[i+1] == "config":
			return "tool-credentials"
		case s == ".docker" && i+1 < len(segs) && segs[i+1] == "config.json":
			return "tool-credentials"
		case s == ".netrc" || s == ".git-credentials":
			return "tool-credentials"
		}
	}
	return ""
}

// resolve follows symbolic links in p as the kernel would; for a path that does not exist (yet) it resolves the
// longest existing prefix and appends the rest.
func resolve(p string, depth int) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	i := strings.LastIndexByte(p, '/')
	if i < 0 || depth > 64 {
		return path.Clean(p)
	}
	parent, base := p[:i], p[i+1:]
	if parent == "" {
		parent = "/"
	}
	rp := resolve(parent, depth+1)
	switch base {
	case "", ".":
		return rp
	case "..":
		return path.Dir(rp)
	}
	return path.Join(rp, base)
}

// pathCandidates are the strings in an argument that may name a file: the argument itself, the value after the
// first `=` (`--file=/x`, `of=/x`), and for a short option cluster the part from its first `/` (`-f/x`).
func pathCandidates(a string) []string {
	out := []string{a}
	if i := strings.IndexByte(a, '='); i >= 0 && i+1 < len(a) {
		out = append(out, a[i+1:])
	}
	if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") {
		if i := strings.IndexByte(a, '/'); i > 0 {
			out = append(out, a[i:])
		}
	}
	return out
}

// ProtectedArgs checks every path-like argument (and the working directory), relative ones against cwd, both as
// written and after resolving symbolic links.
func ProtectedArgs(argv []string, cwd, stateDir string) []ProtectedHit {
	realState := ""
	if stateDir != "" {
		realState = resolve(path.Clean(stateDir), 0)
	}
	check := func(p string) (string, string) {
		for _, c := range []string{path.Clean(p), resolve(p, 0)} {
			for _, sd := range []string{stateDir, realState} {
				if r := protectedRule(c, path.Clean(sd)); r != "" {
					if sd == "" && r == "agent-state" {
						continue
					}
					return c, r
				}
			}
		}
		return "", ""
	}
	var hits []ProtectedHit
	if at, r := check(cwd); r != "" {
		hits = append(hits, ProtectedHit{Index: -1, Path: at, Rule: r})
	}
	var roots []string
	walker := walksTree(argv)
	if walker {
		roots = protectedRoots([]string{stateDir, realState})
	}
	for i, a := range argv {
		for _, c := range pathCandidates(a) {
			if c == "" || c == "--" {
				continue
			}
			p := c
			if !strings.HasPrefix(p, "/") {
				p = path.Join(cwd, p)
			}
			if at, r := check(p); r != "" {
				hits = append(hits, ProtectedHit{Index: i, Path: at, Rule: r})
				break
			}
			// A directory above a protected path, for a tool that walks the tree under it. Only for arguments that
			// exist as directories: an option value or a pattern is not a tree to walk.
			if walker && i > 0 {
				for _, cand := range []string{path.Clean(p), resolve(p, 0)} {
					if st, err := os.Stat(cand); err == nil && st.IsDir() {
						if r := above(cand, roots); r != "" {
							hits = append(hits, ProtectedHit{Index: i, Path: r, Rule: "protected-subtree", Contains: true})
							break
						}
					}
				}
				if len(hits) > 0 && hits[len(hits)-1].Index == i {
					break
				}
			}
		}
	}
	return hits
}
