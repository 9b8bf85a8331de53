// A websocket client of the live feed for tests: collects every frame, parsed and checked against the
// documented protocol, and waits for the ones a test expects.
import WebSocket from 'ws';
import {
  FEED_PATH,
  FEED_SUBPROTOCOL,
  ServerMessageSchema,
  type ServerMessage,
} from '../../src/feed/protocol.js';

export interface FeedTestClient {
  readonly ws: WebSocket;
  readonly messages: ServerMessage[];
  /** Every text frame as received, to look for numbers that must not be there. */
  readonly raw: string[];
  readonly closed: Promise<{ code: number; reason: string }>;
  next<T extends ServerMessage['type']>(
    type: T,
    where?: (m: Extract<ServerMessage, { type: T }>) => boolean,
    timeoutMs?: number,
  ): Promise<Extract<ServerMessage, { type: T }>>;
  subscribe(options?: { since?: string | null; seat?: { desk: string; seatId: string } }): void;
  lastSeq(): string | null;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly token?: string;
  readonly origin?: string;
  readonly protocols?: string[];
  readonly autoPong?: boolean;
}

export async function openFeed(baseUrl: string, options: OpenOptions = {}): Promise<FeedTestClient> {
  const url = `${baseUrl.replace(/^http/, 'ws')}${FEED_PATH}`;
  const protocols = options.protocols ?? [
    FEED_SUBPROTOCOL,
    ...(options.token ? [`bearer.${options.token}`] : []),
  ];
  const ws = new WebSocket(url, protocols, {
    ...(options.origin ? { origin: options.origin } : {}),
    autoPong: options.autoPong ?? true,
  });
  const messages: ServerMessage[] = [];
  const raw: string[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    const text = data.toString();
    raw.push(text);
    messages.push(ServerMessageSchema.parse(JSON.parse(text)));
    for (const wake of waiters) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
  });

  const client: FeedTestClient = {
    ws,
    messages,
    raw,
    closed,
    next(type, where = () => true, timeoutMs = 5000) {
      type M = Extract<ServerMessage, { type: typeof type }>;
      const find = () => messages.find((m): m is M => m.type === type && where(m as M));
      const found = find();
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(
              `no ${type} frame within ${timeoutMs} ms; got ${messages.map((m) => m.type).join(',')}`,
            ),
          );
        }, timeoutMs);
        const wake = () => {
          const hit = find();
          if (!hit) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(hit);
        };
        waiters.add(wake);
      });
    },
    subscribe(subscription = {}) {
      ws.send(JSON.stringify({ v: 1, type: 'subscribe', ...subscription }));
    },
    lastSeq() {
      let seq: string | null = null;
      for (const m of messages) if ('seq' in m && typeof m.seq === 'string') seq = m.seq;
      return seq;
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.resume();
      ws.close();
      const timer = setTimeout(() => ws.terminate(), 1000);
      await closed;
      clearTimeout(timer);
    },
  };
  return client;
}

/** Tries a handshake that should be refused; returns the HTTP status and the error code. */
export async function refusedHandshake(
  baseUrl: string,
  options: OpenOptions & { path?: string } = {},
): Promise<{ status: number; code: string }> {
  const url = `${baseUrl.replace(/^http/, 'ws')}${options.path ?? FEED_PATH}`;
  const protocols = options.protocols ?? [
    FEED_SUBPROTOCOL,
    ...(options.token ? [`bearer.${options.token}`] : []),
  ];
  const ws = new WebSocket(url, protocols, options.origin ? { origin: options.origin } : {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the handshake was accepted'));
    });
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        const parsed = JSON.parse(body) as { error: { code: string } };
        resolve({ status: res.statusCode ?? 0, code: parsed.error.code });
      });
    });
  });
}
