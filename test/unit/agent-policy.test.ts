/**
 * The desktop's questions to the Go agent's own policy (desktop-worker/agent-policy.ts), against the real agent
 * binary (`orch-agent explain --json`, and `--stdin` for many at once): what an agent would refuse, what it would run only with a signed approval,
 * and which command nodes of a DAG no gate releases although their agent needs an approval for them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { agentRecord } from '../support/agent-record';
import { resolveAgentBinary } from '../../infra/agent-binary';
import { agentExplainBatch, agentExplainCheck, ungatedApprovalCommands, type AllowlistQuery } from '../../desktop-worker/agent-policy';
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

  test('many commands in one process: each verdict, in order, is the one the command gets alone', async () => {
    const bin = await resolveAgentBinary({ log: () => undefined });
    const one = agentExplainCheck(bin);
    const infra: AgentRecord = { ...agent('db-1', 'infrastructure'), allowlist: `${allowlist}  - executable: echo\n    rest: any\n    cwd: [/srv]\n` };
    // Alternating verdicts (read-only, approval, refused, wrong cwd, not on this desktop), so a lost or swapped answer shows.
    const base: AllowlistQuery[] = [
      { argv: ['uptime'], cwd: undefined },
      { argv: ['touch', '/tmp/x'], cwd: undefined },
      { argv: ['df', '-h'], cwd: '/' },
      { argv: ['echo', 'in srv'], cwd: '/srv' },
      { argv: ['echo', 'elsewhere'], cwd: '/tmp' },
      { argv: ['orch-no-such-program'], cwd: undefined },
      { argv: ['systemctl', 'restart', 'a b'], cwd: '/srv' },
    ];
    const queries = [...base, ...[...base].reverse()];
    const batch = agentExplainBatch(bin)(infra, queries);
    assert.deepEqual(batch, queries.map((q) => one(infra, q.argv, q.cwd)));
    assert.deepEqual(batch.slice(0, 5).map((v) => [v.allowed, v.approvalRequired]), [[true, false], [true, true], [false, undefined], [true, false], [false, undefined]]);
    assert.match(batch[4]!.reason, /^rule cwd: /);
    assert.equal(batch[5]!.allowed, undefined);
  }, 600_000);

  test('a DAG: only the ungated commands that need an approval are named, asked in one process per agent; gated, read-only and templated ones are not', async () => {
    // The real agent behind a wrapper that counts its starts.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-explain-count-'));
    const starts = path.join(dir, 'starts');
    const wrapper = path.join(dir, 'orch-agent');
    fs.writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> '${starts}'\nexec '${await resolveAgentBinary({ log: () => undefined })}' "$@"\n`, { mode: 0o755 });
    const check = agentExplainBatch(wrapper);
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
          { id: 'up', type: 'command', agent: 'web-1', argv: ['uptime'] },
          { id: 'other', type: 'command', agent: 'db-2', argv: ['touch', '/srv/other'] },
          { id: 'mark2', type: 'command', agent: 'db-1', argv: ['touch', '/srv/second'] },
        ],
      },
      { knownModels: [] },
    );
    assert.ok(compiled.ok, compiled.ok ? '' : JSON.stringify(compiled.issues));
    const agents = [agent('db-1', 'infrastructure'), agent('web-1', 'standard'), agent('ro-1', 'read-only'), agent('db-2', 'infrastructure')];
    const found = ungatedApprovalCommands(compiled.dag, agents, check);
    // In the DAG's order, although db-1's two commands were asked together.
    assert.deepEqual(found.map((f) => f.node), ['mark', 'other', 'mark2']);
    assert.match(found[0]!.message, /node "mark": agent db-1 \(tier infrastructure\) runs `touch \/srv\/maintenance` only with a signed approval/);
    assert.match(found[2]!.message, /node "mark2": agent db-1 \(tier infrastructure\) runs `touch \/srv\/second`/);
    // One explain per agent asked (db-1, web-1, db-2), each for all its commands.
    const started = fs.readFileSync(starts, 'utf8').trim().split('\n');
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(started.length, 3, started.join('\n'));
    assert.ok(started.every((l) => l.startsWith('explain ') && l.endsWith(' --stdin')), started.join('\n'));
  }, 600_000);
});
