/**
 * The DAG interpreter: runs a compiled DAG on an OrchSession. Every node starts as soon as all of its parents
 * succeeded, so independent branches run in parallel. The first failure cancels the rest of the run (in-flight
 * activities and waiting gates), marks its descendants skipped, and fails the run with the failed node named and
 * the node's own stable error type (approval_timeout, cost_cap_exceeded, ...).
 */
import { ApplicationFailure, CancellationScope, CancelledFailure, isCancellation } from '@temporalio/workflow';
import type { CompiledDag, CompiledNode, ParamValues } from './dag/types';
import { renderTemplate } from './dag/template';
import { ErrorType } from '../protocol/errors';
import { awaitStep, thenStep, type StepChain } from './chain';
import { errorOf, leanNodePath, singleParentPath, type OrchSession } from './session';
import type { RunResult } from './shared';

/** Keeps the run result (which lands in history) bounded; the full text is in each node's activity result. */
const MAX_OUTPUT_IN_RESULT = 16_000;

export async function runCompiledDag(session: OrchSession, dag: CompiledDag, params: ParamValues): Promise<RunResult> {
  for (const node of dag.nodes) session.declareNode(node.id, node.type);
  await session.begin(params);
  const byId = new Map(dag.nodes.map((n) => [n.id, n] as const));
  const outputs = new Map<string, string>();
  const finished = new Map<string, Promise<boolean>>();
  let firstFailure: { node: string; err: unknown } | undefined;

  // Parents' outputs are substituted wrapped in <server-output> tags (renderTemplate does it), as data.
  const render = (template: string): string => renderTemplate(template, { params, nodeOutput: (id) => outputs.get(id) });
  // Params are substituted here; `${secrets.NAME}` stays a reference, resolved only inside the activity, so a
  // secret's value never enters workflow history (and a param cannot smuggle a secret reference in).
  const renderArgv = (argv: string[]): string[] => argv.map((a) => renderTemplate(a, { params, keepSecrets: true }));

  // One node's steps. The claude and command arms chain with then() in runs that took LEAN_NODE_PATCH and with an async
  // function's await in runs recorded before (chain.ts); a gate always awaits, on both paths.
  const execute = (node: CompiledNode, chain: StepChain): Promise<void> => {
    switch (node.type) {
      case 'approval_gate':
        return awaitStep(
          () => {
            // What this gate releases: its command children, rendered as they will be sent. The approvers sign a
            // digest of this list; each command is checked against it again right before it runs.
            const releases = dag.nodes
              .filter((c): c is Extract<CompiledNode, { type: 'command' }> => c.type === 'command' && c.needs.includes(node.id))
              .map((c) => ({ node: c.id, agent: render(c.agent), argv: renderArgv(c.argv), destructive: c.destructive }));
            return session.approvalGate(node.id, {
              message: render(node.message),
              timeoutSeconds: node.timeoutSeconds,
              approvers: node.approvers,
              ...(node.minApprovals !== undefined ? { minApprovals: node.minApprovals } : {}),
              ...(node.distinctFromStarter !== undefined ? { distinctFromStarter: node.distinctFromStarter } : {}),
              releases,
            });
          },
          (d) => void outputs.set(node.id, `approved by ${d.approver}${d.comment ? `: ${d.comment}` : ''}`),
        );
      case 'command':
        return chain(
          () =>
            session.command(node.id, {
              agent: render(node.agent),
              argv: renderArgv(node.argv),
              timeoutSeconds: node.timeoutSeconds,
              cwd: node.cwd,
              destructive: node.destructive,
              after: node.needs.filter((p) => byId.get(p)?.type === 'approval_gate'),
            }),
          (r) => void outputs.set(node.id, r.stdout),
        );
      case 'claude':
        return chain(
          () =>
            session.claude(node.id, {
              model: node.model,
              prompt: render(node.prompt),
              system: node.system === undefined ? undefined : render(node.system),
              maxTokens: node.maxTokens,
            }),
          (r) => void outputs.set(node.id, r.text),
        );
    }
  };
  const lean = leanNodePath();
  const singleParent = singleParentPath();

  const scope = new CancellationScope();
  await scope.run(() =>
    Promise.all(
      dag.nodes.map((node) => {
        const done = (async (): Promise<boolean> => {
          // A node with no parents has nothing to wait for (in runs before LEAN_NODE_PATCH it awaited an empty list).
          // A node with one parent awaits it directly (in runs before SINGLE_PARENT_PATCH, a Promise.all of it).
          const parents =
            lean && node.needs.length === 0
              ? []
              : singleParent && node.needs.length === 1
                ? [await (finished.get(node.needs[0]!) ?? Promise.resolve(false))]
                : await Promise.all(node.needs.map((p) => finished.get(p) ?? Promise.resolve(false)));
          const failedParent = node.needs.find((_, i) => !parents[i]);
          if (failedParent !== undefined) {
            session.markNode(node.id, {
              state: 'skipped',
              error: { type: ErrorType.parentFailed, message: `not run: parent "${failedParent}" did not succeed` },
            });
            return false;
          }
          if (firstFailure || scope.consideredCancelled) {
            session.markNode(node.id, { state: 'cancelled' });
            return false;
          }
          try {
            await execute(node, lean ? thenStep : awaitStep);
            return true;
          } catch (err) {
            if (!(isCancellation(err) && (firstFailure || scope.consideredCancelled))) {
              firstFailure ??= { node: node.id, err };
              scope.cancel();
            }
            return false;
          }
        })();
        finished.set(node.id, done);
        return done;
      }),
    ),
  );

  if (!firstFailure && scope.consideredCancelled) {
    // Cancelled from outside (the UI's cancel, `temporal workflow cancel`), not by a failing node.
    session.setState('failed', { type: ErrorType.cancelled, message: 'the run was cancelled' });
    await CancellationScope.nonCancellable(() => session.end('failed', { type: ErrorType.cancelled, message: 'the run was cancelled' }));
    throw new CancelledFailure('the run was cancelled');
  }
  if (firstFailure) {
    const { type, message } = errorOf(firstFailure.err);
    session.setState('failed', { node: firstFailure.node, type, message });
    await session.end('failed', { node: firstFailure.node, type, message });
    if (isCancellation(firstFailure.err)) throw firstFailure.err;
    throw ApplicationFailure.nonRetryable(`node "${firstFailure.node}" failed: ${message}`, type, { node: firstFailure.node, type });
  }
  session.setState('succeeded');
  await session.end('succeeded');
  const result: Record<string, string> = {};
  for (const [id, out] of outputs) result[id] = out.length > MAX_OUTPUT_IN_RESULT ? `${out.slice(0, MAX_OUTPUT_IN_RESULT)}…` : out;
  return { dag: dag.name, state: 'succeeded', outputs: result, costUsd: session.spentUsd };
}
