/**
 * The bytes of an approval both sides compute (protocol/APPROVAL.md), written once: the release digest and the
 * message an approver signs. Pure code, so workflow code (which checks approvals, workflows/approval.ts) and
 * protocol/approval.ts (which signs them and checks them for commands) share it: SHA-256 from @noble, RFC 8785 JSON
 * from canonical-json.ts (which refuses lone surrogates, so the UTF-8 below is the same as Node's), UTF-8 without
 * TextEncoder (not relied on in the workflow sandbox).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { canonicalize } from './canonical-json';
import type { ApprovalStatement, ReleasedCommand } from './approval-types';

export const APPROVAL_DOMAIN = 'orch-approval-v1\n';

/** UTF-8 bytes of a string, without relying on TextEncoder in the workflow sandbox. */
export function utf8(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function sha256Hex(text: string): string {
  return toHex(sha256(utf8(text)));
}

/** Lowercase hex SHA-256 of canonicalJson({ v: 1, commands: entries sorted by commandId }), in JavaScript's default string order (UTF-16 code units), which the Go agent reproduces. */
export function releaseDigest(released: readonly ReleasedCommand[]): string {
  const commands = [...released].sort((a, b) => (a.commandId < b.commandId ? -1 : a.commandId > b.commandId ? 1 : 0));
  return sha256Hex(canonicalize({ v: 1, commands }));
}

/** The bytes an approver signs: UTF-8 of "orch-approval-v1\n" + canonicalJson(statement). */
export function approvalMessage(statement: ApprovalStatement): Uint8Array {
  return utf8(APPROVAL_DOMAIN + canonicalize(statement));
}
