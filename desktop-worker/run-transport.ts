/**
 * THE CLI's TEMPORAL TRANSPORT: describe a run, query it, send it an update or a signal, and list runs from the
 * visibility store. `orch status`, `orch approve`, `orch runs` and `orch runs show` make every call to Temporal
 * through this module, and nowhere else.
 *
 * Two ways to the same calls, chosen once per command:
 * - HTTP: Temporal's HTTP API (the server's grpc-gateway JSON API, the same WorkflowService calls), with node:http.
 *   Used against the dev server `orch up` runs: it starts the server with an HTTP port and publishes it in
 *   <ORCH_HOME>/run/temporal-http.json. No gRPC client and no protobuf definitions are loaded: those took about three
 *   quarters of `orch status`'s time (loading @temporalio/client, @temporalio/proto and @grpc/grpc-js), the calls
 *   themselves a few milliseconds.
 * - gRPC: the Temporal SDK's client (temporal-client.ts), for a cluster named by TEMPORAL_* settings (TLS, API keys),
 *   when no HTTP port is published for this server, when the published port does not answer (an `orch up` that
 *   died), and for a workflow id with characters a URL path would need to escape.
 * Payloads are the same bytes either way: the HTTP API carries them as JSON with base64 fields (shorthand off), and
 * they go through this ORCH_HOME's payload codec (payload-codec.ts) as the SDK client's data converter sends them:
 * values as `json/plain` (or `binary/null`), then encrypted; failures' messages from their encoded (encrypted)
 * attributes (workflows/failure-converter.cjs). test/integration/run-transport.test.ts checks the HTTP way against
 * the SDK's.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { optionalTsToDate, type Payload, type PayloadCodec } from '@temporalio/common';
// A default import: the package is CommonJS, whose named exports node's ESM loader (the TypeScript sources under tsx)
// cannot see.
import proto from '@temporalio/proto';
import { OrchError } from '../protocol/errors';
import { writePrivateJsonAtomic } from '../infra/paths';
import { logTemporalTransport } from './cli-log';
import type { OrchConfig } from './config';
import { PayloadKeyring, loadPayloadCodec } from './payload-codec';
import { connectClient } from './temporal-client';

/** What a command needs of a run's description. `status` as the SDK names it: RUNNING, COMPLETED, FAILED, ... */
export interface RunDescription {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  /** Search attributes that are Keywords (OrchTenant, OrchDag, OrchState): their first string value. */
  keywords: Record<string, string>;
}

/** One run as the visibility store lists it (ListWorkflowExecutions). */
export interface ListedRun {
  workflowId: string;
  runId: string;
  type: string;
  /** As RunDescription's: RUNNING, COMPLETED, FAILED, ... */
  status: string;
  /** Orch's Keyword search attributes (OrchTenant, OrchDag, OrchState): their first string value. */
  keywords: Record<string, string>;
  startTime: Date | undefined;
  closeTime: Date | undefined;
}

/** The run (or workflow id) is not in Temporal. */
export class RunNotFoundError extends Error {}
/** The run answered the update with a failure (its handler refused): `reason` is the failure's message. */
export class UpdateRefusedError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}
/** No outcome of the update in time: no worker took it. */
export class UpdateTimeoutError extends Error {}

export interface RunTransport {
  /** "http" or "grpc": which way this command's calls go (ORCH_DEBUG prints it). */
  readonly via: 'http' | 'grpc';
  /** Where Temporal is, for messages. */
  readonly where: string;
  describe(workflowId: string): Promise<RunDescription>;
  /** A query's answer. `runId` undefined: the workflow id's latest run. */
  query<R>(workflowId: string, runId: string | undefined, name: string, args?: unknown[]): Promise<R>;
  /** Sends an update to that very run and waits for its outcome. */
  update<R>(workflowId: string, runId: string, name: string, args: unknown[]): Promise<R>;
  /** Sends a signal to that very run. */
  signal(workflowId: string, runId: string, name: string, args: unknown[]): Promise<void>;
  /** The first `limit` runs the visibility query selects (newest first), over as many pages as that takes. */
  list(query: string, limit: number): Promise<ListedRun[]>;
  /**
   * Settles once this ORCH_HOME's payload keys are loaded: at once unless the transport was opened with
   * `keysLater`; rejects with the keychain's error. A call that sends or decodes a payload waits for them itself.
   */
  keysLoaded(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Where `orch up` publishes the dev server's HTTP port.

export interface PublishedHttp {
  /** The dev server's gRPC address (`127.0.0.1:7233`): the published port is used only for that server. */
  address: string;
  httpPort: number;
  namespace: string;
  pid: number;
}

export function temporalHttpFile(home: string): string {
  return path.join(home, 'run', 'temporal-http.json');
}

/** Written by `orch up` once its dev server is ready (mode 0600), removed when it stops it. */
export function publishTemporalHttp(home: string, info: Omit<PublishedHttp, 'pid'>): void {
  writePrivateJsonAtomic(temporalHttpFile(home), { ...info, pid: process.pid });
}

export function unpublishTemporalHttp(home: string): void {
  fs.rmSync(temporalHttpFile(home), { force: true });
}

function readPublished(home: string): PublishedHttp | undefined {
  let v: Partial<PublishedHttp>;
  try {
    v = JSON.parse(fs.readFileSync(temporalHttpFile(home), 'utf8')) as Partial<PublishedHttp>;
  } catch {
    return undefined;
  }
  if (typeof v.address !== 'string' || !Number.isInteger(v.httpPort) || typeof v.namespace !== 'string') return undefined;
  return v as PublishedHttp;
}

// ---------------------------------------------------------------------------------------------------------------
// Values <-> payloads, as the SDK's default payload converter does it for what Orch sends (JSON values).

const ENCODING = 'encoding';

export function toPayload(value: unknown): Payload {
  if (value === undefined) return { metadata: { [ENCODING]: Buffer.from('binary/null') } };
  return { metadata: { [ENCODING]: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value), 'utf8') };
}

export function fromPayload(p: Payload | undefined): unknown {
  if (!p) return undefined;
  const encoding = p.metadata?.[ENCODING] ? Buffer.from(p.metadata[ENCODING]).toString() : '';
  if (encoding === 'binary/null') return undefined;
  if (encoding === 'json/plain') return JSON.parse(Buffer.from(p.data ?? new Uint8Array()).toString('utf8'));
  if (encoding === 'binary/plain') return new Uint8Array(p.data ?? []);
  throw new OrchError('payload_corrupt', `a payload has encoding "${encoding.slice(0, 40)}", which orch cannot read`);
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

function payloadToJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, ...(p.data && p.data.length ? { data: Buffer.from(p.data).toString('base64') } : {}) };
}

function payloadFromJson(j: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(j.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(j.data ?? '', 'base64') };
}

/** A Keyword search attribute's first string value, from its (never encrypted) JSON payload's data; else undefined. */
function keywordOf(data: Uint8Array | null | undefined): string | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
    const first = Array.isArray(v) ? (v as unknown[])[0] : v;
    return typeof first === 'string' ? first : undefined;
  } catch {
    return undefined;
  }
}

/** The search attributes a listed run's `keywords` hold: Orch's own (not Temporal's BuildIds and the like). */
const ORCH_ATTRIBUTE = /^Orch/;

/** Runs a list page may hold: the server's own cap on a page. */
const MAX_PAGE = 1000;

// ---------------------------------------------------------------------------------------------------------------
// The HTTP way.

/** The HTTP API's error body: a gRPC status code and message. */
interface HttpFailure {
  code?: number;
  message?: string;
}
const GRPC_NOT_FOUND = 5;
const GRPC_DEADLINE_EXCEEDED = 4;

class HttpStatusError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly grpcCode: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** A protobuf Timestamp as the HTTP API writes it (RFC 3339, up to nanoseconds); absent or unreadable: undefined. */
function timestampOf(s: string | undefined): Date | undefined {
  if (!s) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Workflow ids the HTTP way takes: the others (a "/" would reach the server escaped) go over gRPC. */
const URL_SAFE_ID = /^[A-Za-z0-9._~-]{1,1000}$/;
const STATUS_PREFIX = 'WORKFLOW_EXECUTION_STATUS_';
/** How long an update may wait for its outcome, over however many long polls. */
const UPDATE_WAIT_MS = 60_000;

class HttpTransport {
  readonly via = 'http' as const;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly identity = `${process.pid}@${os.hostname()}`;
  private readonly codec: Promise<PayloadCodec | undefined>;

  /** `codec`: the payload codec, or its loading (calls without payloads need not wait for it). */
  constructor(
    readonly where: string,
    private readonly port: number,
    private readonly namespace: string,
    codec: PayloadCodec | Promise<PayloadCodec | undefined> | undefined,
  ) {
    this.codec = Promise.resolve(codec);
    // Its failure is reported by keysLoaded() or the first call that needs the keys, never as an unhandled rejection.
    this.codec.catch(() => undefined);
  }

  async keysLoaded(): Promise<void> {
    await this.codec;
  }

  private request<T>(method: 'GET' | 'POST', pathname: string, body?: unknown, timeoutMs = 70_000): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path: pathname,
          agent: this.agent,
          // Payloads in their full form (metadata and data in base64), never as "shorthand" JSON values.
          headers: { accept: 'application/json+no-payload-shorthand', ...(text !== undefined ? { 'content-type': 'application/json+no-payload-shorthand', 'content-length': Buffer.byteLength(text) } : {}) },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = raw ? JSON.parse(raw) : {};
            } catch {
              reject(new HttpStatusError(res.statusCode ?? 0, undefined, `Temporal's HTTP API answered ${res.statusCode} with no JSON`));
              return;
            }
            if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) resolve(parsed as T);
            else {
              const f = parsed as HttpFailure;
              reject(new HttpStatusError(res.statusCode ?? 0, f.code, f.message ?? `HTTP ${res.statusCode}`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(text);
    });
  }

  private base(workflowId: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  }

  private async encode(values: unknown[]): Promise<JsonPayload[]> {
    let payloads = values.map(toPayload);
    // Nothing is sent before the keys are loaded: a payload never goes in the clear.
    const codec = await this.codec;
    if (codec) payloads = await codec.encode(payloads);
    return payloads.map(payloadToJson);
  }

  private async decode(json: JsonPayload[] | undefined): Promise<Payload[]> {
    let payloads = (json ?? []).map(payloadFromJson);
    const codec = await this.codec;
    if (codec) payloads = await codec.decode(payloads);
    return payloads;
  }

  private mapError(err: unknown): never {
    if (err instanceof HttpStatusError && (err.grpcCode === GRPC_NOT_FOUND || err.httpStatus === 404)) throw new RunNotFoundError(err.message);
    throw err;
  }

  async describe(workflowId: string): Promise<RunDescription> {
    type Describe = {
      workflowExecutionInfo?: { execution?: { workflowId?: string; runId?: string }; type?: { name?: string }; status?: string; searchAttributes?: { indexedFields?: Record<string, JsonPayload> } };
    };
    const d = await this.request<Describe>('GET', this.base(workflowId)).catch((err: unknown) => this.mapError(err));
    const info = d.workflowExecutionInfo ?? {};
    const status = info.status ?? 'UNSPECIFIED';
    const keywords: Record<string, string> = {};
    for (const [name, p] of Object.entries(info.searchAttributes?.indexedFields ?? {})) {
      // Search attributes are never encrypted: plain JSON payloads.
      try {
        const v = fromPayload(payloadFromJson(p));
        const first = Array.isArray(v) ? (v as unknown[])[0] : v;
        if (typeof first === 'string') keywords[name] = first;
      } catch {
        // not a keyword
      }
    }
    return {
      workflowId: info.execution?.workflowId ?? workflowId,
      runId: info.execution?.runId ?? '',
      type: info.type?.name ?? '',
      status: status.startsWith(STATUS_PREFIX) ? status.slice(STATUS_PREFIX.length) : status,
      keywords,
    };
  }

  async list(query: string, limit: number): Promise<ListedRun[]> {
    type Listed = {
      execution?: { workflowId?: string; runId?: string };
      type?: { name?: string };
      status?: string;
      startTime?: string;
      closeTime?: string;
      searchAttributes?: { indexedFields?: Record<string, JsonPayload> };
    };
    type Page = { executions?: Listed[]; nextPageToken?: string };
    const runs: ListedRun[] = [];
    let nextPageToken: string | undefined;
    do {
      const params = new URLSearchParams({ query, pageSize: String(Math.min(limit - runs.length, MAX_PAGE)) });
      // A bytes field: the base64 the last page carried, as the gateway reads it back.
      if (nextPageToken) params.set('nextPageToken', nextPageToken);
      const page = await this.request<Page>('GET', `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows?${params.toString()}`);
      for (const w of page.executions ?? []) {
        const keywords: Record<string, string> = {};
        for (const [name, p] of Object.entries(w.searchAttributes?.indexedFields ?? {})) {
          if (!ORCH_ATTRIBUTE.test(name)) continue;
          const k = keywordOf(p.data === undefined ? undefined : Buffer.from(p.data, 'base64'));
          if (k !== undefined) keywords[name] = k;
        }
        const status = w.status ?? 'UNSPECIFIED';
        runs.push({
          workflowId: w.execution?.workflowId ?? '',
          runId: w.execution?.runId ?? '',
          type: w.type?.name ?? '',
          status: status.startsWith(STATUS_PREFIX) ? status.slice(STATUS_PREFIX.length) : status,
          keywords,
          startTime: timestampOf(w.startTime),
          closeTime: timestampOf(w.closeTime),
        });
        if (runs.length >= limit) break;
      }
      nextPageToken = page.nextPageToken || undefined;
    } while (nextPageToken && runs.length < limit);
    return runs;
  }

  async query<R>(workflowId: string, runId: string | undefined, name: string, args: unknown[] = []): Promise<R> {
    type Query = { queryResult?: { payloads?: JsonPayload[] }; queryRejected?: { status?: string } };
    const body = {
      execution: { workflowId, ...(runId ? { runId } : {}) },
      query: { queryType: name, ...(args.length ? { queryArgs: { payloads: await this.encode(args) } } : {}) },
    };
    const r = await this.request<Query>('POST', `${this.base(workflowId)}/query/${encodeURIComponent(name)}`, body).catch((err: unknown) => this.mapError(err));
    if (r.queryRejected) throw new Error(`query rejected (run status ${r.queryRejected.status ?? 'unknown'})`);
    const [first] = await this.decode(r.queryResult?.payloads);
    return fromPayload(first) as R;
  }

  async update<R>(workflowId: string, runId: string, name: string, args: unknown[]): Promise<R> {
    type Failure = { message?: string; encodedAttributes?: JsonPayload };
    type Update = { outcome?: { success?: { payloads?: JsonPayload[] }; failure?: Failure } };
    const body = {
      workflowExecution: { workflowId, runId },
      waitPolicy: { lifecycleStage: 'UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED' },
      request: { meta: { updateId: crypto.randomUUID(), identity: this.identity }, input: { name, args: { payloads: await this.encode(args) } } },
    };
    const deadline = Date.now() + UPDATE_WAIT_MS;
    for (;;) {
      let r: Update;
      try {
        // The same request (the same update id) again until it has an outcome: Temporal takes it once.
        r = await this.request<Update>('POST', `${this.base(workflowId)}/update/${encodeURIComponent(name)}`, body, Math.max(1000, deadline - Date.now()));
      } catch (err) {
        if ((err instanceof HttpStatusError && err.grpcCode === GRPC_DEADLINE_EXCEEDED) || (err as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
          if (Date.now() < deadline) continue;
          throw new UpdateTimeoutError('the update had no outcome in time');
        }
        this.mapError(err);
      }
      if (r.outcome?.failure) throw new UpdateRefusedError(await this.failureMessage(r.outcome.failure));
      if (r.outcome?.success) {
        const [first] = await this.decode(r.outcome.success.payloads);
        return fromPayload(first) as R;
      }
      if (Date.now() >= deadline) throw new UpdateTimeoutError('the update had no outcome in time');
    }
  }

  /** A failure's message; with the codec's failure converter, it is in the encoded (encrypted) attributes. */
  private async failureMessage(f: { message?: string; encodedAttributes?: JsonPayload }): Promise<string> {
    if (f.encodedAttributes) {
      const [p] = await this.decode([f.encodedAttributes]);
      const attrs = fromPayload(p) as { message?: unknown } | undefined;
      if (attrs && typeof attrs.message === 'string') return attrs.message;
    }
    return f.message ?? 'update failed';
  }

  async signal(workflowId: string, runId: string, name: string, args: unknown[]): Promise<void> {
    const body = { workflowExecution: { workflowId, runId }, signalName: name, input: { payloads: await this.encode(args) }, identity: this.identity, requestId: crypto.randomUUID() };
    await this.request('POST', `${this.base(workflowId)}/signal/${encodeURIComponent(name)}`, body).catch((err: unknown) => this.mapError(err));
  }

  /** True when the published port is this server's HTTP API (a cheap call that any WorkflowService answers). */
  async answers(): Promise<boolean> {
    try {
      await this.request('GET', `/api/v1/namespaces/${encodeURIComponent(this.namespace)}`, undefined, 3000);
      return true;
    } catch (err) {
      return err instanceof HttpStatusError && err.grpcCode !== undefined;
    }
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The gRPC way: the SDK client, its errors mapped to this module's.

function grpcStatusName(code: number | null | undefined): string {
  const name = proto.temporal.api.enums.v1.WorkflowExecutionStatus[code ?? 0] ?? 'UNSPECIFIED';
  return name.startsWith(STATUS_PREFIX) ? name.slice(STATUS_PREFIX.length) : name;
}

async function grpcTransport(config: OrchConfig, payloadKeys: boolean): Promise<RunTransport> {
  const { client, where, close } = await connectClient(config, { payloadKeys });
  const mapError = (err: unknown): never => {
    if (err instanceof WorkflowNotFoundError) throw new RunNotFoundError(err.message);
    throw err;
  };
  return {
    via: 'grpc',
    where,
    keysLoaded: () => Promise.resolve(),
    async describe(workflowId) {
      const d = await client.workflow
        .getHandle(workflowId)
        .describe()
        .catch((err: unknown) => mapError(err));
      const keywords: Record<string, string> = {};
      for (const [name, v] of Object.entries((d.searchAttributes ?? {}) as Record<string, unknown>)) {
        const first = Array.isArray(v) ? (v as unknown[])[0] : v;
        if (typeof first === 'string') keywords[name] = first;
      }
      return { workflowId: d.workflowId, runId: d.runId, type: d.type, status: d.status.name, keywords };
    },
    async query<R>(workflowId: string, runId: string | undefined, name: string, args: unknown[] = []) {
      return client.workflow
        .getHandle(workflowId, runId)
        .query<R, unknown[]>(name, ...args)
        .catch((err: unknown) => mapError(err));
    },
    async update<R>(workflowId: string, runId: string, name: string, args: unknown[]) {
      try {
        return await client.workflow.getHandle(workflowId, runId).executeUpdate<R, [unknown, ...unknown[]]>(name, { args: args as [unknown, ...unknown[]] });
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) throw new UpdateRefusedError((err.cause as Error | undefined)?.message ?? err.message);
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) throw new UpdateTimeoutError(err.message);
        return mapError(err);
      }
    },
    async signal(workflowId, runId, name, args) {
      await client.workflow
        .getHandle(workflowId, runId)
        .signal(name, ...args)
        .catch((err: unknown) => mapError(err));
    },
    async list(query, limit) {
      // The raw pages as they come, without the SDK's per-run decoding of each memo (one await per run).
      const runs: ListedRun[] = [];
      let nextPageToken: Uint8Array | undefined;
      do {
        const page = await client.workflowService.listWorkflowExecutions({
          namespace: client.options.namespace,
          query,
          pageSize: Math.min(limit - runs.length, MAX_PAGE),
          ...(nextPageToken ? { nextPageToken } : {}),
        });
        for (const w of page.executions) {
          const keywords: Record<string, string> = {};
          for (const [name, p] of Object.entries(w.searchAttributes?.indexedFields ?? {})) {
            if (!ORCH_ATTRIBUTE.test(name)) continue;
            const k = keywordOf(p.data);
            if (k !== undefined) keywords[name] = k;
          }
          runs.push({
            workflowId: w.execution?.workflowId ?? '',
            runId: w.execution?.runId ?? '',
            type: w.type?.name ?? '',
            status: grpcStatusName(w.status),
            keywords,
            startTime: optionalTsToDate(w.startTime) ?? undefined,
            closeTime: optionalTsToDate(w.closeTime) ?? undefined,
          });
          if (runs.length >= limit) break;
        }
        nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
      } while (nextPageToken && runs.length < limit);
      return runs;
    },
    close,
  };
}

/** The dev server's HTTP API this command may use: published by this ORCH_HOME's `orch up` for this very server. */
function publishedHttpFor(config: OrchConfig, workflowId: string | undefined): { address: string; port: number; namespace: string } | undefined {
  const target = config.temporal;
  if (target.kind !== 'dev-server') return undefined;
  const published = readPublished(config.home);
  const address = `${target.ip}:${target.port}`;
  if (!published || published.address !== address || published.namespace !== target.namespace) return undefined;
  if (workflowId !== undefined && !URL_SAFE_ID.test(workflowId)) return undefined;
  return { address, port: published.httpPort, namespace: target.namespace };
}

/**
 * The transport for this command: HTTP when this ORCH_HOME's `orch up` published its dev server's HTTP port and it
 * answers, else gRPC. `payloadKeys: false` skips the keychain (a command that sends and decodes no payload).
 * `workflowId`: the run the command is about (an id a URL cannot carry as is goes over gRPC).
 */
export async function openRunTransport(config: OrchConfig, options: { payloadKeys?: boolean; workflowId?: string } = {}): Promise<RunTransport> {
  const payloadKeys = options.payloadKeys !== false;
  const http = publishedHttpFor(config, options.workflowId);
  if (http) {
    // The keychain and a first call at once; the call carries no payload, so nothing is sent in the clear.
    const codec = payloadKeys && PayloadKeyring.exists(config.home) ? loadPayloadCodec(config.home) : undefined;
    const probe = new HttpTransport(http.address, http.port, http.namespace, undefined);
    const [keys, answers] = await Promise.allSettled([codec, probe.answers()]);
    await probe.close();
    if (keys.status === 'rejected') throw keys.reason;
    if (answers.status === 'fulfilled' && answers.value) {
      logTemporalTransport('http', `127.0.0.1:${http.port}`);
      return new HttpTransport(http.address, http.port, http.namespace, keys.value);
    }
  }
  const grpc = await grpcTransport(config, payloadKeys);
  logTemporalTransport('grpc', grpc.where);
  return grpc;
}

/**
 * openRunTransport, and the command's first calls made at once: over HTTP they go beside the probe of the published
 * port instead of after it, and before the payload keys are loaded (a payload the answers carry is decoded once they
 * are: keysLoaded() settles then, or rejects with the keychain's error). So Temporal and the run answer while the
 * command is still loading its keys. `first` must make only calls that carry no payload and change nothing
 * (describe, a query without arguments): when the probe finds no HTTP API there (an `orch up` that died), they are
 * dropped and made again over gRPC, where the keys come first.
 */
export async function openRunTransportAsking<T>(
  config: OrchConfig,
  options: { workflowId?: string },
  first: (transport: RunTransport) => Promise<T>,
): Promise<{ transport: RunTransport; answer: T }> {
  const http = publishedHttpFor(config, options.workflowId);
  if (http) {
    let keysFrom: (codec: Promise<PayloadCodec | undefined> | undefined) => void = () => undefined;
    const transport = new HttpTransport(http.address, http.port, http.namespace, new Promise<PayloadCodec | undefined>((resolve) => (keysFrom = resolve)));
    const probe = transport.answers();
    const answer = first(transport);
    answer.catch(() => undefined);
    // The keychain only now: its modules load synchronously, after the requests above are made.
    keysFrom(PayloadKeyring.exists(config.home) ? loadPayloadCodec(config.home) : undefined);
    if (await probe) {
      logTemporalTransport('http', `127.0.0.1:${http.port}`);
      try {
        return { transport, answer: await answer };
      } catch (err) {
        await transport.close();
        throw err;
      }
    }
    await transport.close();
    // Over gRPC the keys come first: their failure is the one reported.
    await transport.keysLoaded();
  }
  const grpc = await grpcTransport(config, true);
  logTemporalTransport('grpc', grpc.where);
  try {
    return { transport: grpc, answer: await first(grpc) };
  } catch (err) {
    await grpc.close();
    throw err;
  }
}
