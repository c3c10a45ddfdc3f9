// What the .mjs launchers (bin/*.mjs) read of the environment, in one place. They run under plain node, before any
// TypeScript is loaded, so they cannot import infra/settings.ts; instead each setting they read is named in a
// launcherSetting('NAME') call, and test/unit/config-table.test.ts checks that every such name is a row of the one
// table (infra/settings.ts, SETTINGS). ESLint refuses process.env in every other bin/*.mjs (eslint.config.mjs).

/** A setting from infra/settings.ts's SETTINGS; an empty value counts as unset, as there (setting()). */
export function launcherSetting(name) {
  const value = process.env[name];
  return value === '' ? undefined : value;
}

/** The environment a launcher hands to the process it starts: its own, with `extra` on top. */
export function childEnv(extra = {}) {
  return { ...process.env, ...extra };
}

/** The directories of the system's PATH (not an Orch setting: where to look for a program). */
export function searchPath() {
  return (process.env.PATH ?? '').split(process.platform === 'win32' ? ';' : ':').filter(Boolean);
}
