// An Event Socket test peer on 127.0.0.1 that answers with the bytes FreeSWITCH 1.10.12 sent in the
// recorded transcripts (tests/fixtures/freeswitch-esl), ids substituted: channel UUIDs, Job-UUIDs,
// the conference name and uuid, member ids and sizes, timestamps. Each reply or event is a recorded
// message rewritten by string substitution (every Content-Length recomputed), sent in the recorded
// recv() chunking, so frames split across reads reach the client as they did from FreeSWITCH.
//
// What is NOT recorded, and how the peer fills it (the driver's README repeats this):
//  - uuid_getvar on a live channel: the value without a newline, or "_undef_", in an api/response
//    (FreeSWITCH's mod_commands source); the recorded reply for a missing channel is used as is.
//  - uuid_kill on a ringing outbound leg: the recorded NO_ANSWER ending of originate #3 in 05.
//  - originate through an unknown gateway via bgapi: the recorded "-ERR INVALID_GATEWAY\n" api body
//    (07) inside the recorded BACKGROUND_JOB event of "bgapi uuid_kill" (07).
//  - a leg leaving a conference other than the 110 leg: the recorded 110 departure (06), ids substituted.
//  - uuid_bridge taking the citizen from the agent: the recorded hang-up of the agent leg when the
//    citizen was taken from it in 07, then the recorded CHANNEL_BRIDGE of 04.
//  - "conference <name> …" on a conference that does not exist: "-ERR Conference <name> not found".
//  - conference member ids and sizes, and "+OK hup <id>" per member for "hup all", follow the peer's
//    own count in the recorded formats.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { readConnections, type RecordedConnection, type RecordedMessage } from './esl-transcript.js';

export type OriginateOutcome = 'answer' | 'busy' | 'unavailable' | 'no-answer' | 'invalid-gateway' | 'ring';

export interface PeerCommand {
  readonly connection: number;
  readonly text: string;
  /** process.hrtime.bigint() when the whole command had arrived. */
  readonly at: bigint;
}

interface Channel {
  readonly uuid: string;
  answered: boolean;
  bridgedTo: string | null;
  conference: string | null;
  memberId: number;
  /** A ringing originate still waiting for an answer: its job id. */
  ringing: { jobId: string } | null;
}

interface Conference {
  readonly name: string;
  readonly uuid: string;
  readonly members: Map<string, number>;
  nextMemberId: number;
}

interface Peer {
  readonly id: number;
  readonly socket: Socket;
  authed: boolean;
  subscribed: { all: boolean; names: Set<string>; custom: Set<string> } | null;
  buffer: Buffer;
}

/** A rendered message: its bytes, and where inside them the recorded recv() boundaries fell. */
interface Piece {
  readonly bytes: Buffer;
  readonly splits: readonly number[];
  readonly isEvent: boolean;
  readonly eventName: string | null;
  readonly subclass: string | null;
}

type Subs = ReadonlyArray<readonly [string, string]>;

// ---------------------------------------------------------------- the recordings and their ids

const rec = {
  a: readConnections('01-auth-status-subscribe.txt')[0]!,
  b: readConnections('04-citizen-to-110-bridged.txt')[0]!,
  c: readConnections('05-citizen-to-110-failed.txt')[0]!,
  d: readConnections('06-three-way-conference.txt')[0]!,
  e: readConnections('07-blind-transfer-and-errors.txt')[0]!,
  authFail: readConnections('08-auth-failures.txt')[0]!,
  preAuth: readConnections('08-auth-failures.txt')[1]!,
};

const ID = {
  b: { a: '9169450d-e820-42e3-bf1f-588df5261ac6', b: '9b40ae71-a13b-4eac-b6db-02bf3d293582', job: 'c1f8479e-74cd-43c3-af9c-c36bbb2ea3a7' },
  c: {
    a: 'b23c1a63-6b21-4ede-ba55-be8e510dfe42',
    busy: { b: '3a28d426-aa61-4644-82fb-83810e9d2a84', job: '5ea571c0-3353-4c3d-845b-0af31148d9a6', command: 3 },
    unavailable: { b: '486b1d79-2655-4e12-a90c-d38a844437d2', job: '2f837ec0-c303-4d5a-936a-3718ce0056e0', command: 6 },
    noAnswer: { b: '74b73453-22b8-4651-9618-226555621289', job: 'f1aeb090-32fc-4154-acff-9020d4f2eedc', command: 8 },
  },
  d: {
    a: '8aa0ba10-7484-457b-9c04-0a1e650e5ea0',
    ag: '4da349ae-249d-4f3b-988a-7c0f48e99917',
    b: 'dce1725f-f836-40b2-90c0-0d532d6a9a6a',
    conference: 'T-123',
    conferenceUuid: '9268be31-6fc5-4378-b331-946decd548ff',
  },
  e: { a: '33de5dc7-7e20-45fe-bc8c-0b2addde4166', ag: '81ba67ba-caab-4b83-86c4-1eb9ce25eabe', job: '96ee0f0a-2685-43ac-b7cb-27b357cea38a' },
};

function commandIndex(connection: RecordedConnection, prefix: string, nth = 0): number {
  let seen = 0;
  for (let i = 0; i < connection.commands.length; i++) {
    if (connection.commands[i]!.startsWith(prefix)) {
      if (seen === nth) return i;
      seen += 1;
    }
  }
  throw new Error(`no recorded command starting with ${prefix}`);
}

/** Messages received after command k and before command k+1. */
function after(connection: RecordedConnection, k: number): RecordedMessage[] {
  return connection.messages.filter((m) => m.afterCommand === k);
}

function pick(messages: readonly RecordedMessage[], predicate: (m: RecordedMessage) => boolean, what: string): RecordedMessage {
  const found = messages.find(predicate);
  if (!found) throw new Error(`recording has no ${what}`);
  return found;
}

const isEvent = (name: string, uuid?: string, action?: string) => (m: RecordedMessage) =>
  m.event !== null &&
  m.event['Event-Name'] === name &&
  (uuid === undefined || m.event['Unique-ID'] === uuid) &&
  (action === undefined || m.event.Action === action);
const isType = (type: string) => (m: RecordedMessage) => m.headers['Content-Type'] === type;

// Templates, each a recorded message.
const T = (() => {
  const b = rec.b;
  const bOriginate = commandIndex(b, 'bgapi originate');
  const bBridge = commandIndex(b, 'api uuid_bridge');
  const bKill = commandIndex(b, 'api uuid_kill');
  const c = rec.c;
  const cKill = commandIndex(c, 'api uuid_kill');
  const d = rec.d;
  const dTransfer = commandIndex(d, 'api uuid_transfer');
  const dDial = commandIndex(d, 'bgapi conference');
  const dKill = commandIndex(d, 'api uuid_kill');
  const dHup = commandIndex(d, 'api conference T-123 hup');
  const e = rec.e;
  const eBlind = commandIndex(e, 'api uuid_transfer');
  const eBridge = commandIndex(e, 'api uuid_bridge');
  const eOriginate = commandIndex(e, 'bgapi originate');
  const all = (conn: RecordedConnection) => conn.messages;
  const citizenArrival = b.messages.filter((m) => m.event?.['Unique-ID'] === ID.b.a && m.afterCommand === commandIndex(b, 'event json'));
  const originateSegment = (conn: RecordedConnection, k: number) => after(conn, k).filter((m) => m.event === null || m.event['Unique-ID'] !== undefined || m.event['Event-Name'] === 'BACKGROUND_JOB');
  return {
    authRequest: pick(all(rec.a), isType('auth/request'), 'auth/request'),
    accepted: pick(all(rec.a), (m) => m.headers['Reply-Text'] === '+OK accepted', '+OK accepted'),
    listening: pick(all(rec.a), (m) => m.headers['Reply-Text'] === '+OK event listener enabled json', 'event listener enabled'),
    noevents: pick(all(rec.a), (m) => m.headers['Reply-Text']?.startsWith('+OK no longer') === true, 'noevents reply'),
    bye: pick(all(rec.a), (m) => m.headers['Reply-Text'] === '+OK bye', '+OK bye'),
    disconnect: pick(all(rec.a), isType('text/disconnect-notice'), 'disconnect notice'),
    version: pick(all(rec.a), (m) => m.headers['Content-Type'] === 'api/response' && m.body.startsWith('FreeSWITCH Version'), 'version'),
    status: pick(all(rec.a), (m) => m.headers['Content-Type'] === 'api/response' && m.body.startsWith('UP '), 'status'),
    authInvalid: pick(all(rec.authFail), (m) => m.headers['Reply-Text'] === '-ERR invalid', '-ERR invalid'),
    authFailDisconnect: pick(all(rec.authFail), isType('text/disconnect-notice'), 'auth-failure disconnect notice'),
    notFound: pick(all(rec.preAuth), (m) => m.headers['Reply-Text'] === '-ERR command not found', '-ERR command not found'),
    citizenArrival,
    // 04: reply, CREATE, PROGRESS, ANSWER, BACKGROUND_JOB "+OK <uuid>".
    originateAnswered: originateSegment(b, bOriginate),
    bridgeOk: pick(after(b, bBridge), isType('api/response'), 'uuid_bridge +OK'),
    createUuid: pick(after(b, commandIndex(b, 'api create_uuid')), isType('api/response'), 'create_uuid reply'),
    bridgeEvent: pick(after(b, bBridge), isEvent('CHANNEL_BRIDGE'), 'CHANNEL_BRIDGE'),
    killOk: pick(after(b, bKill), isType('api/response'), 'uuid_kill +OK'),
    killBridged: after(b, bKill).filter((m) => m.event !== null),
    killParked: after(c, cKill).filter((m) => m.event !== null),
    originateBusy: originateSegment(c, ID.c.busy.command),
    originateUnavailable: originateSegment(c, ID.c.unavailable.command),
    originateNoAnswer: originateSegment(c, ID.c.noAnswer.command),
    invalidUuid: pick(after(c, commandIndex(c, 'api uuid_bridge')), isType('api/response'), '-ERR Invalid uuid'),
    agentArrival: [
      ...e.messages.filter((m) => m.event?.['Unique-ID'] === ID.e.a && m.afterCommand === commandIndex(e, 'event json')),
      ...after(e, eOriginate).filter((m) => m.event?.['Unique-ID'] === ID.e.ag),
      pick(after(e, eBridge), isEvent('CHANNEL_BRIDGE'), 'agent CHANNEL_BRIDGE'),
    ],
    // 07: the agent leg hung up when the citizen was taken from it, and the citizen's UNBRIDGE.
    agentDropped: after(e, eBlind).filter(
      (m) => (m.event?.['Unique-ID'] === ID.e.ag && (m.event['Event-Name'] ?? '').startsWith('CHANNEL_HANGUP')) || (m.event?.['Event-Name'] === 'CHANNEL_UNBRIDGE'),
    ),
    transferOk: pick(after(d, dTransfer), isType('api/response'), 'uuid_transfer +OK'),
    conferenceCreate: pick(after(d, dTransfer), isEvent('CUSTOM', undefined, 'conference-create'), 'conference-create'),
    unbridgeForConference: pick(after(d, dTransfer), isEvent('CHANNEL_UNBRIDGE'), 'UNBRIDGE'),
    addMember: pick(after(d, dTransfer), isEvent('CUSTOM', ID.d.a, 'add-member'), 'add-member of the citizen'),
    addDialledMember: pick(after(d, dDial), isEvent('CUSTOM', ID.d.b, 'add-member'), 'add-member of 110'),
    memberKilled: after(d, dKill).filter((m) => m.event !== null),
    hupAllReply: pick(after(d, dHup), isType('api/response'), 'hup all reply'),
    memberHungUp: after(d, dHup).filter((m) => m.event?.['Unique-ID'] === ID.d.a && m.event.Action !== 'hup-member'),
    conferenceDestroy: pick(after(d, dHup), isEvent('CUSTOM', undefined, 'conference-destroy'), 'conference-destroy'),
    noSuchChannel: pick(after(e, commandIndex(e, 'api uuid_kill', 2)), isType('api/response'), '-ERR No such channel!'),
    invalidGateway: pick(after(e, commandIndex(e, 'api originate')), isType('api/response'), '-ERR INVALID_GATEWAY'),
    unknownApi: pick(after(e, commandIndex(e, 'api nosuchcommand')), isType('api/response'), 'unknown api'),
    bgapiReply: pick(after(e, commandIndex(e, 'bgapi uuid_kill')), isType('command/reply'), 'bgapi reply'),
    jobEvent: pick(after(e, commandIndex(e, 'bgapi uuid_kill')), isEvent('BACKGROUND_JOB'), 'BACKGROUND_JOB'),
    recordings: { b, c, d, e },
  };
})();

// ---------------------------------------------------------------- rendering

/** For the peer's own byte-for-byte test: leave the recorded Event-Date-Timestamp in place. */
let keepTimestamps = false;

function chunkSplits(connection: RecordedConnection, m: RecordedMessage): number[] {
  return connection.chunkEnds.filter((end) => end > m.start && end < m.end).map((end) => end - m.start);
}

function connectionOf(m: RecordedMessage): RecordedConnection {
  for (const conn of [rec.a, rec.b, rec.c, rec.d, rec.e, rec.authFail, rec.preAuth]) if (conn.messages.includes(m)) return conn;
  throw new Error('message from no known recording');
}

interface RenderOptions {
  readonly subs?: Subs;
  /** Replace whole JSON fields: "Name" → value (value JSON-encoded here). */
  readonly fields?: Readonly<Record<string, string>>;
  /** Replace the api/response body (its Content-Length follows). */
  readonly body?: string;
}

function render(m: RecordedMessage, options: RenderOptions = {}): Piece {
  const conn = connectionOf(m);
  const raw = conn.stream.subarray(m.start, m.end);
  const headerEnd = raw.indexOf('\n\n');
  let head = raw.subarray(0, headerEnd + 2).toString('utf8');
  let body = raw.subarray(headerEnd + 2).toString('utf8');
  for (const [from, to] of options.subs ?? []) {
    head = head.split(from).join(to);
    body = body.split(from).join(to);
  }
  if (m.event) {
    const fields = { ...(keepTimestamps ? {} : { 'Event-Date-Timestamp': `${BigInt(Date.now()) * 1000n}` }), ...options.fields };
    for (const [name, value] of Object.entries(fields)) {
      const pattern = new RegExp(`"${name.replace(/[-]/g, '\\-')}":"(?:[^"\\\\]|\\\\.)*"`);
      if (name === '_body') {
        body = body.replace(pattern, `"_body":${JSON.stringify(value)}`);
        body = body.replace(/"Content-Length":"\d+"/, `"Content-Length":"${Buffer.byteLength(value)}"`);
      } else if (pattern.test(body)) {
        body = body.replace(pattern, `"${name}":${JSON.stringify(value)}`);
      }
    }
  } else if (options.body !== undefined) {
    body = options.body;
  }
  if (/^Content-Length: \d+$/m.test(head) || body.length > 0) {
    head = head.replace(/^Content-Length: \d+$/m, `Content-Length: ${Buffer.byteLength(body)}`);
  }
  const bytes = Buffer.from(head + body, 'utf8');
  const splits = chunkSplits(conn, m).map((s) => Math.min(s, bytes.length - 1)).filter((s) => s > 0);
  return {
    bytes,
    splits,
    isEvent: m.event !== null,
    eventName: m.event?.['Event-Name'] ?? null,
    subclass: m.event?.['Event-Subclass'] ?? null,
  };
}

// ---------------------------------------------------------------- the peer

export interface EslPeerOptions {
  readonly password?: string;
  /** Keep recorded timestamps instead of the current time (only for comparing bytes with a recording). */
  readonly keepTimestamps?: boolean;
}

export class EslPeer {
  readonly commands: PeerCommand[] = [];
  readonly channels = new Map<string, Channel>();
  private readonly conferences = new Map<string, Conference>();
  private readonly peers = new Set<Peer>();
  private readonly outcomes = new Map<string, OriginateOutcome[]>();
  private readonly commandListeners = new Set<(command: PeerCommand) => void>();
  private nextId = 1;
  private refusing = false;
  private muted = false;
  /** Connections ever accepted (a reconnect shows as one more). */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly password: string,
  ) {}

  static async start(options: EslPeerOptions = {}): Promise<EslPeer> {
    return EslPeer.startOn(0, options);
  }

  /** On a given port (0: any free one), e.g. to bring a switch up where a driver keeps retrying. */
  static async startOn(port: number, options: EslPeerOptions = {}): Promise<EslPeer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('peer has no port');
    keepTimestamps = options.keepTimestamps ?? false;
    const peer = new EslPeer(server, address.port, options.password ?? 'ClueCon');
    server.on('connection', (socket) => peer.accept(socket));
    return peer;
  }

  /** What the next originates through this gateway do, in order; afterwards they are answered. */
  setOutcomes(gateway: string, outcomes: OriginateOutcome[]): void {
    this.outcomes.set(gateway, [...outcomes]);
  }

  onCommand(listener: (command: PeerCommand) => void): () => void {
    this.commandListeners.add(listener);
    return () => this.commandListeners.delete(listener);
  }

  commandsLike(prefix: string): string[] {
    return this.commands.map((c) => c.text).filter((t) => t.startsWith(prefix));
  }

  get connectionCount(): number {
    return this.peers.size;
  }

  /** The citizen's call arrives and is answered and parked (recorded in 04). */
  citizenCall(uuid: string): void {
    this.channels.set(uuid, newChannel(uuid, true));
    this.broadcast(T.citizenArrival.map((m) => render(m, { subs: [[ID.b.a, uuid]] })));
  }

  /** The citizen's call is bridged to the agent's leg (recorded in 07). */
  citizenWithAgent(citizen: string, agent: string): void {
    const c = newChannel(citizen, true);
    const a = newChannel(agent, true);
    c.bridgedTo = agent;
    a.bridgedTo = citizen;
    this.channels.set(citizen, c);
    this.channels.set(agent, a);
    this.broadcast(T.agentArrival.map((m) => render(m, { subs: [[ID.e.a, citizen], [ID.e.ag, agent]] })));
  }

  /** A party hangs up (their phone sends BYE): the same events as uuid_kill. */
  hangUp(uuid: string): void {
    this.broadcast(this.kill(uuid));
  }

  /** A ringing leg ('ring' outcome) is answered now (04's ANSWER and job result). */
  answer(uuid: string): void {
    const channel = this.channels.get(uuid);
    if (!channel?.ringing) throw new Error(`${uuid} is not ringing`);
    const jobId = channel.ringing.jobId;
    channel.ringing = null;
    channel.answered = true;
    const subs: Subs = [[ID.b.b, uuid], [ID.b.job, jobId]];
    this.broadcast(
      T.originateAnswered.filter((m) => m.event?.['Event-Name'] === 'CHANNEL_ANSWER' || m.event?.['Event-Name'] === 'BACKGROUND_JOB').map((m) => render(m, { subs })),
    );
  }

  /** The network drops: every connection is cut and new ones are refused until up(). */
  down(): void {
    this.refusing = true;
    for (const p of this.peers) p.socket.destroy();
    this.peers.clear();
  }

  up(): void {
    this.refusing = false;
  }

  /** While muted, commands are read and logged but never answered (a hung switch). */
  mute(on: boolean): void {
    this.muted = on;
  }

  /** Sends raw bytes to every connection (malformed-frame tests). */
  sendRaw(bytes: Buffer): void {
    for (const p of this.peers) p.socket.write(bytes);
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.socket.destroy();
    this.peers.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- connection handling

  private accept(socket: Socket): void {
    if (this.refusing) {
      socket.destroy();
      return;
    }
    this.accepted += 1;
    socket.setNoDelay(true);
    const peer: Peer = { id: this.nextId++, socket, authed: false, subscribed: null, buffer: Buffer.alloc(0) };
    this.peers.add(peer);
    socket.on('close', () => this.peers.delete(peer));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      peer.buffer = Buffer.concat([peer.buffer, chunk]);
      for (;;) {
        const end = peer.buffer.indexOf('\n\n');
        if (end < 0) break;
        const text = peer.buffer.subarray(0, end).toString('utf8');
        peer.buffer = peer.buffer.subarray(end + 2);
        const command: PeerCommand = { connection: peer.id, text, at: process.hrtime.bigint() };
        this.commands.push(command);
        for (const listener of this.commandListeners) listener(command);
        if (!this.muted) this.handle(peer, text);
      }
    });
    this.send(peer, [render(T.authRequest)]);
  }

  private handle(peer: Peer, text: string): void {
    const [line = '', ...headerLines] = text.split('\n');
    if (!peer.authed) {
      if (line.startsWith('auth ')) {
        if (line.slice(5) === this.password) {
          peer.authed = true;
          this.send(peer, [render(T.accepted)]);
        } else {
          // Recorded in 08: -ERR invalid, the disconnect notice, then FreeSWITCH closes the socket.
          this.send(peer, [render(T.authInvalid), render(T.authFailDisconnect)]);
          peer.socket.end();
        }
      } else {
        this.send(peer, [render(T.notFound)]);
      }
      return;
    }
    if (line.startsWith('event json ')) {
      const words = line.slice('event json '.length).split(' ');
      const sub = peer.subscribed ?? { all: false, names: new Set<string>(), custom: new Set<string>() };
      const customAt = words.indexOf('CUSTOM');
      for (const [i, word] of words.entries()) {
        if (customAt >= 0 && i > customAt) sub.custom.add(word);
        else if (word === 'ALL') sub.all = true;
        else if (word !== 'CUSTOM') sub.names.add(word);
      }
      peer.subscribed = sub;
      this.send(peer, [render(T.listening)]);
      return;
    }
    if (line === 'noevents') {
      peer.subscribed = null;
      this.send(peer, [render(T.noevents)]);
      return;
    }
    if (line === 'exit') {
      this.send(peer, [render(T.bye), render(T.disconnect)]);
      peer.socket.end();
      return;
    }
    if (line.startsWith('bgapi ')) {
      const jobHeader = headerLines.find((h) => h.startsWith('Job-UUID: '));
      const jobId = jobHeader ? jobHeader.slice('Job-UUID: '.length) : randomUUID();
      this.bgapi(peer, line.slice('bgapi '.length), jobId);
      return;
    }
    if (line.startsWith('api ')) {
      this.api(peer, line.slice('api '.length));
      return;
    }
    this.send(peer, [render(T.notFound)]);
  }

  private bgapi(peer: Peer, command: string, jobId: string): void {
    const reply = render(T.bgapiReply, { subs: [[ID.e.job, jobId]] });
    const originate = /^originate \{([^}]*)\}sofia\/gateway\/([^/ ]+)\/(\S+) &park$/.exec(command);
    if (!originate) {
      // Only originate runs in the background here; anything else answers like "bgapi uuid_kill" did.
      const body = this.apiBody(command.split(' ', 1)[0] ?? '');
      this.send(peer, [reply]);
      this.broadcast([render(T.jobEvent, { subs: [[ID.e.job, jobId]], fields: { _body: body ?? '-ERR\n' } })]);
      return;
    }
    const vars = originate[1]!.split(',');
    const leg = vars.find((v) => v.startsWith('origination_uuid='))?.slice('origination_uuid='.length) ?? randomUUID();
    const gateway = originate[2]!;
    const outcome = this.outcomes.get(gateway)?.shift() ?? 'answer';
    const pieces = (segment: RecordedMessage[], b: string, job: string) =>
      segment.map((m) => render(m, { subs: [[b, leg], [job, jobId]] }));
    // The reply goes to the requester; events to every subscriber, in the recorded order.
    const deliver = (all: Piece[]) => {
      const [first, ...rest] = all;
      if (first) this.send(peer, [first]);
      this.broadcast(rest);
    };
    switch (outcome) {
      case 'answer': {
        const channel = newChannel(leg, true);
        this.channels.set(leg, channel);
        deliver(pieces(T.originateAnswered, ID.b.b, ID.b.job));
        return;
      }
      case 'busy':
        deliver(pieces(T.originateBusy, ID.c.busy.b, ID.c.busy.job));
        return;
      case 'unavailable':
        deliver(pieces(T.originateUnavailable, ID.c.unavailable.b, ID.c.unavailable.job));
        return;
      case 'no-answer':
        deliver(pieces(T.originateNoAnswer, ID.c.noAnswer.b, ID.c.noAnswer.job));
        return;
      case 'ring': {
        const channel = newChannel(leg, false);
        channel.ringing = { jobId };
        this.channels.set(leg, channel);
        const ringing = T.originateNoAnswer.filter((m) => m.event === null || m.event['Event-Name'] === 'CHANNEL_CREATE' || m.event['Event-Name'] === 'CHANNEL_PROGRESS');
        deliver(ringing.map((m) => render(m, { subs: [[ID.c.noAnswer.b, leg], [ID.c.noAnswer.job, jobId]] })));
        return;
      }
      case 'invalid-gateway':
        this.send(peer, [reply]);
        this.broadcast([
          render(T.jobEvent, { subs: [[ID.e.job, jobId]], fields: { _body: T.invalidGateway.body, 'Job-Command': 'originate', 'Job-Command-Arg': command.slice('originate '.length) } }),
        ]);
        return;
    }
  }

  /** Bodies for api commands the peer can answer without touching channels. */
  private apiBody(name: string): string | null {
    if (name === 'version') return T.version.body;
    if (name === 'status') return T.status.body;
    return null;
  }

  private api(peer: Peer, command: string): void {
    const words = command.split(' ');
    const name = words[0] ?? '';
    const apiReply = (body: string) => render(T.noSuchChannel, { body });
    switch (name) {
      case 'version':
        this.send(peer, [render(T.version)]);
        return;
      case 'create_uuid':
        // Recorded in 04: 36 bytes, no newline.
        this.send(peer, [render(T.createUuid, { subs: [[ID.b.b, randomUUID()]] })]);
        return;
      case 'status':
        this.send(peer, [render(T.status)]);
        return;
      case 'uuid_getvar': {
        const channel = this.channels.get(words[1] ?? '');
        if (!channel) {
          this.send(peer, [render(T.noSuchChannel)]);
          return;
        }
        // Not recorded for a live channel: mod_commands writes the value with no newline, or "_undef_".
        const variable = words[2];
        const value =
          variable === 'bridge_uuid' ? channel.bridgedTo : variable === 'endpoint_disposition' ? (channel.answered ? 'ANSWER' : null) : variable === 'uuid' ? channel.uuid : null;
        this.send(peer, [apiReply(value ?? '_undef_')]);
        return;
      }
      case 'uuid_kill': {
        const uuid = words[1] ?? '';
        if (!this.channels.has(uuid)) {
          this.send(peer, [render(T.noSuchChannel)]);
          return;
        }
        const events = this.kill(uuid);
        this.send(peer, [render(T.killOk)]);
        this.broadcast(events);
        return;
      }
      case 'uuid_bridge': {
        const [a = '', b = ''] = [words[1], words[2]];
        const ca = this.channels.get(a);
        const cb = this.channels.get(b);
        if (!ca || !cb || !cb.answered) {
          this.send(peer, [render(T.invalidUuid)]);
          return;
        }
        const events: Piece[] = [];
        const previous = ca.bridgedTo;
        if (previous && previous !== b) {
          // The other leg loses its partner and, a parked originate with nothing left to run, hangs up (07).
          this.channels.delete(previous);
          events.push(...T.agentDropped.map((m) => render(m, { subs: [[ID.e.ag, previous], [ID.e.a, a]] })));
        }
        ca.bridgedTo = b;
        cb.bridgedTo = a;
        this.send(peer, [render(T.bridgeOk, { subs: [[ID.b.b, b]] })]);
        events.push(render(T.bridgeEvent, { subs: [[ID.b.a, a], [ID.b.b, b]] }));
        this.broadcast(events);
        return;
      }
      case 'uuid_transfer': {
        const uuid = words[1] ?? '';
        const channel = this.channels.get(uuid);
        if (!channel) {
          this.send(peer, [render(T.noSuchChannel)]);
          return;
        }
        const both = words[2] === '-both';
        const destination = words[both ? 3 : 2] ?? '';
        const conf = /^conference:([^@]+)@(\S+)$/.exec(destination);
        this.send(peer, [render(T.transferOk)]);
        if (!conf) {
          // To a dialplan extension (the return destination): the leg leaves our view.
          channel.bridgedTo = null;
          return;
        }
        this.broadcast(this.joinConference(conf[1]!, channel, both));
        return;
      }
      case 'conference': {
        const conference = this.conferences.get(words[1] ?? '');
        if (words[2] === 'hup' && words[3] === 'all' && conference) {
          const ids = [...conference.members.values()].sort((x, y) => y - x);
          const events: Piece[] = [];
          for (const uuid of [...conference.members.keys()]) events.push(...this.kill(uuid));
          this.send(peer, [apiReply(ids.map((id) => `+OK hup ${id}\n`).join(''))]);
          this.broadcast(events);
          return;
        }
        this.send(peer, [render(T.unknownApi, { body: `-ERR Conference ${words[1] ?? ''} not found\n` })]);
        return;
      }
      default:
        this.send(peer, [render(T.unknownApi, { subs: [['nosuchcommand', name]] })]);
    }
  }

  private conferenceSubs(conference: Conference): Subs {
    return [
      [`"Conference-Name":"${ID.d.conference}"`, `"Conference-Name":"${conference.name}"`],
      [ID.d.conferenceUuid, conference.uuid],
    ];
  }

  private joinConference(name: string, channel: Channel, both: boolean): Piece[] {
    const pieces: Piece[] = [];
    let conference = this.conferences.get(name);
    if (!conference) {
      conference = { name, uuid: randomUUID(), members: new Map(), nextMemberId: 1 };
      this.conferences.set(name, conference);
      pieces.push(render(T.conferenceCreate, { subs: this.conferenceSubs(conference) }));
    }
    const add = (c: Channel, template: RecordedMessage, recordedUuid: string) => {
      const memberId = conference.nextMemberId++;
      c.conference = name;
      c.memberId = memberId;
      conference.members.set(c.uuid, memberId);
      pieces.push(
        render(template, {
          subs: [...this.conferenceSubs(conference), [recordedUuid, c.uuid]],
          fields: { 'Member-ID': String(memberId), 'Conference-Size': String(conference.members.size) },
        }),
      );
    };
    const partner = both && channel.bridgedTo ? this.channels.get(channel.bridgedTo) : undefined;
    if (partner) add(partner, T.addMember, ID.d.a);
    if (channel.bridgedTo) {
      pieces.push(render(T.unbridgeForConference, { subs: [[ID.d.a, channel.uuid]] }));
      if (partner) partner.bridgedTo = null;
      channel.bridgedTo = null;
    }
    add(channel, both ? T.addMember : T.addDialledMember, both ? ID.d.a : ID.d.b);
    return pieces;
  }

  /** Ends a channel and returns the events FreeSWITCH sent for that (recorded in 04, 05 and 06). */
  private kill(uuid: string): Piece[] {
    const channel = this.channels.get(uuid);
    if (!channel) return [];
    this.channels.delete(uuid);
    if (channel.ringing) {
      const subs: Subs = [[ID.c.noAnswer.b, uuid], [ID.c.noAnswer.job, channel.ringing.jobId]];
      return T.originateNoAnswer
        .filter((m) => m.event !== null && m.event['Event-Name'] !== 'CHANNEL_CREATE' && m.event['Event-Name'] !== 'CHANNEL_PROGRESS')
        .map((m) => render(m, { subs }));
    }
    if (channel.conference) {
      const conference = this.conferences.get(channel.conference);
      if (conference) {
        conference.members.delete(uuid);
        const pieces = T.memberKilled.map((m) =>
          render(m, {
            subs: [...this.conferenceSubs(conference), [ID.d.b, uuid]],
            fields: { 'Member-ID': String(channel.memberId), 'Conference-Size': String(conference.members.size) },
          }),
        );
        if (conference.members.size === 0) {
          this.conferences.delete(conference.name);
          pieces.push(render(T.conferenceDestroy, { subs: this.conferenceSubs(conference) }));
        }
        return pieces;
      }
    }
    if (channel.bridgedTo) {
      const other = channel.bridgedTo;
      this.channels.delete(other);
      return T.killBridged.map((m) => render(m, { subs: [[ID.b.a, uuid], [ID.b.b, other]] }));
    }
    return T.killParked.map((m) => render(m, { subs: [[ID.c.a, uuid]] }));
  }

  // ---------------------------------------------------------------- delivery

  private wants(peer: Peer, piece: Piece): boolean {
    if (!piece.isEvent) return true;
    const sub = peer.subscribed;
    if (!peer.authed || !sub) return false;
    if (sub.all) return true;
    if (piece.eventName === 'CUSTOM') return piece.subclass !== null && sub.custom.has(piece.subclass);
    return piece.eventName !== null && sub.names.has(piece.eventName);
  }

  private send(peer: Peer, pieces: Piece[]): void {
    if (peer.socket.destroyed) return;
    for (const piece of pieces) {
      if (!this.wants(peer, piece)) continue;
      let from = 0;
      for (const split of [...piece.splits, piece.bytes.length]) {
        peer.socket.write(piece.bytes.subarray(from, split));
        from = split;
      }
    }
  }

  private broadcast(pieces: Piece[]): void {
    for (const peer of this.peers) this.send(peer, pieces);
  }
}

function newChannel(uuid: string, answered: boolean): Channel {
  return { uuid, answered, bridgedTo: null, conference: null, memberId: 0, ringing: null };
}

/** The recorded templates, for tests that check the peer itself against the recordings. */
export const recordedTemplates = T;
