// The drachtio-srf inbound connection (the app dials drachtio-server's admin port): connect with the
// secret, reconnect when the link drops (srf retries with back-off), ping so a half-open link is noticed,
// and report the state for /health/ready through onStatus.
//
// srf sends `ping` when enablePing is set but drops the `pong` replies it cannot match (drachtio-agent.js
// never registers its ping ids), so it cannot tell a silent server from a healthy one. This class watches
// for any frame from the server: with a ping every interval, an interval plus 2 s without one means the
// link is half-open, and it destroys the socket so srf reconnects.
import Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import type { SwitchState } from '../../ports.js';
import type { SipEdgeConfig } from './sip-edge-config.js';
import type { SrfLike, WireSocket } from './srf-shapes.js';

export interface ConnectionStatus {
  readonly state: SwitchState;
  readonly detail?: string;
}

export class DrachtioConnection {
  readonly srf: SrfLike;
  private current: ConnectionStatus = { state: 'disconnected', detail: 'not started' };
  private readonly listeners = new Set<(status: ConnectionStatus) => void>();
  private socket: WireSocket | null = null;
  private lastFrameAt = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(
    private readonly options: SipEdgeConfig['drachtio'],
    private readonly logger: Logger,
  ) {
    this.srf = new Srf() as unknown as SrfLike;
    this.srf.on('connect', (err: Error | null, hostports?: string, version?: string) => {
      if (err) {
        this.set({ state: 'auth-failed', detail: err.message });
        return;
      }
      this.lastFrameAt = Date.now();
      this.logger.info({ hostports, version }, 'connected to drachtio-server');
      this.set({ state: 'connected', detail: `${hostports ?? ''} ${version ?? ''}`.trim() });
    });
    this.srf.on('reconnecting', (opts: { delay?: number; attempt?: number }) => {
      this.set({ state: 'connecting', detail: `retry ${opts.attempt ?? 0} in ${opts.delay ?? 0} ms` });
    });
    this.srf.on('close', () => {
      if (!this.closing) this.logger.warn('drachtio-server link closed');
      this.set({ state: 'disconnected', detail: 'link closed' });
    });
    // Without a listener, srf's 'error' would throw; it reconnects by itself after one.
    this.srf.on('error', (err: Error) => {
      this.logger.warn({ err }, 'drachtio-server link error');
    });
  }

  status(): ConnectionStatus {
    return this.current;
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  connect(): void {
    this.closing = false;
    this.set({ state: 'connecting', detail: `${this.options.host}:${this.options.port}` });
    this.srf.connect({
      host: this.options.host,
      port: this.options.port,
      secret: this.options.secret,
      enablePing: true,
      pingInterval: this.options.pingIntervalMs,
      reconnect: { retryMaxDelay: this.options.retryMaxDelayMs },
    });
    const wp = this.srf.app.client?.wp;
    wp?.on('connect', (socket: WireSocket) => {
      this.socket = socket;
      this.lastFrameAt = Date.now();
    });
    wp?.on('msg', () => {
      this.lastFrameAt = Date.now();
    });
    this.watchdog = setInterval(() => this.checkLiveness(), 500);
    this.watchdog.unref();
  }

  private checkLiveness(): void {
    if (this.current.state !== 'connected' || this.socket === null) return;
    const silentFor = Date.now() - this.lastFrameAt;
    // A pong comes back within milliseconds; a full interval plus 2 s of silence means nobody is there.
    if (silentFor > this.options.pingIntervalMs + 2000) {
      this.logger.warn({ silentForMs: silentFor }, 'no reply from drachtio-server to pings; dropping the half-open link');
      this.set({ state: 'disconnected', detail: 'no pong' });
      this.socket.destroy();
      this.socket = null;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.watchdog) clearInterval(this.watchdog);
    const wp = this.srf.app.client?.wp;
    if (wp) {
      // Stop srf's reconnect loop as well as the live socket.
      wp.closing = true;
      if (wp.reconnectVars?.retryTimer) clearTimeout(wp.reconnectVars.retryTimer);
    }
    if (this.socket && !this.socket.destroyed) {
      const socket = this.socket;
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 500).unref();
      });
    }
    this.set({ state: 'disconnected', detail: 'closed' });
  }

  private set(status: ConnectionStatus): void {
    this.current = status;
    for (const listener of this.listeners) listener(status);
  }
}
