/**
 * The tests' workflow bundle: everything Orch ships, the inline `runDag` and the example workflow (both kept off
 * the production worker), plus hand-written workflows that exercise the developer API's
 * guarantees directly (they are not part of Orch's own bundle).
 */
import { approvalGate, claude, command, runOrch, secret } from '../../workflows/api';
import registeredDag from '../../workflows/index';

export * from '../../workflows/index';
export default registeredDag;
// Not on the production worker (workflows/index.ts): the tests' workers run inline DAGs and the example.
export { runDag } from '../../workflows/inline-dag';
export { restartWithReview } from '../../workflows/examples/restart-with-review';

/** Calls a destructive command with the gates it is given; the API must refuse unless one was approved. */
export async function destructiveWithGates(input: { tenant: string; argv: string[]; after: string[]; openGate?: string; flag?: boolean }): Promise<string> {
  return runOrch({ tenant: input.tenant, costCapUsd: 1 }, async () => {
    if (input.openGate) await approvalGate(input.openGate, { message: 'ok?', timeoutSeconds: 600 });
    await command('danger', { agent: 'nowhere', argv: input.argv, after: input.after, destructive: input.flag });
    return 'ran';
  });
}

/** Two Claude calls in parallel through the API, each fitting the cap alone. */
export async function parallelClaude(input: { tenant: string; capUsd: number; maxTokens: number; model: string }): Promise<number> {
  return runOrch({ tenant: input.tenant, costCapUsd: input.capUsd }, async () => {
    const [a, b] = await Promise.all([
      claude('left', { model: input.model, prompt: 'left branch', maxTokens: input.maxTokens }),
      claude('right', { model: input.model, prompt: 'right branch', maxTokens: input.maxTokens }),
    ]);
    return a.outputTokens + b.outputTokens;
  });
}

/**
 * A gate that releases `released` on agent "nowhere", then runs `run` after it: when the two differ the command
 * is not the one the approvers signed for and must be refused (approval_mismatch) before anything is sent.
 */
export async function releasedThenRun(input: { tenant: string; released: string[]; run: string[] }): Promise<string> {
  return runOrch({ tenant: input.tenant, costCapUsd: 1 }, async () => {
    await approvalGate('g', { message: 'release it?', timeoutSeconds: 600, releases: [{ node: 'act', agent: 'nowhere', argv: input.released }] });
    await command('act', { agent: 'nowhere', argv: input.run, after: ['g'] });
    return 'ran';
  });
}

/**
 * Echoes text from its input beside a secret written in the code: the input's text must reach the agent as text
 * even when it reads `${secrets.NAME}`; only `secret('API_KEY')` is resolved.
 */
export async function echoInputBesideSecret(input: { tenant: string; agent: string; text: string }): Promise<string> {
  return runOrch({ tenant: input.tenant, costCapUsd: 1 }, async () => {
    const result = await command('say', { agent: input.agent, argv: ['echo', input.text, ['code:', secret('API_KEY')]] });
    return result.stdout;
  });
}
