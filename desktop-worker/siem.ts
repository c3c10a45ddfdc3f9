/**
 * Getting a tenant's audit chain out: `orch audit export` (a file) and `orch audit ship` (a SIEM's HTTP intake),
 * in shapes Splunk HEC, Datadog Logs and Sumo Logic accept, and `verifyAuditCopy` for what comes back.
 *
 * Every copy is verifiable on its own. Each audit row travels whole (seq, ts, tenant, actor, action, subject,
 * details, prevHash, hash: exactly what the chain hashes), and the signed checkpoints travel as events of their
 * own, so `orch audit verify-export FILE --key DESKTOP_PUBLIC_KEY` can re-hash the chain and check the desktop's
 * signatures with nothing but the copy. Records ("orch audit record v1", one JSON object each, RFC 8785 bytes):
 *
 *   {"kind":"orch.audit.export","v":1,"tenant":…,"sinceSeq":…,"untilSeq":…}      (files only: the range)
 *   {"kind":"orch.audit.row","v":1, seq, ts, tenant, actor, action, subject, details, prevHash, hash}
 *   {"kind":"orch.audit.checkpoint","v":1, tenant, seq, hash, ts, signerPublicKey, signature}
 *
 * Vendor shapes (one event per record):
 * - Splunk HEC: POST <url>/services/collector/event, `Authorization: Splunk <token>`, newline-separated JSON
 *   events {time (epoch seconds of the row), host, source "orch:<tenant>", sourcetype "orch:audit", event: record}.
 * - Datadog Logs (intake v2): POST <url>/api/v2/logs, `DD-API-KEY: <key>`, a JSON array of
 *   {ddsource "orch", service "orch-audit", hostname, message: the record's JSON text, ddtags}. Documented limits:
 *   1,000 entries and 5 MB uncompressed per request, 1 MB per log.
 * - Sumo Logic HTTP source: POST to the source's URL (its token is part of the URL; there is no header),
 *   newline-separated records, one log message per line, with X-Sumo-Category / X-Sumo-Name / X-Sumo-Host.
 * A file export in a vendor format holds one such event per line (Datadog: one entry object per line).
 *
 * Batches stay under every vendor's documented limits: at most 500 events and 512 KiB per request (Splunk Cloud
 * takes 1 MB per request by default, Sumo recommends 100 KB to 1 MB, Datadog 5 MB / 1,000 entries).
 *
 * Shipping is resumable: the last sequence a destination acknowledged (HTTP 2xx) is stored in the tenant's
 * database (table siem_cursor) after each batch, and the next `ship` starts after it, so nothing is skipped. A
 * batch is re-sent only if the shipper dies between the destination's 2xx and that write (milliseconds); such a
 * re-sent event is byte-identical (same seq and hash), so SIEM searches and `verify-export` drop it. One shipper
 * per destination at a time: a lease in the same table refuses a second one (`ship_in_progress`).
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { canonicalize } from '../protocol/canonical-json';
import {
  GENESIS_HASH,
  validateAuditChain,
  type AuditChainResult,
  type AuditRow,
  type SignedCheckpoint,
} from '../protocol/audit-chain';
import { maskSecrets } from '../activities/secrets';
import { OrchError } from '../protocol/errors';
import type { AuditLog } from './audit-log';
import type { TenantStore } from './tenant-store';

export const SIEM_VENDORS = ['splunk-hec', 'datadog', 'sumo'] as const;
export type SiemVendor = (typeof SIEM_VENDORS)[number];
export const EXPORT_FORMATS = ['jsonl', ...SIEM_VENDORS] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The tenant secret each vendor's credential comes from (Sumo's is in its URL). */
export const SIEM_TOKEN_SECRET: Record<SiemVendor, string | undefined> = {
  'splunk-hec': 'SPLUNK_HEC_TOKEN',
  datadog: 'DATADOG_API_KEY',
  sumo: undefined,
};
/** Optional tenant secret holding the Sumo HTTP source URL, so the token in it need not be typed in argv. */
export const SUMO_URL_SECRET = 'SUMO_HTTP_SOURCE_URL';

export const BATCH_LIMITS = { maxEvents: 500, maxBytes: 512 * 1024 } as const;

export interface ExportHeader {
  kind: 'orch.audit.export';
  v: 1;
  tenant: string;
  sinceSeq: number;
  untilSeq: number;
}

type Rec = Record<string, unknown>;

export function rowRecord(row: AuditRow): Rec {
  return {
    kind: 'orch.audit.row',
    v: 1,
    seq: row.seq,
    ts: row.ts,
    tenant: row.tenant,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    details: row.details,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

export function checkpointRecord(cp: SignedCheckpoint): Rec {
  return { ...cp, kind: 'orch.audit.checkpoint', v: 1 };
}

function recordTime(rec: Rec): number | undefined {
  const ts = rec.ts;
  return typeof ts === 'string' ? Date.parse(ts) / 1000 : undefined;
}

/** One record in a vendor's event shape (a plain record for jsonl and Sumo). */
export function vendorEvent(format: ExportFormat, rec: Rec, host: string): Rec {
  const tenant = String(rec.tenant ?? '');
  switch (format) {
    case 'jsonl':
    case 'sumo':
      return rec;
    case 'splunk-hec': {
      const time = recordTime(rec);
      return { ...(time !== undefined ? { time } : {}), host, source: `orch:${tenant}`, sourcetype: 'orch:audit', event: rec };
    }
    case 'datadog': {
      const kind = String(rec.kind ?? '').replace(/^orch\.audit\./, '');
      const tags = [`tenant:${tenant}`, `kind:${kind}`, ...(typeof rec.action === 'string' ? [`action:${rec.action}`] : [])];
      return { ddsource: 'orch', service: 'orch-audit', hostname: host, message: canonicalize(rec), ddtags: tags.join(',') };
    }
  }
}

/** Rows in since..until with each checkpoint right after the row it signs. */
function* recordsOf(rows: Iterable<AuditRow>, checkpoints: readonly SignedCheckpoint[]): Generator<{ rec: Rec; seq: number; hash: string }> {
  const bySeq = new Map<number, SignedCheckpoint[]>();
  for (const cp of checkpoints) bySeq.set(cp.seq, [...(bySeq.get(cp.seq) ?? []), cp]);
  for (const row of rows) {
    yield { rec: rowRecord(row), seq: row.seq, hash: row.hash };
    for (const cp of bySeq.get(row.seq) ?? []) yield { rec: checkpointRecord(cp), seq: row.seq, hash: row.hash };
  }
}

function requireSigner(store: TenantStore, log: AuditLog): Buffer {
  const key = store.trustedPublicKey;
  if (!key) throw new OrchError('audit_no_signer', 'exports and shipping carry signed checkpoints: open the tenant with the desktop identity (orch init)');
  if (!log.canSign) throw new OrchError('audit_no_signer', 'exports and shipping sign a checkpoint: open the tenant with the desktop identity (orch init)');
  return key;
}

function verifyOrThrow(log: AuditLog, key: Buffer): void {
  const result = log.verify(key);
  if (!result.ok) {
    throw new OrchError(
      'audit_chain_broken',
      `the audit chain of tenant "${log.tenant}" is broken at seq ${result.firstBadSeq} (${result.problem}: ${result.detail}); nothing was exported: run \`orch audit verify --tenant ${log.tenant}\``,
      { firstBadSeq: result.firstBadSeq, problem: result.problem },
    );
  }
}

// ------------------------------------------------------------------------------------------------- export

export interface ExportOptions {
  format: ExportFormat;
  /** First seq to export (default 1). */
  sinceSeq?: number;
  /** Last seq; default: the head, which is then the export's own `export` row. */
  untilSeq?: number;
  actor: string;
  /** Where the copy goes, for the audit row ('-' for stdout). */
  destination: string;
  host?: string;
}

export interface ExportSummary {
  tenant: string;
  format: ExportFormat;
  sinceSeq: number;
  untilSeq: number;
  rows: number;
  checkpoints: number;
  exportSeq: number;
}

/**
 * Writes a tenant's chain (or a range of it) in `format`, one line per record, through `write`.
 *
 * The `export` audit row: without --until it is appended first and is the last row of the export (the copy
 * proves it was made, and its end is signed); with --until, it is appended after the range and is not in it.
 * Either way the head is checkpointed (a checkpoint on every export), the row at --until is checkpointed if it
 * is not yet, and the copy carries the checkpoints of its range. The same range exported again gives the same
 * bytes (see AuditLog.checkpointsForExport).
 */
export function exportAudit(store: TenantStore, tenant: string, opts: ExportOptions, write: (line: string) => void): ExportSummary {
  const log = store.auditLog(tenant);
  const key = requireSigner(store, log);
  const since = opts.sinceSeq ?? 1;
  if (!Number.isSafeInteger(since) || since < 1) throw new OrchError('bad_input', '--since is a sequence number >= 1');
  if (opts.untilSeq !== undefined && (!Number.isSafeInteger(opts.untilSeq) || opts.untilSeq < since)) {
    throw new OrchError('bad_input', '--until is a sequence number >= --since');
  }
  verifyOrThrow(log, key);
  const headBefore = log.head().seq;
  if (opts.untilSeq !== undefined && opts.untilSeq > headBefore) {
    throw new OrchError('bad_input', `--until ${opts.untilSeq} is past the end of the chain (seq ${headBefore})`);
  }
  if (opts.untilSeq === undefined && since > headBefore + 1) {
    throw new OrchError('bad_input', `--since ${since} is past the end of the chain (seq ${headBefore})`);
  }
  const exportRow = log.append({
    actor: opts.actor,
    action: 'export',
    subject: `audit:${tenant}`,
    details: { format: opts.format, sinceSeq: since, untilSeq: opts.untilSeq ?? null, destination: opts.destination },
  });
  log.checkpoint();
  const until = opts.untilSeq ?? exportRow.seq;
  log.checkpointAt(until);
  const checkpoints = log.checkpointsForExport(since, until);
  const host = opts.host ?? os.hostname();
  const header: ExportHeader = { kind: 'orch.audit.export', v: 1, tenant, sinceSeq: since, untilSeq: until };
  write(canonicalize(vendorEvent(opts.format, header as unknown as Rec, host)));
  let rows = 0;
  for (const { rec } of recordsOf(log.rows({ sinceSeq: since, untilSeq: until }), checkpoints)) {
    if (rec.kind === 'orch.audit.row') rows++;
    write(canonicalize(vendorEvent(opts.format, rec, host)));
  }
  return { tenant, format: opts.format, sinceSeq: since, untilSeq: until, rows, checkpoints: checkpoints.length, exportSeq: exportRow.seq };
}

// ---------------------------------------------------------------------------------------------- shipping

export interface ShipOptions {
  vendor: SiemVendor;
  /** Splunk/Datadog: the base URL (the intake path is added if missing). Sumo: the HTTP source URL. */
  url: string;
  /**
   * Allow a plain `http://` URL (`--insecure-http`): the rows and the credential then travel unencrypted, so
   * this is for a collector on the same host or a test peer, never across a network.
   */
  insecureHttp?: boolean;
  /** Splunk HEC token or Datadog API key (Sumo: none). */
  token?: string;
  actor: string;
  host?: string;
  maxEvents?: number;
  maxBytes?: number;
  /** Attempts per batch on 429, 408, 5xx and network errors (default 8). */
  maxAttempts?: number;
  /** First retry delay; doubles each attempt up to 30 s (default 500 ms). A Retry-After header wins. */
  baseDelayMs?: number;
  log?: (line: string) => void;
}

export interface ShipSummary {
  tenant: string;
  vendor: SiemVendor;
  destination: string;
  fromSeq: number;
  toSeq: number;
  events: number;
  batches: number;
  retries: number;
}

const CURSOR_SCHEMA = `
CREATE TABLE IF NOT EXISTS siem_cursor (
  destination  TEXT PRIMARY KEY,
  vendor       TEXT NOT NULL,
  endpoint     TEXT NOT NULL,
  last_seq     INTEGER NOT NULL,
  last_hash    TEXT NOT NULL,
  lease_holder TEXT,
  lease_until  INTEGER,
  updated_at   TEXT NOT NULL
);`;

const LEASE_MS = 120_000;

/** Error type of a plain `http://` SIEM URL shipped to without `--insecure-http`. */
export const INSECURE_HTTP_ERROR = 'siem_insecure_http';

/**
 * The request URL for a vendor: the documented intake path appended to a base URL that lacks it. A plain
 * `http://` URL is refused unless `insecureHttp` is set: the batches carry the whole audit trail and the HEC
 * token or API key rides in a header (Sumo's in the URL), all readable by anyone on the path.
 */
export function intakeUrl(vendor: SiemVendor, url: string, insecureHttp = false): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OrchError('bad_input', `--url ${JSON.stringify(url.slice(0, 80))} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new OrchError('bad_input', '--url must be http(s)');
  if (u.protocol === 'http:' && !insecureHttp) {
    throw new OrchError(
      INSECURE_HTTP_ERROR,
      `--url ${u.origin} is plain http: the audit rows and the ${vendor} credential would travel unencrypted; use an https:// URL, or pass --insecure-http for a collector on this host`,
    );
  }
  const path = vendor === 'splunk-hec' ? '/services/collector/event' : vendor === 'datadog' ? '/api/v2/logs' : undefined;
  if (path !== undefined && !u.pathname.endsWith(path)) u.pathname = u.pathname.replace(/\/+$/, '') + path;
  return u;
}

/** How a destination is named in the cursor table and the audit log: never the Sumo URL's token. */
function describeEndpoint(vendor: SiemVendor, u: URL): string {
  return vendor === 'sumo' ? `${u.origin}/receiver/…` : `${u.origin}${u.pathname}`;
}

function destinationId(vendor: SiemVendor, u: URL): string {
  return createHash('sha256').update(`${vendor}\n${u.href}`).digest('hex').slice(0, 32);
}

/** Request body and headers of one batch. */
export function batchRequest(vendor: SiemVendor, events: readonly string[], token: string | undefined, tenant: string, host: string): { body: string; headers: Record<string, string> } {
  switch (vendor) {
    case 'splunk-hec':
      return { body: events.join('\n'), headers: { 'content-type': 'application/json', authorization: `Splunk ${token ?? ''}` } };
    case 'datadog':
      return { body: `[${events.join(',')}]`, headers: { 'content-type': 'application/json', 'dd-api-key': token ?? '' } };
    case 'sumo':
      return {
        body: events.join('\n'),
        headers: { 'content-type': 'text/plain; charset=utf-8', 'x-sumo-category': `orch/audit/${tenant}`, 'x-sumo-name': `orch-audit-${tenant}`, 'x-sumo-host': host },
      };
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends the tenant's chain from where this destination left off to the head, in batches, retrying with backoff.
 *
 * The `ship` audit row is appended first and the head checkpointed, so each shipment ends with its own row and
 * a signature over it: the SIEM copy is complete and verifiable up to the moment of the shipment.
 */
export async function shipAudit(store: TenantStore, tenant: string, opts: ShipOptions): Promise<ShipSummary> {
  const log = store.auditLog(tenant);
  const key = requireSigner(store, log);
  if (SIEM_TOKEN_SECRET[opts.vendor] !== undefined && !opts.token) {
    throw new OrchError('secret_missing', `shipping to ${opts.vendor} needs the tenant secret ${SIEM_TOKEN_SECRET[opts.vendor]}`);
  }
  const url = intakeUrl(opts.vendor, opts.url, opts.insecureHttp === true);
  const endpoint = describeEndpoint(opts.vendor, url);
  const dest = destinationId(opts.vendor, url);
  const host = opts.host ?? os.hostname();
  const maxEvents = Math.max(1, Math.min(opts.maxEvents ?? BATCH_LIMITS.maxEvents, opts.vendor === 'datadog' ? 1000 : Infinity));
  const maxBytes = opts.maxBytes ?? BATCH_LIMITS.maxBytes;
  const maxAttempts = opts.maxAttempts ?? 8;
  const baseDelay = opts.baseDelayMs ?? 500;
  const secretsToMask = opts.token ? [opts.token] : [];
  const say = opts.log ?? (() => {});

  const db = store.get(tenant);
  db.exec(CURSOR_SCHEMA);
  const holder = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const acquire = db.transaction(() => {
    const row = db.prepare('SELECT last_seq, last_hash, lease_holder, lease_until FROM siem_cursor WHERE destination = ?').get(dest) as
      | { last_seq: number; last_hash: string; lease_holder: string | null; lease_until: number | null }
      | undefined;
    if (row?.lease_holder) {
      const [h, pidText] = row.lease_holder.split(':');
      const sameHostDead = h === os.hostname() && !isAlive(Number(pidText));
      if (!sameHostDead && (row.lease_until ?? 0) > Date.now()) {
        throw new OrchError('ship_in_progress', `another \`orch audit ship\` (${row.lease_holder}) is shipping tenant "${tenant}" to ${endpoint}; wait for it to finish`);
      }
    }
    const now = new Date().toISOString();
    if (!row) {
      db.prepare('INSERT INTO siem_cursor (destination, vendor, endpoint, last_seq, last_hash, lease_holder, lease_until, updated_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?)').run(
        dest,
        opts.vendor,
        endpoint,
        GENESIS_HASH,
        holder,
        Date.now() + LEASE_MS,
        now,
      );
      return { lastSeq: 0, lastHash: GENESIS_HASH };
    }
    db.prepare('UPDATE siem_cursor SET lease_holder = ?, lease_until = ? WHERE destination = ?').run(holder, Date.now() + LEASE_MS, dest);
    return { lastSeq: row.last_seq, lastHash: row.last_hash };
  });
  const cursor = acquire.immediate();
  const advance = db.prepare('UPDATE siem_cursor SET last_seq = ?, last_hash = ?, lease_until = ?, updated_at = ? WHERE destination = ? AND lease_holder = ?');
  const release = () => db.prepare('UPDATE siem_cursor SET lease_holder = NULL, lease_until = NULL WHERE destination = ? AND lease_holder = ?').run(dest, holder);

  try {
    verifyOrThrow(log, key);
    if (cursor.lastSeq > 0) {
      const at = log.rowAt(cursor.lastSeq);
      if (!at || at.hash !== cursor.lastHash) {
        throw new OrchError(
          'ship_cursor_mismatch',
          `this destination already holds rows up to seq ${cursor.lastSeq}, but the chain here ${at ? 'has another row at that seq' : 'is shorter'}: the chain was replaced after it was shipped`,
        );
      }
    }
    const shipRow = log.append({
      actor: opts.actor,
      action: 'ship',
      subject: `audit:${tenant}`,
      details: { to: opts.vendor, destination: endpoint, fromSeq: cursor.lastSeq + 1 },
    });
    log.checkpoint();
    const head = shipRow.seq;
    const checkpoints = log.checkpoints().filter((cp) => cp.seq > cursor.lastSeq && cp.seq <= head);

    let batch: string[] = [];
    let batchBytes = 0;
    let batchEnd = { seq: cursor.lastSeq, hash: cursor.lastHash };
    let pendingSeq = { seq: cursor.lastSeq, hash: cursor.lastHash };
    let pendingEvents: string[] = [];
    let events = 0;
    let batches = 0;
    let retries = 0;
    let acked = { seq: cursor.lastSeq, hash: cursor.lastHash };
    const cursorSeq = () => acked.seq;

    const send = async (): Promise<void> => {
      if (batch.length === 0) return;
      const { body, headers } = batchRequest(opts.vendor, batch, opts.token, tenant, host);
      for (let attempt = 1; ; attempt++) {
        let status = 0;
        let text = '';
        let retryAfter: string | null = null;
        try {
          const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(30_000) });
          status = res.status;
          retryAfter = res.headers.get('retry-after');
          text = await res.text().catch(() => '');
        } catch (err) {
          text = (err as Error).message;
        }
        if (status >= 200 && status < 300) break;
        const retryable = status === 0 || status === 408 || status === 429 || status >= 500;
        const why = `${status === 0 ? 'network error' : `HTTP ${status}`}: ${maskSecrets(text.slice(0, 200), secretsToMask)}`;
        if (!retryable) {
          throw new OrchError('siem_rejected', `${opts.vendor} at ${endpoint} refused the batch ending at seq ${batchEnd.seq} (${why}); fix the credential or URL and run ship again: it resumes after seq ${cursorSeq()}`, {
            status,
          });
        }
        if (attempt >= maxAttempts) {
          throw new OrchError('siem_unavailable', `${opts.vendor} at ${endpoint} did not accept the batch ending at seq ${batchEnd.seq} after ${attempt} attempts (${why}); run ship again later: it resumes after seq ${cursorSeq()}`, {
            status,
          });
        }
        retries++;
        const hinted = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
        const backoff = Math.min(30_000, baseDelay * 2 ** (attempt - 1));
        const delay = Math.min(60_000, hinted ?? backoff / 2 + Math.random() * (backoff / 2));
        say(`${opts.vendor}: ${why}; retrying in ${Math.round(delay)} ms (attempt ${attempt + 1} of ${maxAttempts})`);
        await sleep(delay);
      }
      // Acknowledged: only now does the cursor move, in the same database as the chain.
      const moved = advance.run(batchEnd.seq, batchEnd.hash, Date.now() + LEASE_MS, new Date().toISOString(), dest, holder);
      if (moved.changes !== 1) throw new OrchError('ship_in_progress', 'this shipper lost its lease on the destination; another one took over');
      acked = batchEnd;
      events += batch.length;
      batches++;
      say(`${opts.vendor}: acknowledged up to seq ${batchEnd.seq}`);
      batch = [];
      batchBytes = 0;
    };
    // A row and its checkpoints go in one batch, so the cursor always sits on a row boundary.
    const flushRow = async () => {
      if (pendingEvents.length === 0) return;
      const size = pendingEvents.reduce((n, e) => n + Buffer.byteLength(e) + 1, 0);
      if (batch.length > 0 && (batch.length + pendingEvents.length > maxEvents || batchBytes + size > maxBytes)) await send();
      batch.push(...pendingEvents);
      batchBytes += size;
      batchEnd = pendingSeq;
      pendingEvents = [];
    };
    // Read in pages: the connection cannot write the cursor while a read statement is still open on it.
    const PAGE = 1000;
    for (let from = cursor.lastSeq + 1; from <= head; from += PAGE) {
      const page = [...log.rows({ sinceSeq: from, untilSeq: Math.min(head, from + PAGE - 1) })];
      for (const { rec, seq, hash } of recordsOf(page, checkpoints)) {
        if (seq !== pendingSeq.seq) await flushRow();
        pendingSeq = { seq, hash };
        pendingEvents.push(canonicalize(vendorEvent(opts.vendor, rec, host)));
      }
    }
    await flushRow();
    await send();
    return { tenant, vendor: opts.vendor, destination: endpoint, fromSeq: cursor.lastSeq + 1, toSeq: head, events, batches, retries };
  } finally {
    release();
  }
}

/** The cursors of a tenant's destinations (for `orch audit ship --status`, and tests). */
export function shipCursors(store: TenantStore, tenant: string): Array<{ vendor: string; endpoint: string; lastSeq: number; updatedAt: string }> {
  const db = store.get(tenant);
  db.exec(CURSOR_SCHEMA);
  return (db.prepare('SELECT vendor, endpoint, last_seq, updated_at FROM siem_cursor ORDER BY endpoint').all() as Array<{
    vendor: string;
    endpoint: string;
    last_seq: number;
    updated_at: string;
  }>).map((r) => ({ vendor: r.vendor, endpoint: r.endpoint, lastSeq: r.last_seq, updatedAt: r.updated_at }));
}

// ------------------------------------------------------------------------------------- verifying a copy

export type CopyProblem = AuditChainResultProblem | 'unreadable' | 'no_rows' | 'unsigned_tail' | 'range_mismatch' | 'no_checkpoint';
type AuditChainResultProblem = Extract<AuditChainResult, { ok: false }>['problem'];

export type CopyResult =
  | { ok: true; tenant: string; sinceSeq: number; untilSeq: number; rows: number; checkpoints: number; duplicates: number; head: string }
  | { ok: false; firstBadSeq: number; problem: CopyProblem; detail: string; duplicates: number };

/** The orch record inside one parsed event of any of the shapes above, or undefined. */
export function unwrapEvent(ev: unknown): Rec | undefined {
  if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) return undefined;
  const o = ev as Rec;
  if (typeof o.kind === 'string' && o.kind.startsWith('orch.audit.')) return o;
  if ('event' in o) {
    const inner = typeof o.event === 'string' ? safeParse(o.event) : o.event;
    return unwrapEvent(inner);
  }
  if (typeof o.message === 'string') return unwrapEvent(safeParse(o.message));
  return undefined;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Verifies a copy of a chain on its own: any mix of lines in the jsonl, Splunk HEC, Datadog (entries or whole
 * arrays) and Sumo shapes, in any order (a SIEM returns events sorted its own way). Exact duplicates (a batch
 * re-sent after a crash) are counted and dropped; anything else that repeats a seq is a break. The copy must end
 * on a checkpoint signed by `trustedPublicKey` (a tail nobody signed could have been cut or invented), and when
 * it carries an export header its rows must be exactly the header's range.
 */
export function verifyAuditCopy(text: string, trustedPublicKey: Buffer): CopyResult {
  const rows = new Map<string, AuditRow>();
  const cps = new Map<string, SignedCheckpoint>();
  let header: ExportHeader | undefined;
  let duplicates = 0;
  let lineNo = 0;
  const take = (ev: unknown) => {
    const rec = unwrapEvent(ev);
    if (!rec) throw new OrchError('unreadable', `line ${lineNo} is not an Orch audit record`);
    const { kind, v: _v, ...rest } = rec;
    if (kind === 'orch.audit.export') {
      header = rec as unknown as ExportHeader;
      return;
    }
    const key = canonicalize(rec);
    if (kind === 'orch.audit.row') {
      if (rows.has(key)) duplicates++;
      else rows.set(key, rest as unknown as AuditRow);
    } else if (kind === 'orch.audit.checkpoint') {
      if (cps.has(key)) duplicates++;
      else cps.set(key, { ...(rest as unknown as SignedCheckpoint), v: rec.v as 1 });
    } else {
      throw new OrchError('unreadable', `line ${lineNo} has an unknown record kind`);
    }
  };
  try {
    for (const line of text.split('\n')) {
      lineNo++;
      if (line.trim() === '') continue;
      const parsed = safeParse(line);
      if (parsed === undefined) throw new OrchError('unreadable', `line ${lineNo} is not JSON`);
      if (Array.isArray(parsed)) for (const ev of parsed) take(ev);
      else take(parsed);
    }
  } catch (err) {
    if (err instanceof OrchError) return { ok: false, firstBadSeq: 0, problem: 'unreadable', detail: err.message, duplicates };
    throw err;
  }
  const sorted = [...rows.values()].sort((a, b) => a.seq - b.seq);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (!first || !last) return { ok: false, firstBadSeq: 0, problem: 'no_rows', detail: 'the copy holds no audit rows', duplicates };
  const tenant = header?.tenant ?? first.tenant;
  const checkpoints = [...cps.values()];
  const start = first.seq > 1 ? { seq: first.seq - 1, hash: typeof first.prevHash === 'string' ? first.prevHash : GENESIS_HASH } : undefined;
  let result: AuditChainResult;
  try {
    result = validateAuditChain(sorted, { checkpoints, trustedPublicKey, tenant, ...(start ? { startAfter: start } : {}) });
  } catch (err) {
    return { ok: false, firstBadSeq: first.seq, problem: 'unreadable', detail: (err as Error).message, duplicates };
  }
  if (!result.ok) return { ok: false, firstBadSeq: result.firstBadSeq, problem: result.problem, detail: result.detail, duplicates };
  if (header && (header.sinceSeq !== first.seq || header.untilSeq !== last.seq || header.tenant !== first.tenant)) {
    const bad = header.sinceSeq !== first.seq ? header.sinceSeq : last.seq + 1;
    return { ok: false, firstBadSeq: bad, problem: 'range_mismatch', detail: `the header says seq ${header.sinceSeq}..${header.untilSeq}, the copy holds ${first.seq}..${last.seq}`, duplicates };
  }
  const signedEnd = checkpoints.filter((cp) => cp.seq >= first.seq).reduce((m, cp) => Math.max(m, cp.seq), 0);
  if (signedEnd === 0) return { ok: false, firstBadSeq: first.seq, problem: 'no_checkpoint', detail: 'the copy carries no signed checkpoint, so nothing in it is vouched for', duplicates };
  if (signedEnd < last.seq) {
    return { ok: false, firstBadSeq: signedEnd + 1, problem: 'unsigned_tail', detail: `rows ${signedEnd + 1}..${last.seq} come after the last signed checkpoint (seq ${signedEnd})`, duplicates };
  }
  return { ok: true, tenant, sinceSeq: first.seq, untilSeq: last.seq, rows: sorted.length, checkpoints: checkpoints.length, duplicates, head: result.head.hash };
}
