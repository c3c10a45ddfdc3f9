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
 * Writing a copy is export.ts (`orch audit export`), sending it ship.ts (`orch audit ship`), checking one
 * verify.ts (`orch audit verify-export`).
 */
import { canonicalize } from '../../protocol/canonical-json';
import type { AuditRow, SignedCheckpoint } from '../../protocol/audit-chain';

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

export type Rec = Record<string, unknown>;

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
export function* recordsOf(rows: Iterable<AuditRow>, checkpoints: readonly SignedCheckpoint[]): Generator<{ rec: Rec; seq: number; hash: string }> {
  const bySeq = new Map<number, SignedCheckpoint[]>();
  for (const cp of checkpoints) bySeq.set(cp.seq, [...(bySeq.get(cp.seq) ?? []), cp]);
  for (const row of rows) {
    yield { rec: rowRecord(row), seq: row.seq, hash: row.hash };
    for (const cp of bySeq.get(row.seq) ?? []) yield { rec: checkpointRecord(cp), seq: row.seq, hash: row.hash };
  }
}
