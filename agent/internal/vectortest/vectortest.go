// Package vectortest reads the known-answer vectors in protocol/vectors for the agent's tests: the agent checks
// itself against the same files as the TypeScript side. Test code only.
package vectortest

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Party is one key holder of the envelope and join vectors: an Ed25519 seed and a X25519 secret, with their public
// keys, all hex.
type Party struct {
	SignSeed   string `json:"sign_seed"`
	SignPublic string `json:"sign_public"`
	BoxSecret  string `json:"box_secret"`
	BoxPublic  string `json:"box_public"`
}

// Dir is protocol/vectors, found from the working directory upwards (go test runs in the package's directory),
// or "" when there is none.
func Dir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		candidate := filepath.Join(dir, "protocol", "vectors")
		if st, err := os.Stat(candidate); err == nil && st.IsDir() {
			return candidate
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Read decodes protocol/vectors/NAME into v, or says why it cannot.
func Read(name string, v any) error {
	dir := Dir()
	if dir == "" {
		return os.ErrNotExist
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// Load decodes protocol/vectors/NAME into a T and fails the test if it cannot.
func Load[T any](t testing.TB, name string) T {
	t.Helper()
	var v T
	if err := Read(name, &v); err != nil {
		t.Fatalf("vectors %s: %v", name, err)
	}
	return v
}

// Hex decodes a hex string of a vector file and fails the test if it is not hex.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}
