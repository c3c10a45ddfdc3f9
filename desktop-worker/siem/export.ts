/**
 * `orch audit export`: a tenant's chain, or a range of it, as a file in one of the copy formats (formats.ts),
 * carrying its signed checkpoints so the copy verifies on its own. The checks every copy starts with (a signer, an
 * intact chain) are here too; shipping (ship.ts) makes them as well.
 */
import os from 'node:os';
import { canonicalize } from '../../protocol/canonical-json';
import { OrchError } from '../../protocol/errors';
import type { AuditLog } from '../audit-log';
import type { TenantStore } from '../tenant-store';
import { recordsOf, vendorEvent, type ExportFormat, type ExportHeader, type Rec } from './formats';

export function requireSigner(store: TenantStore, log: AuditLog): Buffer {
  const key = store.trustedPublicKey;
  if (!key) throw new OrchError('audit_no_signer', 'exports and shipping carry signed checkpoints: open the tenant with the desktop identity (orch init)');
  if (!log.canSign) throw new OrchError('audit_no_signer', 'exports and shipping sign a checkpoint: open the tenant with the desktop identity (orch init)');
  return key;
}

export function verifyOrThrow(log: AuditLog, key: Buffer): void {
  const result = log.verify(key);
  if (!result.ok) {
    throw new OrchError(
      'audit_chain_broken',
      `the audit chain of tenant "${log.tenant}" is broken at seq ${result.firstBadSeq} (${result.problem}: ${result.detail}); nothing was exported: run \`orch audit verify --tenant ${log.tenant}\``,
      { firstBadSeq: result.firstBadSeq, problem: result.problem },
    );
  }
}

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
