package policy

// The desktop's answers (protocol/vectors/destructive.json, written by protocol/vectors/generate-destructive-vectors.ts
// from protocol/destructive.ts): the Go port must give every one of them.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"orch/agent/internal/vectortest"
)

type destructiveVector struct {
	Argv    []string `json:"argv"`
	Flagged bool     `json:"flagged"`
	Rule    string   `json:"rule"`
}

func loadDestructiveVectors(t *testing.T) []destructiveVector {
	t.Helper()
	var vs []destructiveVector
	if err := vectortest.Read("destructive.json", &vs); err != nil {
		t.Fatalf("destructive vectors: %v (run npx tsx protocol/vectors/generate-destructive-vectors.ts)", err)
	}
	if len(vs) < 1000 {
		t.Fatalf("destructive vectors: only %d entries", len(vs))
	}
	return vs
}

// short keeps a failure message readable when an argv is kilobytes long.
func short(argv []string) string {
	b, _ := json.Marshal(argv)
	if len(b) > 300 {
		return fmt.Sprintf("%s... (%d bytes)", b[:300], len(b))
	}
	return string(b)
}

func reportDisagreements(t *testing.T, what string, disagreements []string, total int) {
	t.Helper()
	if len(disagreements) == 0 {
		return
	}
	shown := disagreements
	if len(shown) > 20 {
		shown = shown[:20]
	}
	t.Errorf("%s: %d of %d vectors disagree; the first %d:\n%s", what, len(disagreements), total, len(shown), strings.Join(shown, "\n"))
}

// TestDestructiveVectors: DestructiveOrStateChangePattern flags what the desktop flags, with the same pattern name.
func TestDestructiveVectors(t *testing.T) {
	vs := loadDestructiveVectors(t)
	var disagreements []string
	for _, v := range vs {
		got := DestructiveOrStateChangePattern(v.Argv)
		if (got != "") != v.Flagged || got != v.Rule {
			disagreements = append(disagreements, fmt.Sprintf("  %s: desktop %q (flagged %v), agent %q", short(v.Argv), v.Rule, v.Flagged, got))
		}
	}
	reportDisagreements(t, "DestructiveOrStateChangePattern", disagreements, len(vs))
}

// TestDestructivePatternIsTheDestructiveSubset: DestructivePattern (what tiers below infrastructure never run) is the
// same scan with the state-changing patterns left out. Where the desktop's answer is not a state change, it is the
// same answer; whatever it flags, the desktop flags.
func TestDestructivePatternIsTheDestructiveSubset(t *testing.T) {
	vs := loadDestructiveVectors(t)
	var disagreements []string
	for _, v := range vs {
		got := DestructivePattern(v.Argv)
		switch {
		case got != "" && stateChangePatterns[got]:
			disagreements = append(disagreements, fmt.Sprintf("  %s: returned the state-changing %q", short(v.Argv), got))
		case got != "" && !v.Flagged:
			disagreements = append(disagreements, fmt.Sprintf("  %s: %q, but the desktop does not flag it", short(v.Argv), got))
		case v.Flagged && !stateChangePatterns[v.Rule] && got != v.Rule:
			disagreements = append(disagreements, fmt.Sprintf("  %s: desktop %q, agent %q", short(v.Argv), v.Rule, got))
		}
	}
	reportDisagreements(t, "DestructivePattern", disagreements, len(vs))
}
