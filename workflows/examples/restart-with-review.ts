/**
 * An example of a hand-written Orch workflow: ask Claude to read a service's status, let a person decide, then
 * restart it. Same guarantees as a DAG: the restart is refused unless the gate was approved in this run, the
 * Claude call is bounded by the cost cap, the output Claude sees is wrapped as data.
 */
import { approvalGate, claude, command, runOrch, wrapServerOutput } from '../api';

export interface RestartWithReviewInput {
  tenant: string;
  agent: string;
  service: string;
  model?: string;
  /** Skip the agent and review this text instead (for trying it without an enrolled agent). */
  statusText?: string;
}

export async function restartWithReview(input: RestartWithReviewInput): Promise<{ restarted: boolean; review: string }> {
  return runOrch({ tenant: input.tenant, costCapUsd: 0.05 }, async () => {
    const status =
      input.statusText ??
      (await command('status', { agent: input.agent, argv: ['systemctl', 'status', '--no-pager', input.service] })).stdout;
    const review = await claude('review', {
      model: input.model ?? 'claude-haiku-4-5',
      maxTokens: 300,
      prompt: `Here is the status of ${input.service}. Say in two sentences whether a restart looks safe.\n\n${wrapServerOutput('status', status)}`,
    });
    await approvalGate('confirm', { message: `Restart ${input.service} on ${input.agent}? Claude says: ${review.text}` });
    await command('restart', {
      agent: input.agent,
      argv: ['systemctl', 'restart', input.service],
      destructive: true,
      after: ['confirm'],
    });
    return { restarted: true, review: review.text };
  });
}
