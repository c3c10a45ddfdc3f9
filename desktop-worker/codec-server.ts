/**
 * The codec server: lets the Temporal UI (and `temporal workflow show --codec-endpoint`) show the payloads the
 * payload codec (desktop-worker/payload-codec.ts) encrypted, to this desktop's user. Temporal's codec-server
 * protocol: `POST /decode` and `POST /encode`, a JSON body `{"payloads": [{"metadata": {k: base64}, "data":
 * base64}]}`, the same shape back.
 *
 * `orch up` runs it with NestJS on 127.0.0.1 (a random port) and starts the dev server with `--ui-codec-endpoint`.
 * The port is bound first, NestJS loaded after (`listening` tells the endpoint at once): `orch up` starts the dev
 * server meanwhile, and a request that comes before NestJS is ready waits for it.
 * What it answers:
 * - a request with an Origin header only from the UI's exact origin (no wildcard, no `null`, no suffix or prefix
 *   match), answered with that origin in Access-Control-Allow-Origin; any other origin gets 403 and no CORS
 *   headers. Requests without Origin (the temporal CLI) are not browsers and are not CORS-checked;
 * - only with its token: in the path (`/t/<token>/decode`, the endpoint the UI is given, since the UI of a dev
 *   server without login has no access token to pass) or as `Authorization: Bearer <token>` (the CLI's
 *   `--codec-auth`). No token, or another one: 401;
 * - only for Orch's namespace: `X-Namespace` (the UI sends it; the CLI with `--codec-header X-Namespace=NS`) must
 *   name it, else 403;
 * - only `Content-Type: application/json` POSTs (preflights aside), bodies up to 8 MiB.
 */
import 'reflect-metadata';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { All, Controller, Module, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { constantTimeEqual, randomBytes } from '../protocol/primitives';

export const MAX_CODEC_BODY_BYTES = 8 * 1024 * 1024;
const ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** The only namespace answered (X-Namespace). */
  namespace: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default: 32 random bytes, hex. */
  token?: string;
  /** Exact origins (scheme://host:port) a browser page may call from; more can be added with allowOrigin. */
  allowedOrigins?: string[];
  /** One line per refused request (metadata only). */
  log?: (event: Record<string, unknown>) => void;
  /** Called once the port is bound, before NestJS is loaded: the endpoint can be handed out (requests wait). */
  listening?: (endpoint: { url: string; uiEndpoint: string }) => void;
  /** NestJS is loaded once this settles (default: at once); `orch up` passes the start of the dev server's process. */
  loadAfter?: Promise<unknown>;
}

export interface CodecServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The endpoint with the token in its path, for `--ui-codec-endpoint` (the UI appends /decode). */
  uiEndpoint: string;
  token: string;
  /** Adds an exact origin (the UI's, once the dev server has picked its port). */
  allowOrigin(origin: string): void;
  close(): Promise<void>;
}

/** `scheme://host[:port]` as browsers send it in Origin; throws on anything else (paths, wildcards, `null`). */
export function exactOrigin(url: string): string {
  const u = new URL(url);
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) throw new TypeError(`${url} is not an http(s) origin`);
  return u.origin;
}

type Op = 'decode' | 'encode';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function b64(bytes: Uint8Array | null | undefined): string {
  return Buffer.from(bytes ?? new Uint8Array()).toString('base64');
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function fromB64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !BASE64.test(value)) throw new HttpError(400, 'bad_request', `${what} is not base64`);
  return Buffer.from(value, 'base64');
}

function parsePayloads(body: unknown): Payload[] {
  const payloads = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(payloads)) throw new HttpError(400, 'bad_request', 'the body must be {"payloads": [...]}');
  return payloads.map((p: JsonPayload, i) => {
    if (typeof p !== 'object' || p === null) throw new HttpError(400, 'bad_request', `payloads[${i}] is not an object`);
    const metadata: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = fromB64(v, `payloads[${i}].metadata.${k}`);
    return { metadata, data: p.data === undefined ? new Uint8Array() : fromB64(p.data, `payloads[${i}].data`) };
  });
}

function toJson(payloads: Payload[]): { payloads: JsonPayload[] } {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
      data: b64(p.data),
    })),
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_CODEC_BODY_BYTES) throw new HttpError(413, 'too_large', `the body is larger than ${MAX_CODEC_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  res.statusCode = status;
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (body === undefined) {
    res.end();
    return;
  }
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
}

function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(token, 'utf8');
  return a.length === b.length && constantTimeEqual(a, b);
}

// Decorators are applied as plain calls, as in relay/relay.module.ts (no legacy decorators in this tsconfig).
function decorateMethod(target: object, name: string, ...decorators: MethodDecorator[]): void {
  for (const decorate of decorators.reverse()) {
    const descriptor = Object.getOwnPropertyDescriptor(target, name)!;
    const result = decorate(target, name, descriptor);
    if (result) Object.defineProperty(target, name, result);
  }
}

/** The module of one server: its controller closes over that server's codec, token and origins. */
function codecModule(handle: (req: IncomingMessage, res: ServerResponse, op: Op, pathToken: string | undefined) => Promise<void>) {
  class CodecController {
    decode(req: IncomingMessage & { params?: Record<string, string> }, res: ServerResponse): Promise<void> {
      return handle(req, res, 'decode', undefined);
    }
    encode(req: IncomingMessage, res: ServerResponse): Promise<void> {
      return handle(req, res, 'encode', undefined);
    }
    decodeWithToken(req: IncomingMessage & { params?: Record<string, string> }, res: ServerResponse): Promise<void> {
      return handle(req, res, 'decode', req.params?.token ?? '');
    }
    encodeWithToken(req: IncomingMessage & { params?: Record<string, string> }, res: ServerResponse): Promise<void> {
      return handle(req, res, 'encode', req.params?.token ?? '');
    }
  }
  Controller()(CodecController);
  for (const [name, route] of [
    ['decode', 'decode'],
    ['encode', 'encode'],
    ['decodeWithToken', 't/:token/decode'],
    ['encodeWithToken', 't/:token/encode'],
  ] as const) {
    Req()(CodecController.prototype, name, 0);
    Res()(CodecController.prototype, name, 1);
    decorateMethod(CodecController.prototype, name, All(route));
  }
  class CodecModule {}
  Module({ controllers: [CodecController] })(CodecModule);
  return CodecModule;
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(32).toString('hex');
  const origins = new Set<string>((opts.allowedOrigins ?? []).map(exactOrigin));
  const log = opts.log ?? (() => undefined);

  const handle = async (req: IncomingMessage, res: ServerResponse, op: Op, pathToken: string | undefined): Promise<void> => {
    try {
      const origin = req.headers.origin;
      if (origin !== undefined) {
        // Exact string match against the allowlist: `null`, other ports, look-alike hosts never match.
        if (!origins.has(origin)) throw new HttpError(403, 'origin_refused', 'this origin may not use the codec server');
        res.setHeader('Access-Control-Allow-Origin', origin);
        res.setHeader('Access-Control-Allow-Credentials', 'true');
        res.setHeader('Vary', 'Origin');
      }
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'POST');
        res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
        res.setHeader('Access-Control-Max-Age', '600');
        send(res, 204);
        return;
      }
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'POST, OPTIONS');
        throw new HttpError(405, 'method_not_allowed', 'only POST');
      }
      const auth = req.headers.authorization;
      const bearer = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
      if (!tokenMatches(pathToken ?? bearer, token)) throw new HttpError(401, 'token_required', 'a valid codec server token is required');
      const namespace = req.headers['x-namespace'];
      if (namespace !== opts.namespace) throw new HttpError(403, 'namespace_refused', `only namespace ${JSON.stringify(opts.namespace)} (X-Namespace)`);
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'bad_content_type', 'Content-Type must be application/json');
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new HttpError(400, 'bad_request', 'the body is not JSON');
      }
      const payloads = parsePayloads(body);
      let result: Payload[];
      try {
        result = op === 'decode' ? await opts.codec.decode(payloads) : await opts.codec.encode(payloads);
      } catch (err) {
        throw new HttpError(400, `${op}_failed`, (err as Error).message.split('\n')[0] ?? `${op} failed`);
      }
      send(res, 200, toJson(result));
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal', 'the codec server failed');
      if (e.status === 401 || e.status === 403) log({ event: e.code, origin: req.headers.origin?.slice(0, 200) ?? null, path: op });
      // A refused browser request must not learn anything: no CORS headers were set for it, so it cannot read this.
      send(res, e.status, { error: e.code, message: e.message });
    }
  };

  // The port first (a plain HTTP server, so the endpoint is known in a few ms), then NestJS, which takes most of the
  // start: a request that arrives meanwhile waits for it.
  let nestHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let nestFailed = false;
  const waiting: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const serve = () => (nestHandler ? nestHandler(req, res) : send(res, 503, { error: 'unavailable', message: 'the codec server failed to start' }));
    if (nestHandler || nestFailed) serve();
    else waiting.push(serve);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const uiEndpoint = `${url}/t/${token}`;
  opts.listening?.({ url, uiEndpoint });
  // Loading NestJS keeps this thread busy a while: not before the caller has used the endpoint.
  await (opts.loadAfter ?? new Promise((resolve) => setImmediate(resolve))).catch(() => undefined);
  const closeServer = async (): Promise<void> => {
    const closing = new Promise<void>((resolve) => server.close(() => resolve()));
    // Idle keep-alive sockets (a browser's, a CLI's) would hold the port open.
    server.closeAllConnections();
    await closing;
  };
  let app: NestExpressApplication;
  try {
    app = await NestFactory.create<NestExpressApplication>(codecModule(handle), { logger: false, bodyParser: false, abortOnError: false });
    app.disable('x-powered-by');
    await app.init();
  } catch (err) {
    nestFailed = true;
    for (const serve of waiting.splice(0)) serve();
    await closeServer();
    throw err;
  }
  nestHandler = app.getHttpAdapter().getInstance() as (req: IncomingMessage, res: ServerResponse) => void;
  for (const serve of waiting.splice(0)) serve();
  return {
    url,
    uiEndpoint,
    token,
    allowOrigin(origin) {
      origins.add(exactOrigin(origin));
    },
    async close() {
      await Promise.all([closeServer(), app.close()]);
    },
  };
}
