/**
 * The agent's configuration: `<state dir>/agent.json` (mode 0600), written by `orch-agent enroll`, read and
 * validated at start-up. It holds no secret, but it pins who may command this server (the desktop's keys) and
 * which relay to trust, so it gets the same ownership and permission checks as the keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { x25519, x25519KeyPair, zeroize } from '../protocol/primitives';
import { AgentSetupError, checkOwnedAndPrivate } from './identity';
import { TIERS, isTier, type Tier } from './policy';

export const CONFIG_FILE = 'agent.json';
export const ALLOWLIST_FILE = 'allowlist.yaml';

export interface AgentConfig {
  v: 1;
  relay: { url: string; pin: string };
  /** The one desktop this agent obeys: its Ed25519 (signing) and X25519 (sealing) public keys, lowercase hex. */
  desktop: { signKey: string; boxKey: string };
  tier: Tier;
  /** Absolute path of the allowlist (by default `<state dir>/allowlist.yaml`, copied there by enroll). */
  allowlistFile: string;
  enrolledAt: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
export const PIN_PATTERN = /^sha256\/[A-Za-z0-9+/]{43}=$/;

/** Why a setting is wrong, naming it and saying how to fix it; null when fine. */
export function relayUrlProblem(url: unknown): string | null {
  if (typeof url !== 'string') return '--relay is required (wss://HOST:PORT)';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `--relay ${url.slice(0, 100)} is not a URL; expected wss://HOST:PORT`;
  }
  if (u.protocol !== 'wss:') return `--relay must use wss:// (TLS), got ${u.protocol}`;
  if (!u.hostname) return '--relay needs a host';
  if (u.username || u.password) return '--relay must not contain credentials';
  return null;
}

export function pinProblem(pin: unknown): string | null {
  return typeof pin === 'string' && PIN_PATTERN.test(pin) ? null : '--relay-pin must be sha256/<base64 SHA-256 of the certificate SPKI>, as `orch relay start` prints it';
}

export function signKeyProblem(name: string, key: unknown): string | null {
  return typeof key === 'string' && HEX64.test(key) ? null : `${name} must be 64 lowercase hex digits (an Ed25519 public key, as \`orch whoami\` prints it)`;
}

export function boxKeyProblem(name: string, key: unknown): string | null {
  if (typeof key !== 'string' || !HEX64.test(key)) return `${name} must be 64 lowercase hex digits (an X25519 public key, as \`orch whoami\` prints it)`;
  // Sealing to a low-order key would be sealing to everyone; refuse it at enrollment rather than per message.
  const probe = x25519KeyPair();
  try {
    zeroize(x25519(probe.secretKey, Buffer.from(key, 'hex')));
    return null;
  } catch {
    return `${name} is a low-order X25519 key; check you copied the desktop's box key`;
  } finally {
    zeroize(probe.secretKey);
  }
}

export function tierProblem(tier: unknown): string | null {
  return isTier(tier) ? null : `--tier must be one of ${TIERS.join(', ')}`;
}

export function validateConfig(value: unknown, source: string): AgentConfig {
  const bad = (why: string): never => {
    throw new AgentSetupError('bad_config', `${source}: ${why}; fix it or run orch-agent enroll again`);
  };
  if (typeof value !== 'object' || value === null) return bad('not a JSON object');
  const c = value as Record<string, unknown>;
  if (c.v !== 1) bad('unknown version');
  const relay = (c.relay ?? {}) as Record<string, unknown>;
  const desktop = (c.desktop ?? {}) as Record<string, unknown>;
  const problem =
    relayUrlProblem(relay.url) ??
    pinProblem(relay.pin) ??
    signKeyProblem('desktop.signKey', desktop.signKey) ??
    boxKeyProblem('desktop.boxKey', desktop.boxKey) ??
    tierProblem(c.tier) ??
    (typeof c.allowlistFile === 'string' && path.isAbsolute(c.allowlistFile) ? null : 'allowlistFile must be an absolute path');
  if (problem) bad(problem);
  return value as AgentConfig;
}

export function loadAgentConfig(stateDir: string): AgentConfig {
  const file = path.join(stateDir, CONFIG_FILE);
  if (!fs.existsSync(file)) throw new AgentSetupError('not_enrolled', `no ${CONFIG_FILE} in ${stateDir}; run: orch-agent enroll --state-dir ${stateDir} ...`);
  checkOwnedAndPrivate(file, 0o022, 'agent configuration');
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new AgentSetupError('bad_config', `${file} is not valid JSON; run orch-agent enroll again`);
  }
  return validateConfig(parsed, file);
}

/** Write a file atomically (temp file 0600 + rename), replacing any previous version. */
export function writePrivateFileAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function writeAgentConfig(stateDir: string, config: AgentConfig): void {
  validateConfig(config, 'new configuration');
  writePrivateFileAtomic(path.join(stateDir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
}
