/**
 * Runs `orch audit ...` and `orch secret ...` as their own process, the way `node bin/orch.mjs` will once cli.ts
 * registers these commands: the same command objects, the same argument parsing, real stdin/stdout and exit code.
 *
 *   node --import tsx test/support/orch-cli.ts audit ship --tenant acme --to sumo --url URL
 */
import { parseArgs } from 'node:util';
import { auditSpec } from '../../desktop-worker/commands/audit';
import { secretSpec } from '../../desktop-worker/commands/secrets';
import type { CommandSpec } from '../../desktop-worker/commands/shared';

const specs: Record<string, CommandSpec> = { audit: auditSpec, secret: secretSpec };
const [name, ...rest] = process.argv.slice(2);
const spec = name ? specs[name] : undefined;
if (!spec) {
  process.stderr.write('usage: orch-cli.ts audit|secret ...\n');
  process.exit(2);
}
const out = { log: (l: string) => process.stdout.write(`${l}\n`), err: (l: string) => process.stderr.write(`${l}\n`) };
const parsed = parseArgs({ args: rest, options: spec.options, allowPositionals: true, strict: true });
process.exitCode = await spec.run(parsed as { values: Record<string, unknown>; positionals: string[] }, out);
