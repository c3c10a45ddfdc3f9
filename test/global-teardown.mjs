// Stops what test/global-setup.mjs started (the Go checks still running in the background, if any, and the dev
// server) and removes the suite's scratch folder.
export default async function globalTeardown() {
  const checks = globalThis.__orchGoChecks;
  if (checks) {
    checks.abort.abort();
    await checks.done;
  }
  await globalThis.__orchSuite?.stop();
}
