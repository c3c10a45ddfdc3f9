/**
 * The desktop side of a CLI test, set up once per file: a fresh ORCH_HOME, a desktop identity in the real OS keychain
 * under a keychain service of the file's own (run inside infra/ci-keyring.sh, as `npm test` does), the desktop's
 * tenant store, and optionally the local SIEM intake server (test/support/fake-siem.ts); `orch(...)` runs
 * `node bin/orch.mjs` against that home, as a user runs it.
 */
import { afterAll, beforeAll } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { loadOrCreateDesktopIdentity, removeDesktopIdentity, type DesktopIdentity } from '../../desktop-worker/identity';
import { openTenantStore } from '../../desktop-worker/tenant-access';
import type { TenantStore } from '../../desktop-worker/tenant-store';
import { startFakeSiem, type FakeSiem } from './fake-siem';
import { tempHome, uid } from './harness';
import { runOrch, type Ran } from './orch-process';

export interface DesktopHome {
  /** The keychain service the identity is stored under (unique to this file's run). */
  readonly service: string;
  // The rest exist once the file's beforeAll has run: read them inside a test or hook.
  readonly home: string;
  /** The environment `orch` runs with: ORCH_HOME and ORCH_KEYCHAIN_SERVICE set. */
  readonly env: NodeJS.ProcessEnv;
  readonly identity: DesktopIdentity;
  /** The desktop's tenant store (with `store: false`, there is none: reading it throws). */
  readonly store: TenantStore;
  /** The fake SIEM, storing what it acknowledges in HOME/siem-received.jsonl (only with `siem: true`). */
  readonly siem: FakeSiem;
  /** `node bin/orch.mjs ARGS` with `env`, `input` on its stdin. */
  orch(args: string[], input?: string): Promise<Ran>;
}

/**
 * Registers the beforeAll/afterAll that create and remove all this; call it at the top level of a test file.
 * `storeEnv` is the environment the tenant store resolves `env:` secrets from.
 */
export function useDesktopHome(servicePrefix: string, opts: { store?: boolean; storeEnv?: NodeJS.ProcessEnv; siem?: boolean } = {}): DesktopHome {
  const service = uid(servicePrefix);
  let home: string | undefined;
  let identity: DesktopIdentity | undefined;
  let store: TenantStore | undefined;
  let siem: FakeSiem | undefined;
  beforeAll(async () => {
    home = tempHome();
    identity = await loadOrCreateDesktopIdentity({ home, service });
    if (opts.store !== false) store = await openTenantStore(home, opts.storeEnv ? { env: opts.storeEnv } : {});
    if (opts.siem) siem = await startFakeSiem({ store: path.join(home, 'siem-received.jsonl') });
  });
  afterAll(async () => {
    await siem?.stop();
    store?.close();
    if (home === undefined) return;
    await removeDesktopIdentity({ home, service }).catch(() => {});
    fs.rmSync(home, { recursive: true, force: true });
  });
  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useDesktopHome: ${what} is read before beforeAll made it, or was not asked for`);
    return v;
  };
  const env = () => ({ ...process.env, ORCH_HOME: ready(home, 'the home'), ORCH_KEYCHAIN_SERVICE: service });
  return {
    service,
    get home() {
      return ready(home, 'the home');
    },
    get env() {
      return env();
    },
    get identity() {
      return ready(identity, 'the identity');
    },
    get store() {
      return ready(store, 'the tenant store');
    },
    get siem() {
      return ready(siem, 'the fake SIEM');
    },
    orch: (args, input) => runOrch(args, env(), input),
  };
}
