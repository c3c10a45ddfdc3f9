/**
 * The NestJS wiring, two applications: the public one (HTTPS) with only the WebSocket gateway (platform-ws, `ws`)
 * on RELAY_PATH that hands every socket to RelayCore, and the operator's one (plain HTTP, bound where the operator
 * says, 127.0.0.1 by default) with /healthz and /metrics. Nothing but the relay protocol is served on the public
 * port. Providers are injected with explicit tokens because tsx (esbuild) does not emit decorator metadata.
 */
import 'reflect-metadata';
import type { IncomingMessage } from 'node:http';
import { Controller, Get, Header, Inject, Module, type DynamicModule } from '@nestjs/common';
import { WebSocketGateway, type OnGatewayConnection } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { RELAY_PATH } from '../protocol/relay-handshake';
import type { RelayLog } from './log';
import { WS_MAX_PAYLOAD, type RelayCore } from './relay-core';

export const RELAY_CORE = Symbol('RELAY_CORE');

export { WS_MAX_PAYLOAD } from './relay-core';

export interface RelayModuleOptions {
  core: RelayCore;
  log: RelayLog;
  /** Origins a browser page may open the relay's WebSocket from. Empty (the default): none. Clients that are not
   *  browsers send no Origin header and are not affected. */
  allowedOrigins: string[];
}

// Decorators are applied as plain calls, not `@` syntax: the repo's tsconfig does not turn on legacy
// (experimentalDecorators) semantics, which NestJS needs, and tsx could not emit parameter decorators without it.
// Called by hand they do exactly what the compiler would have done, under any tsconfig.
function decorateMethod(target: object, name: string, ...decorators: MethodDecorator[]): void {
  for (const decorate of decorators.reverse()) {
    const descriptor = Object.getOwnPropertyDescriptor(target, name)!;
    const result = decorate(target, name, descriptor);
    if (result) Object.defineProperty(target, name, result);
  }
}

class HealthController {
  constructor(private readonly core: RelayCore) {}

  healthz(): { status: 'ok'; connections: number; authenticated: number } {
    return { status: 'ok', connections: this.core.metrics.connections, authenticated: this.core.metrics.authenticated };
  }

  metrics(): string {
    return this.core.renderMetrics();
  }
}
Controller()(HealthController);
Inject(RELAY_CORE)(HealthController, undefined, 0);
const noStore = [Header('Cache-Control', 'no-store'), Header('X-Content-Type-Options', 'nosniff')];
decorateMethod(HealthController.prototype, 'healthz', Get('healthz'), ...noStore);
decorateMethod(HealthController.prototype, 'metrics', Get('metrics'), Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8'), ...noStore);

/** The gateway class is made per relay because its decorator options (the Origin check) come from configuration. */
function makeGateway(allowedOrigins: readonly string[], log: RelayLog) {
  class RelayGateway implements OnGatewayConnection {
    constructor(private readonly core: RelayCore) {}

    handleConnection(client: WebSocket, request: IncomingMessage): void {
      this.core.handleConnection(client, request.socket.remoteAddress ?? '?', request.socket.remotePort ?? '?');
    }
  }
  Inject(RELAY_CORE)(RelayGateway, undefined, 0);
  WebSocketGateway({
    path: RELAY_PATH,
    maxPayload: WS_MAX_PAYLOAD,
    // Compression off: it would let a peer make the relay inflate small frames into large ones, and mixes
    // attacker-chosen bytes with others' in one compressor for nothing (envelopes are ciphertext).
    perMessageDeflate: false,
    verifyClient: (info: { origin?: string; req: IncomingMessage }) => {
      const origin = info.req.headers.origin;
      if (origin === undefined || allowedOrigins.includes(origin)) return true;
      log('warn', 'origin_refused', { origin: origin.slice(0, 200) });
      return false;
    },
  })(RelayGateway);
  return RelayGateway;
}

/** The public application: the WebSocket gateway only. */
export class RelayModule {
  static forRelay(options: RelayModuleOptions): DynamicModule {
    return {
      module: RelayModule,
      providers: [
        { provide: RELAY_CORE, useValue: options.core },
        makeGateway(options.allowedOrigins, options.log),
      ],
    };
  }
}
Module({})(RelayModule);

/** The operator's application: /healthz and /metrics (Prometheus text format 0.0.4), no CORS headers. */
export class MetricsModule {
  static forRelay(core: RelayCore): DynamicModule {
    return { module: MetricsModule, controllers: [HealthController], providers: [{ provide: RELAY_CORE, useValue: core }] };
  }
}
Module({})(MetricsModule);
