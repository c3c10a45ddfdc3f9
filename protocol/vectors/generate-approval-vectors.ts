/**
 * Writes protocol/vectors/approval.json: known-answer vectors for approval attestations (see ../APPROVAL.md).
 * Deterministic: fixed keys and times (Ed25519 signatures are deterministic).
 *
 *   npx tsx protocol/vectors/generate-approval-vectors.ts           # rewrite the file
 *   npx tsx protocol/vectors/generate-approval-vectors.ts --check   # exit 1 if the file is out of date
 *
 * test/unit/approval.test.ts checks the committed file equals what this produces and replays every case;
 * agent/internal/approval/approval_test.go replays them in Go.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { canonicalize } from '../canonical-json';
import { ed25519KeyPairFromSeed } from '../primitives';
import {
  approvalMessage,
  argMatchesTemplate,
  checkCommandApproval,
  releaseDigest,
  signApproval,
  type ApprovalStatement,
  type CommandApproval,
  type ReleasedCommand,
} from '../approval';

export const APPROVAL_VECTORS_PATH = join(dirname(fileURLToPath(import.meta.url)), 'approval.json');

const counting = (start: number, length = 32): Buffer => Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));
const hex = (b: Buffer): string => b.toString('hex');

/** 2026-01-01T00:00:00Z. */
const T0 = 1_767_225_600_000;

export function buildApprovalVectors() {
  const alice = ed25519KeyPairFromSeed(counting(0x10));
  const mallory = ed25519KeyPairFromSeed(counting(0x50));
  const aliceKey = hex(alice.publicKey);
  const malloryKey = hex(mallory.publicKey);
  const wf = 'restart-web-2026';
  const run = '0b0c7a51-2d55-4b4e-9a43-6f3d0c1f5e10';
  const id = (node: string) => `${wf}/${run}/${node}`;
  const released: ReleasedCommand[] = [
    { commandId: id('restart'), node: 'restart', agent: 'web-1', tier: 'standard', argv: ['systemctl', 'restart', 'nginx'], destructive: false },
    {
      commandId: id('migrate'),
      node: 'migrate',
      agent: 'db-1',
      tier: 'infrastructure',
      argv: ['/opt/app/migrate', '--password=${secrets.DB_PASSWORD}', 'literal $${x} é'],
      destructive: true,
    },
  ];
  const digest = releaseDigest(released);
  const statement = (over: Partial<ApprovalStatement> = {}): ApprovalStatement => ({
    v: 1,
    type: 'orch-approval',
    tenant: 'acme',
    workflowId: wf,
    runId: run,
    gate: 'approve-restart',
    decision: 'approve',
    releaseDigest: digest,
    approverKey: aliceKey,
    at: T0,
    comment: 'ok, after the 14:00 deploy',
    ...over,
  });
  const good = signApproval(statement(), alice.secretKey);
  const attestation = (over: Partial<CommandApproval> = {}): CommandApproval => ({ approvals: [good], released, ...over });
  const restartCmd = { commandId: id('restart'), tenant: 'acme', argv: ['systemctl', 'restart', 'nginx'] };
  const migrateCmd = { commandId: id('migrate'), tenant: 'acme', argv: ['/opt/app/migrate', '--password=hunter2', 'literal ${x} é'] };

  const tampered = { statement: { ...good.statement, comment: 'ok' }, signature: good.signature };
  const checks: Array<{ name: string; command: typeof restartCmd & { agent?: string }; trustedKeys: string[]; approval: unknown }> = [
    { name: 'valid: a released command, approved by a trusted key', command: restartCmd, trustedKeys: [aliceKey], approval: attestation() },
    { name: 'valid: a secret placeholder matches the resolved value', command: migrateCmd, trustedKeys: [aliceKey], approval: attestation() },
    {
      name: 'valid: one good approval among failing ones is enough',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: attestation({ approvals: [signApproval(statement({ approverKey: malloryKey }), mallory.secretKey), good] }),
    },
    { name: 'no_attestation: none carried', command: restartCmd, trustedKeys: [aliceKey], approval: null },
    { name: 'malformed: an unknown field', command: restartCmd, trustedKeys: [aliceKey], approval: { ...attestation(), extra: 1 } },
    { name: 'malformed: no approvals', command: restartCmd, trustedKeys: [aliceKey], approval: attestation({ approvals: [] }) },
    {
      name: 'malformed: a released command id twice',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: attestation({ released: [released[0]!, released[0]!] }),
    },
    {
      name: 'malformed: at is not an integer',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: { approvals: [{ statement: { ...good.statement, at: 1.5 }, signature: good.signature }], released },
    },
    {
      name: 'not_released: another command id of the same run',
      command: { ...restartCmd, commandId: id('drop-db') },
      trustedKeys: [aliceKey],
      approval: attestation(),
    },
    { name: 'valid: the agent knows its name, and the entry names it', command: { ...restartCmd, agent: 'web-1' }, trustedKeys: [aliceKey], approval: attestation() },
    { name: 'wrong_agent: released for another agent', command: { ...restartCmd, agent: 'db-1' }, trustedKeys: [aliceKey], approval: attestation() },
    { name: 'argv_mismatch: another argv', command: { ...restartCmd, argv: ['systemctl', 'stop', 'nginx'] }, trustedKeys: [aliceKey], approval: attestation() },
    {
      name: 'argv_mismatch: one argument more',
      command: { ...restartCmd, argv: ['systemctl', 'restart', 'nginx', 'postgresql'] },
      trustedKeys: [aliceKey],
      approval: attestation(),
    },
    {
      name: 'argv_mismatch: literal text around a placeholder differs',
      command: { ...migrateCmd, argv: ['/opt/app/migrate', '--pass=hunter2', 'literal ${x} é'] },
      trustedKeys: [aliceKey],
      approval: attestation(),
    },
    {
      name: 'argv_mismatch: an escaped $${ is a literal ${, not a placeholder',
      command: { ...migrateCmd, argv: ['/opt/app/migrate', '--password=hunter2', 'literal anything é'] },
      trustedKeys: [aliceKey],
      approval: attestation(),
    },
    { name: 'untrusted_approver: signed by a key the agent does not trust', command: restartCmd, trustedKeys: [malloryKey], approval: attestation() },
    { name: 'untrusted_approver: the agent trusts no key for the tenant', command: restartCmd, trustedKeys: [], approval: attestation() },
    {
      name: 'untrusted_approver: a valid signature by an untrusted key naming itself',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: attestation({ approvals: [signApproval(statement({ approverKey: malloryKey }), mallory.secretKey)] }),
    },
    { name: 'bad_signature: statement changed after signing', command: restartCmd, trustedKeys: [aliceKey], approval: attestation({ approvals: [tampered] }) },
    {
      name: 'bad_signature: signed by another key than the one named',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: attestation({ approvals: [{ statement: statement(), signature: signApproval(statement(), mallory.secretKey).signature }] }),
    },
    {
      name: 'not_approved: the decision is reject',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: attestation({ approvals: [signApproval(statement({ decision: 'reject' }), alice.secretKey)] }),
    },
    { name: 'wrong_tenant: the command is another tenant\'s', command: { ...restartCmd, tenant: 'globex' }, trustedKeys: [aliceKey], approval: attestation() },
    {
      name: 'wrong_run: signed for another run of the workflow',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: attestation({ approvals: [signApproval(statement({ runId: 'another-run' }), alice.secretKey)] }),
    },
    {
      name: 'digest_mismatch: a command added to released after signing',
      command: restartCmd,
      trustedKeys: [aliceKey],
      approval: attestation({
        released: [...released, { commandId: id('extra'), node: 'extra', agent: 'web-1', tier: 'standard', argv: ['rm', '-rf', '/srv'], destructive: true }],
      }),
    },
    {
      name: 'digest_mismatch: a released argv edited after signing (and the command sent with it)',
      command: { ...restartCmd, argv: ['systemctl', 'restart', 'postgresql'] },
      trustedKeys: [aliceKey],
      approval: attestation({ released: [{ ...released[0]!, argv: ['systemctl', 'restart', 'postgresql'] }, released[1]!] }),
    },
  ];

  const templates: Array<[string, string]> = [
    ['nginx', 'nginx'],
    ['nginx', 'nginx2'],
    ['${secrets.A}', ''],
    ['${secrets.A}', 'anything'],
    ['a${secrets.A}b', 'ab'],
    ['a${secrets.A}b', 'axxb'],
    ['a${secrets.A}b', 'axxbc'],
    ['${secrets.A}:${secrets.B}', 'u:p'],
    ['${secrets.A}:${secrets.B}', 'up'],
    ['x${secrets.A}ab${secrets.B}ab', 'xabab'],
    ['x${secrets.A}ab${secrets.B}ab', 'xab'],
    ['$${secrets.A}', '${secrets.A}'],
    ['$${secrets.A}', 'value'],
    ['${params.A}', '${params.A}'],
    ['${secrets.A', '${secrets.A'],
    ['$5 and $', '$5 and $'],
  ];

  return {
    description:
      'Approval attestations v1 (protocol/APPROVAL.md). digest: releaseDigest over released (canonical is the hashed text). ' +
      'signature: the signed message (UTF-8 of domain + canonical statement) and its Ed25519 signature by keys.alice. ' +
      'templates: argv template element, argument, whether it matches. checks: the agent\'s check on command (agent: its own name, when it knows it) with ' +
      'the approver keys it trusts for the command\'s tenant; expect is "ok" or the failure code.',
    keys: { aliceSeed: hex(counting(0x10)), alice: aliceKey, mallorySeed: hex(counting(0x50)), mallory: malloryKey },
    digest: {
      released,
      canonical: canonicalize({ v: 1, commands: [...released].sort((a, b) => (a.commandId < b.commandId ? -1 : a.commandId > b.commandId ? 1 : 0)) }),
      digest,
    },
    signature: { statement: good.statement, message: approvalMessage(good.statement).toString('utf8'), signature: good.signature },
    templates: templates.map(([template, arg]) => ({ template, arg, match: argMatchesTemplate(template, arg) })),
    checks: checks.map((c) => {
      const r = checkCommandApproval(c.command, c.approval, c.trustedKeys);
      return { ...c, expect: r.ok ? 'ok' : r.code };
    }),
  };
}

export function renderApprovalVectors(): string {
  return `${JSON.stringify(buildApprovalVectors(), null, 2)}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const text = renderApprovalVectors();
  if (process.argv.includes('--check')) {
    if (readFileSync(APPROVAL_VECTORS_PATH, 'utf8') !== text) {
      process.stderr.write(`${APPROVAL_VECTORS_PATH} is out of date: run npx tsx protocol/vectors/generate-approval-vectors.ts\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(APPROVAL_VECTORS_PATH, text);
  }
}
