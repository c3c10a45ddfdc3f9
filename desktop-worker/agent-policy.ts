/**
 * The Go agent's own policy, asked from the desktop: `orch-agent explain --json` run as a process, so there is one
 * implementation of the tier, allowlist and read-only checks. Used by `orch plan` (refuse what an agent would
 * refuse, gate what it would run only with an approval) and `orch dag validate` / `register` (warn about commands
 * an agent would refuse for want of an approval gate).
 *
 * @example
 * const check = agentExplainCheck(await resolveAgentBinary());
 * check(agentRecord, ['systemctl', 'restart', 'nginx'], undefined); // { allowed: true, approvalRequired: true, ... }
 * agentExplainBatch(bin)(agentRecord, [{ argv: ['uptime'], cwd: undefined }, ...]); // one process, one verdict each
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CompiledCommandNode, CompiledDag } from '../workflows/dag/types';
import type { AgentRecord } from './agent-registry';

export interface AllowlistVerdict {
  /** true: would run; false: refused; undefined: could not be decided here (reason says why). */
  allowed: boolean | undefined;
  reason: string;
  /**
   * Allowed, but this standard or infrastructure agent runs it only with a signed approval: its own read-only
   * check does not clear it (protocol/APPROVAL.md), so it must be released by an approval gate.
   */
  approvalRequired?: boolean;
}

/** Decides whether an agent of `tier` with `allowlist` (its text) would run `argv` in `cwd`. */
export type AllowlistCheck = (agent: AgentRecord, argv: readonly string[], cwd: string | undefined) => AllowlistVerdict;

/** One command to decide: its argv and the working directory it would get (undefined: /). */
export interface AllowlistQuery {
  argv: readonly string[];
  cwd: string | undefined;
}

/** Decides many commands for one agent at once: one verdict per query, in the queries' order. */
export type AllowlistBatchCheck = (agent: AgentRecord, queries: readonly AllowlistQuery[]) => AllowlistVerdict[];

/** A verdict from one JSON object of `orch-agent explain --json` / `--stdin`, or undefined if it is not one. */
function verdictOf(agent: AgentRecord, line: string | undefined): AllowlistVerdict | undefined {
  let v: { allowed?: unknown; rule?: unknown; reason?: unknown; approvalRequired?: unknown } | undefined;
  try {
    v = JSON.parse(`${line ?? ''}`.trim()) as typeof v;
  } catch {
    return undefined;
  }
  if (!v || typeof v.allowed !== 'boolean') return undefined;
  if (v.allowed) {
    const approvalRequired = v.approvalRequired === true;
    return { allowed: true, reason: approvalRequired ? `allowed; tier ${agent.tier} runs it only with a signed approval (not read-only)` : 'would run', approvalRequired };
  }
  const reason = String(v.reason ?? '').replace(/^command_not_allowed: [a-z-]+: /, '');
  if (v.rule === 'executable-not-found') return { allowed: undefined, reason: `${reason} on this desktop, where the check runs` };
  return { allowed: false, reason: `rule ${String(v.rule)}: ${reason}` };
}

/**
 * An {@link AllowlistBatchCheck} that runs the Go agent's policy code, one process per call for all its queries:
 * `orch-agent explain --tier T --allow FILE --stdin`, fed one `{"argv": [...], "cwd": DIR}` line per query and
 * answering one JSON verdict per line in the same order, with the allowlist text recorded at enrollment. The
 * executable is looked up on this desktop, which is what explain can see: a command missing here is reported as not
 * checkable, never as allowed.
 */
export function agentExplainBatch(agentBinary: string): AllowlistBatchCheck {
  return (agent, queries) => {
    if (queries.length === 0) return [];
    if (agent.allowlist === null) {
      const reason = `no allowlist was recorded for agent ${agent.name} at enrollment (re-enroll it with --allow)`;
      return queries.map(() => ({ allowed: undefined, reason }));
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-plan-'));
    try {
      const file = path.join(dir, 'allowlist.yaml');
      fs.writeFileSync(file, agent.allowlist, { mode: 0o600 });
      const input = queries.map((q) => `${JSON.stringify({ argv: q.argv, cwd: q.cwd ?? '/' })}\n`).join('');
      const r = spawnSync(agentBinary, ['explain', '--state-dir', path.join(dir, 'state'), '--tier', agent.tier, '--allow', file, '--stdin'], {
        encoding: 'utf8',
        input,
        timeout: 30_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      const lines = `${r.stdout ?? ''}`.split('\n');
      const failed = `orch-agent explain failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).toString().trim().split('\n')[0]}`;
      const ran = r.status === 0 || r.status === 1;
      return queries.map((_, i) => (ran ? verdictOf(agent, lines[i]) : undefined) ?? { allowed: undefined, reason: failed });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** An {@link AllowlistCheck} for one command at a time: {@link agentExplainBatch} with one query. */
export function agentExplainCheck(agentBinary: string): AllowlistCheck {
  const batch = agentExplainBatch(agentBinary);
  return (agent, argv, cwd) => batch(agent, [{ argv, cwd }])[0]!;
}

/** A command node no approval gate releases, which its agent would refuse without a signed approval. */
export interface UngatedCommand {
  node: string;
  agent: string;
  tier: string;
  message: string;
}

/**
 * The command nodes of `dag` that have no approval gate as a direct parent but run on an agent (standard or
 * infrastructure) that would refuse them without a signed approval: they would fail at run time with
 * `approval_required`. Commands whose argv uses params or parents' output, and agents chosen at run time, are not
 * known here and are left out. `check` is asked once per agent, for all of that agent's commands; they are listed in
 * the DAG's order.
 */
export function ungatedApprovalCommands(dag: CompiledDag, agents: readonly AgentRecord[], check: AllowlistBatchCheck): UngatedCommand[] {
  const byId = new Map(dag.nodes.map((n) => [n.id, n]));
  const byName = new Map(agents.map((a) => [a.name, a]));
  const perAgent = new Map<AgentRecord, CompiledCommandNode[]>();
  for (const n of dag.nodes) {
    if (n.type !== 'command' || n.needs.some((p) => byId.get(p)?.type === 'approval_gate')) continue;
    const agent = byName.get(n.agent);
    if (!agent || agent.tier === 'read-only' || n.argv.some((a) => a.includes('${'))) continue;
    const list = perAgent.get(agent) ?? [];
    list.push(n);
    perAgent.set(agent, list);
  }
  const needsApproval = new Set<string>();
  for (const [agent, nodes] of perAgent) {
    const verdicts = check(agent, nodes.map((n) => ({ argv: n.argv, cwd: n.cwd })));
    nodes.forEach((n, i) => {
      const v = verdicts[i];
      if (v?.allowed === true && v.approvalRequired) needsApproval.add(n.id);
    });
  }
  const out: UngatedCommand[] = [];
  for (const n of dag.nodes) {
    if (n.type !== 'command' || !needsApproval.has(n.id)) continue;
    const agent = byName.get(n.agent)!;
    out.push({
      node: n.id,
      agent: agent.name,
      tier: agent.tier,
      message: `node "${n.id}": agent ${agent.name} (tier ${agent.tier}) runs \`${n.argv.join(' ')}\` only with a signed approval (it is not read-only), and no approval_gate releases it: put a gate in its needs, or the run fails with approval_required`,
    });
  }
  return out;
}
