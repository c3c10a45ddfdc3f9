/**
 * `orch audit verify | log | export | ship | reconcile | verify-export`: what an auditor does with a tenant's
 * hash-chained audit log (desktop-worker/audit-log.ts, protocol/AUDIT-CHAIN.md, desktop-worker/siem/).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { AuditChainResult, AuditRow, SignedCheckpoint } from '../../protocol/audit-chain';
import { DEFAULT_CHECKPOINT_POLICY } from '../audit-log';
import { KeychainAuditHeads, type AuditHeadStore } from '../audit-head';
import { OrchError } from '../../protocol/errors';
import { loadConfig } from '../config';
import { readPublicIdentity } from '../identity';
import { orchHome } from '../../infra/paths';
import { exportAudit } from '../siem/export';
import { EXPORT_FORMATS, SIEM_TOKEN_SECRET, SIEM_VENDORS, SUMO_URL_SECRET, type ExportFormat, type SiemVendor } from '../siem/formats';
import { shipAudit } from '../siem/ship';
import { verifyAuditCopy } from '../siem/verify';
import { connectClient } from '../temporal-client';
import { openTenantStore } from '../tenant-access';
import { TenantStore, checkTenantName } from '../tenant-store';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';

export const auditUsage = [
  'orch audit verify --tenant T [--key HEX] [--without-head] [--json]',
  'orch audit log --tenant T [--run WORKFLOW_ID] [--action A] [--json]',
  'orch audit export --tenant T --format jsonl|splunk-hec|datadog|sumo [--since SEQ] [--until SEQ] [--out FILE]',
  'orch audit ship --tenant T --to splunk-hec|datadog|sumo --url URL [--insecure-http] [--batch-size N] [--json]',
  'orch audit reconcile --tenant T [--json]',
  'orch audit verify-export FILE [--key HEX] [--json]',
].join('\n       ');

export const auditHelp = `verify:        re-hashes the whole chain and checks the signed checkpoints with the desktop key, and holds the
               chain to the signed head kept outside the database, in the OS keychain (it must reach that head
               with the same hash, and the checkpoint it copies must still be there), and to the checkpoint rule
               (no more than 1000 rows or 5 minutes past the last checkpoint); prints OK with the row count and
               head, or the first broken sequence number and what is wrong (edited, deleted, inserted,
               reordered, fork, truncated, checkpoint_mismatch, bad_checkpoint_signature, head_mismatch,
               head_missing, checkpoint_deleted, unsigned_rows). Exit 1 on a break. --key checks against that
               public key (hex) instead of this desktop's keychain identity. --without-head skips the keychain
               head (a copy of the database on another machine): a chain cut back to an older checkpoint then
               goes unnoticed.
log:           lists rows for a person; --run WORKFLOW_ID keeps one run's rows, --action one action.
export:        writes the chain (or --since/--until a range) as JSONL or in a SIEM's event shape, to --out FILE
               (mode 0600) or stdout. The copy carries the signed checkpoints of its range, so it verifies on its
               own (verify-export). Each export signs a checkpoint and is audited as an "export" row: without
               --until that row is the last row of the export; with --until it follows the range. The same
               range exported again is byte-identical (the header line names the range).
ship:          sends the rows the destination has not acknowledged yet, in batches, retrying 429/5xx with
               exponential backoff, and resumes where it stopped. Credentials come from the tenant's secrets:
               ${SIEM_TOKEN_SECRET['splunk-hec']} (Splunk HEC), ${SIEM_TOKEN_SECRET.datadog} (Datadog); Sumo Logic has none,
               its token is part of the HTTP source URL (--url, or the secret ${SUMO_URL_SECRET} to keep it out
               of argv). Audited as a "ship" row, which is the last row shipped. The URL must be https://;
               --insecure-http allows http:// (rows and credential unencrypted: a collector on this host only).
reconcile:     holds the chain against Temporal: lists the tenant's runs (search attribute OrchTenant) and names
               runs without audit rows, finished runs without their run_finished row, and audit rows of runs
               Temporal does not know (for example past the namespace's retention). Exit 1 on any finding.
verify-export: verifies a copy (export file, or events collected from a SIEM in any of the shapes) alone,
               with the desktop public key (--key HEX, default this desktop's identity.json).`;

export const auditOptions = {
  tenant: { type: 'string', short: 't' },
  json: { type: 'boolean' },
  run: { type: 'string' },
  action: { type: 'string' },
  format: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  out: { type: 'string', short: 'o' },
  to: { type: 'string' },
  url: { type: 'string' },
  'insecure-http': { type: 'boolean' },
  key: { type: 'string' },
  'without-head': { type: 'boolean' },
  'batch-size': { type: 'string' },
} as const;

const HEX64 = /^[0-9a-f]{64}$/;

function tenantOf(values: Record<string, unknown>): string {
  if (typeof values.tenant !== 'string') throw new CommandUsageError('--tenant T is required');
  return checkTenantName(values.tenant);
}

function seqOpt(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^[1-9]\d{0,15}$/.test(raw)) throw new CommandUsageError(`--${name} is a sequence number (1, 2, ...)`);
  return Number(raw);
}

function keyOpt(values: Record<string, unknown>): Buffer | undefined {
  const raw = values.key;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !HEX64.test(raw)) throw new CommandUsageError('--key is the desktop Ed25519 public key: 64 lowercase hex digits (orch whoami)');
  return Buffer.from(raw, 'hex');
}

const actor = () => os.userInfo().username;

/** Where this desktop keeps the signed audit heads (for --key, found through identity.json, no private key read). */
function desktopHeads(store: TenantStore, home: string): AuditHeadStore | undefined {
  if (store.auditHeads) return store.auditHeads;
  const pub = readPublicIdentity(home);
  return pub ? new KeychainAuditHeads(pub.keychain.service, pub.keychain.account) : undefined;
}

/** What checking a tenant's chain found: the chain result and the signed head it was held against. */
export interface ChainCheck {
  result: AuditChainResult;
  signedHead?: SignedCheckpoint;
  /** The signed head was not checked (--without-head). */
  withoutHead: boolean;
  /** Only the hash links were checked: no desktop identity here (hashesOnlyWithoutIdentity). */
  hashesOnly?: boolean;
}

/**
 * Re-hashes the tenant's whole chain, checks its signed checkpoints with the desktop key (or `key`), and holds it
 * against the newest signed head kept in the keychain (unless `withoutHead`): what `orch audit verify` and `orch
 * runs show` report.
 */
export async function checkTenantChain(
  tenant: string,
  opts: { home?: string; key?: Buffer; withoutHead?: boolean; hashesOnlyWithoutIdentity?: boolean } = {},
): Promise<ChainCheck> {
  const home = opts.home ?? orchHome();
  const withoutHead = opts.withoutHead === true;
  // Without a desktop identity here (an auditor's copy of the tenant database), the hash links still tell.
  if (opts.hashesOnlyWithoutIdentity && !opts.key && !readPublicIdentity(home)) {
    const plain = new TenantStore(home);
    try {
      return { result: plain.auditLog(tenant).verify(), withoutHead: false, hashesOnly: true };
    } finally {
      plain.close();
    }
  }
  const store = opts.key ? new TenantStore(home, { trustedPublicKey: opts.key }) : await openTenantStore(home);
  try {
    let signedHead: SignedCheckpoint | undefined;
    let heads: AuditHeadStore | undefined;
    if (!withoutHead) {
      heads = desktopHeads(store, home);
      if (!heads) throw new OrchError('identity_missing', 'no desktop identity here, so no signed audit head to check: run on the desktop, or pass --without-head');
      signedHead = heads.read(tenant) ?? undefined;
    }
    const found = (result: AuditChainResult): ChainCheck => ({ result, withoutHead, ...(signedHead ? { signedHead } : {}) });
    if (!store.exists(tenant) && signedHead) {
      return found({ ok: false, firstBadSeq: 1, problem: 'truncated', detail: `the tenant database is gone, but the signed head kept outside it is at seq ${signedHead.seq}` });
    }
    const log = store.auditLog(tenant);
    const rows = log.head().seq;
    if (!withoutHead && !signedHead && rows > 0) {
      return found({
        ok: false,
        firstBadSeq: 1,
        problem: 'head_missing',
        detail: `the database holds ${rows} rows but ${heads!.where} has no signed head for this tenant: it was removed, or the tenant predates signed heads (Orch stores one at the next checkpoint; \`orch audit export\` signs one now)`,
      });
    }
    return found(log.verify(opts.key ?? store.trustedPublicKey, { ...(signedHead ? { signedHead } : {}), checkpointPolicy: DEFAULT_CHECKPOINT_POLICY }));
  } finally {
    store.close();
  }
}

/** One line saying what checkTenantChain found. */
export function describeChainCheck(tenant: string, c: ChainCheck): string {
  const r = c.result;
  if (!r.ok) return `BROKEN: tenant "${tenant}" audit chain breaks at seq ${r.firstBadSeq}: ${r.problem} (${r.detail})`;
  const checked = c.signedHead ? `; signed head in the keychain at seq ${c.signedHead.seq} matches` : c.withoutHead ? '; signed head NOT checked (--without-head)' : '';
  const hashesOnly = c.hashesOnly ? ' (hash links only: no desktop identity here, so checkpoint signatures and the signed head were not checked)' : '';
  return `OK: tenant "${tenant}" audit chain verified, ${r.count} rows, head seq ${r.head.seq} ${r.head.hash}${checked}${hashesOnly}`;
}

async function verify(args: CommandArgs, out: Out): Promise<number> {
  const tenant = tenantOf(args.values);
  const key = keyOpt(args.values);
  const c = await checkTenantChain(tenant, { ...(key ? { key } : {}), withoutHead: args.values['without-head'] === true });
  if (args.values.json) printJson(out, { tenant, ...c.result, signedHead: c.signedHead ? { seq: c.signedHead.seq, hash: c.signedHead.hash } : null });
  else if (c.result.ok) out.log(describeChainCheck(tenant, c));
  else out.err(describeChainCheck(tenant, c));
  return c.result.ok ? 0 : 1;
}

/** One audit row on one line (details cut at 160 characters), as `orch audit log` and `orch runs show` print it. */
export function describeRow(r: AuditRow): string {
  const details = JSON.stringify(r.details);
  return `${String(r.seq).padStart(6)}  ${r.ts}  ${r.actor.padEnd(16)} ${r.action.padEnd(18)} ${r.subject}  ${details.length > 160 ? `${details.slice(0, 157)}...` : details}`;
}

async function logCmd(args: CommandArgs, out: Out): Promise<number> {
  const tenant = tenantOf(args.values);
  const store = new TenantStore(orchHome());
  try {
    const log = store.auditLog(tenant);
    const filter = {
      ...(typeof args.values.run === 'string' ? { workflowId: args.values.run } : {}),
      ...(typeof args.values.action === 'string' ? { action: args.values.action } : {}),
    };
    const rows = [...log.rows(filter)];
    if (args.values.json) printJson(out, rows);
    else if (rows.length === 0) out.log('no matching audit rows');
    else for (const r of rows) out.log(describeRow(r));
    return 0;
  } finally {
    store.close();
  }
}

/** Opens FILE for a new copy: a temporary file beside it, renamed over it once complete, mode 0600. */
function fileSink(file: string): { write: (line: string) => void; commit: () => void; abort: () => void } {
  const target = path.resolve(file);
  const tmp = `${target}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  let buffered: string[] = [];
  let size = 0;
  const flush = () => {
    if (buffered.length) fs.writeSync(fd, buffered.join(''));
    buffered = [];
    size = 0;
  };
  return {
    write(line) {
      buffered.push(`${line}\n`);
      size += line.length;
      if (size > 1 << 20) flush();
    },
    commit() {
      flush();
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, target);
    },
    abort() {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
    },
  };
}

async function exportCmd(args: CommandArgs, out: Out): Promise<number> {
  const tenant = tenantOf(args.values);
  const format = args.values.format;
  if (typeof format !== 'string' || !(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new CommandUsageError(`--format is one of ${EXPORT_FORMATS.join(', ')}`);
  }
  const since = seqOpt(args.values, 'since');
  const until = seqOpt(args.values, 'until');
  const file = typeof args.values.out === 'string' ? args.values.out : undefined;
  const store = await openTenantStore(orchHome());
  try {
    store.get(tenant);
    const sink = file ? fileSink(file) : { write: (l: string) => out.log(l), commit: () => {}, abort: () => {} };
    let summary;
    try {
      summary = exportAudit(
        store,
        tenant,
        { format: format as ExportFormat, sinceSeq: since, untilSeq: until, actor: actor(), destination: file ? path.resolve(file) : '-' },
        sink.write,
      );
      sink.commit();
    } catch (err) {
      sink.abort();
      throw err;
    }
    const line = `exported tenant "${tenant}" seq ${summary.sinceSeq}..${summary.untilSeq} (${summary.rows} rows, ${summary.checkpoints} signed checkpoints) as ${format}${file ? ` to ${file}` : ''}; re-export this range: --since ${summary.sinceSeq} --until ${summary.untilSeq}`;
    if (file && args.values.json) printJson(out, summary);
    else if (file) out.log(line);
    else out.err(line);
    return 0;
  } finally {
    store.close();
  }
}

async function ship(args: CommandArgs, out: Out): Promise<number> {
  const tenant = tenantOf(args.values);
  const to = args.values.to;
  if (typeof to !== 'string' || !(SIEM_VENDORS as readonly string[]).includes(to)) throw new CommandUsageError(`--to is one of ${SIEM_VENDORS.join(', ')}`);
  const vendor = to as SiemVendor;
  const batch = args.values['batch-size'];
  if (batch !== undefined && (typeof batch !== 'string' || !/^[1-9]\d{0,3}$/.test(batch))) throw new CommandUsageError('--batch-size is 1..9999 events');
  const store = await openTenantStore(orchHome());
  try {
    store.get(tenant);
    const secrets = store.secrets(tenant);
    const tokenName = SIEM_TOKEN_SECRET[vendor];
    const token = tokenName ? await secrets.get(tokenName) : undefined;
    if (tokenName && token === undefined) {
      throw new OrchError('secret_missing', `shipping to ${vendor} needs the tenant secret ${tokenName}: orch secret set --tenant ${tenant} ${tokenName}`);
    }
    let url = typeof args.values.url === 'string' ? args.values.url : undefined;
    if (url === undefined && vendor === 'sumo') url = await secrets.get(SUMO_URL_SECRET);
    if (url === undefined) throw new CommandUsageError(vendor === 'sumo' ? `--url URL (or the tenant secret ${SUMO_URL_SECRET}) is required` : '--url URL is required');
    const summary = await shipAudit(store, tenant, {
      vendor,
      url,
      insecureHttp: args.values['insecure-http'] === true,
      token,
      actor: actor(),
      ...(batch !== undefined ? { maxEvents: Number(batch) } : {}),
      log: (l) => out.err(l),
    });
    if (args.values.json) printJson(out, summary);
    else out.log(`shipped tenant "${tenant}" seq ${summary.fromSeq}..${summary.toSeq} to ${vendor} (${summary.destination}): ${summary.events} events in ${summary.batches} batches, ${summary.retries} retries`);
    return 0;
  } finally {
    store.close();
  }
}

export interface ReconcileFinding {
  kind: 'run_without_audit' | 'run_without_finish' | 'audit_without_run';
  workflowId: string;
  runId: string;
  detail: string;
}

/** Compares the tenant's runs in Temporal visibility with the runs its audit rows name. */
export async function reconcileTenant(client: Client, store: TenantStore, tenant: string): Promise<{ runs: number; auditedRuns: number; findings: ReconcileFinding[] }> {
  const audited = new Map<string, { workflowId: string; actions: Set<string> }>();
  for (const r of store.auditLog(tenant).rows()) {
    const d = r.details;
    if (typeof d.runId === 'string' && typeof d.workflowId === 'string') {
      const entry = audited.get(d.runId) ?? { workflowId: d.workflowId, actions: new Set<string>() };
      entry.actions.add(r.action);
      audited.set(d.runId, entry);
    }
  }
  const findings: ReconcileFinding[] = [];
  const seen = new Set<string>();
  let runs = 0;
  for await (const wf of client.workflow.list({ query: `OrchTenant = "${tenant}"` })) {
    runs++;
    seen.add(wf.runId);
    const rows = audited.get(wf.runId);
    const status = wf.status.name;
    if (!rows) {
      findings.push({ kind: 'run_without_audit', workflowId: wf.workflowId, runId: wf.runId, detail: `Temporal has this ${wf.type} run (${status}) but the audit log has no row of it` });
    } else if (status !== 'RUNNING' && !rows.actions.has('run_finished')) {
      findings.push({ kind: 'run_without_finish', workflowId: wf.workflowId, runId: wf.runId, detail: `the run is ${status} but its run_finished row is missing` });
    }
  }
  for (const [runId, a] of audited) {
    if (!seen.has(runId)) findings.push({ kind: 'audit_without_run', workflowId: a.workflowId, runId, detail: `audit rows (${[...a.actions].join(', ')}) name a run Temporal does not list for this tenant` });
  }
  return { runs, auditedRuns: audited.size, findings };
}

async function reconcile(args: CommandArgs, out: Out): Promise<number> {
  const tenant = tenantOf(args.values);
  const config = loadConfig();
  const store = new TenantStore(config.home);
  try {
    store.get(tenant);
    const { client, close } = await connectClient(config);
    try {
      const report = await reconcileTenant(client, store, tenant);
      if (args.values.json) printJson(out, { tenant, ...report });
      else {
        out.log(`tenant "${tenant}": ${report.runs} runs in Temporal, ${report.auditedRuns} runs in the audit log`);
        if (report.findings.length === 0) out.log('OK: every run has its audit rows and every audited run is in Temporal');
        for (const f of report.findings) out.log(`${f.kind}: ${f.workflowId} (run ${f.runId}): ${f.detail}`);
      }
      return report.findings.length === 0 ? 0 : 1;
    } finally {
      await close();
    }
  } finally {
    store.close();
  }
}

async function verifyExport(args: CommandArgs, out: Out): Promise<number> {
  const file = args.positionals[1];
  if (!file || args.positionals.length > 2) throw new CommandUsageError('usage: orch audit verify-export FILE [--key HEX]');
  let key = keyOpt(args.values);
  if (!key) {
    const pub = readPublicIdentity(orchHome());
    if (!pub) throw new OrchError('identity_missing', 'pass the desktop public key with --key HEX (orch whoami on the desktop prints it)');
    key = Buffer.from(pub.sign.publicKey, 'hex');
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new OrchError('bad_input', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const result = verifyAuditCopy(text, key);
  if (args.values.json) printJson(out, result);
  else if (result.ok) {
    out.log(`OK: ${file} verifies on its own: tenant "${result.tenant}" seq ${result.sinceSeq}..${result.untilSeq}, ${result.rows} rows, ${result.checkpoints} signed checkpoints${result.duplicates ? `, ${result.duplicates} exact duplicates ignored` : ''}`);
  } else out.err(`BROKEN: ${file} at seq ${result.firstBadSeq}: ${result.problem} (${result.detail})`);
  return result.ok ? 0 : 1;
}

/** `orch audit ...` */
export async function auditCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('audit', args, out, async () => {
    const sub = args.positionals[0];
    if (sub !== 'verify-export' && args.positionals.length > 1) throw new CommandUsageError(`usage: ${auditUsage}`);
    switch (sub) {
      case 'verify':
        return verify(args, out);
      case 'log':
        return logCmd(args, out);
      case 'export':
        return exportCmd(args, out);
      case 'ship':
        return ship(args, out);
      case 'reconcile':
        return reconcile(args, out);
      case 'verify-export':
        return verifyExport(args, out);
      default:
        throw new CommandUsageError(`usage: ${auditUsage}`);
    }
  });
}

export const auditSpec: CommandSpec = {
  summary: 'verify, list, export, ship and reconcile the tenant audit log',
  usage: auditUsage,
  help: auditHelp,
  options: auditOptions,
  optionHelp: {
    key: 'the desktop Ed25519 public key to check with (64 hex digits, orch whoami)',
    'without-head': 'do not hold the chain to the signed head in the keychain',
    run: "only this run's rows (a workflow id)",
    action: 'only rows of this action',
    format: 'jsonl, splunk-hec, datadog or sumo',
    since: 'from this sequence number',
    until: 'to this sequence number',
    out: 'write to FILE (mode 0600) instead of stdout',
    to: 'splunk-hec, datadog or sumo',
    url: "the SIEM's collector URL (https://)",
    'insecure-http': 'allow an http:// URL (a collector on this host only)',
    'batch-size': 'events per request (1..9999)',
  },
  subcommands: [
    { name: 'verify', summary: 're-hash the chain, check its checkpoints and the signed head', usage: auditUsage.split('\n       ')[0]!, options: ['tenant', 'key', 'without-head', 'json'] },
    { name: 'log', summary: 'list audit rows', usage: auditUsage.split('\n       ')[1]!, options: ['tenant', 'run', 'action', 'json'] },
    { name: 'export', summary: 'write the chain, or a range, as JSONL or a SIEM event shape', usage: auditUsage.split('\n       ')[2]!, options: ['tenant', 'format', 'since', 'until', 'out', 'json'] },
    { name: 'ship', summary: 'send the rows a SIEM has not acknowledged yet', usage: auditUsage.split('\n       ')[3]!, options: ['tenant', 'to', 'url', 'insecure-http', 'batch-size', 'json'] },
    { name: 'reconcile', summary: "hold the chain against Temporal's runs", usage: auditUsage.split('\n       ')[4]!, options: ['tenant', 'json'] },
    { name: 'verify-export', summary: 'verify an exported copy on its own', usage: auditUsage.split('\n       ')[5]!, args: ['<file>'], options: ['key', 'json'] },
  ],
  run: auditCommand,
};
