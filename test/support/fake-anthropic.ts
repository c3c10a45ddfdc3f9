/**
 * A local HTTP server that speaks the Anthropic Messages API (`POST /v1/messages`, `POST
 * /v1/messages/count_tokens`), run as its own process by tests. The real `@anthropic-ai/sdk` in the worker talks
 * to it over a socket. It records every request it receives, for tests to inspect at `GET /_requests`, and
 * can be told to fail the next requests (`POST /_fail` {status, count}).
 *
 * Tool use: a request with `tools` is answered from a queue a test sets with `POST /_script` {answers: [...]}, one
 * answer per request, in order: `{tool_input: VALUE}` is a `tool_use` block calling the request's first (or
 * `tool_choice`-named) tool with VALUE; `{text: "..."}` is a plain text answer (a model that did not call the
 * tool). With the queue empty, a tool request gets a text answer. Tokens of a tool request also count the tools'
 * JSON (ceil(characters / 4)); requests without tools are answered and counted exactly as before.
 *
 * Run: node --import tsx test/support/fake-anthropic.ts [--port N] [--api-key KEY]; prints "listening PORT".
 * Token counts are deterministic: ceil(characters / 4) for input; output is min(max_tokens, OUTPUT_TOKENS).
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

import { FAKE_API_KEY, OUTPUT_TOKENS, countTokens } from './anthropic';

interface Recorded {
  path: string;
  model?: string;
  prompt: string;
  system?: string;
  maxTokens?: number;
  /** Names of the tools offered, when the request had any. */
  tools?: string[];
  /** How many messages the conversation had (a retry after a tool_result has 3). */
  messageCount: number;
  at: string;
  answered: number;
}

function textOf(body: { system?: unknown; messages?: Array<{ content: unknown }> }): { prompt: string; system: string } {
  const flatten = (c: unknown): string =>
    typeof c === 'string'
      ? c
      : Array.isArray(c)
        ? c
            .map((b) =>
              typeof b === 'object' && b && 'text' in b
                ? String((b as { text: unknown }).text)
                : typeof b === 'object' && b && (b as { type?: unknown }).type === 'tool_result' && typeof (b as { content?: unknown }).content === 'string'
                  ? String((b as { content: string }).content)
                  : '',
            )
            .join('')
        : '';
  return { prompt: (body.messages ?? []).map((m) => flatten(m.content)).join('\n'), system: flatten(body.system) };
}

function main(): void {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'api-key': { type: 'string', default: FAKE_API_KEY } } });
  const apiKey = values['api-key'];
  const requests: Recorded[] = [];
  let failNext: { status: number; count: number } | undefined;
  let script: Array<{ tool_input?: unknown; text?: string }> = [];

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${requests.length}` });
    res.end(JSON.stringify(body));
  };
  const apiError = (res: http.ServerResponse, status: number, type: string, message: string) =>
    send(res, status, { type: 'error', error: { type, message } });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      if (req.method === 'GET' && url === '/_requests') return send(res, 200, requests);
      if (req.method === 'POST' && url === '/_reset') {
        requests.length = 0;
        failNext = undefined;
        script = [];
        return send(res, 200, { ok: true });
      }
      if (req.method === 'POST' && url === '/_fail') {
        failNext = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { status: number; count: number };
        return send(res, 200, { ok: true });
      }
      if (req.method === 'POST' && url === '/_script') {
        script = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { answers: typeof script }).answers;
        return send(res, 200, { ok: true });
      }
      if (req.method !== 'POST' || !url.startsWith('/v1/messages')) return apiError(res, 404, 'not_found_error', `no route ${req.method} ${url}`);
      // The API takes the key as `x-api-key` or, as current SDKs send it, `Authorization: Bearer KEY`.
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (req.headers['x-api-key'] !== apiKey && bearer !== apiKey) return apiError(res, 401, 'authentication_error', 'invalid x-api-key');
      if (!req.headers['anthropic-version']) return apiError(res, 400, 'invalid_request_error', 'anthropic-version header is required');
      let body: {
        model?: string;
        max_tokens?: number;
        system?: unknown;
        messages?: Array<{ role: string; content: unknown }>;
        tools?: Array<{ name: string }>;
        tool_choice?: { type: string; name?: string };
      };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return apiError(res, 400, 'invalid_request_error', 'body is not JSON');
      }
      const { prompt, system } = textOf(body);
      const path = url.split('?')[0] ?? url;
      const tools = Array.isArray(body.tools) && body.tools.length > 0 ? body.tools : undefined;
      const record: Recorded = {
        path,
        model: body.model,
        prompt,
        system,
        maxTokens: body.max_tokens,
        ...(tools ? { tools: tools.map((t) => t.name) } : {}),
        messageCount: Array.isArray(body.messages) ? body.messages.length : 0,
        at: new Date().toISOString(),
        answered: 200,
      };
      requests.push(record);
      if (typeof body.model !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0) {
        record.answered = 400;
        return apiError(res, 400, 'invalid_request_error', 'model and messages are required');
      }
      const inputTokens = countTokens(prompt, system) + (tools ? Math.ceil(JSON.stringify(tools).length / 4) : 0);
      if (path === '/v1/messages/count_tokens') return send(res, 200, { input_tokens: inputTokens });
      if (path !== '/v1/messages') return apiError(res, 404, 'not_found_error', `no route ${path}`);
      if (typeof body.max_tokens !== 'number' || body.max_tokens < 1) {
        record.answered = 400;
        return apiError(res, 400, 'invalid_request_error', 'max_tokens: field required');
      }
      if (failNext && failNext.count > 0) {
        failNext.count--;
        record.answered = failNext.status;
        return apiError(res, failNext.status, failNext.status === 529 ? 'overloaded_error' : 'api_error', 'injected failure');
      }
      const output = Math.min(body.max_tokens, OUTPUT_TOKENS);
      if (tools) {
        const next = script.shift();
        const toolName = body.tool_choice?.name ?? tools[0]!.name;
        const content =
          next && 'tool_input' in next
            ? [{ type: 'tool_use', id: `toolu_fake_${requests.length}`, name: toolName, input: next.tool_input }]
            : [{ type: 'text', text: next?.text ?? 'fake reply without a tool call' }];
        return send(res, 200, {
          id: `msg_fake_${requests.length}`,
          type: 'message',
          role: 'assistant',
          model: body.model,
          content,
          stop_reason: content[0]!.type === 'tool_use' ? 'tool_use' : 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: inputTokens, output_tokens: output },
        });
      }
      send(res, 200, {
        id: `msg_fake_${requests.length}`,
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [{ type: 'text', text: `fake reply to: ${prompt.slice(0, 60)}` }],
        stop_reason: output < body.max_tokens ? 'end_turn' : 'max_tokens',
        stop_sequence: null,
        usage: { input_tokens: countTokens(prompt, system), output_tokens: output },
      });
    });
  });
  // Idle keep-alive connections stay open a minute (Node closes them after 5 s): on a loaded machine a client that
  // reuses one just as the server closes it gets a socket error, which fails a Claude call that was never sent (seen
  // in bench:engine's fan-out at a load average of 30).
  server.keepAliveTimeout = 60_000;
  server.listen(Number(values.port), '127.0.0.1', () => {
    const addr = server.address();
    process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : values.port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main();
