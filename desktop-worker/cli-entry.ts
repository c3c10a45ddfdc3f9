/**
 * What bin/orch.mjs needs of the desktop code, in one module: the CLI and the session keyring it wraps `orch up` in.
 * bin/build-cli.mjs bundles it (with every module it imports) into dist/cli/orch.cjs, so the `orch` command loads
 * compiled JavaScript instead of transpiling TypeScript at each start.
 */
export { commandName, main } from './cli';
export { adoptSessionBus, runUpInSessionKeyring } from './session-keyring';
