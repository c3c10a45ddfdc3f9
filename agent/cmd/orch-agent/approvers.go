package main

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"orch/agent/internal/approval/trust"
	"orch/agent/internal/identity"
	"orch/agent/internal/join"
)

// approverStatus is the approver keys the agent trusts per tenant (approvers.json in the state directory).
func approverStatus(dir string) (map[string]trust.TenantKeys, error) {
	s, err := trust.OpenStore(dir)
	if err != nil {
		return nil, &identity.SetupError{Code: "bad_config", Msg: err.Error()}
	}
	return s.Snapshot(), nil
}

// printApprovers writes the status lines for the trusted approver keys.
func printApprovers(out io.Writer, m map[string]trust.TenantKeys) {
	if len(m) == 0 {
		fmt.Fprintf(out, "  approvers:   none (commands that are not read-only are refused with approval_required on tiers standard and infrastructure)\n")
		return
	}
	tenants := make([]string, 0, len(m))
	for t := range m {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	fmt.Fprintf(out, "  approvers:\n")
	for _, t := range tenants {
		k := m[t]
		fmt.Fprintf(out, "    %s (version %d): %d key(s)\n", t, k.Version, len(k.Keys))
		for _, key := range k.Keys {
			fmt.Fprintf(out, "      %s\n", key)
		}
	}
}

// storeJoinApprovers keeps the approver keys a join_result carried, per tenant (APPROVAL.md).
func storeJoinApprovers(dir string, lists map[string]join.ApproverList) error {
	if len(lists) == 0 {
		return nil
	}
	s, err := trust.OpenStore(dir)
	if err != nil {
		return err
	}
	for tenant, l := range lists {
		// A state directory joined before may hold a newer list already: keep it.
		if err := s.Update(tenant, l.Version, l.Keys); err != nil && !errors.Is(err, trust.ErrStale) {
			return err
		}
	}
	return nil
}
