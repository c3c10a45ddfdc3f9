/**
 * The set-up the engine suites share: the local Anthropic-protocol server (its own process) and a test worker with
 * the Orch plugin whose Claude calls go to it, started before the file's tests and stopped after them.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { startFakeAnthropic, type FakeAnthropic } from './anthropic';
import { startTestWorker, type TestWorker } from './harness';

export interface ClaudeWorker {
  /** The fake Anthropic server (read it inside a test or hook: it exists once `beforeAll` has run). */
  readonly anthropic: FakeAnthropic;
  /** The worker and its client, task queue and tenant store (likewise). */
  readonly w: TestWorker;
}

/** Registers the file's beforeAll/afterAll that start and stop both; call it at the top level of a test file. */
export function useClaudeWorker(): ClaudeWorker {
  let anthropic: FakeAnthropic | undefined;
  let w: TestWorker | undefined;
  beforeAll(async () => {
    const server = await startFakeAnthropic();
    anthropic = server;
    w = await startTestWorker({ claude: () => ({ apiKey: server.apiKey, baseURL: server.baseURL }) });
  });
  afterAll(async () => {
    await w?.stop();
    await anthropic?.stop();
  });
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useClaudeWorker: the ${what} is read before beforeAll started it (read it inside a test)`);
    return v;
  };
  return {
    get anthropic() {
      return started(anthropic, 'fake Anthropic server');
    },
    get w() {
      return started(w, 'test worker');
    },
  };
}
