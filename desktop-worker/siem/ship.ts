/**
 * `orch audit ship`: the tenant's chain to a SIEM's HTTP intake (Splunk HEC, Datadog Logs, Sumo Logic; the event
 * shapes are formats.ts), in batches under every vendor's limits, retried with backoff, over https only unless
 * `--insecure-http`.
 *
 * Shipping is resumable: the last sequence a destination acknowledged (HTTP 2xx) is stored in the tenant's
 * database (table siem_cursor) after each batch, and the next `ship` starts after it, so nothing is skipped. A
 * batch is re-sent only if the shipper dies between the destination's 2xx and that write (milliseconds); such a
 * re-sent event is byte-identical (same seq and hash), so SIEM searches and `verify-export` drop it. One shipper
 * per destination at a time: a lease in the same table refuses a second one (`ship_in_progress`).
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { canonicalize } from '../../protocol/canonical-json';
import { GENESIS_HASH } from '../../protocol/audit-chain';
import { maskSecrets } from '../../activities/secrets';
import { OrchError } from '../../protocol/errors';
import type { TenantStore } from '../tenant-store';
import { requireSigner, verifyOrThrow } from './export';
import { BATCH_LIMITS, SIEM_TOKEN_SECRET, recordsOf, vendorEvent, type SiemVendor } from './formats';

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
