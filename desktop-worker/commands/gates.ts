/**
 * Approval gates on the CLI: what a waiting gate releases (for `orch status` and `orch run --follow`), and
 * `orch approve`, which signs the decision with the operator's key and sends it as the `approve` update (the
 * run answers at once whether it took it, and why not).
 */
import os from 'node:os';
import { OrchError } from '../../protocol/errors';
import { MAX_APPROVAL_COMMENT_LENGTH, MAX_APPROVER_LABEL_LENGTH } from '../../workflows/dag/limits';
import { approveSignal, approveUpdate, statusQuery, type ApproveResult, type ApproveSignal, type PendingGate, type RunStatus } from '../../workflows/shared';
import { signApproval } from '../approval-signing';
import { loadConfig } from '../config';
import { loadDesktopIdentity } from '../identity';
import { RunNotFoundError, UpdateRefusedError, UpdateTimeoutError, openRunTransportAsking } from '../run-transport';
import { CommandUsageError, printJson, type CommandSpec } from './shared';

/**
 * The lines that show a waiting gate: who may approve, how many are needed, every command it releases (agent,
 * tier, argv with secrets as `${secrets.NAME}`, destructive or not), the digest an approval signs, and the
 * decisions it refused with their reasons.
 */
export function formatGate(g: PendingGate, workflowId: string): string[] {
  const lines = [`waiting for approval at gate "${g.gate}" (until ${g.deadline}): ${g.message}`];
  const released = g.released ?? [];
  const who = g.approvers ? `approvers: ${g.approvers.join(', ')}` : 'approvers: anyone (unverified signal accepted)';
  lines.push(`  ${who}; needs ${g.needed ?? 1} distinct approval(s)${g.distinctFromStarter ? ', not the run\'s starter (four eyes)' : ''}`);
  lines.push(`  releases ${released.length} command(s), digest ${g.releaseDigest ?? '(none)'}:`);
  for (const r of released) {
    lines.push(`    ${r.node} on ${r.agent} (${r.tier})${r.destructive ? ' DESTRUCTIVE' : ''}: ${JSON.stringify(r.argv)}`);
  }
  for (const a of g.approvals ?? []) lines.push(`  approved by ${a.approver}${a.verified ? ' (signed)' : ' (unverified)'} at ${a.at}`);
  for (const r of g.refused ?? []) lines.push(`  refused ${r.decision} from ${r.approver}${r.key ? ` (key ${r.key.slice(0, 16)}…)` : ''}: ${r.reason}`);
  lines.push(`  approve: orch approve ${workflowId} ${g.gate} [--comment TEXT]   reject: add --reject`);
  return lines;
}

export const approveSpec: CommandSpec = {
  summary: 'approve (or reject) a gate that a run is waiting at, signed with your key',
  usage: 'orch approve WORKFLOW_ID GATE_ID [--reject] [--comment TEXT] [--approver LABEL] [--json]',
  help: `Shows what the gate releases, then signs an approval statement (tenant, workflow id, run id, gate, decision,
the gate's release digest, your key, time, comment) with your Ed25519 identity key from the OS keychain (orch init)
and sends it as the run's "approve" update. A gate that names approvers takes it only if your key is one of
theirs in the tenant's approver list (orch approver add); the run answers at once, and a refusal says why.
--approver is a display label only (default: your OS user name); who approved is the name of the key.
Exit codes: 0 taken (the gate may still wait for more approvers), 1 refused or no such gate, 2 usage.`,
  options: {
    json: { type: 'boolean' },
    reject: { type: 'boolean' },
    comment: { type: 'string', short: 'm' },
    approver: { type: 'string' },
  },
  optionHelp: { reject: 'reject instead of approve', comment: 'a comment, signed with the decision', approver: 'a display label (default: your OS user name)' },
  args: ['<workflow_id>', '<gate_id>'],
  async run({ values, positionals }, out) {
    const [workflowId, gate, ...rest] = positionals;
    if (!workflowId || !gate || rest.length) throw new CommandUsageError(`usage: ${approveSpec.usage}`);
    const approver = typeof values.approver === 'string' ? values.approver : os.userInfo().username;
    const comment = typeof values.comment === 'string' ? values.comment : '';
    if (comment.length > MAX_APPROVAL_COMMENT_LENGTH) {
      throw new OrchError('comment_too_long', `a comment holds at most ${MAX_APPROVAL_COMMENT_LENGTH} characters (this one has ${comment.length}); shorten it`);
    }
    if (approver.length === 0 || approver.length > MAX_APPROVER_LABEL_LENGTH) {
      throw new OrchError('bad_input', `--approver is a label of 1 to ${MAX_APPROVER_LABEL_LENGTH} characters`);
    }
    const config = loadConfig();
    // Temporal, the run and the keychain at once, each of which takes a while. The run id from Temporal and the
    // run's status (its tenant and waiting gates) are asked for together as soon as the command starts: neither call
    // carries a payload, so they need not wait for the keys (the status is decoded once they are there). A keychain
    // problem is still the one reported.
    const opening = openRunTransportAsking(config, { workflowId }, (t) =>
      Promise.allSettled([t.describe(workflowId), t.query<RunStatus>(workflowId, undefined, statusQuery.name)]),
    );
    const [identityOutcome, opened] = await Promise.allSettled([loadDesktopIdentity({ home: config.home }), opening]);
    if (opened.status === 'rejected') {
      if (identityOutcome.status === 'rejected') throw identityOutcome.reason;
      throw opened.reason;
    }
    const { transport, answer } = opened.value;
    try {
      if (identityOutcome.status === 'rejected') throw identityOutcome.reason;
      const identity = identityOutcome.value;
      await transport.keysLoaded();
      let description;
      let pending: PendingGate[];
      let tenant: string;
      try {
        // Temporal's answer about the run comes first: a run it does not know is unknown_workflow, whatever the query says.
        const [described, status] = answer;
        if (described.status === 'rejected') throw described.reason;
        if (status.status === 'rejected') throw status.reason;
        description = described.value;
        pending = status.value.pendingGates;
        tenant = status.value.tenant;
      } catch (err) {
        if (err instanceof RunNotFoundError) throw new OrchError('unknown_workflow', `no workflow "${workflowId}" in Temporal`);
        throw new OrchError('query_failed', `could not ask run ${workflowId} for its gates: ${(err as Error).message.split('\n')[0]} (is the worker running? orch up)`);
      }
      const g = pending.find((p) => p.gate === gate);
      if (!g) {
        const names = pending.map((p) => p.gate);
        throw new OrchError('gate_not_waiting', `run ${workflowId} is not waiting at gate "${gate}"${names.length ? `; waiting at: ${names.join(', ')}` : '; it waits at no gate now'}`);
      }
      if (!values.json) for (const l of formatGate(g, workflowId)) out.log(l);
      const decision = values.reject ? 'reject' : 'approve';
      const signed = signApproval(identity.sign, {
        tenant,
        workflowId,
        runId: description.runId,
        gate,
        decision,
        releaseDigest: g.releaseDigest,
        comment,
      });
      const signal: ApproveSignal = { gate, decision, approver, ...(comment ? { comment } : {}), signed };
      let result: ApproveResult;
      try {
        // To the run whose id the approval signs, not whatever run the workflow id names by then.
        result = await transport.update<ApproveResult>(workflowId, description.runId, approveUpdate.name, [signal]);
      } catch (err) {
        if (err instanceof UpdateRefusedError) {
          // A rejected update leaves no trace in the run; the same decision as a signal is refused again there and
          // listed with its reason in the gate's `refused` list, so `orch status` shows it to everyone.
          await transport.signal(workflowId, description.runId, approveSignal.name, [signal]).catch(() => undefined);
          throw new OrchError('approval_refused', `run ${workflowId} refused the ${decision} of gate "${gate}": ${err.reason}`);
        }
        if (err instanceof UpdateTimeoutError) {
          throw new OrchError('query_failed', `run ${workflowId} did not answer the approval in time (is the worker running? orch up); check orch status`);
        }
        if (err instanceof RunNotFoundError) throw new OrchError('unknown_workflow', `run ${description.runId} of workflow "${workflowId}" is not in Temporal any more`);
        throw err;
      }
      if (values.json) printJson(out, { workflowId, ...result, releaseDigest: g.releaseDigest, approverKey: signed.statement.approverKey });
      else {
        const state = result.state === 'pending' ? `taken; the gate still needs ${result.needed - result.approvals} more distinct approval(s)` : result.state;
        out.log(`${decision === 'approve' ? 'approved' : 'rejected'} gate "${gate}" of ${workflowId} as ${result.approver}${result.verified ? ' (signature verified)' : ' (unverified: this key is not in the tenant\'s approver list)'}: ${state}`);
      }
      return 0;
    } finally {
      await transport.close();
    }
  },
};
