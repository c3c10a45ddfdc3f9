/**
 * One local HTTP server process that speaks the three SIEM intake APIs Orch ships to, and checks each request
 * the way the vendor documents it:
 *
 * - Splunk HEC: POST /services/collector/event, `Authorization: Splunk <token>` (401 "Token is required" code 2
 *   when missing, 403 "Invalid token" code 4 when wrong), a body of JSON event objects one after another, each
 *   with a non-empty `event` and, if present, a numeric `time` (400 "No data" code 5 / "Invalid data format"
 *   code 6 otherwise); 200 {"text":"Success","code":0}.
 * - Datadog Logs intake v2: POST /api/v2/logs, `DD-API-KEY` (401 missing, 403 wrong), `Content-Type:
 *   application/json`, a JSON array (or one object) of at most 1,000 entries and 5 MB, each an object whose
 *   `message`, `ddsource`, `service`, `hostname`, `ddtags` are strings when present (400 otherwise, 413 when
 *   too large); 202 {}.
 * - Sumo Logic HTTP source: POST /receiver/v1/http/<code> (401 for another code), newline-separated messages,
 *   at least one; 200.
 *
 * Every accepted event is appended to the store file (`--store`, JSON lines {vendor, event}) and fsynced before
 * the answer, so what the file holds is exactly what was acknowledged, across restarts of this process.
 *
 * Faults: `POST /_fail {status, count}` answers the next `count` intake requests with `status` (429 carries
 * `Retry-After: 0`); `--die-after N` makes the process exit, without answering or storing, on the request that
 * would take it past N accepted events. `POST /_kill_after_ack {pid, request, delayMs?}` SIGKILLs process `pid`
 * (the shipper) right after the `request`-th accepted intake request from now was stored and its 2xx answer
 * written out (then `delayMs` later, default 0): the shipper dies between the SIEM's acknowledgement and its own
 * cursor save. With `onArrival: true` it kills `pid` when that request arrives instead, and drops the request
 * unstored and unanswered (the shipper dies with a batch in flight). `request: 0` disarms. `GET /_requests` lists
 * what was received (vendor, status, events).
 *
 * Run: node --import tsx test/support/fake-siem.ts --store FILE [--port N] [--splunk-token T] [--datadog-key K]
 *      [--sumo-code C] [--die-after N]; prints "listening PORT".
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnUntilListening } from './processes';

export const FAKE_SPLUNK_TOKEN = 'b1d3c9e0-0000-4000-8000-splunk-test';
export const FAKE_DATADOG_KEY = 'dd0123456789abcdef0123456789abcd';
export const FAKE_SUMO_CODE = 'ZaVnC4dhaV39Tn37ipXkI2O2ZxVmMmRhMzc1ZGItest';

type Vendor = 'splunk-hec' | 'datadog' | 'sumo';

interface Seen {
  vendor: Vendor | 'unknown';
  path: string;
  status: number;
  events: number;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      store: { type: 'string' },
      'splunk-token': { type: 'string', default: FAKE_SPLUNK_TOKEN },
      'datadog-key': { type: 'string', default: FAKE_DATADOG_KEY },
      'sumo-code': { type: 'string', default: FAKE_SUMO_CODE },
      'die-after': { type: 'string' },
    },
  });
  if (!values.store) throw new Error('--store FILE is required');
  const storeFd = fs.openSync(values.store, 'a');
  const dieAfter = values['die-after'] === undefined ? Infinity : Number(values['die-after']);
  let accepted = 0;
  let fail: { status: number; count: number } | undefined;
  let killAfterAck: { pid: number; request: number; delayMs: number; onArrival: boolean } | undefined;
  const killPid = (pid: number) => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const seen: Seen[] = [];

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const accept = (vendor: Vendor, events: unknown[]): boolean => {
    if (accepted + events.length > dieAfter) {
      // Dies mid-request: the client gets no answer and nothing of this request is kept.
      process.exit(3);
    }
    if (events.length) fs.writeSync(storeFd, events.map((event) => `${JSON.stringify({ vendor, event })}\n`).join(''));
    fs.fsyncSync(storeFd);
    accepted += events.length;
    return true;
  };

  /** Splunk's body is JSON objects back to back (whitespace between them allowed). */
  const splitObjects = (text: string): unknown[] | undefined => {
    const out: unknown[] = [];
    let depth = 0;
    let start = -1;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '{') {
        if (depth === 0) start = i;
        depth++;
      } else if (c === '}') {
        depth--;
        if (depth === 0) {
          try {
            out.push(JSON.parse(text.slice(start, i + 1)));
          } catch {
            return undefined;
          }
        }
      } else if (depth === 0 && !/\s/.test(c ?? '')) return undefined;
    }
    return depth === 0 ? out : undefined;
  };

  const splunk = (req: http.IncomingMessage, body: string, res: http.ServerResponse): Seen['status'] => {
    const auth = req.headers.authorization;
    if (!auth) return json(res, 401, { text: 'Token is required', code: 2 }), 401;
    if (auth !== `Splunk ${values['splunk-token']}`) return json(res, 403, { text: 'Invalid token', code: 4 }), 403;
    if (body.trim() === '') return json(res, 400, { text: 'No data', code: 5 }), 400;
    const events = splitObjects(body);
    if (!events) return json(res, 400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 }), 400;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as Record<string, unknown>;
      const okEvent = e && typeof e === 'object' && e.event !== undefined && e.event !== null && e.event !== '';
      const okTime = e.time === undefined || typeof e.time === 'number' || (typeof e.time === 'string' && /^\d+(\.\d+)?$/.test(e.time));
      if (!okEvent) return json(res, 400, { text: 'Event field is required', code: 12, 'invalid-event-number': i }), 400;
      if (!okTime) return json(res, 400, { text: 'Invalid data format', code: 6, 'invalid-event-number': i }), 400;
    }
    accept('splunk-hec', events);
    return json(res, 200, { text: 'Success', code: 0 }), 200;
  };

  const datadog = (req: http.IncomingMessage, body: string, res: http.ServerResponse): number => {
    const key = req.headers['dd-api-key'];
    if (!key) return json(res, 401, { errors: ['Unauthorized'] }), 401;
    if (key !== values['datadog-key']) return json(res, 403, { errors: ['Forbidden'] }), 403;
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return json(res, 400, { errors: ['Bad Request'] }), 400;
    if (Buffer.byteLength(body) > 5 * 1024 * 1024) return json(res, 413, { errors: ['Payload too large'] }), 413;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return json(res, 400, { errors: ['Bad Request'] }), 400;
    }
    const entries = Array.isArray(parsed) ? parsed : [parsed];
    if (entries.length === 0 || entries.length > 1000) return json(res, 400, { errors: ['Bad Request'] }), 400;
    for (const e of entries) {
      if (typeof e !== 'object' || e === null || Array.isArray(e)) return json(res, 400, { errors: ['Bad Request'] }), 400;
      for (const f of ['message', 'ddsource', 'service', 'hostname', 'ddtags']) {
        const v = (e as Record<string, unknown>)[f];
        if (v !== undefined && typeof v !== 'string') return json(res, 400, { errors: [`${f} must be a string`] }), 400;
      }
    }
    accept('datadog', entries);
    return json(res, 202, {}), 202;
  };

  const sumo = (url: string, body: string, res: http.ServerResponse): number => {
    if (url !== `/receiver/v1/http/${values['sumo-code']}`) return (res.writeHead(401), res.end()), 401;
    const lines = body.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) return (res.writeHead(400), res.end()), 400;
    accept('sumo', lines);
    return (res.writeHead(200), res.end()), 200;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'GET' && url === '/_requests') return json(res, 200, seen);
      if (req.method === 'POST' && url === '/_fail') {
        fail = JSON.parse(body) as { status: number; count: number };
        return json(res, 200, { ok: true });
      }
      if (req.method === 'POST' && url === '/_kill_after_ack') {
        const arm = JSON.parse(body) as { pid: number; request: number; delayMs?: number; onArrival?: boolean };
        killAfterAck = arm.request > 0 ? { pid: arm.pid, request: arm.request, delayMs: arm.delayMs ?? 0, onArrival: arm.onArrival === true } : undefined;
        return json(res, 200, { ok: true });
      }
      const vendor: Vendor | 'unknown' =
        url === '/services/collector/event' ? 'splunk-hec' : url === '/api/v2/logs' ? 'datadog' : url.startsWith('/receiver/v1/http/') ? 'sumo' : 'unknown';
      const record = (status: number, events = 0) => seen.push({ vendor, path: vendor === 'sumo' ? '/receiver/v1/http/…' : url, status, events });
      if (req.method !== 'POST' || vendor === 'unknown') {
        record(404);
        return json(res, 404, { text: 'not found' });
      }
      if (fail && fail.count > 0) {
        fail.count--;
        record(fail.status);
        return json(res, fail.status, { text: 'injected failure' }, fail.status === 429 ? { 'retry-after': '0' } : {});
      }
      if (killAfterAck?.onArrival && --killAfterAck.request === 0) {
        const { pid } = killAfterAck;
        killAfterAck = undefined;
        record(0);
        killPid(pid);
        req.socket.destroy();
        return;
      }
      const before = accepted;
      const status = vendor === 'splunk-hec' ? splunk(req, body, res) : vendor === 'datadog' ? datadog(req, body, res) : sumo(url, body, res);
      record(status, accepted - before);
      if (killAfterAck && !killAfterAck.onArrival && status >= 200 && status < 300 && --killAfterAck.request === 0) {
        const { pid, delayMs } = killAfterAck;
        killAfterAck = undefined;
        // The events are fsynced and the answer is handed to the socket: kill the shipper as it reads it.
        const kill = () => killPid(pid);
        const afterAnswer = () => (delayMs > 0 ? setTimeout(kill, delayMs) : kill());
        if (res.writableFinished) afterAnswer();
        else res.once('finish', afterAnswer);
      }
    });
  });
  server.listen(Number(values.port), '127.0.0.1', () => {
    const addr = server.address();
    process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
  });
}

export interface FakeSiem {
  url: string;
  port: number;
  child: ChildProcess;
  /** What was acknowledged, in order, from the store file. */
  received(): Array<{ vendor: Vendor; event: unknown }>;
  requests(): Promise<Seen[]>;
  failNext(status: number, count: number): Promise<void>;
  /**
   * SIGKILLs `pid` right after the `request`-th accepted intake request from now is answered (`delayMs` later),
   * or, with `onArrival`, when it arrives, dropping it unstored. `request` 0 disarms.
   */
  killAfterAck(pid: number, request: number, opts?: { delayMs?: number; onArrival?: boolean }): Promise<void>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Starts the fake SIEM process. Reuse `store` (and `port`) to restart it with what it had received. */
export async function startFakeSiem(opts: { store: string; port?: number; dieAfter?: number }): Promise<FakeSiem> {
  const args = ['--import', 'tsx', SELF, '--store', opts.store, '--port', String(opts.port ?? 0)];
  if (opts.dieAfter !== undefined) args.push('--die-after', String(opts.dieAfter));
  const { child, port, exited, stop } = await spawnUntilListening(process.execPath, args, 'fake SIEM');
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    child,
    exited,
    received: () =>
      fs
        .readFileSync(opts.store, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { vendor: Vendor; event: unknown }),
    requests: async () => (await (await fetch(`${url}/_requests`)).json()) as Seen[],
    failNext: async (status, count) => {
      await fetch(`${url}/_fail`, { method: 'POST', body: JSON.stringify({ status, count }) });
    },
    killAfterAck: async (pid, request, opts = {}) => {
      await fetch(`${url}/_kill_after_ack`, { method: 'POST', body: JSON.stringify({ pid, request, ...opts }) });
    },
    stop,
  };
}

if (process.argv[1] === SELF) main();
