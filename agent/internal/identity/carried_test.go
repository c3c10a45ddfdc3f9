package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// Cases carried over from the TypeScript agent's test/unit/agent-identity.test.ts that identity_test.go did not
// already cover.

func TestKeysWorkAndFingerprintShape(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	first, _, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`).MatchString(again.Fingerprint) {
		t.Fatalf("fingerprint %q", again.Fingerprint)
	}
	if !ed25519.Verify(first.SignPub, []byte("m"), ed25519.Sign(again.SignPriv, []byte("m"))) {
		t.Fatal("the loaded signing key does not match the created public key")
	}
	peer := make([]byte, 32)
	_, _ = rand.Read(peer)
	peerPub, _ := curve25519.X25519(peer, curve25519.Basepoint)
	a, _ := curve25519.X25519(again.BoxSec, peerPub)
	b, _ := curve25519.X25519(peer, first.BoxPub)
	if string(a) != string(b) {
		t.Fatal("the loaded box key does not agree with the created public key")
	}
}

func TestLooseStateDirTightenedAtEnrollment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "loose")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	if _, _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}

func TestKeyReadableByGroupOrOthersRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "perm")
	if _, _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, BoxKeyFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		_ = os.Chmod(key, mode)
		if _, err := Load(dir); setupCode(err) != "insecure_permissions" {
			t.Fatalf("box key %o accepted: %v", mode, err)
		}
	}
	_ = os.Chmod(key, 0o600)
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
}

func TestNoneHalfAndDamagedIdentityToldApart(t *testing.T) {
	root := t.TempDir()
	if _, err := Load(filepath.Join(root, "none")); setupCode(err) != "not_enrolled" {
		t.Fatalf("no identity: %v", err)
	}
	half := filepath.Join(root, "half")
	if _, _, err := LoadOrCreate(half); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(half, BoxKeyFile))
	if _, err := Load(half); setupCode(err) != "corrupt_identity" {
		t.Fatalf("half an identity: %v", err)
	}
	// LoadOrCreate must not mint a new key next to the surviving one: that would silently break the pinning.
	if _, _, err := LoadOrCreate(half); setupCode(err) != "corrupt_identity" {
		t.Fatalf("LoadOrCreate on half an identity: %v", err)
	}
	damaged := filepath.Join(root, "damaged")
	if _, _, err := LoadOrCreate(damaged); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(damaged, SignKeyFile)
	raw, _ := os.ReadFile(f)
	hex := strings.TrimSpace(string(raw))
	last := "00"
	if strings.HasSuffix(hex, "00") {
		last = "01"
	}
	_ = os.WriteFile(f, []byte(hex[:len(hex)-2]+last+"\n"), 0o600)
	if _, err := Load(damaged); setupCode(err) != "corrupt_identity" {
		t.Fatalf("a key whose halves disagree: %v", err)
	}
}

func TestStateDirFlagThenEnvThenDefault(t *testing.T) {
	t.Setenv("ORCH_AGENT_HOME", "/z")
	if got := ResolveStateDir("/x/y"); got != "/x/y" {
		t.Fatal(got)
	}
	if got := ResolveStateDir(""); got != "/z" {
		t.Fatal(got)
	}
	t.Setenv("ORCH_AGENT_HOME", "")
	if got := ResolveStateDir(""); got != "/var/lib/orch-agent" {
		t.Fatal(got)
	}
}
