// Package trust keeps the approver keys an agent trusts, per tenant, with the version of each list
// (protocol/APPROVAL.md "Approver keys on the agent").
package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"orch/agent/internal/approval"
	"orch/agent/internal/identity"
)

// StoreFile is where the agent keeps the approver keys it trusts, in its state directory (mode 0600).
const StoreFile = "approvers.json"

// MaxKeys is the most approver keys one tenant can have on an agent.
const MaxKeys = approval.MaxKeys

// TenantKeys is one tenant's approver keys and the version of that list (the desktop's counter).
type TenantKeys struct {
	Version int64    `json:"version"`
	Keys    []string `json:"keys"`
}

// ErrStale is returned by Update for a version older than or equal to the one held.
var ErrStale = errors.New("stale_version")

// Store is the approver keys per tenant, persisted atomically on every change.
type Store struct {
	mu   sync.Mutex
	file string
	data map[string]TenantKeys
}

// OpenStore reads approvers.json from the state directory (none yet: no keys for any tenant).
func OpenStore(stateDir string) (*Store, error) {
	s := &Store{file: filepath.Join(stateDir, StoreFile), data: map[string]TenantKeys{}}
	if _, err := os.Lstat(s.file); errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err := identity.CheckOwnedAndPrivate(s.file, 0o077, "approver keys"); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(s.file)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &s.data); err != nil || s.data == nil {
		return nil, fmt.Errorf("%s is not valid JSON: remove it and let the desktop send the approver keys again", s.file)
	}
	for t, k := range s.data {
		if approval.KeysProblem(k.Keys) != "" || k.Version < 0 || !approval.TenantRule.MatchString(t) {
			return nil, fmt.Errorf("%s holds an invalid entry for tenant %q: remove it and let the desktop send the approver keys again", s.file, t)
		}
	}
	return s, nil
}

// Keys is the approver keys trusted for tenant (none for an unknown tenant or "").
func (s *Store) Keys(tenant string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.data[tenant].Keys...)
}

// Snapshot is every tenant's keys and version.
func (s *Store) Snapshot() map[string]TenantKeys {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]TenantKeys{}
	for t, k := range s.data {
		out[t] = TenantKeys{Version: k.Version, Keys: append([]string(nil), k.Keys...)}
	}
	return out
}

// Version is the version held for tenant (0 when none).
func (s *Store) Version(tenant string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[tenant].Version
}

// Update replaces tenant's keys if version is newer than the one held (ErrStale otherwise), and persists them
// before it returns.
func (s *Store) Update(tenant string, version int64, keys []string) error {
	if !approval.TenantRule.MatchString(tenant) {
		return fmt.Errorf("tenant must be 1..100 of [A-Za-z0-9_-]")
	}
	if p := approval.KeysProblem(keys); p != "" {
		return errors.New(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.data[tenant]; ok && version <= held.Version {
		return ErrStale
	}
	next := map[string]TenantKeys{}
	for t, k := range s.data {
		next[t] = k
	}
	sorted := append([]string{}, keys...)
	sort.Strings(sorted)
	next[tenant] = TenantKeys{Version: version, Keys: sorted}
	b, _ := json.MarshalIndent(next, "", "  ")
	if err := identity.WriteFileSync(s.file, append(b, '\n'), 0o600, false); err != nil {
		return err
	}
	s.data = next
	return nil
}
