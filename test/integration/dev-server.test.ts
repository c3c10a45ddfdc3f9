// The Temporal dev server as Orch runs it: the real pinned CLI, real ports, a real SQLite file.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { cachedTemporalCliPath, resolveTemporalCli } from '../../infra/temporal-cli';
import { DevServerError, registerSearchAttributes, setNamespaceRetention, startDevServer, type DevServer } from '../../desktop-worker/dev-server';

const ORCH_ATTRIBUTES = { OrchTenant: 'Keyword', OrchDag: 'Keyword', OrchState: 'Keyword' } as const;
const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
const INT = 3;

let cliPath: string;
let work: string;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function withConnection<T>(address: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

beforeAll(async () => {
  cliPath = (await resolveTemporalCli({ log: () => undefined })).path;
  work = mkdtempSync(path.join(tmpdir(), 'orch-dev-server-'));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('startDevServer with a database file', () => {
  const dbFile = () => path.join(work, 'home', 'temporal', 'dev.db');
  let first: DevServer | undefined;

  afterAll(async () => {
    await first?.stop();
  });

  test('serves gRPC and the UI, lists the search attributes, keeps a run across a restart', async () => {
    const logFile = path.join(work, 'home', 'logs', 'temporal.log');
    first = await startDevServer({ cliPath, dbFile: dbFile(), port: 0, uiPort: 0, searchAttributes: ORCH_ATTRIBUTES, logFile });
    if (process.platform !== 'win32') assert.equal(statSync(logFile).mode & 0o777, 0o600, 'the server log is owner-only');
    assert.match(first.address, /^127\.0\.0\.1:\d+$/);
    if (process.platform !== 'win32') {
      assert.equal(statSync(path.dirname(dbFile())).mode & 0o777, 0o700);
      assert.equal(statSync(dbFile()).mode & 0o777, 0o600);
    }

    const workflowId = `probe-${randomUUID()}`;
    await withConnection(first.address, async (connection) => {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'getSystemInfo answers with a server version');
      const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of Object.keys(ORCH_ATTRIBUTES)) {
        assert.equal(listed.customAttributes?.[name], KEYWORD, `${name} is a Keyword attribute`);
      }
      // A workflow type nobody implements on a task queue nobody polls: it stays RUNNING, which is what
      // lets the restart below tell a persisted run from a lost one.
      const client = new Client({ connection });
      await client.workflow.start('OrchNobodyRunsThis', { taskQueue: `nobody-${randomUUID()}`, workflowId });
    });

    assert.ok(first.uiUrl, 'a UI URL unless headless');
    const ui = await fetch(first.uiUrl);
    assert.equal(ui.status, 200, 'the Temporal UI answers');

    const pid = first.pid;
    await first.stop();
    assert.equal(isAlive(pid), false, 'stop() resolves only once the process is gone');
    first = undefined;

    const second = await startDevServer({ cliPath, dbFile: dbFile(), port: 0, headless: true, searchAttributes: ORCH_ATTRIBUTES });
    try {
      assert.equal(second.uiUrl, undefined);
      await withConnection(second.address, async (connection) => {
        const description = await new Client({ connection }).workflow.getHandle(workflowId).describe();
        assert.equal(description.status.name, 'RUNNING');
      });
    } finally {
      await second.stop();
    }
  });
});

describe('startDevServer in memory', () => {
  let server: DevServer;

  beforeAll(async () => {
    server = await startDevServer({ cliPath, port: 0, headless: true, searchAttributes: ORCH_ATTRIBUTES });
  });

  afterAll(async () => {
    await server.stop();
  });

  test('a port already served by a dev server is refused with temporal_port_in_use', async () => {
    const port = Number(server.address.split(':')[1]);
    await assert.rejects(
      startDevServer({ cliPath, port, headless: true }),
      (err: unknown) => {
        assert.ok(err instanceof DevServerError);
        assert.equal(err.code, 'temporal_port_in_use');
        assert.ok(err.message.includes(String(port)), 'the message names the port');
        assert.ok(err.message.includes('ORCH_TEMPORAL_PORT'), 'the message says how to move it');
        return true;
      },
    );
  });

  test('a taken UI port is refused too', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const uiPort = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startDevServer({ cliPath, port: 0, uiPort }), (err: unknown) => {
        assert.ok(err instanceof DevServerError);
        assert.equal(err.code, 'temporal_port_in_use');
        return true;
      });
    } finally {
      blocker.close();
    }
  });

  test('registerSearchAttributes adds what is missing, once, and refuses a type clash', async () => {
    await withConnection(server.address, async (connection) => {
      const added = await registerSearchAttributes(connection, 'default', { ...ORCH_ATTRIBUTES, OrchCost: 'Int' });
      assert.deepEqual(added, ['OrchCost']);
      const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      assert.equal(listed.customAttributes?.OrchCost, INT);
      assert.deepEqual(await registerSearchAttributes(connection, 'default', { OrchCost: 'Int' }), []);
      await assert.rejects(registerSearchAttributes(connection, 'default', { OrchCost: 'Keyword' }), /OrchCost/);
    });
  });
});

describe('startDevServer failures and cleanup', () => {
  test('retentionDays sets how long the namespace keeps closed runs (orch up: ORCH_RETENTION_DAYS, default 30)', async () => {
    const server = await startDevServer({ cliPath, port: 0, headless: true, retentionDays: 30 });
    try {
      const connection = await Connection.connect({ address: server.address });
      try {
        const d = await connection.workflowService.describeNamespace({ namespace: 'default' });
        assert.equal(Number(d.config?.workflowExecutionRetentionTtl?.seconds), 30 * 24 * 60 * 60);
        assert.equal(await setNamespaceRetention(connection, 'default', 7), 7);
      } finally {
        await connection.close();
      }
    } finally {
      await server.stop();
    }
  });

  test('kill() ends the server at once and stop() still resolves', async () => {
    const server = await startDevServer({ cliPath, port: 0, headless: true });
    server.kill();
    await server.stop();
    assert.equal(isAlive(server.pid), false);
  });

  (process.platform === 'win32' ? test.skip : test)('not ready in time: temporal_start_timeout with its last output, and the process is stopped', async () => {
    // A stand-in that never opens its port: the real server is too quick to be caught unready.
    const fake = path.join(work, 'never-ready');
    const pidFile = path.join(work, 'never-ready.pid');
    writeFileSync(fake, `#!/bin/sh\necho $$ > '${pidFile}'\necho "still warming up"\nexec sleep 30\n`);
    chmodSync(fake, 0o755);
    let recent: string[] = [];
    const started = Date.now();
    await assert.rejects(startDevServer({ cliPath: fake, port: 0, headless: true, readyTimeoutMs: 1500 }), (err: unknown) => {
      assert.ok(err instanceof DevServerError);
      assert.equal(err.code, 'temporal_start_timeout');
      recent = err.recentOutput;
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'the deadline holds');
    assert.ok(recent.includes('still warming up'), 'the error carries the last output');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(pid > 0);
    assert.equal(isAlive(pid), false, 'the half-started process was stopped');
  });

  (process.platform === 'win32' ? test.skip : test)('a CLI that exits at once: temporal_start_failed with its output', async () => {
    const fake = path.join(work, 'exits-at-once');
    writeFileSync(fake, '#!/bin/sh\necho "fatal: cannot open the database" >&2\nexit 3\n');
    chmodSync(fake, 0o755);
    await assert.rejects(startDevServer({ cliPath: fake, port: 0, headless: true }), (err: unknown) => {
      assert.ok(err instanceof DevServerError);
      assert.equal(err.code, 'temporal_start_failed');
      assert.ok(err.recentOutput.some((l) => l.includes('cannot open the database')));
      return true;
    });
  });

  test('a CLI path that does not exist: temporal_start_failed', async () => {
    await assert.rejects(startDevServer({ cliPath: path.join(work, 'no-such-temporal'), port: 0, headless: true }), (err: unknown) => {
      assert.ok(err instanceof DevServerError);
      assert.equal(err.code, 'temporal_start_failed');
      return true;
    });
  });

  test('a server left running when its parent exits is killed with it', async () => {
    const script = [
      `import { startDevServer } from ${JSON.stringify(path.resolve('desktop-worker/dev-server.ts'))};`,
      `const s = await startDevServer({ cliPath: ${JSON.stringify(cliPath)}, port: 0, headless: true });`,
      'process.stdout.write(String(s.pid) + "\\n");',
      'process.exit(0);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    const pid = Number(out.trim());
    assert.ok(pid > 0, `the child printed the server pid (${out})`);
    // SIGKILL is delivered at once, but the kernel may take a moment to reap the process.
    for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(isAlive(pid), false, 'the dev server died with its parent');
  });
});

// Uses a shell wrapper.
(process.platform === 'win32' ? describe.skip : describe)('resolveTemporalCli, SDK download step', () => {
  test('takes the binary the Temporal SDK keeps in its download folder and copies it into the cache', async () => {
    // Offline, the SDK cannot download; but it uses a file already at its download name. A wrapper there
    // records how the SDK runs it and hands over to the real CLI, so the SDK's naming, its throwaway server
    // and our copy into the cache are all exercised for real.
    const cacheDir = path.join(work, 'sdk-cache');
    const env = { PATH: path.join(work, 'empty-bin'), ORCH_CACHE_DIR: cacheDir };
    const record = path.join(work, 'sdk-wrapper.log');
    const wrapper = path.join(cacheDir, 'temporal-cli', 'sdk-download', 'temporal-v1.5.1');
    mkdirSync(path.dirname(wrapper), { recursive: true });
    writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        `if [ "$1" = "--version" ]; then echo 'temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)'; exit 0; fi`,
        `echo "$1 $2" >> '${record}'`,
        `exec '${cliPath}' "$@"`,
      ].join('\n'),
    );
    chmodSync(wrapper, 0o755);

    const found = await resolveTemporalCli({ env, log: () => undefined, goFallbacks: [], allowBuild: false });
    assert.equal(found.source, 'sdk-download');
    assert.equal(found.path, cachedTemporalCliPath(env));
    assert.equal(readFileSync(found.path, 'utf8'), readFileSync(wrapper, 'utf8'));
    assert.equal(statSync(found.path).mode & 0o777, 0o755);
    assert.equal(readFileSync(record, 'utf8').trim(), 'server start-dev', 'the SDK started (and stopped) a server with it');

    const again = await resolveTemporalCli({ env, log: () => undefined, goFallbacks: [], allowBuild: false });
    assert.equal(again.source, 'cache');
  });
});
