package policy

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// ProtectedHit is an argument (by argv index; -1 is the working directory) that reaches a protected path.
type ProtectedHit struct {
	Index int
	Path  string // the protected path it reaches (after resolving symbolic links)
	Rule  string
}

func (h ProtectedHit) what() string {
	if h.Index < 0 {
		return "the working directory"
	}
	return fmt.Sprintf("argument %d", h.Index)
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
		}
	}
	return hits
}
