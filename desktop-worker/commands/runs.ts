/**
 * `orch runs`: the runs Temporal knows, from its visibility store (the search attributes every Orch run sets:
 * OrchTenant, OrchDag, OrchState), and `orch runs show ID`: one run's nodes and gate decisions beside the audit rows
 * it wrote, so an operator or auditor sees both sides in one place. A run Temporal no longer has (past the
 * namespace's retention) is shown from its audit rows alone.
 */
import { loadConfig } from '../config';
import { RunNotFoundError, openRunTransport } from '../run-transport';
import { TenantStore, checkTenantName } from '../tenant-store';
import { orchHome } from '../../infra/paths';
import { OrchError, ErrorType } from '../../protocol/errors';
import { statusQuery, type RunStatus } from '../../workflows/shared';
import { checkTenantChain, describeChainCheck, describeRow, type ChainCheck } from './audit';
import { formatStatus } from './status-format';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';

/** `--state` names and the OrchState values they select. */
const STATES: Record<string, string> = { running: 'running', waiting: 'waiting_approval', failed: 'failed', succeeded: 'succeeded' };
const NAME = /^[A-Za-z0-9_.-]{1,200}$/;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 10_000;

export interface RunRow {
  workflowId: string;
  runId: string;
  type: string;
  tenant: string | null;
  dag: string | null;
  state: string | null;
  temporalStatus: string;
  startTime: string;
  closeTime: string | null;
}

/** The visibility query for these filters; every value is checked, so nothing can be injected into it. */
export function runsQuery(filters: { tenant?: string; dag?: string; state?: string }): string {
  // A tenant's own name already selects Orch runs; without one, IS NOT NULL does (it costs the SQLite store more).
  const parts = filters.tenant !== undefined ? [`OrchTenant = '${checkTenantName(filters.tenant)}'`] : ['OrchTenant IS NOT NULL'];
  if (filters.dag !== undefined) {
    if (!NAME.test(filters.dag)) throw new CommandUsageError(`--dag "${filters.dag.slice(0, 60)}" is not a DAG name (letters, digits, ".", "_", "-")`);
    parts.push(`OrchDag = '${filters.dag}'`);
  }
  if (filters.state !== undefined) {
    const s = STATES[filters.state];
    if (!s) throw new CommandUsageError(`--state must be one of ${Object.keys(STATES).join(', ')}`);
    parts.push(`OrchState = '${s}'`);
    // A run terminated or timed out while running or waiting keeps its last OrchState: it is neither any more.
    if (s === 'running' || s === 'waiting_approval') parts.push(`ExecutionStatus = 'Running'`);
  }
  return parts.join(' AND ');
}

async function list(args: CommandArgs, out: Out): Promise<number> {
  const v = args.values;
  if (args.positionals.length > 0) throw new CommandUsageError(`usage: ${runsSpec.usage}`);
  const limit = v.limit === undefined ? DEFAULT_LIMIT : Number(v.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new CommandUsageError(`--limit must be a whole number from 1 to ${MAX_LIMIT}`);
  const query = runsQuery({
    ...(typeof v.tenant === 'string' ? { tenant: v.tenant } : {}),
    ...(typeof v.dag === 'string' ? { dag: v.dag } : {}),
    ...(typeof v.state === 'string' ? { state: v.state } : {}),
  });
  // Search attributes are plain, so listing needs no payload keys (no keychain).
  const transport = await openRunTransport(loadConfig(), { payloadKeys: false });
  let rows: RunRow[];
  try {
    rows = (await transport.list(query, limit)).map((r) => ({
      workflowId: r.workflowId,
      runId: r.runId,
      type: r.type,
      tenant: r.keywords.OrchTenant ?? null,
      dag: r.keywords.OrchDag ?? null,
      state: r.keywords.OrchState ?? null,
      temporalStatus: r.status,
      startTime: (r.startTime ?? new Date(0)).toISOString(),
      closeTime: r.closeTime ? r.closeTime.toISOString() : null,
    }));
  } finally {
    await transport.close();
  }
  if (v.json) {
    printJson(out, rows);
    return 0;
  }
  if (rows.length === 0) {
    out.log('no runs match');
    return 0;
  }
  const lines = [`${'WORKFLOW ID'.padEnd(40)} ${'TENANT'.padEnd(12)} ${'DAG'.padEnd(20)} ${'STATE'.padEnd(17)} STARTED`];
  for (const r of rows) {
    const state = r.temporalStatus === 'RUNNING' ? (r.state ?? 'running') : r.temporalStatus === 'COMPLETED' ? (r.state ?? 'succeeded') : r.temporalStatus.toLowerCase();
    lines.push(`${r.workflowId.padEnd(40)} ${(r.tenant ?? '-').padEnd(12)} ${(r.dag ?? r.type).padEnd(20)} ${state.padEnd(17)} ${r.startTime}`);
  }
  // One write for the table, not one per run.
  out.log(lines.join('\n'));
  if (rows.length >= limit) out.log(`(the first ${limit}; --limit N shows more)`);
  return 0;
}

async function show(args: CommandArgs, out: Out): Promise<number> {
  const [, workflowId, ...rest] = args.positionals;
  if (!workflowId || rest.length) throw new CommandUsageError('usage: orch runs show WORKFLOW_ID [--tenant T] [--json]');
  const transport = await openRunTransport(loadConfig(), { workflowId });
  let temporal: { type: string; status: string; runId: string; tenant: string | null; status2?: RunStatus; statusError?: string } | undefined;
  try {
    try {
      const d = await transport.describe(workflowId);
      temporal = { type: d.type, status: d.status, runId: d.runId, tenant: d.keywords.OrchTenant ?? null };
      try {
        temporal.status2 = await transport.query<RunStatus>(workflowId, undefined, statusQuery.name);
      } catch (err) {
        // No worker running, or not an Orch run: the audit rows below still tell.
        temporal.statusError = (err as Error).message?.split('\n')[0] ?? String(err);
      }
    } catch (err) {
      if (!(err instanceof RunNotFoundError)) throw err;
    }
  } finally {
    await transport.close();
  }
  const tenant = typeof args.values.tenant === 'string' ? checkTenantName(args.values.tenant) : (temporal?.tenant ?? null);
  if (!tenant) {
    throw new OrchError(
      'unknown_workflow',
      `Temporal has no run "${workflowId}" (never started, or removed after the namespace's retention): give its tenant (--tenant T) to show its audit rows`,
    );
  }
  const store = new TenantStore(orchHome());
  let audit;
  try {
    if (!store.exists(tenant)) throw new OrchError(ErrorType.unknownTenant, `tenant "${tenant}" does not exist here`);
    audit = [...store.auditLog(tenant).rows({ workflowId })];
  } finally {
    store.close();
  }
  if (!temporal && audit.length === 0) throw new OrchError('unknown_workflow', `no run "${workflowId}" in Temporal, and no audit row of tenant "${tenant}" names it`);
  // Whether the chain that holds these rows verifies (as `orch audit verify` checks it): a row of a broken chain
  // proves nothing. Without a desktop identity here, the rows are shown and the chain is reported unchecked.
  let chain: ChainCheck | undefined;
  let chainError: string | undefined;
  try {
    chain = await checkTenantChain(tenant, { hashesOnlyWithoutIdentity: true });
  } catch (err) {
    chainError = (err as Error).message.split('\n')[0];
  }
  const broken = chain !== undefined && !chain.result.ok;
  // Rows at or past the first bad seq are the ones the break puts in doubt.
  const firstBad = chain && !chain.result.ok ? chain.result.firstBadSeq : undefined;
  const doubtful = firstBad === undefined ? 0 : audit.filter((r) => r.seq >= firstBad).length;
  const s = temporal?.status2;
  if (args.values.json) {
    printJson(out, {
      workflowId,
      tenant,
      temporal: temporal ? { type: temporal.type, status: temporal.status, runId: temporal.runId } : null,
      status: s ?? null,
      ...(temporal?.statusError ? { statusError: temporal.statusError } : {}),
      audit,
      chain: chain
        ? { ...chain.result, signedHead: chain.signedHead ? { seq: chain.signedHead.seq, hash: chain.signedHead.hash } : null, hashesOnly: chain.hashesOnly === true, rowsInDoubt: doubtful }
        : { ok: null, error: chainError },
    });
    return broken ? 1 : 0;
  }
  if (temporal) out.log(`${workflowId} (${temporal.type}, tenant ${tenant}): ${temporal.status}`);
  else out.log(`${workflowId} (tenant ${tenant}): not in Temporal any more (past the namespace's retention); from the audit log:`);
  if (s) {
    for (const l of formatStatus(s, workflowId)) out.log(l);
  } else if (temporal) {
    out.log(`  (no node table: the status query was not answered: ${temporal.statusError ?? 'no worker'})`);
  }
  out.log(`audit rows (${audit.length}):`);
  for (const r of audit) out.log(`  ${describeRow(r)}`);
  if (chain) {
    const line = describeChainCheck(tenant, chain);
    if (broken) out.err(`${line}${doubtful ? `; ${doubtful} of this run's rows are at or past the break` : "; this run's rows are all before the break"}`);
    else out.log(line);
  } else out.log(`audit chain not checked: ${chainError} (orch audit verify --tenant ${tenant} on the desktop checks it)`);
  return broken ? 1 : 0;
}

export const runsSpec: CommandSpec = {
  summary: 'list runs from Temporal; show one run beside its audit rows',
  usage: 'orch runs [--tenant T] [--dag D] [--state running|waiting|failed|succeeded] [--limit N] [--json] | orch runs show WORKFLOW_ID [--tenant T] [--json]',
  help: `list:  the runs Temporal's visibility store knows, newest first, filtered by tenant, DAG and state (waiting: at
       an approval gate). --limit N (default ${DEFAULT_LIMIT}).
show:  one run: its node table and cost (from the run's status query, when a worker answers it) beside every audit
       row it wrote, and whether the tenant's chain that holds them verifies (as orch audit verify; exit 1 if not). A run Temporal no longer has (past the namespace's retention) is shown
       from the audit rows alone: give --tenant T.`,
  options: {
    tenant: { type: 'string', short: 't' },
    dag: { type: 'string' },
    state: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  },
  optionHelp: { dag: 'only runs of this DAG', state: 'running, waiting (at a gate), failed or succeeded', limit: `at most N runs (default ${DEFAULT_LIMIT})` },
  subcommands: [
    // `orch runs [filters]` lists: the default subcommand, so `list` itself need not be typed.
    { name: 'list', summary: 'list runs', usage: 'orch runs [--tenant T] [--dag D] [--state running|waiting|failed|succeeded] [--limit N] [--json]', isDefault: true, options: ['tenant', 'dag', 'state', 'limit', 'json'] },
    { name: 'show', summary: 'one run beside its audit rows', usage: 'orch runs show WORKFLOW_ID [--tenant T] [--json]', args: ['<workflow_id>'], options: ['tenant', 'json'] },
  ],
  async run(args, out) {
    return runCommand('runs', args, out, () => (args.positionals[0] === 'show' ? show(args, out) : list(args, out)));
  },
};
