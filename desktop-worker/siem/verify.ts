/**
 * `orch audit verify-export`: a copy of a chain (a file export, or what a SIEM returns, in any of the shapes of
 * formats.ts, in any order) checked on its own against the desktop's public key.
 */
import { canonicalize } from '../../protocol/canonical-json';
import { GENESIS_HASH, validateAuditChain, type AuditChainResult, type AuditRow, type SignedCheckpoint } from '../../protocol/audit-chain';
import { OrchError } from '../../protocol/errors';
import type { ExportHeader, Rec } from './formats';

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
