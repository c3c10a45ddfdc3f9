/** Workflows for `npm run bench:engine`: Orch's own, plus the same work written by hand with Orch's API. */
import { claude, command, runOrch } from '../workflows/api';
import registeredDag from '../workflows/index';

export * from '../workflows/index';
export { runDag } from '../workflows/inline-dag';
export default registeredDag;

export interface HandWrittenInput {
  tenant: string;
  n: number;
  shape: 'chain' | 'fanout';
  model: string;
  /** Claude nodes (the default) or command nodes on `agent`. */
  node?: 'claude' | 'command';
  agent?: string;
}

/** N Claude calls (or commands) in a chain or all at once, without the DAG interpreter. */
export async function handWritten(input: HandWrittenInput): Promise<number> {
  return runOrch({ tenant: input.tenant, costCapUsd: 100 }, async () => {
    const call = (i: number) =>
      input.node === 'command'
        ? command(`n${i}`, { agent: input.agent ?? '', argv: ['echo', `node ${i}`] })
        : claude(`n${i}`, { model: input.model, prompt: `node ${i}`, maxTokens: 16 });
    if (input.shape === 'chain') {
      for (let i = 0; i < input.n; i++) await call(i);
    } else {
      await Promise.all(Array.from({ length: input.n }, (_, i) => call(i)));
    }
    return input.n;
  });
}
