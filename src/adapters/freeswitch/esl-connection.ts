// One inbound Event Socket connection to one FreeSWITCH: authenticates, subscribes, sends api and bgapi
// commands, hands events on, and reconnects with backoff when the socket drops. A refused password is
// terminal ('auth-failed'): retrying a wrong password only fills FreeSWITCH's log and hides the fault.
//
// Replies on one socket come back in the order the commands were sent (mod_event_socket handles one
// command at a time), so api replies are matched first-in first-out. bgapi results are matched by the
// Job-UUID the client chose, and every job has a timeout.
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { EslError } from './esl-errors.js';
import { EslFrameParser, parseJsonEvent, type EslMessage } from './esl-frame-parser.js';
import { assertOneLine, checkUuid } from './esl-commands.js';

export type EslConnectionState = 'connecting' | 'connected' | 'disconnected' | 'auth-failed' | 'closed';

export interface EslConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** The "event json …" command sent after every (re)authentication. */
  readonly subscription: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /**
   * While connected, "api status" this often (0: never). A switch that hangs without closing the
   * socket then shows within heartbeat + command timeout, not when a transfer needs it (TCP keepalive
   * alone can take minutes).
   */
  readonly heartbeatMs?: number;
  readonly logger: Logger;
  /**
   * Looks at an event's raw JSON before it is parsed; false skips it. A switch sends events for every
   * call it carries, and most are not ours: parsing only the relevant ones keeps the driver fast.
   * BACKGROUND_JOB events are always parsed (the connection matches them to jobs).
   */
  readonly eventFilter?: (rawJson: string) => boolean;
}

export type EslEvent = Readonly<Record<string, string>>;

interface PendingReply {
  readonly command: string;
  resolve(message: EslMessage): void;
  reject(err: EslError): void;
  settled: boolean;
  timer: NodeJS.Timeout | null;
}

interface PendingJob {
  resolve(body: string): void;
  reject(err: EslError): void;
  timer: NodeJS.Timeout;
}

export class EslConnection {
  private socket: Socket | null = null;
  private parser = new EslFrameParser();
  private stateValue: EslConnectionState = 'disconnected';
  private detailValue = 'not started';
  private replies: PendingReply[] = [];
  private readonly jobs = new Map<string, PendingJob>();
  private readonly eventListeners = new Set<(event: EslEvent) => void>();
  private readonly stateListeners = new Set<(state: EslConnectionState, detail: string) => void>();
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private phase: 'greeting' | 'auth' | 'subscribe' | 'ready' = 'greeting';
  private everConnected = false;
  private lastError: string | null = null;

  constructor(private readonly options: EslConnectionOptions) {
    // "auth <password>" is one line of the protocol: a blank or line break would end or split it.
    if (!/^\S+$/.test(options.password)) throw new EslError('unsafe-value', 'the Event Socket password must be one word');
    assertOneLine(options.subscription);
  }

  get state(): EslConnectionState {
    return this.stateValue;
  }
  get detail(): string {
    return this.detailValue;
  }

  onEvent(listener: (event: EslEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** 'connected' after every successful (re)subscription: the owner reconciles then. */
  onState(listener: (state: EslConnectionState, detail: string) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  start(): void {
    if (this.stateValue === 'closed' || this.socket) return;
    this.open();
  }

  /** Resolves at the next 'connected'; rejects on 'auth-failed' or 'closed', or after timeoutMs. */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.stateValue === 'connected') return Promise.resolve();
    if (this.stateValue === 'auth-failed') return Promise.reject(new EslError('auth-failed', this.detailValue));
    if (this.stateValue === 'closed') return Promise.reject(new EslError('closed', this.detailValue));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new EslError('timeout', `not connected within ${timeoutMs} ms (${this.detailValue})`));
      }, timeoutMs);
      const off = this.onState((state, detail) => {
        if (state === 'connected') {
          clearTimeout(timer);
          off();
          resolve();
        } else if (state === 'auth-failed' || state === 'closed') {
          clearTimeout(timer);
          off();
          reject(new EslError(state === 'closed' ? 'closed' : 'auth-failed', detail));
        }
      });
    });
  }

  /** api <command>: resolves with the body (FreeSWITCH puts -ERR in the body too; callers decide). */
  async api(command: string): Promise<string> {
    const reply = await this.send(`api ${assertOneLine(command)}`, true);
    return reply.body;
  }

  /**
   * bgapi <command> with the Job-UUID the caller chose. `accepted` settles on the command/reply;
   * `result` on the BACKGROUND_JOB body, or rejects with 'timeout' after timeoutMs. A job outlives a
   * reconnect: BACKGROUND_JOB goes to every connection subscribed to it, so a result that arrives after
   * the new subscription still lands.
   */
  bgapi(command: string, jobId: string, timeoutMs: number): { accepted: Promise<void>; result: Promise<string> } {
    const id = checkUuid('the Job-UUID', jobId);
    let resolveResult!: (body: string) => void;
    let rejectResult!: (err: EslError) => void;
    const result = new Promise<string>((resolve, reject) => {
      resolveResult = resolve;
      rejectResult = reject;
    });
    // Nobody may be listening for the result if accepted fails; keep that from becoming unhandled.
    result.catch(() => undefined);
    const timer = setTimeout(() => {
      this.jobs.delete(id);
      rejectResult(new EslError('timeout', `no BACKGROUND_JOB for ${id} within ${timeoutMs} ms`));
    }, timeoutMs);
    this.jobs.set(id, { resolve: resolveResult, reject: rejectResult, timer });
    const accepted = this.send(`bgapi ${assertOneLine(command)}\nJob-UUID: ${id}`, false).then((reply) => {
      const text = reply.headers['Reply-Text'] ?? '';
      if (!text.startsWith('+OK')) {
        this.settleJob(id, null, new EslError('command-failed', `bgapi refused: ${text}`, text));
        throw new EslError('command-failed', `bgapi refused: ${text}`, text);
      }
    });
    accepted.catch((err: EslError) => this.settleJob(id, null, err));
    return { accepted, result };
  }

  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.setState('closed', 'closed by its owner');
    this.stopHeartbeat();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.failReplies(new EslError('closed', 'the Event Socket connection was closed'));
    for (const [id] of this.jobs) this.settleJob(id, null, new EslError('closed', 'the Event Socket connection was closed'));
    const socket = this.socket;
    this.socket = null;
    if (socket && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        // "exit" lets FreeSWITCH end the session cleanly (+OK bye, then disconnect-notice).
        socket.end('exit\n\n');
        setTimeout(() => socket.destroy(), 500).unref();
      });
    }
  }

  // ------------------------------------------------------------------ internals

  private send(text: string, expectApi: boolean): Promise<EslMessage> {
    if (this.stateValue !== 'connected' || !this.socket) {
      const code = this.stateValue === 'auth-failed' ? 'auth-failed' : this.stateValue === 'closed' ? 'closed' : 'not-connected';
      return Promise.reject(new EslError(code, `FreeSWITCH is not connected (${this.detailValue})`));
    }
    return this.write(text, expectApi);
  }

  private write(text: string, expectApi: boolean): Promise<EslMessage> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new EslError('not-connected', 'no socket'));
    return new Promise<EslMessage>((resolve, reject) => {
      const entry: PendingReply = {
        command: text.split(' ', 1)[0] ?? text,
        settled: false,
        timer: null,
        resolve: (message) => {
          if (entry.settled) return;
          entry.settled = true;
          if (entry.timer) clearTimeout(entry.timer);
          const type = message.headers['Content-Type'];
          if (expectApi ? type !== 'api/response' : type !== 'command/reply') {
            // An ESL-level refusal ("-ERR command not found") comes as command/reply even for api.
            const text = message.headers['Reply-Text'] ?? message.body;
            if (type === 'command/reply' && text.startsWith('-ERR')) {
              reject(new EslError('command-failed', `${entry.command} refused: ${text}`, text));
              return;
            }
          }
          resolve(message);
        },
        reject: (err) => {
          if (entry.settled) return;
          entry.settled = true;
          if (entry.timer) clearTimeout(entry.timer);
          reject(err);
        },
      };
      // A late reply still has to consume this slot, so a timed-out entry stays queued; the socket is
      // dropped instead, because a switch that stopped answering cannot be trusted with the next command.
      entry.timer = setTimeout(() => {
        entry.reject(new EslError('timeout', `no reply to ${entry.command} within ${this.options.commandTimeoutMs} ms`));
        this.drop('a command timed out');
      }, this.options.commandTimeoutMs);
      this.replies.push(entry);
      socket.write(`${text}\n\n`);
    });
  }

  private open(): void {
    this.setState('connecting', `connecting to ${this.options.host}:${this.options.port}`);
    this.parser = new EslFrameParser();
    this.phase = 'greeting';
    const socket = connect({ host: this.options.host, port: this.options.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const connectTimer = setTimeout(() => {
      this.options.logger.warn({ timeoutMs: this.options.connectTimeoutMs }, 'Event Socket handshake timed out');
      socket.destroy();
    }, this.options.connectTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return; // a socket already given up on
      let messages: EslMessage[];
      try {
        messages = this.parser.push(chunk);
      } catch (err) {
        this.options.logger.error({ err }, 'Event Socket stream is broken; reconnecting');
        socket.destroy();
        return;
      }
      for (const message of messages) {
        if (this.socket !== socket) return;
        this.handle(message, connectTimer);
      }
    });
    const parser = this.parser;
    const checkTruncated = () => {
      try {
        parser.end();
      } catch (err) {
        this.options.logger.warn({ err }, 'Event Socket closed in the middle of a message');
      }
    };
    socket.on('end', checkTruncated);
    socket.on('error', (err) => {
      this.lastError = (err as NodeJS.ErrnoException).code ?? err.message;
      this.options.logger.debug({ err }, 'Event Socket error');
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      this.stopHeartbeat();
      checkTruncated(); // a reset brings no 'end'; end() reports once either way
      if (this.socket !== socket) return;
      this.socket = null;
      this.failReplies(new EslError('disconnected', 'the Event Socket connection dropped before the reply'));
      if (this.stateValue === 'auth-failed' || this.stateValue === 'closed') return;
      this.scheduleReconnect();
    });
  }

  private handle(message: EslMessage, connectTimer: NodeJS.Timeout): void {
    const type = message.headers['Content-Type'];
    switch (type) {
      case 'auth/request':
        if (this.phase !== 'greeting') return;
        this.phase = 'auth';
        this.socket?.write(`auth ${this.options.password}\n\n`);
        return;
      case 'text/rude-rejection':
        // Not in the recordings: FreeSWITCH's answer to an address its event_socket ACL refuses.
        clearTimeout(connectTimer);
        this.setState('auth-failed', `FreeSWITCH refused this address (event_socket apply-inbound-acl): ${message.body.trim()}`);
        this.socket?.destroy();
        return;
      case 'text/disconnect-notice':
        // Sent before FreeSWITCH closes: after a refused password, an "exit", or a shutdown.
        return;
      case 'text/event-json':
        this.dispatchEvent(message.body);
        return;
      case 'text/event-plain':
      case 'text/event-xml':
        this.options.logger.warn({ type }, 'event in a format this driver did not subscribe to; ignored');
        return;
      case 'command/reply':
      case 'api/response':
        break;
      default:
        this.options.logger.warn({ type }, 'unknown Event Socket message type; ignored');
        return;
    }
    if (this.phase === 'auth') {
      const text = message.headers['Reply-Text'] ?? '';
      if (text.startsWith('+OK')) {
        this.phase = 'subscribe';
        this.socket?.write(`${this.options.subscription}\n\n`);
      } else {
        clearTimeout(connectTimer);
        this.setState('auth-failed', `FreeSWITCH refused the Event Socket password (${text || 'no reply text'})`);
        this.socket?.destroy();
      }
      return;
    }
    if (this.phase === 'subscribe') {
      const text = message.headers['Reply-Text'] ?? '';
      clearTimeout(connectTimer);
      if (!text.startsWith('+OK')) {
        this.options.logger.error({ reply: text }, 'FreeSWITCH refused the event subscription; reconnecting');
        this.socket?.destroy();
        return;
      }
      this.phase = 'ready';
      this.attempt = 0;
      const again = this.everConnected;
      this.everConnected = true;
      this.setState('connected', again ? 'reconnected and subscribed again' : 'authenticated and subscribed');
      this.startHeartbeat();
      return;
    }
    const entry = this.replies.shift();
    if (!entry) {
      this.options.logger.warn({ type }, 'a reply nobody asked for; ignored');
      return;
    }
    entry.resolve(message);
  }

  private dispatchEvent(body: string): void {
    const filter = this.options.eventFilter;
    if (filter && !body.includes('"Event-Name":"BACKGROUND_JOB"') && !filter(body)) return;
    let event: Record<string, string>;
    try {
      event = parseJsonEvent(body);
    } catch (err) {
      // One bad event body is not a broken stream: its length was right, so the next message is intact.
      this.options.logger.warn({ err }, 'unreadable event body; skipped');
      return;
    }
    if (event['Event-Name'] === 'BACKGROUND_JOB') {
      const jobId = event['Job-UUID'];
      if (jobId && this.jobs.has(jobId.toLowerCase())) {
        this.settleJob(jobId.toLowerCase(), event._body ?? '', null);
        return;
      }
      // Another client's job (BACKGROUND_JOB reaches every subscriber): not ours.
      return;
    }
    for (const listener of this.eventListeners) {
      try {
        listener(event);
      } catch (err) {
        this.options.logger.error({ err }, 'event listener threw');
      }
    }
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.options.heartbeatMs ?? 0;
    if (every <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      // The reply is not needed; a missing one drops the socket (see write()).
      this.api('status').catch(() => undefined);
    }, every);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private settleJob(id: string, body: string | null, err: EslError | null): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    clearTimeout(job.timer);
    if (err) job.reject(err);
    else job.resolve(body ?? '');
  }

  private failReplies(err: EslError): void {
    const pending = this.replies;
    this.replies = [];
    for (const entry of pending) entry.reject(err);
  }

  private drop(reason: string): void {
    this.options.logger.warn({ reason }, 'dropping the Event Socket connection');
    this.socket?.destroy();
  }

  private scheduleReconnect(): void {
    const base = Math.min(this.options.reconnectMaxMs, this.options.reconnectInitialMs * 2 ** this.attempt);
    // ±20% jitter so several service instances do not reconnect in lockstep after a switch restart.
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    const why = this.lastError ? ` (${this.lastError})` : '';
    this.lastError = null;
    this.setState('disconnected', `${this.everConnected ? 'connection lost' : 'cannot connect'}${why}; retry ${this.attempt} in ${delay} ms`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stateValue !== 'closed') this.open();
    }, delay);
  }

  private setState(state: EslConnectionState, detail: string): void {
    this.stateValue = state;
    this.detailValue = detail;
    for (const listener of this.stateListeners) {
      try {
        listener(state, detail);
      } catch (err) {
        this.options.logger.error({ err }, 'state listener threw');
      }
    }
  }
}
