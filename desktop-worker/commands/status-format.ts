/**
 * A run's status as the CLI prints it (`orch status`, `orch run --follow`, `orch runs show`): the DAG and state, the
 * cost against the cap, one line per node, each waiting gate with what it releases, and the failure.
 */
import type { RunStatus } from '../../workflows/shared';
import { formatGate } from './gates';

export function formatStatus(s: RunStatus, workflowId: string): string[] {
  const lines = [`${s.dag} v${s.dagVersion} (tenant ${s.tenant}) — ${s.state}`];
  lines.push(`cost: $${s.cost.spentUsd.toFixed(6)} spent, $${s.cost.reservedUsd.toFixed(6)} reserved, cap $${s.cost.capUsd}`);
  for (const n of s.nodes) {
    const extra = n.error ? ` — ${n.error.type}: ${n.error.message}` : n.summary ? ` — ${n.summary.split('\n')[0]}` : '';
    lines.push(`  ${n.id.padEnd(20)} ${n.type.padEnd(14)} ${n.state}${extra}`);
  }
  for (const g of s.pendingGates) lines.push(...formatGate(g, workflowId));
  if (s.failure) lines.push(`failed${s.failure.node ? ` at node "${s.failure.node}"` : ''}: ${s.failure.type}: ${s.failure.message}`);
  return lines;
}
