// How Orch finds the pinned Temporal CLI. The `temporal` and `go` here are small shell scripts: real
// executables whose answers we choose, so each resolution step can be seen winning or being skipped
// without a 250 MB binary or a four-minute build.
import { afterEach, beforeEach, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  cachedTemporalCliPath,
  resolveTemporalCli,
  TemporalCliEnvError,
  TemporalCliUnavailableError,
  TEMPORAL_CLI_GO_PACKAGE,
  type ResolveTemporalCliOptions,
} from '../../infra/temporal-cli';
import { ensurePrivateDir, orchCacheDir, orchHome, temporalDbFile, writePrivateJsonAtomic } from '../../infra/paths';

const unix = process.platform !== 'win32';
const RELEASE = 'temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)';
const GO_BUILT = 'temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)';
const OLD = 'temporal version 1.4.0 (Server 1.28.0, UI 2.39.0)';

let root: string;
let cacheDir: string;
let lines: string[];

function writeScript(file: string, body: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** A `temporal` that answers `--version` with `versionLine`. */
function fakeTemporal(file: string, versionLine: string): string {
  return writeScript(file, `if [ "$1" = "--version" ]; then echo '${versionLine}'; exit 0; fi\nexit 64`);
}

/**
 * A `go` that records its arguments and GOBIN, optionally waits, then writes a go-built-looking `temporal`
 * into GOBIN and exits with `exitCode`. Only absolute paths: the tests' PATH holds nothing else.
 */
function fakeGo(dir: string, opts: { exitCode?: number; sleepSeconds?: number } = {}): { go: string; record: string } {
  const record = path.join(root, 'go-calls.log');
  const go = writeScript(
    path.join(dir, 'go'),
    [
      `echo "args=$*" >> '${record}'`,
      `echo "GOBIN=$GOBIN" >> '${record}'`,
      opts.sleepSeconds ? `/bin/sleep ${opts.sleepSeconds}` : '',
      `printf '%s\\n' '#!/bin/sh' 'echo "${GO_BUILT}"' > "$GOBIN/temporal"`,
      `/bin/chmod 755 "$GOBIN/temporal"`,
      `exit ${opts.exitCode ?? 0}`,
    ].join('\n'),
  );
  return { go, record };
}

function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: path.join(root, 'empty-bin'), ORCH_CACHE_DIR: cacheDir, ...extra };
}

function options(env: NodeJS.ProcessEnv, extra: Partial<ResolveTemporalCliOptions> = {}): ResolveTemporalCliOptions {
  // No Go outside the test's PATH and no download, unless a test asks: the real ones would take minutes.
  return { env, log: (l) => lines.push(l), goFallbacks: [], allowDownload: false, ...extra };
}

function versionDirEntries(): string[] {
  const dir = path.dirname(cachedTemporalCliPath(baseEnv()));
  return existsSync(dir) ? readdirSync(dir) : [];
}

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'orch-temporal-cli-'));
  cacheDir = path.join(root, 'cache');
  lines = [];
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

// Shell-script fakes need a POSIX shell.
(unix ? describe : describe.skip)('resolveTemporalCli', () => {
  test('ORCH_TEMPORAL_CLI wins over the cache and PATH', async () => {
    fakeTemporal(cachedTemporalCliPath(baseEnv()), RELEASE);
    const onPath = path.join(root, 'bin');
    fakeTemporal(path.join(onPath, 'temporal'), RELEASE);
    const explicit = fakeTemporal(path.join(root, 'mine', 'temporal'), RELEASE);
    const found = await resolveTemporalCli(options(baseEnv({ PATH: onPath, ORCH_TEMPORAL_CLI: explicit })));
    assert.equal(found.source, 'env');
    assert.equal(found.path, explicit);
    assert.equal(found.version, '1.5.1 (Server 1.29.1, UI 2.42.1)');
  });

  test('ORCH_TEMPORAL_CLI of another version is used, with a warning', async () => {
    const explicit = fakeTemporal(path.join(root, 'mine', 'temporal'), OLD);
    const found = await resolveTemporalCli(options(baseEnv({ ORCH_TEMPORAL_CLI: explicit })));
    assert.equal(found.source, 'env');
    assert.equal(found.serverVersion, '1.28.0');
    assert.ok(lines.some((l) => l.startsWith('warning:') && l.includes('ORCH_TEMPORAL_CLI')));
  });

  test('ORCH_TEMPORAL_CLI pointing nowhere is an error naming the variable, not a silent fallback', async () => {
    fakeTemporal(cachedTemporalCliPath(baseEnv()), RELEASE);
    const missing = path.join(root, 'nowhere', 'temporal');
    await assert.rejects(resolveTemporalCli(options(baseEnv({ ORCH_TEMPORAL_CLI: missing }))), (err: unknown) => {
      assert.ok(err instanceof TemporalCliEnvError);
      assert.equal(err.code, 'temporal_cli_env_invalid');
      assert.equal(err.variable, 'ORCH_TEMPORAL_CLI');
      assert.ok(err.message.includes('ORCH_TEMPORAL_CLI') && err.message.includes(missing));
      return true;
    });
  });

  test('ORCH_TEMPORAL_CLI that is not executable, or not a Temporal CLI, is the same error', async () => {
    const notExecutable = path.join(root, 'mine', 'temporal');
    fakeTemporal(notExecutable, RELEASE);
    chmodSync(notExecutable, 0o644);
    await assert.rejects(resolveTemporalCli(options(baseEnv({ ORCH_TEMPORAL_CLI: notExecutable }))), (err: unknown) => {
      assert.ok(err instanceof TemporalCliEnvError);
      assert.equal(err.code, 'temporal_cli_env_invalid');
      return true;
    });
    const impostor = writeScript(path.join(root, 'mine', 'impostor'), 'echo "hello"');
    await assert.rejects(resolveTemporalCli(options(baseEnv({ ORCH_TEMPORAL_CLI: impostor }))), (err: unknown) => {
      assert.ok(err instanceof TemporalCliEnvError);
      assert.equal(err.code, 'temporal_cli_env_invalid');
      return true;
    });
  });

  test('a valid cache is used before PATH', async () => {
    const cached = fakeTemporal(cachedTemporalCliPath(baseEnv()), GO_BUILT);
    const onPath = path.join(root, 'bin');
    fakeTemporal(path.join(onPath, 'temporal'), RELEASE);
    const found = await resolveTemporalCli(options(baseEnv({ PATH: onPath })));
    assert.equal(found.source, 'cache');
    assert.equal(found.path, cached);
    assert.equal(found.serverVersion, '1.29.1');
    assert.equal(cached, path.join(cacheDir, 'temporal-cli', '1.5.1', 'temporal'));
  });

  test("the cached binary's version is asked once, and again once the binary changed", async () => {
    const cached = cachedTemporalCliPath(baseEnv());
    const calls = path.join(root, 'calls');
    const counting = (line: string) => writeScript(cached, `echo x >> '${calls}'\nif [ "$1" = "--version" ]; then echo '${line}'; exit 0; fi\nexit 64`);
    const asked = () => (existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0);
    counting(GO_BUILT);
    assert.equal((await resolveTemporalCli(options(baseEnv()))).serverVersion, '1.29.1');
    assert.equal((await resolveTemporalCli(options(baseEnv()))).source, 'cache');
    assert.equal(asked(), 1, 'the second resolution used the remembered answer');
    // Replaced by another version (a new file: size, inode and times differ): asked again, and refused.
    rmSync(cached);
    counting(OLD);
    const onPath = path.join(root, 'bin');
    fakeTemporal(path.join(onPath, 'temporal'), RELEASE);
    const found = await resolveTemporalCli(options(baseEnv({ PATH: onPath })));
    assert.equal(asked(), 2);
    assert.equal(found.source, 'path');
  });

  test('a cache holding another server version is skipped', async () => {
    fakeTemporal(cachedTemporalCliPath(baseEnv()), OLD);
    const onPath = path.join(root, 'bin');
    const good = fakeTemporal(path.join(onPath, 'temporal'), RELEASE);
    const found = await resolveTemporalCli(options(baseEnv({ PATH: onPath })));
    assert.equal(found.source, 'path');
    assert.equal(found.path, good);
  });

  test('a temporal on PATH of another version is skipped for a later compatible one', async () => {
    const oldDir = path.join(root, 'old-bin');
    const newDir = path.join(root, 'new-bin');
    fakeTemporal(path.join(oldDir, 'temporal'), OLD);
    const good = fakeTemporal(path.join(newDir, 'temporal'), GO_BUILT);
    const found = await resolveTemporalCli(options(baseEnv({ PATH: [oldDir, newDir].join(path.delimiter) })));
    assert.equal(found.source, 'path');
    assert.equal(found.path, good);
  });

  test('go install builds the pinned module into a temporary GOBIN and renames it into the cache', async () => {
    const bin = path.join(root, 'bin');
    fakeTemporal(path.join(bin, 'temporal'), OLD);
    const { record } = fakeGo(bin);
    const found = await resolveTemporalCli(options(baseEnv({ PATH: bin })));
    assert.equal(found.source, 'go-install');
    assert.equal(found.path, cachedTemporalCliPath(baseEnv()));
    assert.equal(found.serverVersion, '1.29.1');

    const calls = readFileSync(record, 'utf8').trim().split('\n');
    assert.deepEqual(calls[0], `args=install ${TEMPORAL_CLI_GO_PACKAGE}@v1.5.1`);
    const gobin = calls[1]?.replace(/^GOBIN=/, '') ?? '';
    const versionDir = path.join(cacheDir, 'temporal-cli', '1.5.1');
    assert.equal(path.dirname(gobin), versionDir, 'GOBIN is inside the version directory (same file system)');
    assert.notEqual(gobin, versionDir, 'GOBIN is a temporary directory, not the cache itself');

    assert.equal(spawnSync(found.path, ['--version'], { encoding: 'utf8' }).stdout.trim(), GO_BUILT);
    assert.deepEqual(versionDirEntries(), ['temporal'], 'no build directory or lock left behind');
    assert.ok(lines.includes('building the Temporal CLI 1.5.1 with go install (a few minutes, once)'));

    // The next resolution is a cache hit: no second build.
    const again = await resolveTemporalCli(options(baseEnv({ PATH: bin })));
    assert.equal(again.source, 'cache');
    assert.equal(readFileSync(record, 'utf8').trim().split('\n').length, 2);
  });

  test('go is also found outside PATH, at a well-known install location', async () => {
    const { go } = fakeGo(path.join(root, 'usr-local-go', 'bin'));
    const found = await resolveTemporalCli(options(baseEnv(), { goFallbacks: [path.join(root, 'absent', 'go'), go] }));
    assert.equal(found.source, 'go-install');
  });

  test('a failed build leaves no binary in the cache and is reported', async () => {
    const bin = path.join(root, 'bin');
    fakeGo(bin, { exitCode: 2 });
    await assert.rejects(resolveTemporalCli(options(baseEnv({ PATH: bin }))), (err: unknown) => {
      assert.ok(err instanceof TemporalCliUnavailableError);
      assert.ok(err.attempts.some((a) => a.startsWith('go install') && a.includes('exited with code 2')));
      return true;
    });
    assert.equal(existsSync(cachedTemporalCliPath(baseEnv())), false);
    assert.deepEqual(versionDirEntries(), []);
  });

  test('concurrent resolutions build once: the second waits on the lock and takes the cache', async () => {
    const bin = path.join(root, 'bin');
    const { record } = fakeGo(bin, { sleepSeconds: 1 });
    const [a, b] = await Promise.all([
      resolveTemporalCli(options(baseEnv({ PATH: bin }))),
      resolveTemporalCli(options(baseEnv({ PATH: bin }))),
    ]);
    assert.equal(a.path, b.path);
    assert.deepEqual([a.source, b.source].sort(), ['cache', 'go-install']);
    const builds = readFileSync(record, 'utf8').split('\n').filter((l) => l.startsWith('args='));
    assert.equal(builds.length, 1);
    assert.ok(lines.some((l) => l.startsWith('another process') && l.includes('waiting')), 'the waiter says why it waits');
  });

  test('a long build says it is alive at each progress interval', async () => {
    const bin = path.join(root, 'bin');
    fakeGo(bin, { sleepSeconds: 1 });
    await resolveTemporalCli(options(baseEnv({ PATH: bin }), { progressEveryMs: 300 }));
    assert.ok(lines.filter((l) => l.includes('still building')).length >= 2);
  });

  test('a lock left by a dead process is taken over, and its half-built directory removed', async () => {
    const versionDir = path.join(cacheDir, 'temporal-cli', '1.5.1');
    const dead = spawnSync('/bin/sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
    mkdirSync(path.join(versionDir, '.build-killed'), { recursive: true });
    writeFileSync(path.join(versionDir, '.build-killed', 'temporal'), 'half a binary');
    writeFileSync(path.join(versionDir, '.lock'), JSON.stringify({ pid: Number(dead), host: (await import('node:os')).hostname(), at: Date.now() }));
    const bin = path.join(root, 'bin');
    fakeGo(bin);
    const found = await resolveTemporalCli(options(baseEnv({ PATH: bin })));
    assert.equal(found.source, 'go-install');
    assert.deepEqual(versionDirEntries(), ['temporal']);
  });

  test('nothing available: TemporalCliUnavailableError says what to install', async () => {
    const bin = path.join(root, 'bin');
    fakeTemporal(path.join(bin, 'temporal'), OLD);
    await assert.rejects(resolveTemporalCli(options(baseEnv({ PATH: bin }))), (err: unknown) => {
      assert.ok(err instanceof TemporalCliUnavailableError);
      assert.equal(err.code, 'temporal_cli_unavailable');
      assert.equal(err.attempts.length, 5, `one line per step: ${err.attempts.join(' | ')}`);
      assert.ok(err.attempts.some((a) => a.includes(path.join(bin, 'temporal')) && a.includes('1.28.0')));
      // The advice: Go, the variable, or PATH.
      assert.match(err.message, /Install Go/);
      assert.match(err.message, /go install github\.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1/);
      assert.match(err.message, /ORCH_TEMPORAL_CLI=/);
      assert.match(err.message, /temporal 1\.5\.1 on your PATH/);
      return true;
    });
    assert.equal(existsSync(path.join(cacheDir, 'temporal-cli', '1.5.1', '.lock')), false);
  });

  test('allowBuild: false never runs go', async () => {
    const bin = path.join(root, 'bin');
    const { record } = fakeGo(bin);
    await assert.rejects(resolveTemporalCli(options(baseEnv({ PATH: bin }), { allowBuild: false })), TemporalCliUnavailableError);
    assert.equal(existsSync(record), false);
  });
});

describe('paths', () => {
  test('ORCH_HOME and ORCH_CACHE_DIR override the OS directories', () => {
    assert.equal(orchHome({ ORCH_HOME: '/srv/orch' }, 'linux'), '/srv/orch');
    assert.equal(orchCacheDir({ ORCH_CACHE_DIR: '/srv/cache' }, 'darwin'), '/srv/cache');
  });

  test('each OS gets its conventional directories', () => {
    assert.equal(orchHome({ HOME: '/home/ana' }, 'linux'), '/home/ana/.local/share/orch');
    assert.equal(orchHome({ HOME: '/home/ana', XDG_DATA_HOME: '/data' }, 'linux'), '/data/orch');
    assert.equal(orchCacheDir({ HOME: '/home/ana' }, 'linux'), '/home/ana/.cache/orch');
    assert.equal(orchCacheDir({ HOME: '/home/ana', XDG_CACHE_HOME: '/c' }, 'linux'), '/c/orch');
    assert.equal(orchHome({ HOME: '/Users/ana' }, 'darwin'), '/Users/ana/Library/Application Support/Orch');
    assert.equal(orchCacheDir({ HOME: '/Users/ana' }, 'darwin'), '/Users/ana/Library/Caches/Orch');
    assert.equal(orchHome({ APPDATA: 'C:\\Users\\ana\\AppData\\Roaming' }, 'win32'), 'C:\\Users\\ana\\AppData\\Roaming\\Orch');
    assert.equal(
      orchCacheDir({ LOCALAPPDATA: 'C:\\Users\\ana\\AppData\\Local' }, 'win32'),
      'C:\\Users\\ana\\AppData\\Local\\Orch\\Cache',
    );
    assert.equal(temporalDbFile('/home/ana/.local/share/orch'), '/home/ana/.local/share/orch/temporal/dev.db');
  });

  (unix ? test : test.skip)('ensurePrivateDir creates owner-only directories and tightens an existing one', () => {
    const created = ensurePrivateDir(path.join(root, 'a', 'b'));
    assert.equal(statSync(created).mode & 0o777, 0o700);
    const loose = path.join(root, 'loose');
    mkdirSync(loose, { mode: 0o755 });
    chmodSync(loose, 0o755);
    ensurePrivateDir(loose);
    assert.equal(statSync(loose).mode & 0o777, 0o700);
  });

  (unix ? test : test.skip)('writePrivateJsonAtomic replaces a file whole, mode 0600 whatever the umask, in an owner-only directory', () => {
    const dir = path.join(root, 'home', 'run');
    const file = path.join(dir, 'state.json');
    writePrivateJsonAtomic(file, { v: 1 });
    // A second name for the first file's inode: a write in place would change what it reads, a rename does not.
    const reader = path.join(root, 'reader.json');
    linkSync(file, reader);
    chmodSync(file, 0o644);
    const previous = process.umask(0o200); // a umask that would take the owner's write bit off 0600
    try {
      writePrivateJsonAtomic(file, { v: 2, list: [1, 2] });
    } finally {
      process.umask(previous);
    }
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { v: 2, list: [1, 2] });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(readFileSync(reader, 'utf8')), { v: 1 }, 'the old file was replaced, not written over');
    assert.deepEqual(readdirSync(dir), ['state.json'], 'no temporary file is left');
  });

  (unix ? test : test.skip)('writePrivateJsonAtomic removes its temporary file when the write fails', () => {
    const dir = path.join(root, 'home');
    const file = path.join(dir, 'state.json');
    mkdirSync(path.join(file, 'in-the-way'), { recursive: true }); // a directory where the file goes: rename fails
    assert.throws(() => writePrivateJsonAtomic(file, { v: 1 }));
    assert.deepEqual(readdirSync(dir), ['state.json']);
    assert.ok(statSync(file).isDirectory());
  });
});
