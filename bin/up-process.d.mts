// Types of bin/up-process.mjs, for the TypeScript that imports it (session-keyring.ts, the tests, the benches).
export declare const UP_NODE_FLAGS: readonly string[];
export declare const UP_ENV: Readonly<Record<string, string>>;
export declare function missingUpSettings(execArgv: readonly string[], env: NodeJS.ProcessEnv): { nodeFlags: string[]; env: Record<string, string> };
export declare function upProcess(env: NodeJS.ProcessEnv): { nodeFlags: string[]; env: NodeJS.ProcessEnv };
export declare function upRunsInSessionKeyring(env: NodeJS.ProcessEnv, platform?: NodeJS.Platform): boolean;
