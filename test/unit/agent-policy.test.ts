/**
 * The desktop's questions to the Go agent's own policy (desktop-worker/agent-policy.ts), against the real agent
 * binary (`orch-agent explain --json`): what an agent would refuse, what it would run only with a signed approval,
 * and which command nodes of a DAG no gate releases although their agent needs an approval for them.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { agentRecord } from '../support/agent-record';
import { resolveAgentBinary } from '../../infra/agent-binary';
import { agentExplainCheck, ungatedApprovalCommands } from '../../desktop-worker/agent-policy';
import type { AgentRecord } from '../../desktop-worker/agent-registry';
import { compileDag } from '../../workflows/dag/compile';

const allowlist = 'version: 1\ncommands:\n  - executable: touch\n    rest: any\n  - executable: uptime\n  - executable: systemctl\n    rest: any\n';
const agent = (name: string, tier: AgentRecord['tier']): AgentRecord => agentRecord(name, tier, allowlist);

describe("the agent's policy, asked from the desktop", () => {
  test('allowed and read-only, allowed only with an approval, refused by the allowlist', async () => {
    const check = agentExplainCheck(await resolveAgentBinary({ log: () => undefined }));
    const infra = agent('db-1', 'infrastructure');
    assert.deepEqual(check(infra, ['uptime'], undefined), { allowed: true, reason: 'would run', approvalRequired: false });
    const touch = check(infra, ['touch', '/tmp/x'], undefined);
    assert.equal(touch.allowed, true);
    assert.equal(touch.approvalRequired, true);
    const refused = check(infra, ['df', '-h'], undefined);
    assert.equal(refused.allowed, false);
    assert.match(refused.reason, /^rule not-allowlisted: /);
    // A standard agent's service restart is allowed by its tier and still needs an approval.
    assert.equal(check(agent('web-1', 'standard'), ['systemctl', 'restart', 'nginx'], undefined).approvalRequired, true);
  }, 600_000);

  test('a DAG: only the ungated command that needs an approval is named; gated, read-only and templated ones are not', async () => {
    const check = agentExplainCheck(await resolveAgentBinary({ log: () => undefined }));
    const compiled = compileDag(
      {
        name: 'maint',
        version: 1,
        cost_cap_usd: 1,
        params: { f: { type: 'string' } },
        nodes: [
          { id: 'look', type: 'command', agent: 'db-1', argv: ['uptime'] },
          { id: 'mark', type: 'command', agent: 'db-1', argv: ['touch', '/srv/maintenance'] },
          { id: 'ok', type: 'approval_gate', message: 'go?' },
          { id: 'restart', type: 'command', agent: 'web-1', needs: ['ok'], argv: ['systemctl', 'restart', 'nginx'] },
          { id: 'templated', type: 'command', agent: 'db-1', argv: ['touch', '${params.f}'] },
          { id: 'elsewhere', type: 'command', agent: 'ro-1', argv: ['touch', '/srv/x'] },
        ],
      },
      { knownModels: [] },
    );
    assert.ok(compiled.ok, compiled.ok ? '' : JSON.stringify(compiled.issues));
    const found = ungatedApprovalCommands(compiled.dag, [agent('db-1', 'infrastructure'), agent('web-1', 'standard'), agent('ro-1', 'read-only')], check);
    assert.deepEqual(found.map((f) => f.node), ['mark']);
    assert.match(found[0]!.message, /node "mark": agent db-1 \(tier infrastructure\) runs `touch \/srv\/maintenance` only with a signed approval/);
  }, 600_000);
});
