package policy

// ClearsReadOnly is the agent's own read-only check (protocol/APPROVAL.md "The agent's rule"): the resolved
// executable with these arguments passes the read-only tier's check (a system directory, a known read-only tool,
// its read-only argument rules) and matches none of the desktop's destructive or state-changing patterns
// (DestructiveOrStateChangePattern, checked against protocol/vectors/destructive.json). A standard or infrastructure agent runs a
// command that this does not clear only with a valid approval attestation. exe is Decision.Executable.
func ClearsReadOnly(exe string, args []string, searchPath string) bool {
	if searchPath == "" {
		searchPath = SafePath
	}
	if DestructiveOrStateChangePattern(append([]string{exe}, args...)) != "" {
		return false
	}
	return tierProblem(ReadOnly, exe, args, searchPath) == ""
}
