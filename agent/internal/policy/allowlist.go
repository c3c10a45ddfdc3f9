package policy

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"orch/agent/internal/messages"
)

// Tier is the security tier of an agent.
type Tier string

const (
	ReadOnly       Tier = "read-only"
	Standard       Tier = "standard"
	Infrastructure Tier = "infrastructure"
)

// Tiers in order, lowest first.
var Tiers = []Tier{ReadOnly, Standard, Infrastructure}

// ParseTier returns the tier named s.
func ParseTier(s string) (Tier, bool) {
	for _, t := range Tiers {
		if string(t) == s {
			return t, true
		}
	}
	return "", false
}

func tierRank(t Tier) int {
	for i, x := range Tiers {
		if x == t {
			return i
		}
	}
	return 0
}

// Stricter returns the lower of two tiers; b == "" means none.
func Stricter(a, b Tier) Tier {
	if b == "" || tierRank(a) <= tierRank(b) {
		return a
	}
	return b
}

// PatternKind says what an argument pattern matches.
type PatternKind int

const (
	PatternExact PatternKind = iota
	PatternRegex
	PatternPath
	PatternAny
)

// Pattern is one allowlist argument pattern.
type Pattern struct {
	Kind   PatternKind
	Text   string // exact text, regex source or directory
	regex  *regexp.Regexp
	String string
}

// Entry is one allowlist entry.
type Entry struct {
	Executable string
	Args       []Pattern
	Rest       *Pattern
	Cwd        []string
}

// Allowlist is a parsed allowlist file.
type Allowlist struct {
	Tier    Tier
	Entries []Entry
}

// AllowlistError names the bad field; the agent will not start with one.
type AllowlistError struct{ Msg string }

func (e *AllowlistError) Error() string { return e.Msg }

func isCleanAbsolute(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > messages.MaxPathLength || strings.ContainsRune(p, 0) {
		return false
	}
	for _, s := range strings.Split(p, "/") {
		if s == "." || s == ".." {
			return false
		}
	}
	return true
}

// ParseAllowlist parses allowlist text (YAML, which includes JSON); source names the file in errors.
func ParseAllowlist(text []byte, source string) (al *Allowlist, err error) {
	bad := func(where, why string) error {
		return &AllowlistError{Msg: fmt.Sprintf("%s: %s: %s", source, where, why)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		first := strings.SplitN(err.Error(), "\n", 2)[0]
		return nil, &AllowlistError{Msg: fmt.Sprintf("%s: not valid YAML/JSON: %s", source, first)}
	}
	if len(doc.Content) == 0 {
		return &Allowlist{}, nil
	}
	if hasAlias(&doc) {
		return nil, &AllowlistError{Msg: fmt.Sprintf("%s: not valid YAML/JSON: aliases are not allowed", source)}
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return &Allowlist{}, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, bad("top level", "must be a mapping with `version` and `commands`")
	}
	fields, dup := mapping(top)
	if dup != "" {
		return nil, bad(dup, "duplicate key")
	}
	for _, k := range fields.keys {
		if k != "version" && k != "tier" && k != "commands" {
			return nil, bad(k, "unknown field")
		}
	}
	if v := fields.m["version"]; v == nil || v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Value != "1" {
		return nil, bad("version", "must be 1")
	}
	out := &Allowlist{}
	if v := fields.m["tier"]; v != nil {
		t, ok := ParseTier(v.Value)
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || !ok {
			return nil, bad("tier", "must be one of read-only, standard, infrastructure")
		}
		out.Tier = t
	}
	cmds := fields.m["commands"]
	if cmds == nil || (cmds.Kind == yaml.ScalarNode && cmds.Tag == "!!null") {
		return out, nil
	}
	if cmds.Kind != yaml.SequenceNode {
		return nil, bad("commands", "must be a list")
	}
	for i, raw := range cmds.Content {
		at := fmt.Sprintf("commands[%d]", i)
		if raw.Kind != yaml.MappingNode {
			return nil, bad(at, "must be a mapping")
		}
		e, dup := mapping(raw)
		if dup != "" {
			return nil, bad(at+"."+dup, "duplicate key")
		}
		for _, k := range e.keys {
			if k != "executable" && k != "args" && k != "rest" && k != "cwd" {
				return nil, bad(at+"."+k, "unknown field")
			}
		}
		exeNode := e.m["executable"]
		if exeNode == nil || exeNode.Kind != yaml.ScalarNode || exeNode.Tag != "!!str" || exeNode.Value == "" ||
			len(exeNode.Value) > messages.MaxPathLength || strings.ContainsRune(exeNode.Value, 0) {
			return nil, bad(at+".executable", "must be a non-empty string")
		}
		exe := exeNode.Value
		if !strings.HasPrefix(exe, "/") && strings.Contains(exe, "/") {
			return nil, bad(at+".executable", "must be a bare name or an absolute path")
		}
		if strings.HasPrefix(exe, "/") && !isCleanAbsolute(exe) {
			return nil, bad(at+".executable", "must not contain . or .. segments")
		}
		entry := Entry{Executable: exe}
		if a := e.m["args"]; a != nil && !(a.Kind == yaml.ScalarNode && a.Tag == "!!null") {
			if a.Kind != yaml.SequenceNode {
				return nil, bad(at+".args", "must be a list of patterns")
			}
			for j, p := range a.Content {
				pat, err := parsePattern(p)
				if err != "" {
					return nil, bad(fmt.Sprintf("%s.args[%d]", at, j), err)
				}
				entry.Args = append(entry.Args, pat)
			}
		} else if a != nil {
			return nil, bad(at+".args", "must be a list of patterns")
		}
		if r := e.m["rest"]; r != nil {
			pat, err := parsePattern(r)
			if err != "" {
				return nil, bad(at+".rest", err)
			}
			entry.Rest = &pat
		}
		if c := e.m["cwd"]; c != nil {
			if c.Kind != yaml.SequenceNode {
				return nil, bad(at+".cwd", "must be a list of absolute paths without . or .. segments")
			}
			for _, d := range c.Content {
				if d.Kind != yaml.ScalarNode || d.Tag != "!!str" || !isCleanAbsolute(d.Value) {
					return nil, bad(at+".cwd", "must be a list of absolute paths without . or .. segments")
				}
				entry.Cwd = append(entry.Cwd, path.Clean(d.Value))
			}
		}
		out.Entries = append(out.Entries, entry)
	}
	return out, nil
}

func hasAlias(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c) {
			return true
		}
	}
	return false
}

type fieldMap struct {
	keys []string
	m    map[string]*yaml.Node
}

func mapping(n *yaml.Node) (fieldMap, string) {
	f := fieldMap{m: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if _, seen := f.m[k]; seen {
			return f, k
		}
		f.keys = append(f.keys, k)
		f.m[k] = n.Content[i+1]
	}
	return f, ""
}

const patternHelp = "a pattern is a string, { regex: R }, { path: DIR } or any"

func parsePattern(p *yaml.Node) (Pattern, string) {
	switch p.Kind {
	case yaml.ScalarNode:
		switch p.Tag {
		case "!!str":
			if p.Value == "any" {
				return Pattern{Kind: PatternAny, String: "any"}, ""
			}
			return Pattern{Kind: PatternExact, Text: p.Value, String: strconv.Quote(p.Value)}, ""
		case "!!int", "!!float":
			// JavaScript's String(number), for the numbers people write in allowlists.
			f, err := strconv.ParseFloat(strings.ReplaceAll(p.Value, "_", ""), 64)
			if err != nil {
				return Pattern{}, patternHelp
			}
			s := strconv.FormatFloat(f, 'f', -1, 64)
			return Pattern{Kind: PatternExact, Text: s, String: strconv.Quote(s)}, ""
		}
		return Pattern{}, patternHelp
	case yaml.MappingNode:
		f, dup := mapping(p)
		if dup != "" || len(f.keys) != 1 {
			return Pattern{}, patternHelp
		}
		v := f.m[f.keys[0]]
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
			return Pattern{}, patternHelp
		}
		switch f.keys[0] {
		case "regex":
			re, err := regexp.Compile(`^(?:` + v.Value + `)$`)
			if err != nil {
				return Pattern{}, "invalid regex (RE2 syntax): " + strings.TrimPrefix(err.Error(), "error parsing regexp: ")
			}
			return Pattern{Kind: PatternRegex, Text: v.Value, regex: re, String: "/" + v.Value + "/"}, ""
		case "path":
			if !isCleanAbsolute(v.Value) {
				return Pattern{}, "path must be an absolute directory without . or .. segments"
			}
			c := path.Clean(v.Value)
			return Pattern{Kind: PatternPath, Text: c, String: "a path inside " + c}, ""
		}
	}
	return Pattern{}, patternHelp
}

// LoadAllowlistFile reads and parses an allowlist file after the ownership and permission check.
func LoadAllowlistFile(file string, check func(file string) error) (*Allowlist, error) {
	if _, err := os.Lstat(file); err != nil {
		return nil, &AllowlistError{Msg: fmt.Sprintf("allowlist %s does not exist; write one (see agent/README.md) or enroll with --allow FILE", file)}
	}
	if check != nil {
		if err := check(file); err != nil {
			return nil, err
		}
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, &AllowlistError{Msg: fmt.Sprintf("allowlist %s: cannot read it: %v", file, err)}
	}
	return ParseAllowlist(text, file)
}

// Describe says in words what an entry allows (for `orch-agent check-allowlist`).
func (e Entry) Describe() string {
	var b strings.Builder
	if strings.HasPrefix(e.Executable, "/") {
		fmt.Fprintf(&b, "run %s", e.Executable)
	} else {
		fmt.Fprintf(&b, "run %s (looked up in %s)", e.Executable, SafePath)
	}
	if len(e.Args) == 0 && e.Rest == nil {
		b.WriteString(" with no arguments")
	}
	for i, p := range e.Args {
		fmt.Fprintf(&b, "; argument %d: %s", i+1, p.String)
	}
	if e.Rest != nil {
		if e.Rest.Kind == PatternAny {
			b.WriteString("; then any further arguments")
		} else {
			fmt.Fprintf(&b, "; then any number of further arguments, each %s", e.Rest.String)
		}
	} else if len(e.Args) > 0 {
		fmt.Fprintf(&b, "; exactly %d argument(s)", len(e.Args))
	}
	if len(e.Cwd) > 0 {
		fmt.Fprintf(&b, "; only in %s", strings.Join(e.Cwd, ", "))
	}
	return b.String()
}
