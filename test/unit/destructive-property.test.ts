/**
 * Property test of the two checks that stand between an argv and a server:
 *
 * - the desktop's destructive check (protocol/destructive.ts): a grammar of wrappers and options builds argvs
 *   around commands that delete, write or execute something, nested up to three deep; every one must be flagged. A
 *   control wraps harmless commands in the same pass-through wrappers and requires that none is flagged, so the
 *   first cannot pass by flagging everything;
 * - the Go agent's approval rule (protocol/APPROVAL.md): a standard or infrastructure agent runs a command its own
 *   read-only check does not clear only with a signed approval. Every generated argv is put to the real agent binary
 *   (`orch-agent explain --stdin`, one process answering a JSON line per argv with the agent's own policy code)
 *   and must be one that agent would refuse without an approval, whatever the desktop said: a miss of the desktop's
 *   list is harmless because of it. Its control: plain read-only commands clear the agent's check (so the agent
 *   half does not pass by refusing everything).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fc from 'fast-check';
import { resolveAgentBinary } from '../../infra/agent-binary';
import { destructivePattern } from '../../protocol/destructive';
import { effectful, executing, harmless, passThrough, wrapped, type Argv } from '../../protocol/vectors/argv-grammar';

interface AgentView {
  allowed: boolean;
  readOnly: boolean;
  approvalRequired: boolean;
}

/** The real Go agent's policy, asked one argv per line (`orch-agent explain --tier infrastructure --stdin`). */
class AgentPolicy {
  private buffered = '';
  private readonly waiting: Array<(line: string) => void> = [];
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (d: Buffer) => {
      this.buffered += d.toString();
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  static async start(dir: string): Promise<AgentPolicy> {
    const bin = await resolveAgentBinary({ log: () => undefined });
    // Infrastructure: the widest tier, whose policy lets through whatever the allowlist names; only the approval
    // rule then stands between these argvs and the server.
    const allow = nodePath.join(dir, 'allow.yaml');
    fs.writeFileSync(allow, 'version: 1\ntier: infrastructure\ncommands:\n  - executable: echo\n    rest: any\n');
    const child = spawn(bin, ['explain', '--tier', 'infrastructure', '--allow', allow, '--state-dir', nodePath.join(dir, 'state'), '--stdin'], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new AgentPolicy(child);
  }

  ask(argv: string[]): Promise<AgentView> {
    return new Promise((resolve, reject) => {
      this.waiting.push((line) => {
        try {
          resolve(JSON.parse(line) as AgentView);
        } catch {
          reject(new Error(`orch-agent explain answered ${line}`));
        }
      });
      this.child.stdin.write(`${JSON.stringify(argv)}\n`);
    });
  }

  async stop(): Promise<void> {
    this.child.stdin.end();
    await new Promise((r) => this.child.once('exit', r));
  }
}

let agent: AgentPolicy;
const work = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'orch-destructive-property-'));
beforeAll(async () => {
  agent = await AgentPolicy.start(work);
}, 600_000);
afterAll(async () => {
  await agent?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

/** True when a standard or infrastructure agent would not run argv without an approval. */
async function agentRefusesWithoutApproval(argv: string[]): Promise<boolean> {
  return !(await agent.ask(argv)).readOnly;
}

const RUNS = 3000;

/** Flagged on the desktop, or refused by a standard/infrastructure agent without an approval. */
async function refused(argv: Argv): Promise<boolean> {
  return destructivePattern(argv) !== undefined || (await agentRefusesWithoutApproval(argv));
}

describe('destructive check, property', () => {
  test('every argv that deletes, writes or executes, under any wrappers and options, is flagged or refused by the agent without an approval', async () => {
    await fc.assert(
      fc.asyncProperty(wrapped(effectful, fc.oneof(passThrough, executing)), async (argv) => {
        assert.ok(await refused(argv), `neither flagged nor refused: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('the desktop check alone flags every one of them too', () => {
    fc.assert(
      fc.property(wrapped(effectful, fc.oneof(passThrough, executing)), (argv) => {
        assert.ok(destructivePattern(argv) !== undefined, `not flagged: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('the agent alone refuses every one of them without an approval (a desktop miss is harmless)', async () => {
    await fc.assert(
      fc.asyncProperty(wrapped(effectful, fc.oneof(passThrough, executing)), async (argv) => {
        assert.ok(await agentRefusesWithoutApproval(argv), `the agent would run it without an approval: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('the agent\'s control: plain read-only commands need no approval', async () => {
    await fc.assert(
      fc.asyncProperty(harmless, async (argv) => {
        assert.equal(await agentRefusesWithoutApproval(argv), false, `refused: ${JSON.stringify(argv)}`);
      }),
      { numRuns: 200 },
    );
  });

  test('any command run by interpreter code (os.system, subprocess, system(), exec, child_process) is flagged', () => {
    fc.assert(
      fc.property(wrapped(harmless, passThrough), executing, (argv, interpreter) => {
        assert.ok(destructivePattern(interpreter(argv)) !== undefined, `not flagged: ${JSON.stringify(interpreter(argv))}`);
      }),
      { numRuns: 500 },
    );
  });

  test('the control: read-only commands under the same pass-through wrappers are not flagged', () => {
    fc.assert(
      fc.property(wrapped(harmless, passThrough), (argv) => {
        assert.equal(destructivePattern(argv), undefined, `flagged: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });
});
