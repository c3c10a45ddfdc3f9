package handler

import (
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/agent/internal/approval"
	"orch/agent/internal/approval/trust"
	"orch/agent/internal/identity"
	"orch/agent/internal/ledger"
	"orch/agent/internal/policy"
)

// The agent's rule (protocol/APPROVAL.md): on a standard or infrastructure agent, a command that its own
// read-only check does not clear runs only with an attestation signed by an approver key it trusts for the
// command's tenant; read-only commands and read-only agents are unchanged.

type approvalFixture struct {
	*fixture
	store    *trust.Store
	approver ed25519.PrivateKey
	key      string
	out      string
}

// argvFor is a state-changing command of the tier that creates out/name when it runs: `service NAME restart` on a
// standard agent, `touch OUT/NAME` on an infrastructure one.
func (f *approvalFixture) argvFor(tier policy.Tier, name string) []string {
	if tier == policy.Standard {
		return []string{"service", name, "restart"}
	}
	return []string{"touch", filepath.Join(f.out, name)}
}

// acmeCmd is a command message for tenant acme, the tenant the fixture's approver signs for.
func acmeCmd(id string, argv ...string) map[string]any {
	c := cmd(id, argv...)
	c["tenant"] = "acme"
	return c
}

func (f *approvalFixture) made(name string) bool {
	_, err := os.Stat(filepath.Join(f.out, name))
	return err == nil
}

// newApprovalFixture: an agent of tier serving tenant acme, trusting one approver key. Its search path is the
// system's plus a directory holding a fake `service` that creates out/NAME for `service NAME restart`, so a
// standard agent's state-changing command leaves a file when it runs.
func newApprovalFixture(t *testing.T, tier policy.Tier) *approvalFixture {
	dir := t.TempDir()
	bin, out := filepath.Join(dir, "bin"), filepath.Join(dir, "out")
	for _, d := range []string{bin, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "service"), []byte("#!/bin/sh\n: > '"+out+"'/\"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	id, _, err := identity.LoadOrCreate(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, d: newDesktop(t), id: id, dir: filepath.Join(dir, "state"),
		allow: allowAll + "  - executable: touch\n    rest: any\n  - executable: " + filepath.Join(bin, "service") + "\n    rest: any\n", tenants: []string{"acme"}}
	l, err := ledger.Open(filepath.Join(f.dir, "ledger.db"), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	al, err := policy.ParseAllowlist([]byte(f.allow), "t")
	if err != nil {
		t.Fatal(err)
	}
	store, err := trust.OpenStore(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	key := hex.EncodeToString(pub)
	if err := store.Update("acme", 1, []string{key}); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Identity: f.id, DesktopSign: f.d.signPub, DesktopBox: f.d.boxPub, Ledger: l, Home: f.dir, Version: "test",
		Policy: policy.Policy{Tier: tier, Allowlist: al, StateDir: f.dir, SearchPath: bin + ":" + policy.SafePath}, KillGrace: 200 * time.Millisecond, Tenants: f.tenants, Approvers: store})
	if err != nil {
		t.Fatal(err)
	}
	f.l, f.h = l, h
	return &approvalFixture{fixture: f, store: store, approver: priv, key: key, out: out}
}

const wfRun = "wf-1/run-1"

// attestation signs an approval of released with sk (naming key as its approver key).
func attestation(t *testing.T, sk ed25519.PrivateKey, key, tenant, runPrefix string, released []approval.Entry) map[string]any {
	digest, err := approval.ReleaseDigest(released)
	if err != nil {
		t.Fatal(err)
	}
	wf, run, _ := strings.Cut(runPrefix, "/")
	st := approval.Statement{V: 1, Type: "orch-approval", Tenant: tenant, WorkflowID: wf, RunID: run, Gate: "gate", Decision: "approve",
		ReleaseDigest: digest, ApproverKey: key, At: time.Now().UnixMilli(), Comment: ""}
	msg, err := approval.Message(st)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"approvals": []any{map[string]any{"statement": st, "signature": hex.EncodeToString(ed25519.Sign(sk, msg))}}, "released": released}
}

func TestApprovalRequiredOnStandardAndInfrastructure(t *testing.T) {
	for _, tier := range []policy.Tier{policy.Standard, policy.Infrastructure} {
		t.Run(string(tier), func(t *testing.T) {
			f := newApprovalFixture(t, tier)
			entry := func(node, name string) approval.Entry {
				return approval.Entry{CommandID: wfRun + "/" + node, Node: node, Agent: "web-1", Tier: string(tier), Argv: f.argvFor(tier, name)}
			}
			send := func(node, name string, att map[string]any) (string, string) {
				c := acmeCmd(wfRun+"/"+node, f.argvFor(tier, name)...)
				if att != nil {
					c["approval"] = att
				}
				r := f.do("command", c).Result
				return r.Status, r.Reason
			}
			_, otherSK, _ := ed25519.GenerateKey(nil)
			otherKey := hex.EncodeToString(otherSK.Public().(ed25519.PublicKey))
			released := []approval.Entry{entry("a", "a"), entry("b", "b"), entry("c", "c"), entry("d", "d"), entry("e", "e")}
			good := attestation(t, f.approver, f.key, "acme", wfRun, released)

			refusals := []struct {
				name, node, check string
				att               map[string]any
			}{
				{"no attestation", "a", approval.NoAttestation, nil},
				{"signed by a key the agent does not trust", "b", approval.UntrustedApprover, attestation(t, otherSK, otherKey, "acme", wfRun, released)},
				{"approval for another command id", "x", approval.NotReleased, good},
				{"approval for another tenant", "c", approval.WrongTenant, attestation(t, f.approver, f.key, "globex", wfRun, released)},
				{"approval for another run", "d", approval.WrongRun, attestation(t, f.approver, f.key, "acme", "wf-1/run-2", released)},
			}
			for _, c := range refusals {
				st, reason := send(c.node, c.node, c.att)
				if st != "refused" || !strings.HasPrefix(reason, "approval_required: "+c.check+": ") {
					t.Errorf("%s: %s %q", c.name, st, reason)
				}
				if f.made(c.node) {
					t.Errorf("%s: the command ran", c.name)
				}
			}
			// Another argv than the one released (same command id); the reason does not quote it.
			if st, reason := send("e", "e-other", good); st != "refused" || !strings.HasPrefix(reason, "approval_required: argv_mismatch: ") || strings.Contains(reason, "e-other") {
				t.Errorf("other argv: %s %q", st, reason)
			}
			if f.made("e-other") {
				t.Error("other argv: the command ran")
			}
			counters := f.l.Counters()
			if counters["commands.approval_required"] != 6 || counters["commands.refused"] != 6 || counters["commands.run"] != 0 {
				t.Errorf("counters %v", counters)
			}
			// A refusal is the command id's answer: the same id is not run later, even with a valid approval.
			if st, _ := send("a", "a", good); st != "refused" || f.made("a") {
				t.Errorf("retry of a refused id: %s", st)
			}
			// With a valid attestation it runs.
			if st, reason := send("ok", "ok", attestation(t, f.approver, f.key, "acme", wfRun, []approval.Entry{entry("ok", "ok")})); st != "finished" || !f.made("ok") {
				t.Fatalf("approved command: %s %q", st, reason)
			}
			// An agent that knows its name runs only what was released for it.
			f.h.o.Name = "db-1"
			if st, reason := send("named", "named", attestation(t, f.approver, f.key, "acme", wfRun, []approval.Entry{entry("named", "named")})); st != "refused" ||
				!strings.HasPrefix(reason, "approval_required: wrong_agent: ") || f.made("named") {
				t.Errorf("released for another agent: %s %q", st, reason)
			}
			f.h.o.Name = "web-1"
			if st, reason := send("named2", "named2", attestation(t, f.approver, f.key, "acme", wfRun, []approval.Entry{entry("named2", "named2")})); st != "finished" || !f.made("named2") {
				t.Errorf("released for this agent: %s %q", st, reason)
			}
			f.h.o.Name = ""
			// Read-only commands need no approval.
			c := acmeCmd(wfRun+"/ro", "echo", "hi")
			if r := f.do("command", c).Result; r.Status != "finished" {
				t.Fatalf("read-only command: %s %q", r.Status, r.Reason)
			}
		})
	}
}

func TestReadOnlyAgentNeedsNoApproval(t *testing.T) {
	f := newApprovalFixture(t, policy.ReadOnly)
	c := acmeCmd(wfRun+"/ro", "date", "+%s")
	if r := f.do("command", c).Result; r.Status != "finished" {
		t.Fatalf("%s %q", r.Status, r.Reason)
	}
}

func TestApproversMessage(t *testing.T) {
	f := newApprovalFixture(t, policy.Standard)
	k2 := strings.Repeat("b", 64)
	upd := func(tenant string, version int64, keys []string) (string, string) {
		r := f.do("approvers", map[string]any{"kind": "approvers", "tenant": tenant, "version": version, "keys": keys, "signedAt": time.Now().UnixMilli()})
		if r.ApproversResult == nil {
			t.Fatal("no approvers_result")
		}
		return r.ApproversResult.Status, r.ApproversResult.Reason
	}
	if st, _ := upd("acme", 2, []string{k2}); st != "ok" || f.store.Version("acme") != 2 || f.store.Keys("acme")[0] != k2 {
		t.Fatalf("update: %s", st)
	}
	for _, v := range []int64{2, 1} {
		if st, reason := upd("acme", v, []string{f.key}); st != "refused" || !strings.HasPrefix(reason, "stale_version") {
			t.Fatalf("version %d: %s %q", v, st, reason)
		}
	}
	if st, reason := upd("globex", 9, []string{f.key}); st != "refused" || reason != "tenant_not_served" {
		t.Fatalf("other tenant: %s %q", st, reason)
	}
	if got := f.store.Keys("acme"); len(got) != 1 || got[0] != k2 {
		t.Fatalf("keys changed by refused updates: %v", got)
	}
	// The old approver's key is no longer trusted: its approval is refused.
	argv := f.argvFor(policy.Standard, "after")
	c := acmeCmd(wfRun+"/after", argv...)
	c["approval"] = attestation(t, f.approver, f.key, "acme", wfRun, []approval.Entry{{CommandID: wfRun + "/after", Node: "after", Agent: "a", Tier: "standard", Argv: argv}})
	if r := f.do("command", c).Result; r.Status != "refused" || !strings.HasPrefix(r.Reason, "approval_required: untrusted_approver") || f.made("after") {
		t.Fatalf("removed approver: %s %q", r.Status, r.Reason)
	}
}

// The rule is in force from the first command: an agent that was never sent an approver list runs only what its
// read-only check clears (a state-changing command is refused, whatever tenant it names or none), and so does one
// whose list for the tenant is empty. Read-only commands run without approvals.
func TestRuleInForceWithoutAnApproverList(t *testing.T) {
	f := newApprovalFixture(t, policy.Infrastructure)
	f.fixture.tenants = nil // serves every tenant
	empty := t.TempDir()
	store, err := trust.OpenStore(empty)
	if err != nil {
		t.Fatal(err)
	}
	al, _ := policy.ParseAllowlist([]byte(f.allow), "t")
	mk := func(s *trust.Store) *Handler {
		h, err := New(Options{Identity: f.id, DesktopSign: f.d.signPub, DesktopBox: f.d.boxPub, Ledger: f.l, Home: f.dir, Version: "test",
			Policy: policy.Policy{Tier: policy.Infrastructure, Allowlist: al, StateDir: f.dir}, KillGrace: 200 * time.Millisecond, Approvers: s})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	refusedAll := func(stage string) {
		t.Helper()
		for _, c := range []struct{ name, tenant string }{{"no tenant", ""}, {"another tenant", "globex"}, {"the tenant", "acme"}} {
			name := stage + " " + c.name
			m := cmd(wfRun+"/"+strings.ReplaceAll(name, " ", "-"), f.argvFor(policy.Infrastructure, name)...)
			if c.tenant != "" {
				m["tenant"] = c.tenant
			}
			if r := f.do("command", m).Result; r.Status != "refused" || !strings.HasPrefix(r.Reason, "approval_required: no_attestation") || f.made(name) {
				t.Errorf("%s: %s %q", name, r.Status, r.Reason)
			}
		}
	}
	for _, s := range []*trust.Store{nil, store} {
		f.h = mk(s)
		stage := "no store"
		if s != nil {
			stage = "no list"
		}
		refusedAll(stage)
		read := acmeCmd(wfRun+"/read-"+strings.ReplaceAll(stage, " ", "-"), "echo", "hello")
		if r := f.do("command", read).Result; r.Status != "finished" {
			t.Errorf("%s: a read-only command: %s %q", stage, r.Status, r.Reason)
		}
	}
	if err := store.Update("acme", 1, nil); err != nil {
		t.Fatal(err)
	}
	refusedAll("empty list")
}
