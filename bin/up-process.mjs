// The process `orch up` runs in (issue 11: many runs parked at gates on one worker). Two settings that take effect
// only when a process starts keep the worker's memory down, so bin/orch.mjs starts `orch up` with them, re-running
// itself once when they are missing (and the keyring session of a headless Linux machine, session-keyring.ts, starts
// its `orch up` with them):
// - node's --max-semi-space-size=1 (MiB): V8's young generation, which grows to 3 x 16 MiB while the worker loads
//   its workflow bundle and is never given back, stays small, in the main thread and in the SDK's workflow thread;
// - MALLOC_ARENA_MAX=2: glibc's malloc keeps 2 arenas instead of up to 8 per core, so the native memory the Rust core
//   and the workflow thread free is reused instead of spread over many arenas (elsewhere than glibc it does nothing).
// A value the user gave wins: a --max-semi-space-size in node's own options or in NODE_OPTIONS, a MALLOC_ARENA_MAX in
// the environment. test/support/worker-process.ts (bench:parked, durability.test.ts) runs with the same settings.
// Plain JavaScript: the launcher reads it before any TypeScript is loaded (types in up-process.d.mts).

/** Node flags `orch up` runs with. */
export const UP_NODE_FLAGS = Object.freeze(['--max-semi-space-size=1']);

/** Environment variables `orch up` runs with (not Orch settings: the C library's). */
export const UP_ENV = Object.freeze({ MALLOC_ARENA_MAX: '2' });

/** A node or V8 flag's name, as node compares them: `--max_semi_space_size=4` is `--max-semi-space-size`. */
function flagName(arg) {
  return arg.split('=')[0].replace(/_/g, '-');
}

/**
 * What a process with these node options (execArgv) and this environment lacks of `orch up`'s settings: the node
 * flags to add and the environment variables to set. Both empty when it has them all, or the user chose otherwise.
 */
export function missingUpSettings(execArgv, env) {
  const given = new Set([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  const nodeFlags = UP_NODE_FLAGS.filter((f) => !given.has(flagName(f)));
  const envVars = Object.fromEntries(Object.entries(UP_ENV).filter(([name]) => (env[name] ?? '') === ''));
  return { nodeFlags, env: envVars };
}

/**
 * The node flags and environment to start a process with so it runs as `orch up` does: `env` with UP_ENV's
 * variables it lacks, and UP_NODE_FLAGS that are not in its NODE_OPTIONS.
 */
export function upProcess(env) {
  const missing = missingUpSettings([], env);
  return { nodeFlags: missing.nodeFlags, env: { ...env, ...missing.env } };
}

/**
 * True when `orch up` will re-run itself inside a keyring session of its own (session-keyring.ts): on Linux without a
 * D-Bus session bus, unless it is that inner `orch up`.
 */
export function upRunsInSessionKeyring(env, platform = process.platform) {
  return platform === 'linux' && !env.DBUS_SESSION_BUS_ADDRESS && env.ORCH_SESSION_KEYRING !== '1';
}
