/**
 * `orch secret set | list | delete --tenant T`: the tenant's secrets (desktop-worker/secrets.ts). A value is read
 * from stdin or a hidden prompt, never from argv (which other users can read in the process list and which
 * shells keep in their history), and never printed.
 */
import os from 'node:os';
import { orchHome } from '../../infra/paths';
import { checkSecretName } from '../secrets';
import { openTenantStore } from '../tenant-access';
import { checkTenantName } from '../tenant-store';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';

export const secretUsage = 'orch secret set --tenant T NAME | orch secret list --tenant T [--json] | orch secret delete --tenant T NAME';

export const secretHelp = `Secrets are values a DAG's command argv uses as \${secrets.NAME}. They are resolved inside the activity that
runs the command, masked as *** in its output and errors, and never reach Temporal's history, the audit log,
logs or Claude (a DAG with \${secrets.NAME} in a Claude prompt does not compile).
set:    reads the value from stdin (one trailing newline is dropped), or from a hidden prompt on a terminal;
        never from the command line. Stored encrypted (XChaCha20-Poly1305) in the tenant's database, with a
        per-tenant key in the OS keychain. Audited as set_secret (the name, never the value).
list:   names only, and the worker's API_KEY_*, SECRET_*, TOKEN_*, PASSWORD_* environment variables, which DAGs
        can use the same way.
delete: removes a stored secret (audited as delete_secret).`;

export const secretOptions = {
  tenant: { type: 'string', short: 't' },
  json: { type: 'boolean' },
} as const;

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    const bytes: number[] = [];
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      const out = Buffer.from(bytes);
      bytes.fill(0);
      if (err) reject(err);
      else resolve(out);
    };
    const onData = (data: Buffer) => {
      for (const b of data) {
        if (b === 0x0d || b === 0x0a) return done();
        if (b === 0x03) return done(new CommandUsageError('cancelled'));
        if (b === 0x7f || b === 0x08) bytes.pop();
        else bytes.push(b);
      }
    };
    stdin.on('data', onData);
  });
}

async function readValue(): Promise<Buffer> {
  if (process.stdin.isTTY) {
    const first = await promptHidden('value (not shown): ');
    const again = await promptHidden('again: ');
    const same = first.equals(again);
    again.fill(0);
    if (!same) {
      first.fill(0);
      throw new CommandUsageError('the two values differ; nothing was stored');
    }
    return first;
  }
  const raw = await readStdin();
  // `echo VALUE | orch secret set` adds a newline the operator did not mean as part of the value.
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end--;
  if (end > 0 && raw[end - 1] === 0x0d) end--;
  const value = Buffer.from(raw.subarray(0, end));
  raw.fill(0);
  return value;
}

async function secretBody(args: CommandArgs, out: Out): Promise<number> {
  const [sub, name, ...rest] = args.positionals;
  if (typeof args.values.tenant !== 'string') throw new CommandUsageError(`--tenant is required: ${secretUsage}`);
  const tenant = checkTenantName(args.values.tenant);
  if (sub === 'list' ? name !== undefined : sub === 'set' || sub === 'delete' ? !name || rest.length > 0 : true) {
    throw new CommandUsageError(`usage: ${secretUsage}`);
  }
  if (name !== undefined) checkSecretName(name);
  const store = await openTenantStore(orchHome());
  try {
    const secrets = store.secrets(tenant);
    const actor = os.userInfo().username;
    if (sub === 'list') {
      const list = secrets.list();
      if (args.values.json) printJson(out, list);
      else if (list.length === 0) out.log(`no secrets in tenant "${tenant}": orch secret set --tenant ${tenant} NAME`);
      else for (const s of list) out.log(`${s.name.padEnd(32)} ${s.source === 'tenant' ? `tenant, set ${s.updatedAt}` : 'worker environment'}`);
      return 0;
    }
    if (sub === 'delete') {
      const deleted = secrets.delete(name!, actor);
      if (args.values.json) printJson(out, { tenant, name, deleted });
      else out.log(deleted ? `deleted secret ${name} of tenant "${tenant}"` : `tenant "${tenant}" has no secret ${name}`);
      return deleted ? 0 : 1;
    }
    const value = await readValue();
    try {
      const { replaced } = await secrets.set(name!, value, actor);
      if (args.values.json) printJson(out, { tenant, name, replaced });
      else out.log(`${replaced ? 'replaced' : 'stored'} secret ${name} of tenant "${tenant}"; DAG commands use it as \${secrets.${name}}`);
    } finally {
      value.fill(0);
    }
    return 0;
  } finally {
    store.close();
  }
}

/** `orch secret ...` */
export async function secretCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('secret', args, out, () => secretBody(args, out));
}

export const secretSpec: CommandSpec = {
  summary: "set, list or delete a tenant's secrets (values from stdin, never argv)",
  usage: secretUsage,
  help: secretHelp,
  options: secretOptions,
  subcommands: [
    { name: 'set', summary: 'store a secret, its value read from stdin or a hidden prompt', usage: 'orch secret set --tenant T NAME [--json]', args: ['<name>'] },
    { name: 'list', summary: "the tenant's secret names (never values)", usage: 'orch secret list --tenant T [--json]' },
    { name: 'delete', summary: 'remove a stored secret', usage: 'orch secret delete --tenant T NAME [--json]', args: ['<name>'] },
  ],
  run: secretCommand,
};
