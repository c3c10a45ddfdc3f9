// How Orch finds or builds the Go agent (infra/agent-binary.ts). The `go` here is a small shell script that writes
// an executable where `-o` says and records its arguments and environment, so the cache, the key, the lock and the
// errors can be seen without a real build.
import { afterEach, beforeEach, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentBinaryError, agentCacheRoot, agentSourceKey, resolveAgentBinary } from '../../infra/agent-binary';
import { orchCacheDir } from '../../infra/paths';

let root: string;
let repo: string;
let record: string;
let lines: string[];

function fakeGo(dir: string, sleepSeconds = 0): string {
  mkdirSync(dir, { recursive: true });
  const go = path.join(dir, 'go');
  writeFileSync(
    go,
    [
      '#!/bin/sh',
      `echo "args=$* CGO_ENABLED=$CGO_ENABLED GOFLAGS=$GOFLAGS" >> '${record}'`,
      sleepSeconds ? `/bin/sleep ${sleepSeconds}` : '',
      'out=""; prev=""',
      'for a in "$@"; do if [ "$prev" = "-o" ]; then out="$a"; fi; prev="$a"; done',
      `printf '%s\\n' '#!/bin/sh' 'echo fake-agent' > "$out"`,
      '/bin/chmod 755 "$out"',
    ].join('\n'),
  );
  chmodSync(go, 0o755);
  return go;
}

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: path.join(root, 'bin'), HOME: root, ORCH_CACHE_DIR: path.join(root, 'cache'), ...extra };
}

const opts = (extra: NodeJS.ProcessEnv = {}, goFallbacks: string[] = []) => ({ env: env(extra), repoRoot: repo, goFallbacks, log: (l: string) => lines.push(l) });

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'orch-agent-bin-'));
  repo = path.join(root, 'repo');
  mkdirSync(path.join(repo, 'agent', 'cmd', 'orch-agent'), { recursive: true });
  writeFileSync(path.join(repo, 'package.json'), JSON.stringify({ version: '9.9.9' }));
  writeFileSync(path.join(repo, 'agent', 'go.mod'), 'module orch/agent\n\ngo 1.26.0\n');
  writeFileSync(path.join(repo, 'agent', 'go.sum'), '');
  writeFileSync(path.join(repo, 'agent', 'cmd', 'orch-agent', 'main.go'), 'package main\n');
  record = path.join(root, 'go-calls.log');
  lines = [];
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('resolveAgentBinary', () => {
  test('builds once into the cache with the release flags, then reuses it', async () => {
    fakeGo(path.join(root, 'bin'));
    const first = await resolveAgentBinary(opts());
    assert.equal(first, path.join(root, 'cache', 'agent', agentSourceKey(repo), 'orch-agent'));
    assert.ok(existsSync(first));
    const call = readFileSync(record, 'utf8');
    assert.match(call, /args=build -trimpath -buildvcs=false -ldflags -s -w -buildid= -X main\.version=9\.9\.9 -X main\.commit=\S+ -o \S+ \.\/cmd\/orch-agent/);
    assert.match(call, /CGO_ENABLED=0 GOFLAGS=-mod=readonly/);
    assert.ok(lines.some((l) => l.startsWith('building the Orch agent')));
    const again = await resolveAgentBinary(opts());
    assert.equal(again, first);
    assert.equal(readFileSync(record, 'utf8').split('\n').filter(Boolean).length, 1, 'no second build');
  });

  test('a change to any .go file, go.mod or go.sum is a new key; other files are not', () => {
    const k0 = agentSourceKey(repo);
    writeFileSync(path.join(repo, 'agent', 'README.md'), 'docs');
    assert.equal(agentSourceKey(repo), k0);
    writeFileSync(path.join(repo, 'agent', 'cmd', 'orch-agent', 'main.go'), 'package main\n// changed\n');
    const k1 = agentSourceKey(repo);
    assert.notEqual(k1, k0);
    writeFileSync(path.join(repo, 'agent', 'go.sum'), 'x v1 h1:y\n');
    assert.notEqual(agentSourceKey(repo), k1);
  });

  test('concurrent callers build once', async () => {
    fakeGo(path.join(root, 'bin'), 1);
    const [a, b, c] = await Promise.all([resolveAgentBinary(opts()), resolveAgentBinary(opts()), resolveAgentBinary(opts())]);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.equal(readFileSync(record, 'utf8').split('\n').filter(Boolean).length, 1);
  });

  test('go is found at a fallback path when it is not on PATH', async () => {
    const go = fakeGo(path.join(root, 'usr-local-go-bin'));
    const bin = await resolveAgentBinary(opts({}, [go]));
    assert.ok(existsSync(bin));
  });

  test('no Go: one error saying what to install and naming ORCH_AGENT_BIN', async () => {
    await assert.rejects(resolveAgentBinary(opts({}, [path.join(root, 'nowhere', 'go')])), (e: unknown) => {
      assert.ok(e instanceof AgentBinaryError);
      assert.equal(e.code, 'go_missing');
      assert.match(e.message, /install Go 1\.26\.0 or newer from https:\/\/go\.dev\/dl\//);
      assert.match(e.message, /ORCH_AGENT_BIN/);
      return true;
    });
  });

  test('ORCH_AGENT_BIN wins when it exists, and is a one-line error naming the variable when it does not', async () => {
    const bin = path.join(root, 'my-agent');
    writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    assert.equal(await resolveAgentBinary(opts({ ORCH_AGENT_BIN: bin })), bin);
    await assert.rejects(resolveAgentBinary(opts({ ORCH_AGENT_BIN: path.join(root, 'missing') })), (e: unknown) => {
      assert.ok(e instanceof AgentBinaryError && e.code === 'agent_bin_env_invalid');
      assert.match(e.message, /^ORCH_AGENT_BIN=\S+ does not exist/);
      assert.equal(e.message.includes('\n'), false);
      return true;
    });
  });

  test('the cache root is the Temporal CLI cache root', () => {
    for (const e of [{ HOME: '/home/ana' }, { HOME: '/home/ana', XDG_CACHE_HOME: '/xdg' }, { HOME: '/h', ORCH_CACHE_DIR: '/explicit' }]) {
      assert.equal(agentCacheRoot(e), orchCacheDir(e));
    }
  });
});
