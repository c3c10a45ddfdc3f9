package policy

import (
	"testing"
	"time"
)

// FuzzParseAllowlist: parsing never panics or hangs, and whatever parses can be evaluated.
func FuzzParseAllowlist(f *testing.F) {
	f.Add([]byte("version: 1\ncommands:\n  - executable: echo\n    rest: any\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		start := time.Now()
		al, err := ParseAllowlist(text, "fuzz")
		if time.Since(start) > 2*time.Second {
			t.Fatal("slow parse")
		}
		if err != nil {
			if _, ok := err.(*AllowlistError); !ok {
				t.Fatalf("not an AllowlistError: %T", err)
			}
			return
		}
		for _, e := range al.Entries {
			_ = e.Describe()
		}
		_ = Evaluate([]string{"echo", "x"}, "/", Policy{Tier: Infrastructure, Allowlist: al, SearchPath: "/nonexistent"})
	})
}
