/**
 * `orch init` and `orch whoami`: the desktop identity (desktop-worker/identity.ts).
 */
import { orchHome } from '../../infra/paths';
import { OsKeychain, loadDesktopIdentity, loadOrCreateDesktopIdentity, readPublicIdentity } from '../identity';
import { OrchError } from '../../protocol/errors';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';

export const initOptions = { json: { type: 'boolean' } } as const;
export const whoamiOptions = { json: { type: 'boolean' } } as const;

export const initHelp = `Creates this desktop's identity on first run: an Ed25519 key pair (signing) and a separate X25519 key pair
(key agreement), made with libsodium. The private keys go into the OS keychain (macOS Keychain, Windows Credential
Manager, a Secret Service such as gnome-keyring on Linux) and never into a file; the public keys and fingerprint go
into <ORCH_HOME>/identity.json. Running it again keeps the same keys. With no reachable keychain it fails and
writes nothing (headless Linux: bash infra/ci-keyring.sh orch init).`;

export const whoamiHelp = `Prints this desktop's public keys and fingerprint (give them to \`orch-agent enroll\` on each server) and
checks that the OS keychain still holds the matching private keys. Exit 1 when there is no identity or the keychain
cannot be used.`;

/** `orch init [--json]` */
export async function initCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('init', args, out, async () => {
    if (args.positionals.length) throw new CommandUsageError('usage: orch init [--json]');
    const home = orchHome();
    const me = await loadOrCreateDesktopIdentity({ home });
    const pub = {
      created: me.created,
      signPublicKey: me.sign.publicKey.toString('hex'),
      boxPublicKey: me.box.publicKey.toString('hex'),
      fingerprint: me.fingerprint,
      keychain: me.keychain,
      home,
    };
    if (args.values.json) {
      printJson(out, pub);
    } else {
      out.log(me.created ? `created the desktop identity in ${home}` : `the desktop identity already exists in ${home}; keeping it`);
      out.log(`  signing key (Ed25519):      ${pub.signPublicKey}`);
      out.log(`  key agreement key (X25519): ${pub.boxPublicKey}`);
      out.log(`  fingerprint:                ${pub.fingerprint}`);
      out.log(`  private keys: OS keychain, service "${me.keychain.service}", accounts "${me.keychain.account}/ed25519" and "${me.keychain.account}/x25519"`);
      out.log('next, on each server:');
      out.log(`  orch-agent enroll --relay wss://HOST:PORT --relay-pin sha256/... --desktop ${pub.signPublicKey} --desktop-box-key ${pub.boxPublicKey} --tier standard --allow FILE`);
      out.log('then here: the `orch agent add NAME --key ... --box-key ...` line it prints');
    }
    return 0;
  });
}

/** `orch whoami [--json]` */
export async function whoamiCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('whoami', args, out, async () => {
    if (args.positionals.length) throw new CommandUsageError('usage: orch whoami [--json]');
    const home = orchHome();
    const pub = readPublicIdentity(home);
    if (!pub) throw new OrchError('identity_missing', `no desktop identity in ${home}: run \`orch init\``);
    // The public keys are printed even when the keychain is unusable (they are what an operator needs to copy),
    // but the exit code says the identity cannot sign right now.
    let keychain: { ok: true } | { ok: false; code: string; message: string };
    try {
      await loadDesktopIdentity({ home, store: new OsKeychain(pub.keychain.service) });
      keychain = { ok: true };
    } catch (err) {
      if (!(err instanceof OrchError)) throw err;
      keychain = { ok: false, code: err.code, message: err.message };
    }
    if (args.values.json) {
      printJson(out, {
        signPublicKey: pub.sign.publicKey,
        boxPublicKey: pub.box.publicKey,
        fingerprint: pub.fingerprint,
        keychain: { ...pub.keychain, status: keychain.ok ? 'ok' : keychain.code },
        createdAt: pub.createdAt,
        home,
      });
    } else {
      out.log(`signing key (Ed25519):      ${pub.sign.publicKey}`);
      out.log(`key agreement key (X25519): ${pub.box.publicKey}`);
      out.log(`fingerprint:                ${pub.fingerprint}`);
      out.log(`keychain:                   ${keychain.ok ? 'ok' : keychain.code} (service "${pub.keychain.service}", account "${pub.keychain.account}")`);
    }
    if (!keychain.ok) {
      out.err(`orch whoami: ${keychain.message}`);
      return 1;
    }
    return 0;
  });
}

export const initSpec: CommandSpec = {
  summary: 'create the desktop identity (keys in the OS keychain)',
  usage: 'orch init [--json]',
  help: initHelp,
  options: initOptions,
  run: initCommand,
};

export const whoamiSpec: CommandSpec = {
  summary: "print this desktop's public keys and fingerprint",
  usage: 'orch whoami [--json]',
  help: whoamiHelp,
  options: whoamiOptions,
  run: whoamiCommand,
};
