/**
 * Claude calls. The workflow has already reserved this call's worst case under the run's cost cap; this activity
 * only talks to the Messages API and reports real usage. It tells the workflow, through the failure type, when
 * a failed attempt was certainly not billed (so the reservation can be released and the call retried).
 */
import Anthropic from '@anthropic-ai/sdk';
import { ApplicationFailure } from '@temporalio/activity';
import { inputTokenBound } from '../workflows/cost-ledger';
import { ErrorType } from '../protocol/errors';
import type { ClaudeRequest, ClaudeResult, TokenCount } from './types';

export interface ClaudeSettings {
  apiKey?: string;
  baseURL?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
}

function client(settings: ClaudeSettings): Anthropic {
  if (!settings.apiKey) {
    throw ApplicationFailure.nonRetryable(
      'ANTHROPIC_API_KEY is not set for the Orch worker: set it (and ANTHROPIC_BASE_URL for a proxy) and restart `orch up`',
      ErrorType.claudeRequestRejected,
    );
  }
  // Retries belong to the workflow, which reserves cost per attempt; the SDK must not retry behind its back.
  return new Anthropic({ apiKey: settings.apiKey, baseURL: settings.baseURL, maxRetries: 0, timeout: settings.timeoutMs ?? 300_000 });
}

function connectionRefused(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Maps SDK errors to failures with stable types. */
function toFailure(err: unknown): Error {
  if (err instanceof Anthropic.APIError && typeof err.status === 'number') {
    const status = err.status;
    if (status === 429 || status === 529 || status >= 500) {
      return ApplicationFailure.retryable(`Claude API answered ${status}: ${err.message}`, ErrorType.claudeNotProcessed, { status });
    }
    return ApplicationFailure.nonRetryable(`Claude API refused the request (${status}): ${err.message}`, ErrorType.claudeRequestRejected, { status });
  }
  if (err instanceof Anthropic.APIConnectionError && connectionRefused(err)) {
    return ApplicationFailure.retryable(`Claude API unreachable: ${err.message}`, ErrorType.claudeNotProcessed);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** A safe upper bound when the count endpoint is unavailable: no tokenizer yields more tokens than UTF-8 bytes, plus framing. */
export function upperBoundTokens(req: ClaudeRequest): number {
  return inputTokenBound(req.system, req.prompt);
}

export function createClaudeActivities(settings: () => ClaudeSettings) {
  return {
    async countClaudeTokens(req: ClaudeRequest): Promise<TokenCount> {
      const c = client(settings());
      try {
        const r = await c.messages.countTokens({ model: req.model, system: req.system, messages: [{ role: 'user', content: req.prompt }] });
        return { inputTokens: r.input_tokens, exact: true };
      } catch (err) {
        if (err instanceof Anthropic.APIError && (err.status === 401 || err.status === 403)) throw toFailure(err);
        return { inputTokens: upperBoundTokens(req), exact: false };
      }
    },

    async callClaude(req: ClaudeRequest): Promise<ClaudeResult> {
      const c = client(settings());
      try {
        const m = await c.messages.create({
          model: req.model,
          max_tokens: req.maxTokens,
          system: req.system,
          messages: [{ role: 'user', content: req.prompt }],
        });
        const text = m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
        return {
          text,
          inputTokens: m.usage.input_tokens + (m.usage.cache_creation_input_tokens ?? 0) + (m.usage.cache_read_input_tokens ?? 0),
          outputTokens: m.usage.output_tokens,
          stopReason: m.stop_reason,
          model: m.model,
        };
      } catch (err) {
        throw toFailure(err);
      }
    },
  };
}
