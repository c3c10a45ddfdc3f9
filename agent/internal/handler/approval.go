package handler

import (
	"errors"
	"fmt"

	"orch/agent/internal/approval"
	"orch/agent/internal/approval/trust"
	"orch/agent/internal/messages"
	"orch/agent/internal/policy"
)

// approvalProblem is the agent's rule (protocol/APPROVAL.md): on a standard or infrastructure agent, a command its
// own read-only check does not clear runs only with a valid attestation, signed by an approver key this agent
// trusts for the command's tenant. An agent that holds no approver key for a tenant (never sent a list, or every
// approver removed) runs only what the read-only check clears for it; a command naming no tenant likewise. It returns the check that
// failed and the refusal reason, or "" when the command may run.
func (h *Handler) approvalProblem(c *messages.Command, d policy.Decision) (string, string) {
	if h.o.Policy.EffectiveTier() == policy.ReadOnly || len(d.Argv) == 0 {
		return "", ""
	}
	if policy.ClearsReadOnly(d.Executable, d.Argv[1:], h.o.Policy.SearchPath) {
		return "", ""
	}
	tenant := ""
	if c.Tenant != nil {
		tenant = *c.Tenant
	}
	var trusted []string
	if h.o.Approvers != nil && tenant != "" {
		trusted = h.o.Approvers.Keys(tenant)
	}
	f := approval.Check(approval.Subject{CommandID: c.CommandID, Tenant: tenant, Argv: c.Argv, Agent: h.o.Name}, c.Approval, trusted)
	if f == nil {
		return "", ""
	}
	return f.Code, fmt.Sprintf("approval_required: %s: this %s agent runs a command that is not read-only only with an approval signed by an approver key it trusts for the tenant (%s)",
		f.Code, h.o.Policy.EffectiveTier(), f.Detail)
}

// refuseUnapproved records and answers an approval refusal; ok is false when the command may run.
func (h *Handler) refuseUnapproved(c *messages.Command, d policy.Decision) (messages.Result, bool) {
	code, reason := h.approvalProblem(c, d)
	if reason == "" {
		return messages.Result{}, false
	}
	if len(reason) > messages.MaxReasonLength {
		reason = reason[:messages.MaxReasonLength]
	}
	r := refused(c.CommandID, reason)
	if err := h.finish(c.CommandID, r); err != nil {
		return h.fail(c.CommandID, err), true
	}
	_ = h.o.Ledger.Bump("commands.refused", "commands.approval_required")
	h.o.Log(map[string]any{"level": "warn", "event": "command_refused", "commandId": c.CommandID, "rule": "approval_required", "check": code})
	return r, true
}

// approvers applies an approvers message from a trusted desktop: newer versions only.
func (h *Handler) approvers(m *messages.Approvers) messages.ApproversResult {
	res := messages.ApproversResult{Kind: "approvers_result", Tenant: m.Tenant, Version: m.Version, Status: "ok"}
	refuse := func(why string) messages.ApproversResult {
		res.Status, res.Reason = "refused", why
		_ = h.o.Ledger.Bump("approvers.refused")
		h.o.Log(map[string]any{"level": "warn", "event": "approvers_refused", "tenant": m.Tenant, "version": m.Version, "reason": why})
		return res
	}
	if h.o.Approvers == nil {
		return refuse("no_store: this agent keeps no approver keys")
	}
	if len(h.o.Tenants) > 0 {
		served := false
		for _, t := range h.o.Tenants {
			served = served || t == m.Tenant
		}
		if !served {
			return refuse("tenant_not_served")
		}
	}
	if err := h.o.Approvers.Update(m.Tenant, m.Version, m.Keys); err != nil {
		if errors.Is(err, trust.ErrStale) {
			return refuse(fmt.Sprintf("stale_version: this agent holds version %d for tenant %s", h.o.Approvers.Version(m.Tenant), m.Tenant))
		}
		return refuse("not_stored: " + err.Error())
	}
	_ = h.o.Ledger.Bump("approvers.updated")
	h.o.Log(map[string]any{"level": "info", "event": "approvers_updated", "tenant": m.Tenant, "version": m.Version, "keys": len(m.Keys)})
	return res
}
