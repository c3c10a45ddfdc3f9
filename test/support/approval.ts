/**
 * A test approver: an Ed25519 key whose signed approvals a test attaches to commands it sends an agent directly
 * (protocol/APPROVAL.md). A standard or infrastructure agent runs a command its read-only check does not clear
 * only with such an attestation, signed by a key it trusts for the command's tenant; tests that seal commands
 * themselves give the agent that key with `approversMessage` (or at join) and attach `attest(...)` to each command.
 *
 * @example
 * const approver = new TestApprover();
 * agent.send(desktop.seal(approver.approversMessage('acme')));
 * const cmd = { kind: 'command', commandId: 'wf/run/n', tenant: 'acme', argv, timeoutSeconds: 10, approval: approver.attest('wf/run/n', argv) };
 */
import type { ApproversMessage } from '../../protocol/agent-messages';
import { releaseDigest, signApproval, type CommandApproval, type ReleasedCommand } from '../../protocol/approval';
import { ed25519KeyPair, type SignKeyPair } from '../../protocol/primitives';

/** An argv element as a release template: a literal `${` is written `$${` (APPROVAL.md). */
const literal = (arg: string): string => arg.replace(/\$\{/g, () => '$${');

export interface AttestOptions {
  tenant?: string;
  /** The agent's name as it knows it from its join; an agent enrolled by hand has none and skips the check. */
  agent?: string;
  tier?: string;
}

export class TestApprover {
  readonly key: SignKeyPair = ed25519KeyPair();

  get keyHex(): string {
    return Buffer.from(this.key.publicKey).toString('hex');
  }

  /** The sealed `approvers` message that makes an agent trust this key for `tenant` (version must grow). */
  approversMessage(tenant = 'acme', version = 1): ApproversMessage {
    return { kind: 'approvers', tenant, version, keys: [this.keyHex], signedAt: Date.now() };
  }

  /**
   * An attestation for one command, as an approved gate of run `workflowId/runId` gives it: `commandId` must be
   * `workflowId/runId/node` (the agent checks the prefix).
   */
  attest(commandId: string, argv: string[], o: AttestOptions = {}): CommandApproval {
    const parts = commandId.split('/');
    if (parts.length < 3) throw new Error(`command id ${commandId} is not workflowId/runId/node`);
    const node = parts.pop()!;
    const runId = parts.pop()!;
    const workflowId = parts.join('/');
    const released: ReleasedCommand[] = [{ commandId, node, agent: o.agent ?? 'test-agent', tier: o.tier ?? 'infrastructure', argv: argv.map(literal), destructive: false }];
    const signed = signApproval(
      {
        v: 1,
        type: 'orch-approval',
        tenant: o.tenant ?? 'acme',
        workflowId,
        runId,
        gate: 'approve',
        decision: 'approve',
        releaseDigest: releaseDigest(released),
        approverKey: this.keyHex,
        at: Date.now(),
        comment: '',
      },
      this.key.secretKey,
    );
    return { approvals: [signed], released };
  }
}

/** A DAG's node, as far as gating it goes. */
interface DagNode {
  id: string;
  type: string;
  needs?: string[];
  [k: string]: unknown;
}

/**
 * The DAG with an approval gate `gate` (no approvers list: any key of the tenant's approver list may sign it) in
 * front of every command node, so each command carries the gate's attestation to its agent. Commands whose argv
 * uses a parent's output cannot be released this way (the approver signs the argv as rendered at the gate).
 */
export function gateCommands<T extends { nodes: DagNode[] }>(dag: T, gate = 'approve'): T {
  return {
    ...dag,
    nodes: [
      { id: gate, type: 'approval_gate', message: 'release the test commands', timeout_seconds: 3600 },
      ...dag.nodes.map((n) => (n.type === 'command' ? { ...n, needs: [...(n.needs ?? []), gate] } : n)),
    ],
  };
}

/** What approveGate needs of a run: a Temporal workflow handle. */
interface RunHandle {
  workflowId: string;
  describe(): Promise<{ runId: string }>;
  query<R>(def: unknown): Promise<R>;
  signal(def: unknown, arg: unknown): Promise<void>;
}

/**
 * Waits until the run waits at `gate`, then approves it with a decision signed by `approver` (whose key must be in
 * the tenant's approver list: `orch approver add` / addApprover), as `orch approve` does. Resolves with the gate's
 * release digest.
 */
export async function approveGate(handle: RunHandle, opts: { tenant: string; approver: TestApprover; gate?: string; timeoutMs?: number }): Promise<string> {
  const { approveSignal, pendingGatesQuery } = await import('../../workflows/shared');
  const gate = opts.gate ?? 'approve';
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const pending = (await handle.query<Array<{ gate: string; releaseDigest: string }>>(pendingGatesQuery).catch(() => [])).find((g) => g.gate === gate);
    if (pending) {
      const { runId } = await handle.describe();
      const signed = signApproval(
        {
          v: 1,
          type: 'orch-approval',
          tenant: opts.tenant,
          workflowId: handle.workflowId,
          runId,
          gate,
          decision: 'approve',
          releaseDigest: pending.releaseDigest,
          approverKey: opts.approver.keyHex,
          at: Date.now(),
          comment: '',
        },
        opts.approver.key.secretKey,
      );
      await handle.signal(approveSignal, { gate, decision: 'approve', approver: 'test', signed });
      return pending.releaseDigest;
    }
    if (Date.now() > deadline) throw new Error(`run ${handle.workflowId} did not wait at gate "${gate}" within ${opts.timeoutMs ?? 60_000} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The worker dependency that gives runs their tenant's approver keys (as `orch up`'s worker has it, desktop-worker/
 * worker.ts): pass it to startTestWorker so a signed approval from a tenant approver is verified and its
 * attestation goes with the released commands.
 */
export async function gateContextDep(home: string): Promise<{ gateContext: (tenant: string) => import('../../activities/types').GateContext }> {
  const { gateContextOf } = await import('../../desktop-worker/worker');
  const { TenantStore } = await import('../../desktop-worker/tenant-store');
  return {
    gateContext: (tenant) => {
      const store = new TenantStore(home);
      try {
        return gateContextOf(home, store, tenant);
      } finally {
        store.close();
      }
    },
  };
}
