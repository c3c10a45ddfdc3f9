/** Starts the fake Anthropic-protocol server as a child process and reads what it received. */
import { fileURLToPath } from 'node:url';
import { spawnUntilListening } from './processes';

export const FAKE_API_KEY = 'test-key-not-secret';
export const OUTPUT_TOKENS = 20;

export function countTokens(prompt: string, system: string): number {
  return Math.ceil((prompt.length + system.length) / 4);
}

export interface RecordedRequest {
  path: string;
  model?: string;
  prompt: string;
  system?: string;
  maxTokens?: number;
  answered: number;
}

export interface FakeAnthropic {
  baseURL: string;
  apiKey: string;
  requests(): Promise<RecordedRequest[]>;
  /** Only /v1/messages requests (the billable ones). */
  messages(): Promise<RecordedRequest[]>;
  failNext(status: number, count: number): Promise<void>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('./fake-anthropic.ts', import.meta.url));

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const server = await spawnUntilListening(process.execPath, ['--import', 'tsx', SERVER, '--port', '0', '--api-key', FAKE_API_KEY], 'fake Anthropic server');
  const baseURL = `http://127.0.0.1:${server.port}`;
  const call = async (path: string, init?: RequestInit) => {
    const r = await fetch(`${baseURL}${path}`, init);
    return r.json();
  };
  return {
    baseURL,
    apiKey: FAKE_API_KEY,
    requests: () => call('/_requests') as Promise<RecordedRequest[]>,
    messages: async () => ((await call('/_requests')) as RecordedRequest[]).filter((r) => r.path === '/v1/messages'),
    failNext: async (status, count) => {
      await call('/_fail', { method: 'POST', body: JSON.stringify({ status, count }) });
    },
    reset: async () => {
      await call('/_reset', { method: 'POST' });
    },
    stop: server.stop,
  };
}
