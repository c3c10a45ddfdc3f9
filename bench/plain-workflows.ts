/**
 * The baseline `npm run bench:engine` compares Orch with: plain Temporal workflows and plain activities, no Orch.
 * Each step does the node's own work (one Messages API call to the local Anthropic-protocol server, activity
 * `callModel` in bench/engine.bench.ts), as a remote activity (what a user's own Temporal code would do) or as a
 * local activity (the floor: no activity task round trip through the server).
 */
import { condition, defineSignal, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';

export interface PlainActivities {
  callModel(prompt: string): Promise<string>;
  /** A command node's own work: one sealed command to the bench's agent (bench/support.ts). */
  runOnAgent(argv: string[]): Promise<number>;
}

const remote = proxyActivities<PlainActivities>({ startToCloseTimeout: '1 minute' });
const local = proxyLocalActivities<PlainActivities>({ startToCloseTimeout: '1 minute' });

export interface PlainInput {
  n: number;
  shape: 'chain' | 'fanout';
}

async function steps(call: (prompt: string) => Promise<string>, input: PlainInput): Promise<number> {
  if (input.shape === 'chain') {
    for (let i = 0; i < input.n; i++) await call(`node ${i}`);
  } else {
    await Promise.all(Array.from({ length: input.n }, (_, i) => call(`node ${i}`)));
  }
  return input.n;
}

/** N remote activities. */
export async function plainActivities(input: PlainInput): Promise<number> {
  return steps((p) => remote.callModel(p), input);
}

/** N local activities: the floor. */
export async function plainLocalActivities(input: PlainInput): Promise<number> {
  return steps((p) => local.callModel(p), input);
}

/** N remote activities each running one command on the agent: the baseline for command nodes. */
export async function plainCommands(input: PlainInput): Promise<number> {
  return steps((p) => remote.runOnAgent(['echo', p]).then(String), input);
}

/** The same as local activities: the floor for command nodes. */
export async function plainLocalCommands(input: PlainInput): Promise<number> {
  return steps((p) => local.runOnAgent(['echo', p]).then(String), input);
}

export const goSignal = defineSignal('go');

/** Parks on a signal, then runs one remote activity: the bare baseline for a gate releasing a node. */
export async function plainSignalThenActivity(): Promise<string> {
  let go = false;
  setHandler(goSignal, () => {
    go = true;
  });
  await condition(() => go);
  return remote.callModel('released');
}
