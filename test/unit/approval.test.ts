/**
 * Approval attestations (protocol/approval.ts, protocol/APPROVAL.md): the committed vectors are what the generator
 * makes, each check case fails with the code its name says (so a regenerated file cannot quietly flip a case), and
 * the digest, signed message and template matching hold their known answers.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import { canonicalize } from '../../protocol/canonical-json';
import { ed25519KeyPairFromSeed } from '../../protocol/primitives';
import {
  APPROVAL_FAILURES,
  approvalMessage,
  argMatchesTemplate,
  checkCommandApproval,
  releaseDigest,
  signApproval,
  verifyApprovalSignature,
  type ApprovalStatement,
  type ReleasedCommand,
} from '../../protocol/approval';
import { APPROVAL_VECTORS_PATH, renderApprovalVectors } from '../../protocol/vectors/generate-approval-vectors';
import { decodeJoinResult, encodeJoinMessage } from '../../protocol/join';
import { decodeMessage } from '../../protocol/agent-messages';

type Vectors = {
  keys: { aliceSeed: string; alice: string };
  digest: { released: ReleasedCommand[]; canonical: string; digest: string };
  signature: { statement: ApprovalStatement; message: string; signature: string };
  templates: Array<{ template: string; arg: string; match: boolean }>;
  checks: Array<{ name: string; command: { commandId: string; tenant: string; argv: string[]; agent?: string }; trustedKeys: string[]; approval: unknown; expect: string }>;
};
const vectors = JSON.parse(fs.readFileSync(APPROVAL_VECTORS_PATH, 'utf8')) as Vectors;

describe('approval vectors (protocol/APPROVAL.md)', () => {
  test('the committed file is what the generator writes', () => {
    assert.equal(fs.readFileSync(APPROVAL_VECTORS_PATH, 'utf8'), renderApprovalVectors());
  });

  test('release digest: SHA-256 of the canonical sorted list, whatever order released is in', () => {
    const { released, canonical, digest } = vectors.digest;
    assert.equal(releaseDigest(released), digest);
    assert.equal(releaseDigest([...released].reverse()), digest);
    assert.equal(canonicalize({ v: 1, commands: [...released].sort((a, b) => (a.commandId < b.commandId ? -1 : 1)) }), canonical);
    assert.notEqual(releaseDigest([{ ...released[0]!, destructive: !released[0]!.destructive }, ...released.slice(1)]), digest);
  });

  test('signature: domain + canonical statement, Ed25519 by the approver key', () => {
    const { statement, message, signature } = vectors.signature;
    assert.equal(approvalMessage(statement).toString('utf8'), message);
    assert.ok(message.startsWith('orch-approval-v1\n{"approverKey":'));
    const alice = ed25519KeyPairFromSeed(Buffer.from(vectors.keys.aliceSeed, 'hex'));
    assert.equal(signApproval(statement, alice.secretKey).signature, signature);
    assert.equal(verifyApprovalSignature({ statement, signature }), true);
    assert.equal(verifyApprovalSignature({ statement: { ...statement, gate: 'other' }, signature }), false);
  });

  test('templates', () => {
    for (const t of vectors.templates) assert.equal(argMatchesTemplate(t.template, t.arg), t.match, `${t.template} ~ ${t.arg}`);
  });

  test('every check case gives the code its name starts with; every failure code has a case', () => {
    const seen = new Set<string>();
    for (const c of vectors.checks) {
      const r = checkCommandApproval(c.command, c.approval === null ? undefined : c.approval, c.trustedKeys);
      const got = r.ok ? 'ok' : r.code;
      assert.equal(got, c.expect, c.name);
      assert.equal(c.name.startsWith(c.expect === 'ok' ? 'valid:' : `${c.expect}:`), true, c.name);
      if (!r.ok) {
        // Details never quote argv (the migrate case's resolved secret is "hunter2").
        assert.equal(r.detail.includes('hunter2'), false, c.name);
        assert.equal(r.detail.includes('nginx'), false, c.name);
      }
      seen.add(got);
    }
    for (const code of APPROVAL_FAILURES) assert.ok(seen.has(code), `no vector for ${code}`);
    assert.ok(seen.has('ok'));
  });
});

describe('join_result approvers (APPROVAL.md "Approver keys on the agent")', () => {
  const base = { kind: 'join_result' as const, status: 'ok' as const, name: 'web-1', tier: 'standard', tenants: ['acme', 'ops'] };
  const key = 'c'.repeat(64);

  test('round-trips for the joined tenants', () => {
    const m = { ...base, approvers: { acme: { version: 2, keys: [key] } } };
    assert.deepEqual(decodeJoinResult(encodeJoinMessage(m)), m);
  });

  test('refused: another tenant, version 0, bad or repeated keys, extra fields', () => {
    for (const approvers of [
      { globex: { version: 1, keys: [] } },
      { acme: { version: 0, keys: [] } },
      { acme: { version: 1, keys: ['AB'] } },
      { acme: { version: 1, keys: [key, key] } },
      { acme: { version: 1, keys: [], x: 1 } },
      [],
    ]) {
      const body = Buffer.from(JSON.stringify({ ...base, approvers }));
      assert.equal(decodeJoinResult(body), undefined, JSON.stringify(approvers));
    }
  });
});

describe('agent messages carrying approvals (AGENT-MESSAGES.md)', () => {
  const check = vectors.checks[0]!;
  const command = { kind: 'command', commandId: check.command.commandId, argv: check.command.argv, timeoutSeconds: 5, tenant: 'acme' };

  test('a command with a well-formed attestation decodes; a malformed one refuses the whole message', () => {
    assert.ok(decodeMessage(Buffer.from(JSON.stringify({ ...command, approval: check.approval }))));
    for (const c of vectors.checks.filter((x) => x.expect === 'malformed')) {
      assert.equal(decodeMessage(Buffer.from(JSON.stringify({ ...command, approval: c.approval }))), undefined, c.name);
    }
  });

  test('approvers and approvers_result', () => {
    const k = 'a'.repeat(64);
    assert.ok(decodeMessage(Buffer.from(JSON.stringify({ kind: 'approvers', tenant: 'acme', version: 2, keys: [k], signedAt: 1 }))));
    assert.ok(decodeMessage(Buffer.from(JSON.stringify({ kind: 'approvers_result', tenant: 'acme', version: 2, status: 'refused', reason: 'stale_version: x' }))));
    for (const bad of [
      { kind: 'approvers', tenant: 'acme', version: 2, keys: [k, k], signedAt: 1 },
      { kind: 'approvers', tenant: 'acme', version: -1, keys: [], signedAt: 1 },
      { kind: 'approvers', tenant: 'a/b', version: 1, keys: [], signedAt: 1 },
      { kind: 'approvers', tenant: 'acme', version: 1, keys: ['AA'], signedAt: 1 },
      { kind: 'approvers', tenant: 'acme', version: 1, keys: [] },
      { kind: 'approvers_result', tenant: 'acme', version: 1, status: 'maybe' },
    ]) {
      assert.equal(decodeMessage(Buffer.from(JSON.stringify(bad))), undefined, JSON.stringify(bad));
    }
  });
});
