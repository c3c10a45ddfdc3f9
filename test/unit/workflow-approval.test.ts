/**
 * The workflow's side of signed approvals (workflows/approval.ts: pure-JS Ed25519 and SHA-256, run inside the
 * workflow sandbox) against the shared vectors in protocol/vectors/approval.json, which the agent's Go code and
 * protocol/approval.ts check too; and the desktop's signer (desktop-worker/approval-signing.ts) producing exactly
 * the vector's signature from the vector's seed. Plus the gate options the compiler checks.
 */
import { describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import { ed25519KeyPairFromSeed } from '../../protocol/primitives';
import { signApproval, signStart } from '../../desktop-worker/approval-signing';
import { approvalMessage, releaseDigest, utf8 } from '../../protocol/approval-digest';
import { signedApprovalShapeProblem, signedStartProblem, verifyEd25519, type ApprovalStatement, type ReleasedCommand } from '../../workflows/approval';
import { compileDag } from '../../workflows/dag/compile';

const vectors = JSON.parse(fs.readFileSync(new URL('../../protocol/vectors/approval.json', import.meta.url), 'utf8')) as {
  keys: { aliceSeed: string; alice: string; mallory: string };
  digest: { released: ReleasedCommand[]; canonical: string; digest: string };
  signature: { statement: ApprovalStatement; message: string; signature: string };
};

describe('workflows/approval.ts against protocol/vectors/approval.json', () => {
  test('releaseDigest of the vector list, in either order', () => {
    expect(releaseDigest(vectors.digest.released)).toBe(vectors.digest.digest);
    expect(releaseDigest([...vectors.digest.released].reverse())).toBe(vectors.digest.digest);
    const changed = vectors.digest.released.map((r, i) => (i === 0 ? { ...r, argv: [...r.argv, 'x'] } : r));
    expect(releaseDigest(changed)).not.toBe(vectors.digest.digest);
  });

  test('the signed bytes, the signature verifies with alice and not with mallory, and a changed field breaks it', () => {
    const { statement, message, signature } = vectors.signature;
    expect(Buffer.from(approvalMessage(statement)).toString('utf8')).toBe(message);
    expect(Buffer.from(utf8(message))).toEqual(Buffer.from(message, 'utf8'));
    expect(verifyEd25519(signature, approvalMessage(statement), vectors.keys.alice)).toBe(true);
    expect(verifyEd25519(signature, approvalMessage(statement), vectors.keys.mallory)).toBe(false);
    expect(verifyEd25519(signature, approvalMessage({ ...statement, gate: 'other' }), vectors.keys.alice)).toBe(false);
    expect(verifyEd25519('00'.repeat(64), approvalMessage(statement), vectors.keys.alice)).toBe(false);
    expect(signedApprovalShapeProblem({ statement, signature })).toBeUndefined();
    expect(signedApprovalShapeProblem({ statement: { ...statement, extra: 1 }, signature })).toMatch(/extra fields/);
  });

  test('verifyEd25519 answers each call for its own inputs: a repeated check, then one byte or the key or the signature changed', () => {
    const { statement, signature } = vectors.signature;
    const message = approvalMessage(statement);
    // The same check twice in a row (an update's validator, then its handler) holds both times.
    expect(verifyEd25519(signature, message, vectors.keys.alice)).toBe(true);
    expect(verifyEd25519(signature, approvalMessage(statement), vectors.keys.alice)).toBe(true);
    // Right after a check that held: the same signature over other bytes of the same length, by another key, or a
    // signature one digit off, never reuses its answer.
    const flipped = approvalMessage(statement);
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    expect(verifyEd25519(signature, flipped, vectors.keys.alice)).toBe(false);
    expect(verifyEd25519(signature, message, vectors.keys.alice)).toBe(true);
    expect(verifyEd25519(signature, message, vectors.keys.mallory)).toBe(false);
    expect(verifyEd25519(signature, message, vectors.keys.alice)).toBe(true);
    const otherSignature = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
    expect(verifyEd25519(otherSignature, message, vectors.keys.alice)).toBe(false);
    // A message changed in place after the check that held (the caller's array) is checked again, not answered from it.
    const reused = approvalMessage(statement);
    expect(verifyEd25519(signature, reused, vectors.keys.alice)).toBe(true);
    reused[0] = reused[0]! ^ 1;
    expect(verifyEd25519(signature, reused, vectors.keys.alice)).toBe(false);
  });

  test('the desktop signer produces the vector signature from the vector seed', () => {
    const key = ed25519KeyPairFromSeed(Buffer.from(vectors.keys.aliceSeed, 'hex'));
    const st = vectors.signature.statement;
    const signed = signApproval(key, { tenant: st.tenant, workflowId: st.workflowId, runId: st.runId, gate: st.gate, decision: st.decision, releaseDigest: st.releaseDigest, comment: st.comment }, st.at);
    expect(signed.statement).toEqual(st);
    expect(signed.signature).toBe(vectors.signature.signature);
    const start = signStart(key, { tenant: 'acme', workflowId: 'w', workflowType: 'restart-web', params: { a: 1 } });
    expect(signedStartProblem(start)).toBeUndefined();
    expect(signedStartProblem({ ...start, statement: { ...start.statement, workflowId: 'w2' } })).toMatch(/does not verify/);
  });
});

describe('gate options in the compiler', () => {
  const dag = (gate: Record<string, unknown>) => ({
    name: 'g',
    version: 1,
    cost_cap_usd: 1,
    nodes: [{ id: 'gate', type: 'approval_gate', message: 'ok?', ...gate }],
  });
  const codes = (gate: Record<string, unknown>) => {
    const r = compileDag(dag(gate), { knownModels: [] });
    return r.ok ? [] : r.issues.map((i) => `${i.code} ${i.field ?? ''}`);
  };

  test('min_approvals and distinct_from_starter compile onto the gate', () => {
    const r = compileDag(dag({ approvers: ["alice", "bob"], min_approvals: 2, distinct_from_starter: false }), { knownModels: [] });
    expect(r.ok && r.dag.nodes[0]).toMatchObject({ approvers: ['alice', 'bob'], minApprovals: 2, distinctFromStarter: false });
  });

  test('each bad option is an issue naming the field', () => {
    expect(codes({ min_approvals: 2 })).toEqual(['gate_option_needs_approvers nodes[0].min_approvals']);
    expect(codes({ approvers: ['alice'], min_approvals: 2 })).toEqual(['out_of_range nodes[0].min_approvals']);
    expect(codes({ approvers: ['a', 'b', 'c', 'd', 'e', 'f'], min_approvals: 6 })[0]).toMatch(/^out_of_range nodes\[0\]\.min_approvals/);
    expect(codes({ approvers: ['alice'], min_approvals: 0 })[0]).toMatch(/^out_of_range/);
    expect(codes({ approvers: ['alice'], min_approvals: 1.5 })[0]).toMatch(/^not_integer/);
    expect(codes({ distinct_from_starter: true })).toEqual(['gate_option_needs_approvers nodes[0].distinct_from_starter']);
    expect(codes({ approvers: ['alice'], distinct_from_starter: 'yes' })).toEqual(['wrong_type nodes[0].distinct_from_starter']);
  });
});
