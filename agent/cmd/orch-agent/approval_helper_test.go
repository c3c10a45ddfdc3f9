package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"orch/agent/internal/approval"
	"orch/agent/internal/approval/trust"
)

// approveForTest makes the agent in state trust a fresh approver key for tenant and returns the attestation, signed
// by it, that lets the agent run argv under commandID (wf/run/node) for that tenant (protocol/APPROVAL.md). For
// tests that run state-changing commands on standard or infrastructure agents but are not about approvals.
func approveForTest(t *testing.T, state, tenant, commandID string, argv []string) map[string]any {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	key := hex.EncodeToString(pub)
	store, err := trust.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Update(tenant, store.Version(tenant)+1, append(store.Keys(tenant), key)); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(commandID, "/")
	released := []approval.Entry{{CommandID: commandID, Node: parts[len(parts)-1], Agent: "test", Tier: "infrastructure", Argv: argv}}
	digest, err := approval.ReleaseDigest(released)
	if err != nil {
		t.Fatal(err)
	}
	st := approval.Statement{V: 1, Type: "orch-approval", Tenant: tenant, WorkflowID: strings.Join(parts[:len(parts)-2], "/"), RunID: parts[len(parts)-2],
		Gate: "gate", Decision: "approve", ReleaseDigest: digest, ApproverKey: key, At: time.Now().UnixMilli()}
	msg, err := approval.Message(st)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"approvals": []any{map[string]any{"statement": st, "signature": hex.EncodeToString(ed25519.Sign(priv, msg))}}, "released": released}
}
