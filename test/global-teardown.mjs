// Stops what test/global-setup.mjs started (the dev server) and removes the suite's scratch folder.
export default async function globalTeardown() {
  await globalThis.__orchSuite?.stop();
}
