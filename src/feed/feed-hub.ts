// The feed of one service instance: follows the shared feed log in order, renders each event once
// (masked for supervisors, whole stub for a ringing seat), and hands it to every client without
// waiting on any. A client that cannot keep up is dropped, never waited for.
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { TicketStub } from '../domain/ticket-stub.js';
import { summarise, type TransferSummary } from '../domain/transfer.js';
import type {
  Clock,
  EventBus,
  FeedLog,
  SequencedEvent,
  SwitchStatus,
  TransferStore,
  TransitionRecord,
} from '../ports.js';
import { countOf, dayOf, type DayStats } from './day-stats.js';
import {
  CLOSE,
  ClientMessageSchema,
  SCHEMA_VERSION,
  type FailureSummary,
  type FeedTransfer,
  type ScreenPop,
  type ServerMessage,
} from './protocol.js';

export interface FeedSettings {
  /** Origins allowed besides the service's own (the wall page it serves). */
  readonly allowedOrigins: readonly string[];
  readonly maxPayloadBytes: number;
  /** Bytes a client may have waiting to be sent before it is dropped as too slow. */
  readonly maxBufferedBytes: number;
  readonly heartbeatMs: number;
  readonly subscribeTimeoutMs: number;
  /** Most events replayed to a reconnecting client; past it the client gets a resync. */
  readonly replayLimit: number;
  /** Time zone of "the day" for the wall's counts. */
  readonly timeZone: string;
  /** Which desks a key (by name) may watch; a key not listed watches every desk. */
  readonly desksByKey: Readonly<Record<string, readonly string[]>>;
  readonly statsIntervalMs: number;
  /** How often this instance re-announces its switches' state on the bus, for instances started later. */
  readonly switchAnnounceMs: number;
  readonly instanceId: string;
}

export interface FeedHubDeps {
  readonly log: FeedLog;
  readonly bus: EventBus;
  readonly transfers: Pick<TransferStore, 'listLive'>;
  readonly stats: DayStats;
  /** The transfer service's reads this feed needs. */
  readonly service: { ticket(ticketId: string): Promise<TicketStub>; switchStatuses(): SwitchStatus[] };
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: FeedSettings;
}

/**
 * Bytes a client's frames may gather while corked before they are written anyway (at most a quarter of
 * its send budget, feed.maxBufferedBytes, which counts them: only a slow reader meets that budget).
 */
const CORK_LIMIT_BYTES = 16 * 1024;

export interface FeedPrincipal {
  readonly name: string;
  readonly role: 'supervisor' | 'seat';
}

type Phase = 'waiting' | 'catching-up' | 'live' | 'closed';

interface FeedClient {
  readonly ws: WebSocket;
  /** The connection under the websocket: corked while a batch of events is written to it. */
  readonly socket: Duplex;
  readonly principal: FeedPrincipal;
  /** null: every desk. */
  readonly desks: ReadonlySet<string> | null;
  seat: { desk: string; seatId: string } | null;
  phase: Phase;
  pending: Rendered[];
  alive: boolean;
  subscribeTimer: NodeJS.Timeout | null;
  subscribed: boolean;
}

/** One event, rendered once for every kind of client. */
interface Rendered {
  readonly seq: string;
  /** The desks a transfer event concerns; null for events every supervisor sees. */
  readonly desks: readonly string[] | null;
  readonly supervisor: Buffer | null;
  /** A screen pop or its end, for the seats of one desk. */
  readonly seatDesk: string | null;
  readonly seat: Buffer | null;
}

const CLOSE_GRACE_MS = 2000;
/** Clients handed an event between two turns of the event loop. */
const FANOUT_SLICE = 100;
const CATEGORY_CACHE = 5000;

export class FeedHub {
  private readonly clients = new Set<FeedClient>();
  /** Client connections corked in this turn of the event loop; uncorked together at its end. */
  private readonly corked = new Set<Duplex>();
  private chain: Promise<void> = Promise.resolve();
  private lastSeq: string | null = null;
  private readonly switches = new Map<string, SwitchStatus>();
  private store: { healthy: boolean; detail: string; at: string } | null = null;
  private readonly categories = new Map<string, { category: string; urgency: string }>();
  private unfollow: (() => void) | null = null;
  private unwatchGaps: (() => void) | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private announce: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Clients dropped for reading too slowly, since start (for tests and metrics). */
  droppedSlow = 0;
  /**
   * Time spent handing events to every client's socket, since start (for the bench and metrics); and
   * time spent writing what a turn of the event loop handed them (the sockets are corked meanwhile).
   */
  readonly fanout = { events: 0, totalMs: 0, maxMs: 0, flushes: 0, flushTotalMs: 0, flushMaxMs: 0 };

  constructor(private readonly deps: FeedHubDeps) {}

  async start(): Promise<void> {
    this.unfollow = this.deps.log.follow((event) => this.enqueue(event));
    this.unwatchGaps = this.deps.log.onGap?.(() => this.onGap()) ?? null;
    this.chain = this.readHead(true);
    await this.chain;
    this.heartbeat = setInterval(() => this.beat(), this.deps.settings.heartbeatMs);
    this.heartbeat.unref();
    void this.announceSwitches();
    this.announce = setInterval(() => void this.announceSwitches(), this.deps.settings.switchAnnounceMs);
    this.announce.unref();
  }

  /**
   * Where the feed stands at start, so a client resuming before the first event is answered. Redis may
   * not be reachable yet at boot: try again in the background until it is or an event says it.
   */
  private async readHead(first: boolean): Promise<void> {
    try {
      const head = await this.deps.log.head();
      this.lastSeq ??= head;
    } catch (err) {
      if (first)
        this.deps.logger.warn({ err: errorText(err) }, 'feed: cannot read the log head yet; retrying');
      if (this.closed || this.lastSeq !== null) return;
      setTimeout(() => {
        if (!this.closed && this.lastSeq === null) this.chain = this.chain.then(() => this.readHead(false));
      }, 500).unref();
    }
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** A websocket whose handshake was authenticated: it must now send `subscribe`. */
  /** A websocket that passed the handshake; `socket` is the connection it was upgraded from. */
  attach(ws: WebSocket, principal: FeedPrincipal, socket: Duplex): void {
    const allowed = this.deps.settings.desksByKey[principal.name];
    const client: FeedClient = {
      ws,
      socket,
      principal,
      desks: allowed ? new Set(allowed) : null,
      seat: null,
      phase: 'waiting',
      pending: [],
      alive: true,
      subscribeTimer: null,
      subscribed: false,
    };
    this.clients.add(client);
    client.subscribeTimer = setTimeout(
      () => this.drop(client, CLOSE.subscribeTimeout, 'no subscribe message in time'),
      this.deps.settings.subscribeTimeoutMs,
    );
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (data, isBinary) => this.onMessage(client, isBinary ? null : data.toString()));
    ws.on('close', () => this.forget(client));
    ws.on('error', () => this.forget(client));
    this.sendNow(client, {
      v: SCHEMA_VERSION,
      type: 'hello',
      role: principal.role,
      principal: principal.name,
      instance: this.deps.settings.instanceId,
      heartbeatMs: this.deps.settings.heartbeatMs,
      desks: client.desks ? [...client.desks] : ['*'],
      at: this.now(),
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unfollow?.();
    this.unwatchGaps?.();
    for (const timer of [this.heartbeat, this.announce, this.statsTimer]) if (timer) clearInterval(timer);
    this.disconnectAll('the service instance is shutting down');
    await this.chain.catch(() => undefined);
  }

  /** Closes every client with 1001 (going away); they reconnect and resume, here or elsewhere. */
  disconnectAll(reason: string): void {
    for (const client of [...this.clients]) this.drop(client, CLOSE.goingAway, reason);
  }

  // ------------------------------------------------------------ client messages

  private onMessage(client: FeedClient, text: string | null): void {
    let parsed;
    try {
      parsed = text === null ? null : ClientMessageSchema.safeParse(JSON.parse(text));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      this.refuse(
        client,
        CLOSE.invalidMessage,
        'invalid_message',
        'not a valid client message (see the feed protocol)',
      );
      return;
    }
    const message = parsed.data;
    if (message.type === 'ping') {
      this.sendNow(client, {
        v: SCHEMA_VERSION,
        type: 'pong',
        ...(message.id ? { id: message.id } : {}),
        at: this.now(),
      });
      return;
    }
    if (client.subscribed) {
      this.refuse(client, CLOSE.invalidMessage, 'invalid_message', 'subscribe is sent once per connection');
      return;
    }
    if (client.principal.role === 'seat') {
      if (!message.seat) {
        this.refuse(
          client,
          CLOSE.invalidMessage,
          'invalid_message',
          'a seat subscribes with its desk and seat id',
        );
        return;
      }
      if (client.desks && !client.desks.has(message.seat.desk)) {
        this.refuse(
          client,
          CLOSE.forbidden,
          'forbidden',
          `this key may not take calls for desk ${message.seat.desk}`,
        );
        return;
      }
      client.seat = { ...message.seat };
    } else if (message.seat) {
      this.refuse(client, CLOSE.invalidMessage, 'invalid_message', 'only a seat key subscribes as a seat');
      return;
    }
    client.subscribed = true;
    if (client.subscribeTimer) clearTimeout(client.subscribeTimer);
    client.subscribeTimer = null;
    this.deps.logger.info(
      {
        principal: client.principal.name,
        role: client.principal.role,
        desk: client.seat?.desk,
        seatId: client.seat?.seatId,
        resume: Boolean(message.since),
      },
      'feed client subscribed',
    );
    void this.begin(client, message.since ?? null).catch((err: unknown) => {
      this.deps.logger.warn(
        { err: errorText(err), principal: client.principal.name },
        'feed: cannot start a client',
      );
      this.refuse(client, CLOSE.goingAway, 'unavailable', 'the feed cannot read the store now; reconnect');
    });
  }

  /** Snapshot or replay, then the events that arrived meanwhile, then live. */
  private async begin(client: FeedClient, since: string | null): Promise<void> {
    // Start catching up between two events, never in the middle of a fan-out: then every event after
    // `upTo` is held for this client, and none before it is missing from its snapshot or replay.
    const upTo = await new Promise<string | null>((resolve) => {
      this.chain = this.chain.then(() => {
        if (client.phase === 'waiting') client.phase = 'catching-up';
        resolve(this.lastSeq);
      });
    });
    if (client.phase !== 'catching-up') return; // closed meanwhile
    if (since !== null) {
      let missed: SequencedEvent[] | null = null;
      let reason: 'too-old' | 'unknown-seq' | 'store-unavailable' = upTo === null ? 'unknown-seq' : 'too-old';
      try {
        if (upTo !== null) missed = await this.deps.log.since(since, upTo, this.deps.settings.replayLimit);
      } catch (err) {
        this.deps.logger.warn(
          { err: errorText(err) },
          'feed: cannot read the history; the client resynchronises',
        );
        reason = 'store-unavailable';
      }
      if (missed) {
        for (const event of missed) this.deliver(client, await this.render(event));
        this.send(client, { v: SCHEMA_VERSION, type: 'resumed', since, replayed: missed.length, seq: upTo });
      } else {
        this.send(client, { v: SCHEMA_VERSION, type: 'resync', reason, since });
        await this.sendSnapshot(client, upTo);
      }
    } else {
      await this.sendSnapshot(client, upTo);
    }
    if ((client.phase as Phase) === 'closed') return;
    for (const rendered of client.pending) this.deliver(client, rendered);
    client.pending = [];
    if ((client.phase as Phase) === 'catching-up') client.phase = 'live';
  }

  private async sendSnapshot(client: FeedClient, seq: string | null): Promise<void> {
    let live: TransferSummary[] = [];
    let store = this.store;
    try {
      live = (await this.deps.transfers.listLive()).map(summarise);
    } catch (err) {
      // The feed still shows what this instance does, and says the store is away (ARCHITECTURE.md:
      // emergencies are never blocked by a broken dependency, and the feed says so).
      store = { healthy: false, detail: `the feed cannot read the store: ${errorText(err)}`, at: this.now() };
    }
    const switches = this.switchStatuses();
    if (client.seat) {
      const desk = client.seat.desk;
      const ringing = live.filter((t) => t.targetDesk === desk && t.state === 'ringing');
      const pops = await Promise.all(
        ringing.map(async (t) => this.popOf(t, await this.stubOf(t.ticketId), await this.feedTransfer(t))),
      );
      this.send(client, {
        v: SCHEMA_VERSION,
        type: 'snapshot',
        seq,
        transfers: [],
        pops,
        switches,
        stats: null,
        store,
        at: this.now(),
      });
      return;
    }
    const visible = live.filter((t) => this.sees(client, [t.direction.from, t.direction.to]));
    const transfers = await Promise.all(visible.map((t) => this.feedTransfer(t)));
    const stats = await this.deps.stats
      .read(dayOf(this.deps.clock.now(), this.deps.settings.timeZone))
      .catch(() => null);
    this.send(client, {
      v: SCHEMA_VERSION,
      type: 'snapshot',
      seq,
      transfers,
      pops: [],
      switches,
      stats,
      store,
      at: this.now(),
    });
  }

  // ------------------------------------------------------------ events

  /** Events may have been missed: every client starts again from a snapshot. */
  private onGap(): void {
    this.chain = this.chain.then(() => {
      this.deps.logger.warn(
        { clients: this.clients.size },
        'feed: events may have been missed; clients resynchronise',
      );
      this.lastSeq = null; // a resume from before the gap is answered with a resync
      this.disconnectAll('the feed may have missed events; reconnect to resynchronise');
    });
  }

  private enqueue(event: SequencedEvent): void {
    this.chain = this.chain.then(async () => {
      if (this.closed) return;
      try {
        this.observe(event);
        // Clients only become live or catching-up in a step of this chain, so if none is now, none can
        // be handed this event: an instance nobody watches (behind a load balancer, most of them)
        // renders nothing and reads no stub for it. A client arriving later starts after this event.
        if (!this.anyoneFollowing()) {
          this.lastSeq = event.seq;
          return;
        }
        const rendered = await this.render(event);
        let spent = 0;
        let sliceStarted = performance.now();
        let handed = 0;
        // A Set's iterator also visits clients added while this loop waits, so one that subscribes
        // meanwhile still gets (or holds) this event.
        for (const client of this.clients) {
          if (client.phase === 'live') this.deliver(client, rendered);
          else if (client.phase === 'catching-up') this.hold(client, rendered);
          handed += 1;
          if (handed % FANOUT_SLICE === 0) {
            // Give the event loop back now and then: the transfers' own work (switch events, API
            // calls) runs on this thread and must not wait for a fan-out to hundreds of clients.
            spent += performance.now() - sliceStarted;
            await new Promise((resolve) => setImmediate(resolve));
            sliceStarted = performance.now();
          }
        }
        spent += performance.now() - sliceStarted;
        this.fanout.events += 1;
        this.fanout.totalMs += spent;
        this.fanout.maxMs = Math.max(this.fanout.maxMs, spent);
      } catch (err) {
        this.deps.logger.warn({ err: errorText(err), seq: event.seq }, 'feed: cannot render an event');
      }
      this.lastSeq = event.seq;
    });
  }

  /** What a live event changes in what the hub knows now: switch and store state, the day counts. */
  private observe({ event }: SequencedEvent): void {
    if (event.kind === 'switch') this.switches.set(event.status.switchId, event.status);
    else if (event.kind === 'store') this.store = { healthy: event.healthy, detail: event.detail, at: event.at };
    else if (event.kind === 'transition') this.count(event.transfer, event.record);
  }

  private anyoneFollowing(): boolean {
    for (const client of this.clients) if (client.phase === 'live' || client.phase === 'catching-up') return true;
    return false;
  }

  /** One event as each kind of client gets it; live or replayed alike, it changes nothing here. */
  private async render({ seq, event }: SequencedEvent): Promise<Rendered> {
    if (event.kind === 'switch') {
      return {
        seq,
        desks: null,
        supervisor: frame({ v: SCHEMA_VERSION, type: 'switch', seq, status: event.status, at: event.at }),
        seatDesk: null,
        seat: null,
      };
    }
    if (event.kind === 'store') {
      const message: ServerMessage = {
        v: SCHEMA_VERSION,
        type: 'store',
        seq,
        healthy: event.healthy,
        detail: event.detail,
        at: event.at,
      };
      return { seq, desks: null, supervisor: frame(message), seatDesk: null, seat: null };
    }
    if (event.kind !== 'transition') {
      // A kind this feed does not know yet (issue 6 adds feedback and nuisance events): skip it.
      return { seq, desks: [], supervisor: null, seatDesk: null, seat: null };
    }
    const { transfer, record } = event;
    const view = await this.feedTransfer(transfer);
    const supervisor = frame({
      v: SCHEMA_VERSION,
      type: 'transfer',
      seq,
      transfer: view,
      change: { from: record.from, to: record.to, event: record.event, at: record.at },
    });
    let seat: Buffer | null = null;
    const desk = transfer.targetDesk;
    if (record.to === 'ringing' && record.from !== 'ringing') {
      if (this.anySeatOn(desk)) {
        seat = frame({
          v: SCHEMA_VERSION,
          type: 'screen-pop',
          seq,
          pop: this.popOf(transfer, await this.stubOf(transfer.ticketId), view),
        });
      }
    } else if (record.from === 'ringing' && record.to !== 'ringing') {
      seat = frame({
        v: SCHEMA_VERSION,
        type: 'screen-pop-end',
        seq,
        transferId: transfer.id,
        state: record.to,
      });
    }
    return {
      seq,
      desks: [transfer.direction.from, transfer.direction.to],
      supervisor,
      seatDesk: seat ? desk : null,
      seat,
    };
  }

  private deliver(client: FeedClient, rendered: Rendered): void {
    if (client.seat) {
      if (rendered.seat !== null && rendered.seatDesk === client.seat.desk)
        this.sendFrame(client, rendered.seat);
      return;
    }
    if (rendered.supervisor !== null && (rendered.desks === null || this.sees(client, rendered.desks))) {
      this.sendFrame(client, rendered.supervisor);
    }
  }

  private hold(client: FeedClient, rendered: Rendered): void {
    client.pending.push(rendered);
    if (client.pending.length > this.deps.settings.replayLimit) {
      this.drop(client, CLOSE.slowConsumer, 'too many events while catching up; reconnect with since');
    }
  }

  private sees(client: FeedClient, desks: readonly string[]): boolean {
    return client.desks === null || desks.some((d) => client.desks?.has(d));
  }

  private anySeatOn(desk: string): boolean {
    for (const client of this.clients) if (client.seat?.desk === desk) return true;
    return false;
  }

  // ------------------------------------------------------------ views

  /** The transfer as a wall shows it: the summary every instance hears, with its ticket's category. */
  private async feedTransfer(t: TransferSummary): Promise<FeedTransfer> {
    const meta = await this.categoryOf(t.ticketId);
    return { ...t, category: meta?.category ?? null, urgency: meta?.urgency ?? null };
  }

  private popOf(t: TransferSummary, stub: TicketStub | null, view: FeedTransfer): ScreenPop {
    return { transferId: t.id, desk: t.targetDesk, stub, transfer: view };
  }

  private async stubOf(ticketId: string): Promise<TicketStub | null> {
    try {
      return await this.deps.service.ticket(ticketId);
    } catch {
      return null; // expired, not stored yet (deferred on another instance), or the store is down
    }
  }

  private async categoryOf(ticketId: string): Promise<{ category: string; urgency: string } | null> {
    const cached = this.categories.get(ticketId);
    if (cached) return cached;
    const stub = await this.stubOf(ticketId);
    if (!stub) return null;
    const meta = { category: stub.categoryCode, urgency: stub.urgency };
    this.categories.set(ticketId, meta);
    if (this.categories.size > CATEGORY_CACHE)
      this.categories.delete(this.categories.keys().next().value as string);
    return meta;
  }

  private switchStatuses(): SwitchStatus[] {
    const all = new Map(this.switches);
    for (const status of this.deps.service.switchStatuses()) all.set(status.switchId, status);
    return [...all.values()];
  }

  // ------------------------------------------------------------ day counts

  private count(transfer: TransferSummary, record: TransitionRecord): void {
    const count = countOf(record);
    if (count === null) return;
    const day = dayOf(new Date(record.at), this.deps.settings.timeZone);
    // Only a failure's summary names the category, read from the stub (cached) off this chain.
    const failure: Promise<FailureSummary | null> =
      count === 'failed'
        ? this.categoryOf(transfer.ticketId).then((meta) => ({
            transferId: transfer.id,
            at: record.at,
            direction: { ...transfer.direction },
            mode: transfer.mode,
            reason: transfer.failure?.reason ?? record.to,
            callerId: transfer.callerId,
            category: meta?.category ?? null,
          }))
        : Promise.resolve(null);
    void failure
      .then((summary) => this.deps.stats.record(day, count, transfer.id, summary))
      .then(() => this.scheduleStats())
      .catch((err: unknown) =>
        this.deps.logger.warn({ err: errorText(err) }, 'feed: cannot record the day counts'),
      );
  }

  /** At most one stats message per interval, whatever the burst. */
  private scheduleStats(): void {
    if (this.statsTimer || this.closed) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = null;
      void this.deps.stats
        .read(dayOf(this.deps.clock.now(), this.deps.settings.timeZone))
        .then((stats) => {
          const text = frame({ v: SCHEMA_VERSION, type: 'stats', stats });
          for (const client of this.clients)
            if (client.phase === 'live' && !client.seat) this.sendFrame(client, text);
        })
        .catch(() => undefined);
    }, this.deps.settings.statsIntervalMs);
    this.statsTimer.unref();
  }

  // ------------------------------------------------------------ sending, heartbeats, dropping

  private send(client: FeedClient, message: ServerMessage): void {
    this.sendFrame(client, frame(message));
  }

  /** Sends regardless of phase (hello, pong, error). */
  private sendNow(client: FeedClient, message: ServerMessage): void {
    if (client.phase === 'closed') return;
    client.ws.send(frame(message));
  }

  private sendFrame(client: FeedClient, data: Buffer): void {
    if (client.phase === 'closed') return;
    // Never wait for a client: past its budget it is dropped and may resume with `since`.
    if (client.ws.bufferedAmount + data.length > this.deps.settings.maxBufferedBytes) {
      this.droppedSlow += 1;
      this.drop(client, CLOSE.slowConsumer, 'slow consumer: send buffer full; reconnect with since');
      return;
    }
    // Encoded once per event, sent as a text frame to every client.
    this.corkUntilNextTurn(client);
    client.ws.send(data, { binary: false });
  }

  /**
   * Frames sent to a client in one turn of the event loop (a batch of events read off the stream) leave
   * in one write rather than one system call each: at seven events a transfer, those calls were most of
   * what a watched feed cost the service.
   */
  private corkUntilNextTurn(client: FeedClient): void {
    const { socket } = client;
    if (this.corked.has(socket)) {
      // A long run (a burst, a replay to a client catching up) is not held back: it leaves 16 KB at a time.
      if (socket.writableLength >= Math.min(CORK_LIMIT_BYTES, this.deps.settings.maxBufferedBytes / 4)) {
        socket.uncork();
        this.corked.delete(socket);
      }
      return;
    }
    socket.cork();
    this.corked.add(socket);
    if (this.corked.size === 1) {
      setImmediate(() => {
        const started = performance.now();
        for (const corked of this.corked) corked.uncork();
        this.corked.clear();
        const spent = performance.now() - started;
        this.fanout.flushes += 1;
        this.fanout.flushTotalMs += spent;
        this.fanout.flushMaxMs = Math.max(this.fanout.flushMaxMs, spent);
      });
    }
  }

  private beat(): void {
    const text = frame({ v: SCHEMA_VERSION, type: 'heartbeat', seq: this.lastSeq, at: this.now() });
    for (const client of this.clients) {
      if (!client.alive) {
        this.deps.logger.info(
          { principal: client.principal.name },
          'feed client missed a heartbeat: dropped',
        );
        client.phase = 'closed';
        this.forget(client);
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
      if (client.phase === 'live') this.sendFrame(client, text);
    }
  }

  private refuse(client: FeedClient, code: number, errorCode: string, message: string): void {
    this.sendNow(client, { v: SCHEMA_VERSION, type: 'error', code: errorCode, message });
    this.drop(client, code, message);
  }

  private drop(client: FeedClient, code: number, reason: string): void {
    if (client.phase === 'closed') return;
    client.phase = 'closed';
    this.forget(client);
    if (code !== CLOSE.goingAway) {
      this.deps.logger.info(
        { principal: client.principal.name, role: client.principal.role, code, reason },
        'feed client dropped',
      );
    }
    // A close reason is at most 123 bytes (RFC 6455 §5.5.1).
    client.ws.close(code, reason.slice(0, 120));
    setTimeout(() => client.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private forget(client: FeedClient): void {
    if (client.subscribeTimer) clearTimeout(client.subscribeTimer);
    client.subscribeTimer = null;
    client.pending = [];
    if (client.phase !== 'closed') client.phase = 'closed';
    this.clients.delete(client);
  }

  private async announceSwitches(): Promise<void> {
    for (const status of this.deps.service.switchStatuses()) {
      await this.deps.bus.publish({ kind: 'switch', status, at: this.now() }).catch(() => undefined);
    }
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }
}

function frame(message: ServerMessage): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
