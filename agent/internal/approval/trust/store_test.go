package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	if len(s.Keys("acme")) != 0 {
		t.Fatal("a fresh store trusts keys")
	}
	if err := s.Update("acme", 2, []string{k2, k1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		version int64
		keys    []string
		want    error
	}{{2, []string{k1}, ErrStale}, {1, []string{k1}, ErrStale}} {
		if err := s.Update("acme", c.version, c.keys); !errors.Is(err, c.want) {
			t.Fatalf("update to version %d: %v, want %v", c.version, err, c.want)
		}
	}
	for _, bad := range [][]string{{"AA"}, {strings.Repeat("A", 64)}, {k1, k1}} {
		if err := s.Update("acme", 9, bad); err == nil {
			t.Fatalf("keys %v accepted", bad)
		}
	}
	if err := s.Update("../x", 9, nil); err == nil {
		t.Fatal("a bad tenant name was accepted")
	}
	if err := s.Update("other", 1, []string{k1}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, StoreFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("approvers.json mode %v (%v)", st.Mode().Perm(), err)
	}
	// Reopened: the same keys and versions, so an older update stays refused after a restart.
	s2, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Keys("acme"); len(got) != 2 || got[0] != k1 || got[1] != k2 || s2.Version("acme") != 2 || s2.Version("other") != 1 {
		t.Fatalf("reopened store: %v v%d", got, s2.Version("acme"))
	}
	if err := s2.Update("acme", 2, nil); !errors.Is(err, ErrStale) {
		t.Fatal("stale update accepted after reopening")
	}
	if err := s2.Update("acme", 3, nil); err != nil || len(s2.Keys("acme")) != 0 {
		t.Fatalf("removing every key: %v", err)
	}
	// A file others can read is refused.
	if err := os.Chmod(filepath.Join(dir, StoreFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(dir); err == nil {
		t.Fatal("a world-readable approvers.json was accepted")
	}
}
