/**
 * `orch keys list` and `orch keys rotate`: the data keys of the payload codec (desktop-worker/payload-codec.ts).
 */
import { orchHome } from '../../infra/paths';
import { PAYLOAD_KEYS_FILE, PayloadKeyring } from '../payload-codec';
import { CommandUsageError, printJson, runCommand, type CommandSpec } from './shared';

const usage = 'orch keys list [--json] | orch keys rotate [--json]';

export const keysSpec: CommandSpec = {
  summary: "list or rotate the keys that encrypt what Orch stores in Temporal",
  usage,
  help: `Every payload the Orch worker and the orch commands send to Temporal (run inputs and results, activity
inputs and results, signals, queries, failure messages) is encrypted with XChaCha20-Poly1305 under a 32-byte data
key kept in the OS keychain, next to the desktop identity. \`orch up\` makes the first key.

list:   the keys (id, creation date), marking the one new payloads are encrypted with.
rotate: makes a new key and uses it for every payload from now on. Older keys are kept, so runs already in
        Temporal still decrypt: never delete them from the keychain while Temporal still holds runs they
        encrypted (closed runs leave after the namespace's retention). A running \`orch up\` picks the new key
        up when it first meets a payload encrypted with it, and encrypts with it after a restart.

Key ids and dates are in <ORCH_HOME>/${PAYLOAD_KEYS_FILE} (no key material there).`,
  options: { json: { type: 'boolean' } },
  async run(args, out) {
    return runCommand('keys', args, out, async () => {
      const [sub, ...rest] = args.positionals;
      if ((sub !== 'list' && sub !== 'rotate') || rest.length) throw new CommandUsageError(`usage: ${usage}`);
      const home = orchHome();
      const keyring = PayloadKeyring.open(home);
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
