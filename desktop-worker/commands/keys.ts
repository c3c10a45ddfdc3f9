/**
 * `orch keys list` and `orch keys rotate`: the data keys of the payload codec (desktop-worker/payload-codec.ts).
 */
import fs from 'node:fs';
import { orchHome } from '../../infra/paths';
import { OrchError } from '../../protocol/errors';
import { loadDesktopIdentity } from '../identity';
import { PAYLOAD_KEYS_FILE, PayloadKeyring, exportPayloadKeys, importPayloadKeys } from '../payload-codec';
import { CommandUsageError, printJson, runCommand, type CommandSpec } from './shared';

const usage = 'orch keys list [--json] | orch keys rotate [--json] | orch keys export --to BOX_KEY [--out FILE] | orch keys import FILE --from SIGN_KEY [--json]';

export const keysSpec: CommandSpec = {
  summary: 'list, rotate, export or import the keys that encrypt what Orch stores in Temporal',
  usage,
  help: `Every payload the Orch worker and the orch commands send to Temporal (run inputs and results, activity
inputs and results, signals, queries, failure messages) is encrypted with XChaCha20-Poly1305 under a 32-byte data
key kept in the OS keychain, next to the desktop identity. \`orch up\` makes the first key.

list:   the keys (id, creation date), marking the one new payloads are encrypted with.
rotate: makes a new key and uses it for every payload from now on. Older keys are kept, so runs already in
        Temporal still decrypt: never delete them from the keychain while Temporal still holds runs they
        encrypted (closed runs leave after the namespace's retention). A running \`orch up\` picks the new key
        up when it first meets a payload encrypted with it, and encrypts with it after a restart.
export: for another worker on the same task queue (several workers of one cluster must read each other's
        payloads): every key, sealed to that desktop's key agreement key (--to, its \`orch whoami\`) and signed
        with this desktop's key; written to --out FILE (mode 0600) or stdout.
import: on that other desktop, before its first run: checks the file was made by --from (the exporter's signing
        key) for this desktop, stores the keys in the keychain and makes the exporter's current key current here.

Key ids and dates are in <ORCH_HOME>/${PAYLOAD_KEYS_FILE} (no key material there).`,
  options: { json: { type: 'boolean' }, to: { type: 'string' }, out: { type: 'string' }, from: { type: 'string' } },
  optionHelp: { to: "the other desktop's key agreement key (orch whoami there)", out: 'write to FILE (mode 0600) instead of stdout', from: "the exporter's signing key" },
  subcommands: [
    { name: 'list', summary: 'the payload keys, marking the current one', usage: 'orch keys list [--json]', options: ['json'] },
    { name: 'rotate', summary: 'make a new key and encrypt with it from now on', usage: 'orch keys rotate [--json]', options: ['json'] },
    { name: 'export', summary: 'every key, sealed to another desktop of the same task queue', usage: 'orch keys export --to BOX_KEY [--out FILE]', options: ['to', 'out', 'json'] },
    { name: 'import', summary: 'take the keys another desktop exported', usage: 'orch keys import FILE --from SIGN_KEY [--json]', args: ['<file>'], options: ['from', 'json'] },
  ],
  async run(args, out) {
    return runCommand('keys', args, out, async () => {
      const [sub, ...rest] = args.positionals;
      const home = orchHome();
      const keyring = PayloadKeyring.open(home);
      if (sub === 'export') {
        if (rest.length) throw new CommandUsageError('usage: orch keys export --to BOX_KEY [--out FILE]');
        if (typeof args.values.to !== 'string') throw new CommandUsageError("--to BOX_KEY is required: the other desktop's key agreement key (orch whoami there)");
        const exported = await exportPayloadKeys(keyring, await loadDesktopIdentity({ home }), args.values.to);
        const text = `${JSON.stringify(exported, null, 2)}\n`;
        if (typeof args.values.out === 'string') {
          fs.writeFileSync(args.values.out, text, { mode: 0o600 });
          out.err(`wrote the payload keys, sealed to ${exported.to.slice(0, 16)}…, to ${args.values.out}; on that desktop: orch keys import ${args.values.out} --from ${exported.from}`);
        } else out.log(text.trimEnd());
        return 0;
      }
      if (sub === 'import') {
        const [file, ...more] = rest;
        if (!file || more.length) throw new CommandUsageError('usage: orch keys import FILE --from SIGN_KEY');
        if (typeof args.values.from !== 'string') throw new CommandUsageError("--from SIGN_KEY is required: the exporter's signing key");
        let blob: unknown;
        try {
          blob = JSON.parse(fs.readFileSync(file, 'utf8'));
        } catch (err) {
          throw new OrchError('payload_keys_import_refused', `cannot read ${file} as an \`orch keys export\` file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]}`);
        }
        const imported = await importPayloadKeys(keyring, await loadDesktopIdentity({ home }), blob, args.values.from);
        if (args.values.json) printJson(out, imported);
        else out.log(`imported ${imported.added.length} payload key${imported.added.length === 1 ? '' : 's'}; current key ${imported.current}`);
        return 0;
      }
      if ((sub !== 'list' && sub !== 'rotate') || rest.length) throw new CommandUsageError(`usage: ${usage}`);
      if (sub === 'rotate') {
        const before = keyring.list();
        const made = await keyring.rotate();
        if (args.values.json) printJson(out, { rotated: made, previous: before.find((k) => k.current)?.id ?? null });
        else {
          out.log(`new payload key ${made.id} (OS keychain); new payloads are encrypted with it`);
          if (before.length) out.log(`kept ${before.length} older key${before.length > 1 ? 's' : ''} for decoding: ${before.map((k) => k.id).join(', ')}`);
          out.log('a running `orch up` encrypts with it after its next restart');
        }
        return 0;
      }
      const keys = keyring.list();
      if (args.values.json) printJson(out, keys);
      else if (!keys.length) out.log('no payload keys yet: `orch up` makes the first one');
      else for (const k of keys) out.log(`${k.current ? '*' : ' '} ${k.id}  created ${k.createdAt}${k.current ? '  (current)' : ''}`);
      return 0;
    });
  },
};
