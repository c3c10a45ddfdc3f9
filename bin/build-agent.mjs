#!/usr/bin/env node
// Builds the Go agent (agent/) into dist/orch-agent-linux-amd64 and dist/orch-agent-linux-arm64: static
// (CGO_ENABLED=0), reproducible (-trimpath, no build id, no VCS stamping, -s -w), with the version from
// package.json and the commit from git stamped in. Prints each binary's size and SHA-256.
//
//   node bin/build-agent.mjs              # both platforms
//   node bin/build-agent.mjs --check      # build twice and fail unless the bytes are identical
//   ORCH_GO=/path/to/go node bin/build-agent.mjs
//
// No dependencies beyond Node and the Go toolchain (ORCH_GO, else `go` on PATH, else /usr/local/go/bin/go).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, launcherSetting, searchPath } from './launcher-env.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const targets = [
  { goos: 'linux', goarch: 'amd64' },
  { goos: 'linux', goarch: 'arm64' },
];

function findGo() {
  const configured = launcherSetting('ORCH_GO');
  if (configured) return configured;
  for (const dir of searchPath()) {
    const p = path.join(dir, 'go');
    if (fs.existsSync(p)) return p;
  }
  if (fs.existsSync('/usr/local/go/bin/go')) return '/usr/local/go/bin/go';
  throw new Error('no Go toolchain found: install Go (the version in agent/go.mod) or set ORCH_GO');
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function build(go, { goos, goarch }, out, version, commit) {
  const ldflags = `-s -w -buildid= -X main.version=${version} -X main.commit=${commit}`;
  execFileSync(go, ['build', '-trimpath', '-buildvcs=false', '-ldflags', ldflags, '-o', out, './cmd/orch-agent'], {
    cwd: path.join(root, 'agent'),
    stdio: ['ignore', 'inherit', 'inherit'],
    env: childEnv({ CGO_ENABLED: '0', GOOS: goos, GOARCH: goarch, GOFLAGS: '-mod=readonly' }),
  });
}

const check = process.argv.includes('--check');
const go = findGo();
const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const commit = gitCommit();
fs.mkdirSync(dist, { recursive: true });
let failed = false;
for (const t of targets) {
  const out = path.join(dist, `orch-agent-${t.goos}-${t.goarch}`);
  build(go, t, out, version, commit);
  const digest = sha256(out);
  const mib = (fs.statSync(out).size / (1024 * 1024)).toFixed(2);
  let note = '';
  if (check) {
    const again = `${out}.check`;
    build(go, t, again, version, commit);
    const same = sha256(again) === digest;
    fs.rmSync(again);
    note = same ? '  reproducible: yes' : '  reproducible: NO (two builds differ)';
    failed ||= !same;
  }
  console.log(`${path.relative(root, out)}  ${mib} MiB  sha256 ${digest}  (version ${version}, commit ${commit.slice(0, 12)})${note}`);
}
process.exitCode = failed ? 1 : 0;
