// The feed as a Fastify plugin: the websocket endpoint (authenticated and Origin-checked before the
// upgrade), the wall page and the screen-pop example. It owns its hub and closes it with the app.
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { ApiKeyAuthenticator } from '../http/auth.js';
import { credentialOf } from '../http/auth.js';
import { errorBody } from '../http/error-handler.js';
import type { Clock, EventBus, FeedLog, TransferStore } from '../ports.js';
import type { DayStats } from './day-stats.js';
import { FeedHub, type FeedHubDeps, type FeedSettings } from './feed-hub.js';
import { FEED_PATH, FEED_SUBPROTOCOL } from './protocol.js';

/** What the composition root gives the feed; buildApp adds the service, the logger and the keys. */
export interface FeedOptions {
  readonly log: FeedLog;
  readonly bus: EventBus;
  readonly transfers: Pick<TransferStore, 'listLive'>;
  readonly stats: DayStats;
  readonly settings: FeedSettings;
  readonly clock?: Clock;
  /** Called with the hub once it runs (tests and the bench read its counters). */
  readonly onHub?: (hub: FeedHub) => void;
}

export interface FeedPluginOptions extends FeedOptions {
  readonly service: FeedHubDeps['service'];
  readonly logger: Logger;
  readonly authenticator: ApiKeyAuthenticator;
}

/** The bearer token rides in Sec-WebSocket-Protocol as `bearer.<key>` (browsers cannot set headers). */
const TOKEN_PREFIX = 'bearer.';

const PAGES: Record<string, { file: string; type: string }> = {
  '/wall': { file: 'wall.html', type: 'text/html; charset=utf-8' },
  '/wall/wall.css': { file: 'wall.css', type: 'text/css; charset=utf-8' },
  '/wall/wall.js': { file: 'wall.js', type: 'text/javascript; charset=utf-8' },
  '/wall/feed-client.js': { file: 'feed-client.js', type: 'text/javascript; charset=utf-8' },
  '/seat': { file: 'screen-pop.html', type: 'text/html; charset=utf-8' },
  '/wall/screen-pop.js': { file: 'screen-pop.js', type: 'text/javascript; charset=utf-8' },
};

export async function feedPlugin(app: FastifyInstance, options: FeedPluginOptions): Promise<void> {
  const { settings, logger, authenticator } = options;
  const hub = new FeedHub({
    log: options.log,
    bus: options.bus,
    transfers: options.transfers,
    stats: options.stats,
    service: options.service,
    clock: options.clock ?? { now: () => new Date() },
    logger: logger.child({ component: 'feed' }),
    settings,
  });
  await hub.start();
  options.onHub?.(hub);

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: settings.maxPayloadBytes,
    perMessageDeflate: false, // CPU per client per frame; the frames are small JSON
    clientTracking: false,
    handleProtocols: (offered) => (offered.has(FEED_SUBPROTOCOL) ? FEED_SUBPROTOCOL : false),
  });

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? '/', 'http://feed.invalid');
    if (url.pathname !== FEED_PATH) return reject(socket, 'not_found', `no websocket at ${url.pathname}`);
    const offered = (request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    if (!offered.includes(FEED_SUBPROTOCOL)) {
      return reject(socket, 'invalid_request', `offer the subprotocol ${FEED_SUBPROTOCOL}`);
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !originAllowed(origin, request.headers.host, settings.allowedOrigins)) {
      logger.warn({ origin }, 'feed: websocket from an origin not allowed');
      return reject(socket, 'forbidden', 'this Origin may not open the feed');
    }
    const token =
      offered.find((p) => p.startsWith(TOKEN_PREFIX))?.slice(TOKEN_PREFIX.length) ??
      credentialOf(request.headers.authorization, request.headers['x-api-key']);
    if (!token)
      return reject(socket, 'unauthorized', `an API key is required (subprotocol ${TOKEN_PREFIX}<key>)`);
    const principal = authenticator.identify(token);
    if (!principal) return reject(socket, 'unauthorized', 'unknown API key');
    if (principal.role !== 'supervisor' && principal.role !== 'seat') {
      return reject(socket, 'forbidden', `the ${principal.role} role has no feed`);
    }
    const role = principal.role;
    wss.handleUpgrade(request, socket, head, (ws) => hub.attach(ws, { name: principal.name, role }, socket));
  };
  app.server.on('upgrade', onUpgrade);
  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade);
    await hub.close();
  });

  const publicDir = new URL('./public/', import.meta.url);
  for (const [path, page] of Object.entries(PAGES)) {
    const body = readFileSync(new URL(page.file, publicDir));
    app.get(path, { schema: { hide: true } }, async (request, reply: FastifyReply) => {
      const host = request.headers.host ?? '';
      return reply
        .header('content-type', page.type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header(
          'content-security-policy',
          `default-src 'self'; connect-src 'self' ws://${host} wss://${host}; img-src 'self' data:; frame-ancestors 'none'`,
        )
        .send(body);
    });
  }
}

/** The service's own pages (same host) and the configured Origins may open the feed. */
export function originAllowed(origin: string, host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** Refuses the upgrade with an ordinary HTTP answer in the service's one error shape. */
function reject(socket: Duplex, code: ErrorCode, message: string): void {
  const status = ERRORS[code];
  const body = JSON.stringify(errorBody(code, message));
  const reason =
    { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[status as 400] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}
