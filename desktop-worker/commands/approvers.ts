/**
 * `orch approver add | list | remove`: the people whose keys sign a tenant's approvals (desktop-worker/approvers.ts,
 * protocol/APPROVAL.md).
 */
import os from 'node:os';
import { orchHome } from '../../infra/paths';
import { addApprover, checkApproverKey, checkApproverName, listApprovers, removeApprover, type Approver } from '../approvers';
import { openTenantStore } from '../tenant-access';
import { TenantStore, checkTenantName } from '../tenant-store';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';

export const approverUsage =
  'orch approver add NAME --key HEX --tenant T [--json] | orch approver list [--tenant T] [--json] | orch approver remove NAME --tenant T [--json]';

export const approverHelp = `Approvers are people with an Ed25519 key (their own \`orch init\`; \`orch whoami --json\` prints it as
sign.publicKey). \`orch approve\` signs a gate's decision with that key, and agents of tier standard or
infrastructure run a state-changing command only with an approval signed by a key of the command's tenant
(protocol/APPROVAL.md).
add NAME --key HEX --tenant T   trusts the key (64 hex digits) as approver NAME of tenant T. Audited as
                                add_approver. The worker sends the tenant's new key list to its agents.
list [--tenant T]               the approvers of one tenant, or of every tenant.
remove NAME --tenant T          stops trusting that approver's key in tenant T (audited as remove_approver);
                                the worker sends the new list to the tenant's agents.
--json                          machine-readable output; errors as { "error": { "code", "message" } }.`;

export const approverOptions = {
  tenant: { type: 'string', short: 't' },
  key: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function requireTenant(values: Record<string, unknown>, sub: string): string {
  if (typeof values.tenant !== 'string') throw new CommandUsageError(`--tenant is required for ${sub}: ${approverUsage}`);
  return checkTenantName(values.tenant);
}

async function approverBody(args: CommandArgs, out: Out): Promise<number> {
  const [sub, name, ...rest] = args.positionals;
  const v = args.values;
  if (sub === 'list') {
    if (name !== undefined) throw new CommandUsageError(`usage: ${approverUsage}`);
    if (v.key !== undefined) throw new CommandUsageError('--key is for `orch approver add`');
    const home = orchHome();
    const store = new TenantStore(home);
    try {
      const tenants = typeof v.tenant === 'string' ? [checkTenantName(v.tenant)] : store.list();
      if (typeof v.tenant === 'string') store.get(tenants[0]!); // unknown_tenant before anything is printed
      const all: Array<Approver & { tenant: string }> = [];
      for (const t of tenants) for (const a of listApprovers(t, { store })) all.push({ tenant: t, ...a });
      if (v.json) printJson(out, all);
      else if (all.length === 0) out.log(`no approvers${typeof v.tenant === 'string' ? ` in tenant "${v.tenant}"` : ''}: orch approver add NAME --key HEX --tenant T`);
      else {
        out.log(`${'TENANT'.padEnd(16)} ${'NAME'.padEnd(24)} ${'KEY'.padEnd(64)} ADDED`);
        for (const a of all) out.log(`${a.tenant.padEnd(16)} ${a.name.padEnd(24)} ${a.key} ${a.addedAt}`);
      }
      return 0;
    } finally {
      store.close();
    }
  }
  if (sub !== 'add' && sub !== 'remove') throw new CommandUsageError(`usage: ${approverUsage}`);
  if (!name || rest.length > 0) throw new CommandUsageError(`usage: ${approverUsage}`);
  const tenant = requireTenant(v, sub);
  checkApproverName(name);
  let key: string | undefined;
  if (sub === 'add') {
    if (typeof v.key !== 'string') throw new CommandUsageError('--key HEX is required: the approver\'s Ed25519 public key (64 hex digits)');
    key = checkApproverKey(v.key);
  } else if (v.key !== undefined) throw new CommandUsageError('--key is for `orch approver add`');
  const store = await openTenantStore(orchHome());
  try {
    const actor = os.userInfo().username;
    if (sub === 'add') {
      const a = addApprover(tenant, name, key!, { store, actor });
      if (v.json) printJson(out, { tenant, ...a });
      else out.log(`approver "${a.name}" added to tenant "${tenant}" (key ${a.key}); approver list version ${a.version}`);
    } else {
      const a = removeApprover(tenant, name, { store, actor });
      if (v.json) printJson(out, { tenant, ...a, removed: true });
      else out.log(`approver "${a.name}" removed from tenant "${tenant}"; approver list version ${a.version}`);
    }
    return 0;
  } finally {
    store.close();
  }
}

/** `orch approver ...` */
export async function approverCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('approver', args, out, () => approverBody(args, out));
}

export const approverSpec: CommandSpec = {
  summary: "add, list or remove a tenant's approvers (the keys that sign approvals)",
  usage: approverUsage,
  help: approverHelp,
  options: approverOptions,
  optionHelp: { key: "the approver's Ed25519 public key (64 hex digits)" },
  subcommands: [
    { name: 'add', summary: 'trust a key as an approver of a tenant', usage: 'orch approver add NAME --key HEX --tenant T [--json]', args: ['<name>'] },
    { name: 'list', summary: 'the approvers of one tenant, or of every tenant', usage: 'orch approver list [--tenant T] [--json]', options: ['tenant', 'json'] },
    { name: 'remove', summary: "stop trusting an approver's key", usage: 'orch approver remove NAME --tenant T [--json]', args: ['<name>'], options: ['tenant', 'json'] },
  ],
  run: approverCommand,
};
