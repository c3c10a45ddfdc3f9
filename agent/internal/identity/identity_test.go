package identity

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func setupCode(err error) string {
	var se *SetupError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

func TestCreateLoadAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	id, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{SignKeyFile: 0o600, BoxKeyFile: 0o600, "agent-ed25519.pub": 0o644, "agent-x25519.pub": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v", name, err, st.Mode())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatal(st.Mode())
	}
	again, created, err := LoadOrCreate(dir)
	if err != nil || created || again.Fingerprint != id.Fingerprint {
		t.Fatal("identity not kept")
	}
}

func TestInsecurePermissionsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(filepath.Join(dir, SignKeyFile), 0o640)
	if _, err := Load(dir); setupCode(err) != "insecure_permissions" {
		t.Fatalf("group-readable key accepted: %v", err)
	}
	_ = os.Chmod(filepath.Join(dir, SignKeyFile), 0o600)
	_ = os.Chmod(dir, 0o777)
	if _, err := Load(dir); setupCode(err) != "insecure_permissions" {
		t.Fatalf("world-writable state dir accepted: %v", err)
	}
	_ = os.Chmod(dir, 0o700)
	f := filepath.Join(dir, "allow.yaml")
	_ = os.WriteFile(f, []byte("version: 1\n"), 0o600)
	if err := CheckOwnedAndPrivate(f, 0o022, "allowlist"); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(f, 0o666)
	if err := CheckOwnedAndPrivate(f, 0o022, "allowlist"); setupCode(err) != "insecure_permissions" {
		t.Fatal("world-writable allowlist accepted")
	}
	_ = os.WriteFile(filepath.Join(dir, SignKeyFile), []byte("zz\n"), 0o600)
	if _, err := Load(dir); setupCode(err) != "corrupt_identity" {
		t.Fatalf("corrupt key accepted: %v", err)
	}
}

func TestConfigProblems(t *testing.T) {
	if RelayURLProblem("ws://plain:80") == "" || RelayURLProblem("wss://u:p@h:1") == "" || RelayURLProblem("wss://h:1") != "" {
		t.Fatal("relay url")
	}
	if WithRelayPath("wss://h:1") != "wss://h:1/v1/relay" || WithRelayPath("wss://h:1/x") != "wss://h:1/x" {
		t.Fatal("relay path")
	}
	if PinProblem("sha256/AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=") != "" || PinProblem("x") == "" {
		t.Fatal("pin")
	}
	// the all-zero key and a small-order point are refused at enrollment
	if BoxKeyProblem("k", "0000000000000000000000000000000000000000000000000000000000000000") == "" ||
		BoxKeyProblem("k", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800") == "" {
		t.Fatal("low-order box key accepted")
	}
}
