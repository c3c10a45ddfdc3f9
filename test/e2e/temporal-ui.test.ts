/**
 * End to end through the Temporal UI in a real browser (Debian's Chromium, driven by playwright-core), as an
 * operator and an approver use Orch without its CLI: start a run of a registered DAG from the UI's Start Workflow
 * form, see it wait at its approval gate (the `pendingGates` query, run from the UI's Queries tab), see what the run's
 * page says of it (each activity and timer named by its node in the history; on the User Metadata tab the current
 * details with the node table, the cost and the `orch approve` line), approve the gate with the UI's Send Signal
 * dialog, and see the run Completed, in its current details too. Then the Temporal client and the tenant's audit
 * log confirm what the browser showed.
 *
 * The payload codec is on, as under `orch up`: Temporal holds only ciphertext, and the UI shows all of the above
 * through the codec server (desktop-worker/codec-server.ts), which also encodes what is typed into Start Workflow
 * and Send Signal. The same run's page from an origin the codec server refuses shows ciphertext. Runs started
 * from the form with bad input fail at once, with the reason on their page.
 *
 * The suite's dev server runs headless, so this file starts its own with the UI on free ports, and a worker with
 * the Orch plugin against it. Screenshots of every step go to a folder that is kept (printed at the end).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Payload } from '@temporalio/common';
import type { Locator } from 'playwright-core';
import type { ActivityDeps } from '../../activities';
import { startCodecServer, type CodecServer } from '../../desktop-worker/codec-server';
import { startDevServer, type DevServer } from '../../desktop-worker/dev-server';
import { ENCRYPTED_ENCODING, EncryptionCodec, METADATA_ENCODING_KEY, encryptedDataConverter } from '../../desktop-worker/payload-codec';
import { orchPlugin } from '../../desktop-worker/plugin';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { DEFAULT_PRICES } from '../../workflows/prices';
import { SEARCH_ATTRIBUTE_TYPES, pendingGatesQuery, type RunResult } from '../../workflows/shared';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { launchBrowser, step, type BrowserSession } from '../support/browser';
import { eventually, uid } from '../support/harness';

const NAMESPACE = 'default';
const PAYLOAD_KEY_ID = 'pk-e2e0e2e0e2e0e2e0';

interface Stack {
  server: DevServer;
  uiUrl: string;
  bundlePath: string;
  codec: EncryptionCodec;
  codecServer: CodecServer;
  anthropic: FakeAnthropic;
  store: TenantStore;
  taskQueue: string;
  client: Client;
}

let stack: Stack | undefined;
let browser: BrowserSession | undefined;
const cleanups: Array<() => Promise<void> | void> = [];

const tenant = uid('ui-tenant');
const dagName = uid('ui-review');
const marker = uid('e2e-marker');
const workflowId = uid('ui-run');

/** Claude drafts, a person approves at `approve`, then Claude writes a note: the gate must hold back the note. */
const dag = {
  name: dagName,
  version: 1,
  cost_cap_usd: 0.05,
  params: { service: { type: 'string', default: 'nginx' } },
  nodes: [
    { id: 'checklist', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 40, prompt: `${marker} checklist for \${params.service}` },
    { id: 'approve', type: 'approval_gate', needs: ['checklist'], message: 'Restart ${params.service}?' },
    { id: 'note', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 40, needs: ['approve'], prompt: `${marker} note for \${params.service}` },
  ],
};

function requiredEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this file through the suite's runner (node bin/run-tests.mjs ${path.relative(process.cwd(), new URL(import.meta.url).pathname)})`);
  return v;
}

async function startStack(): Promise<Stack> {
  const cliPath = requiredEnv('ORCH_TEMPORAL_CLI');
  // The suite's bundle with the codec's failure converter in it (workflows/failure-converter.cjs), as
  // `npm run build` makes Orch's own: test/suite-setup.ts makes it when the e2e tests run.
  const bundlePath = requiredEnv('ORCH_TEST_WORKFLOW_BUNDLE_CODEC');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-e2e-home-'));
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  const logDir = process.env.ORCH_TEST_WORK_DIR ?? home;

  // The payload codec on, as `orch up` runs it: everything the worker and the client send is encrypted, and the
  // UI shows it only through the codec server, which answers the UI's origin alone.
  const codec = new EncryptionCodec({ current: PAYLOAD_KEY_ID, keys: new Map([[PAYLOAD_KEY_ID, crypto.randomBytes(32)]]) });
  const codecServer = await startCodecServer({ codec, namespace: NAMESPACE });
  cleanups.push(() => codecServer.close());
  const [server, anthropic] = await Promise.all([
    // In memory (no dbFile): this server lives only for this file. Not headless: the UI is what we test.
    startDevServer({
      cliPath,
      port: 0,
      uiPort: 0,
      headless: false,
      searchAttributes: SEARCH_ATTRIBUTE_TYPES,
      uiCodecEndpoint: codecServer.uiEndpoint,
      logFile: path.join(logDir, `temporal-ui-e2e-${process.pid}.log`),
    }),
    startFakeAnthropic(),
  ]);
  cleanups.push(() => server.stop(), () => anthropic.stop());
  const uiUrl = server.uiUrl;
  assert.ok(uiUrl, 'a dev server started with headless:false has a UI address');
  codecServer.allowOrigin(uiUrl);

  const store = new TenantStore(home);
  cleanups.push(() => store.close());
  store.create(tenant, 'e2e-operator');
  store.registerDag(tenant, dag, JSON.stringify(dag), 'e2e-operator');

  const deps: ActivityDeps = {
    registry: {
      loadDag(t, name) {
        const d = store.getDag(t, name);
        return { source: d.source, hash: d.hash };
      },
    },
    prices: () => DEFAULT_PRICES,
    claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }),
    audit: store,
  };
  const taskQueue = uid('tq-ui');
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: NAMESPACE,
    taskQueue,
    plugins: [orchPlugin(deps, { workflowBundlePath: bundlePath, payloadCodec: codec })],
  });
  const running = worker.run();
  cleanups.push(async () => {
    worker.shutdown();
    await running;
    await nativeConnection.close();
  });
  const connection = await Connection.connect({ address: server.address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection, namespace: NAMESPACE, dataConverter: encryptedDataConverter(codec) });

  // The UI is served by the same process; it usually answers as soon as gRPC does, but not always at once.
  await eventually(async () => (await fetch(`${uiUrl}/api/v1/settings`)).ok, 20_000, 'the Temporal UI to answer');
  return { server, uiUrl, bundlePath, codec, codecServer, anthropic, store, taskQueue, client };
}

/**
 * Puts JSON into one of the UI's JSON editors (CodeMirror), then moves the focus away as a person does: the UI
 * takes the editor's text into its form on that, and a form submitted before it sends no input at all.
 * `fill` rather than typing key by key, which the editor's bracket auto-closing would garble.
 */
async function fillJsonEditor(scope: Locator, json: unknown): Promise<void> {
  const editor = scope.locator('[contenteditable="true"]').filter({ visible: true }).first();
  await editor.click();
  await editor.fill(JSON.stringify(json));
  // The hint under the editor: plain text, so a click there only moves the focus (a dialog's title would close
  // the dialog, a label would focus its control again).
  await scope.getByText('(only single JSON payload supported)').filter({ visible: true }).first().click();
}

/**
 * Starts a run from the UI's Start Workflow form as an operator does, and opens its page from the toast. Returns
 * once the run's page shows its id.
 */
async function startFromForm(b: BrowserSession, s: Stack, id: string, workflowType: string, input: unknown, shot?: string): Promise<void> {
  const { page } = b;
  await page.goto(s.uiUrl);
  // A link styled as a button (role=button) on the workflow list.
  await page.getByRole('button', { name: 'Start Workflow' }).click();
  await page.getByRole('heading', { name: 'Start a Workflow' }).waitFor();
  await page.locator('#workflowId').fill(id);
  await page.locator('#taskQueue').fill(s.taskQueue);
  await page.locator('#workflowType').fill(workflowType);
  await fillJsonEditor(page.locator('main'), input);
  // The UI checks the task queue as a person types it: our worker must show as its poller.
  await page.getByText('Task Queue is Active').waitFor();
  if (shot) await b.screenshot(shot);
  await page.getByTestId('start-workflow-button').click();
  // The UI stays on the form and confirms with a toast that links to the new run.
  const toast = page.getByRole('link', { name: 'Workflow started successfully' });
  await toast.waitFor({ timeout: 20_000 });
  assert.match((await toast.getAttribute('href')) ?? '', new RegExp(`/workflows/${id}/[0-9a-f-]+/history$`));
  await toast.click();
  await page.getByRole('heading', { name: id }).waitFor();
}

/** The UI renders some dialogs twice (desktop and mobile layouts); the one a person can click is the visible one. */
const visible = (l: Locator) => l.filter({ visible: true });

beforeAll(async () => {
  const shotsDir = process.env.ORCH_E2E_SHOTS_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'orch-e2e-shots-'));
  // Both at once (the dev server takes seconds to start); whichever started is kept, so afterAll() stops it.
  const [s, b] = await Promise.allSettled([startStack(), launchBrowser({ shotsDir })]);
  if (b.status === 'fulfilled') browser = b.value;
  if (s.status === 'fulfilled') stack = s.value;
  if (s.status === 'rejected') throw s.reason;
  if (b.status === 'rejected') throw b.reason;
});

afterAll(async () => {
  await browser?.close();
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`[e2e] cleanup: ${(err as Error).message}\n`);
    }
  }
});

describe('the Temporal UI in a real browser', () => {
  test('an operator starts a registered DAG, an approver approves its gate by signal, the run completes', async () => {
    const s = stack!;
    const b = browser!;
    const { page } = b;
    const service = 'web-frontend';
    const input = { tenant, params: { service } };
    const approval = { gate: 'approve', decision: 'approve', approver: 'e2e', comment: 'from the browser' };

    await step(b, 'start-from-form-and-open-run', async () => {
      await startFromForm(b, s, workflowId, dagName, input, 'start-form-filled');
      await page.getByText('Running', { exact: true }).first().waitFor();
      await b.screenshot('run-page-running');
    });

    // An approver checks what waits for them: the `pendingGates` query from the Queries tab. The gate is pending
    // only after the Claude node before it finished, so the query is run until it lists the gate.
    const pending = await step(b, 'query-pending-gates', async () => {
      await page.getByTestId('queries-tab').click();
      await page.getByTestId('query-select-button').click();
      await page.getByRole('option', { name: 'pendingGates' }).click();
      const result = page.locator('[role=textbox]', { hasText: `Restart ${service}?` });
      await eventually(async () => {
        // "Run Query" the first time, "Refresh Query" after.
        await page.getByRole('button', { name: /^(Run|Refresh) Query$/ }).click();
        return result.waitFor({ timeout: 2_000 }).then(() => true, () => false);
      }, 20_000, 'the pendingGates query to list the gate in the UI');
      await b.screenshot('query-pending-gates');
      return JSON.parse(await result.innerText()) as Array<{ gate: string; message: string }>;
    });
    assert.deepEqual(pending.map((g) => [g.gate, g.message]), [['approve', `Restart ${service}?`]]);
    // What the run's page says of it while it waits: each activity and timer named by its node, and the current
    // details with the node table and how to approve (workflows/ui-metadata.ts).
    await step(b, 'see-activity-summaries', async () => {
      await page.getByTestId('history-tab').click();
      // The timeline names each activity `type • summary`, and a timer by its summary.
      await page.getByText('callClaude • checklist: claude-haiku-4-5, max 40 tokens').first().waitFor();
      await page.getByText('approval gate "approve" (24 h)').first().waitFor();
      // The event table shows the summary of Orch's own bookkeeping (local activities) too.
      await page.getByText(`orch: audit append (run_workflow ${dagName}@1)`).first().waitFor();
      await b.screenshot('history-activity-summaries');
    });

    await step(b, 'see-current-details', async () => {
      await page.getByTestId('user-metadata-tab').click();
      await page.getByText('Events with Metadata').waitFor();
      await page.getByText('checklist: claude-haiku-4-5, max 40 tokens', { exact: true }).first().waitFor();
      // The UI renders the current details' Markdown in a frame of its own.
      const details = page.frameLocator('iframe[title="output"]');
      const table = details.getByRole('table');
      await table.getByRole('row', { name: /checklist\s+claude\s+✓ succeeded/ }).waitFor();
      await table.getByRole('row', { name: /approve\s+approval_gate\s+‖ waiting for approval/ }).waitFor();
      await table.getByRole('row', { name: /note\s+claude\s+· pending/ }).waitFor();
      await details.getByText(`orch approve ${workflowId} approve --comment "checked"`).waitFor();
      await details.getByText('{"gate":"approve","decision":"approve","approver":"YOUR NAME","comment":"checked"}').waitFor();
      await details.getByText(/Cost: 0\.0\d+ USD spent \+ 0\.00 USD reserved of the 0\.05 USD cap/).waitFor();
      await b.screenshot('current-details-waiting');
    });
    const handle = s.client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    assert.deepEqual(pending, await handle.query(pendingGatesQuery), 'the UI shows what the query returns');
    // The gate holds back everything after it: so far only the node before it has called Claude.
    const beforeApproval = (await s.anthropic.messages()).filter((r) => r.prompt.includes(marker)).map((r) => r.prompt);
    assert.deepEqual(beforeApproval, [`${marker} checklist for ${service}`]);

    await step(b, 'send-approve-signal', async () => {
      await page.getByRole('button', { name: 'More Actions' }).click();
      await visible(page.getByTestId('signal-button')).click();
      const dialog = visible(page.getByRole('dialog')).filter({ hasText: 'Send a Signal' });
      await dialog.waitFor();
      // The UI lists the workflow's signals from the SDK's workflow metadata: `approve` is offered by name.
      await dialog.getByTestId('signal-select-button').click();
      await page.getByRole('option', { name: 'approve', exact: true }).click();
      await fillJsonEditor(dialog, approval);
      await b.screenshot('signal-dialog-filled');
      await dialog.getByRole('button', { name: 'Submit' }).click();
      await dialog.waitFor({ state: 'hidden' });
    });

    const finalShot = await step(b, 'see-completed', async () => {
      await page.getByTestId('history-tab').click();
      // The UI refreshes a running workflow's page by itself; the badge turns to Completed without a reload.
      await page.getByText('Completed', { exact: true }).first().waitFor({ timeout: 30_000 });
      // The result panel shows the gate's output: who approved it, with the comment typed in the dialog.
      await page.locator('[role=textbox]', { hasText: 'approved by e2e: from the browser' }).waitFor();
      return b.screenshot('run-completed');
    });

    await step(b, 'see-current-details-completed', async () => {
      await page.getByTestId('user-metadata-tab').click();
      const details = page.frameLocator('iframe[title="output"]');
      await eventually(async () => {
        // "Press R for freshness": the tab shows the details it last fetched.
        await page.keyboard.press('r');
        return details.getByText('succeeded', { exact: true }).waitFor({ timeout: 2_000 }).then(() => true, () => false);
      }, 20_000, 'the current details to show the run succeeded');
      await details.getByRole('row', { name: /approve\s+approval_gate\s+✓ succeeded\s+approved by e2e: from the browser \[unverified\]/ }).waitFor();
      assert.equal(await details.getByText(/orch approve/).count(), 0, 'no approve line once no gate waits');
      await b.screenshot('current-details-completed');
    });

    // Everything above was decoded by the codec server: the UI had only ciphertext from Temporal. The same UI
    // from an origin the codec server does not allow (localhost is not 127.0.0.1 to a browser) gets no answer
    // from it, and shows what Temporal stores.
    await step(b, 'foreign-origin-sees-ciphertext', async () => {
      const foreign = s.uiUrl.replace('//127.0.0.1:', '//localhost:');
      assert.notEqual(foreign, s.uiUrl);
      await page.goto(`${foreign}/namespaces/${NAMESPACE}/workflows/${workflowId}/${description.runId}/history`);
      await page.getByRole('heading', { name: workflowId }).waitFor();
      // The UI says it could not reach the codec server, and shows the payloads as stored: metadata in base64
      // (`binary/encrypted`, the key id) and the sealed bytes.
      await visible(page.getByText('Codec Server could not connect')).first().waitFor();
      await page.getByText(Buffer.from(ENCRYPTED_ENCODING).toString('base64')).first().waitFor();
      assert.equal(await page.getByText('approved by e2e: from the browser').count(), 0, 'no decoded result without the codec server');
      assert.equal(await page.getByText('web-frontend').count(), 0, 'no decoded input without the codec server');
      await b.screenshot('foreign-origin-ciphertext');
      // And a script on that origin cannot read the codec server's answer either (no CORS headers for it).
      const outcome = await page.evaluate(async (endpoint) => {
        try {
          const res = await fetch(`${endpoint}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default' }, body: '{"payloads":[]}' });
          return `read ${res.status}`;
        } catch (err) {
          return `refused: ${(err as Error).name}`;
        }
      }, s.codecServer.uiEndpoint);
      assert.equal(outcome, 'refused: TypeError');
    });
    process.stdout.write(`[e2e] screenshots: ${b.shotsDir}\n`);
    process.stdout.write(`[e2e] final screenshot: ${finalShot}\n`);

    // What the browser showed, confirmed through the Temporal client and the tenant's audit log.
    const closed = await handle.describe();
    assert.equal(closed.status.name, 'COMPLETED');
    assert.equal(closed.type, dagName);
    assert.equal(closed.taskQueue, s.taskQueue);
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    assert.deepEqual(Object.keys(result.outputs).sort(), ['approve', 'checklist', 'note']);

    // Exactly one signal, the one typed in the browser, with its input as typed.
    const history = await handle.fetchHistory();
    const signals = (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes] : []));
    assert.equal(signals.length, 1);
    assert.equal(signals[0]!.signalName, 'approve');
    // What the browser typed reached Temporal encrypted: the UI sent it through the codec server's /encode.
    const typed = async (p: Payload | undefined, what: string) => {
      assert.ok(p?.data, `${what} carries a payload`);
      assert.equal(Buffer.from(p.metadata?.[METADATA_ENCODING_KEY] ?? []).toString(), ENCRYPTED_ENCODING, `${what} is stored encrypted`);
      assert.ok(!Buffer.from(p.data).toString('latin1').includes(service), `${what}: no plaintext in the stored bytes`);
      const [plain] = await s.codec.decode([p]);
      return JSON.parse(Buffer.from(plain!.data!).toString('utf8')) as unknown;
    };
    assert.deepEqual(await typed(signals[0]!.input?.payloads?.[0] ?? undefined, 'the signal typed in the browser'), approval);
    // The workflow's own input arrived as typed in the Start Workflow form.
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    assert.deepEqual(await typed(started?.input?.payloads?.[0] ?? undefined, 'the input typed in the Start Workflow form'), input);
    // This history lives on this file's own server, which the suite's replay check never sees: replay it here.
    await Worker.runReplayHistory({ workflowBundle: { codePath: s.bundlePath }, dataConverter: encryptedDataConverter(s.codec) }, history);

    // The audit log names the approver from the browser, and the note was written only after the approval.
    const rows = [...s.store.auditLog(tenant).rows({ workflowId })].map((r) => ({ action: r.action, subject: r.subject, actor: r.actor, details: r.details }));
    assert.deepEqual(
      rows.map((r) => `${r.action}:${r.subject}`),
      [`run_workflow:${dagName}@1`, 'claude_call:checklist', 'approve_gate:approve', 'claude_call:note', `run_finished:${dagName}@1`],
    );
    const approved = rows.find((r) => r.action === 'approve_gate')!;
    assert.equal(approved.actor, 'e2e');
    assert.equal(approved.details.comment, 'from the browser');
  });
  test('a run started from the Start Workflow form with bad input fails at once, and its page names the problem', async () => {
    const s = stack!;
    const b = browser!;
    const { page } = b;
    // Each: the input an operator might type, and what the run's failure must name.
    const cases = [
      { name: 'no-tenant', input: { params: { service: 'x' } }, type: 'bad_input', names: /"tenant"/ },
      { name: 'unknown-tenant', input: { tenant: uid('nobody'), params: {} }, type: 'unknown_tenant', names: /nobody-/ },
      { name: 'unknown-param', input: { tenant, params: { colour: 'red' } }, type: 'bad_params', names: /colour/ },
      { name: 'ill-typed-param', input: { tenant, params: { service: 42 } }, type: 'bad_params', names: /service/ },
    ];
    for (const c of cases) {
      const id = uid(`ui-bad-${c.name}`);
      const started = Date.now();
      // What the run's failure says, read through the client (which decrypts it like the codec server does).
      const message = await step(b, `bad-input-${c.name}`, async () => {
        await startFromForm(b, s, id, dagName, c.input);
        const failure = await s.client.workflow.getHandle(id).result().then(
          () => assert.fail(`the ${c.name} run succeeded`),
          (err: unknown) => (err as { cause?: { type?: string; message?: string } }).cause,
        );
        assert.equal(failure?.type, c.type, `${c.name}: the failure's type`);
        assert.match(failure?.message ?? '', c.names, `${c.name}: the failure names the problem`);
        // The run's page: Failed (the UI refreshes it by itself), and the failure's message, decoded.
        await page.getByText('Failed', { exact: true }).first().waitFor({ timeout: 20_000 });
        // The UI shows the failure as JSON: Temporal holds "Encoded failure"; the message is in its encrypted
        // attributes, which the codec server decoded for the page.
        await page.locator('[role=textbox]', { hasText: JSON.stringify(failure!.message!).slice(1, -1) }).waitFor();
        await b.screenshot(`bad-input-${c.name}`);
        return failure!.message!;
      });
      // At once: no retry loop, no wait for a timer; the whole round trip through the browser included.
      assert.ok(Date.now() - started < 30_000, `${c.name}: failed within 30 s (took ${Date.now() - started} ms)`);
      const closed = await s.client.workflow.getHandle(id).describe();
      assert.equal(closed.status.name, 'FAILED', `${c.name}: ${message}`);
    }
    assert.equal((await s.anthropic.messages()).filter((r) => r.prompt.includes(`${marker} checklist for x`)).length, 0);
  });
});
