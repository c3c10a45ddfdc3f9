/**
 * protocol/agent-messages.ts: the validating decoder both sides use.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fc from 'fast-check';
import {
  MAX_ARG_BYTES,
  MAX_MESSAGE_BYTES,
  decodeMessage,
  encodeMessage,
  fitResult,
  type AgentMessage,
  type ResultMessage,
} from '../../protocol/agent-messages';

const raw = (v: unknown) => Buffer.from(JSON.stringify(v));
const command = { kind: 'command', commandId: 'wf/run/node', argv: ['systemctl', 'status', 'nginx'], timeoutSeconds: 30 };

describe('agent messages', () => {
  test('every kind round-trips', () => {
    const messages: AgentMessage[] = [
      { kind: 'command', commandId: 'wf/run/n', argv: ['echo', '; rm -rf /'], timeoutSeconds: 1, cwd: '/srv', maxOutputBytes: 10 },
      { kind: 'result', commandId: 'x', status: 'finished', exitCode: 137, signal: 'SIGKILL', timedOut: true, stdout: 'a', stderr: '', truncated: false, durationMs: 5 },
      { kind: 'result', commandId: 'x', status: 'refused', reason: 'command_not_allowed: tier: no' },
      { kind: 'result', commandId: 'x', status: 'indeterminate', reason: 'indeterminate: agent died' },
      { kind: 'ping', nonce: 'n1' },
      { kind: 'pong', nonce: 'n1', agentVersion: '0.1.0', tier: 'standard' },
    ];
    for (const m of messages) assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  });

  test('invalid commands are refused', () => {
    const bad: unknown[] = [
      { ...command, argv: 'systemctl status nginx' },
      { ...command, argv: [] },
      { ...command, argv: [''] },
      { ...command, argv: ['echo', 1] },
      { ...command, argv: ['echo', 'a\u0000b'] },
      { ...command, argv: ['echo', 'x'.repeat(MAX_ARG_BYTES + 1)] },
      { ...command, argv: Array(257).fill('x') },
      { ...command, timeoutSeconds: 0 },
      { ...command, timeoutSeconds: 1.5 },
      { ...command, timeoutSeconds: 86_401 },
      { ...command, cwd: 'relative' },
      { ...command, cwd: '/a\u0000' },
      { ...command, maxOutputBytes: -1 },
      { ...command, commandId: '' },
      { ...command, commandId: 'a\nfake log line' },
      { ...command, commandId: 'x'.repeat(513) },
      { ...command, shell: true },
      { ...command, kind: 'exec' },
      { kind: 'result', commandId: 'x', status: 'finished' },
      { kind: 'result', commandId: 'x', status: 'refused' },
      { kind: 'result', commandId: 'x', status: 'maybe', reason: 'r' },
      { kind: 'ping', nonce: '' },
      null,
      [],
      'command',
    ];
    for (const b of bad) assert.equal(decodeMessage(raw(b)), undefined, JSON.stringify(b)?.slice(0, 80));
    assert.throws(() => encodeMessage({ ...command, argv: [] } as unknown as AgentMessage), TypeError);
  });

  test('bytes that are not UTF-8 JSON, or too large, are refused', () => {
    assert.equal(decodeMessage(Buffer.from([0xff, 0xfe, 0x7b, 0x7d])), undefined);
    assert.equal(decodeMessage(Buffer.from('{"kind":"ping","nonce":"a"')), undefined);
    assert.equal(decodeMessage(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20)), undefined);
  });

  test('the decoder never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.json().map((j) => new Uint8Array(Buffer.from(j)))), (bytes) => {
        const m = decodeMessage(bytes);
        if (m !== undefined) assert.deepEqual(decodeMessage(encodeMessage(m)), m);
      }),
      { numRuns: 2000 },
    );
  });

  test('fitResult shrinks output until the result fits one envelope, and flags it', () => {
    const big: ResultMessage = { kind: 'result', commandId: 'x', status: 'finished', exitCode: 0, stdout: '\u0001'.repeat(600_000), stderr: 'e'.repeat(600_000), truncated: false, durationMs: 1 };
    const fitted = fitResult(big);
    assert.ok(Buffer.byteLength(JSON.stringify(fitted)) <= MAX_MESSAGE_BYTES);
    assert.equal(fitted.truncated, true);
    assert.ok((fitted.stdout ?? '').length > 10_000, 'kept a useful part');
    assert.deepEqual(decodeMessage(encodeMessage(fitted)), fitted);
    const small: ResultMessage = { ...big, stdout: 'ok', stderr: '' };
    assert.equal(fitResult(small), small);
  });
});
