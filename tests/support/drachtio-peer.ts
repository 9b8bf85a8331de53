// A test stand-in for drachtio-server: a TCP server on 127.0.0.1 speaking the drachtio wire protocol as
// the recorded transcripts show it (tests/fixtures/drachtio-wire), so the real drachtio-srf code runs in
// the tests. It also plays the SIP parties the recordings had (the citizen behind the 12345 PBX on 5080,
// the 110 switch on 5090, 119 on 5091, more on other ports) using the recorded SIP with fresh ids.
//
// What the peer reproduces from the recordings: framing (`<bytes>#<body>`), leaders and their trailing
// `|`s, authenticate/route replies, `sip|network` deliveries (top Via gains `;rport=`, `<bytes>` is the
// datagram size), `Msg sent:` echoes of what the app sends completed the way the server completes it
// (Via, Max-Forwards, tags, Call-ID, CSeq, To, Contact, Content-Type, `localhost` → 127.0.0.1:5070, known
// headers first, custom headers after them re-capitalised, P-Asserted-Identity last, app-set Via/Route/
// Record-Route/RSeq/Content-Length dropped), NOK replies for the app's ACK to a non-2xx and its 487
// after a CANCEL, the server answering a CANCEL itself, and the odd CANCEL frame (the INVITE's
// transaction id and byte count). Guessed, not recorded: the order of headers the recordings never
// showed (Diversion, History-Info, Call-Info, Privacy, Warning), `pong`, the reply to a bad secret, and
// an app-set Max-Forwards being used (drachtio-server's header map has it; the recordings never set it).
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { networkMessage } from './wire-transcript.js';

const SERVER_HOSTPORTS = 'tcp/127.0.0.1:5070,udp/127.0.0.1:5070';
const SERVER_VERSION = 'v0.9.10-1-g9c2dd4cb6a';
const SERVER_ADDR = '127.0.0.1:5070';
const CRLF = '\r\n';

// ---------------------------------------------------------------- recorded SIP, used as templates

const T = {
  citizenInvite: networkMessage('02-b2bua-basic.txt', 'INVITE '),
  citizenAck: networkMessage('02-b2bua-basic.txt', 'ACK '),
  citizenBye: networkMessage('02-b2bua-basic.txt', 'BYE '),
  ringing110: networkMessage('02-b2bua-basic.txt', 'SIP/2.0 180'),
  ok110: networkMessage('02-b2bua-basic.txt', 'SIP/2.0 200', 0),
  okBye110: networkMessage('02-b2bua-basic.txt', 'SIP/2.0 200', 1),
  refer110: networkMessage('03-refer.txt', 'REFER '),
  okNotify110: networkMessage('03-refer.txt', 'SIP/2.0 200', 1),
  ringing119: networkMessage('03-refer.txt', 'SIP/2.0 180'),
  ok119: networkMessage('03-refer.txt', 'SIP/2.0 200', 2),
  okReinviteCitizen: networkMessage('03-refer.txt', 'SIP/2.0 200', 5),
  busy110: networkMessage('04-busy.txt', 'SIP/2.0 486'),
  citizenCancel: networkMessage('05-cancel.txt', 'CANCEL '),
  terminated110: networkMessage('05-cancel.txt', 'SIP/2.0 487'),
};

// ---------------------------------------------------------------- small SIP text tools

interface Header {
  name: string;
  value: string;
}
interface Parsed {
  start: string;
  headers: Header[];
  body: string;
}

function parse(text: string): Parsed {
  const split = text.indexOf(CRLF + CRLF);
  const head = split === -1 ? text : text.slice(0, split);
  const body = split === -1 ? '' : text.slice(split + 4);
  const [start = '', ...lines] = head.split(CRLF);
  const headers = lines
    .filter((l) => l !== '')
    .map((l) => ({ name: l.slice(0, l.indexOf(':')), value: l.slice(l.indexOf(':') + 1).trim() }));
  return { start, headers, body };
}
function get(p: Parsed, name: string): string | undefined {
  return p.headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}
function getAll(p: Parsed, name: string): Header[] {
  return p.headers.filter((h) => h.name.toLowerCase() === name.toLowerCase());
}
/** Replaces header lines in a recorded message, keeping everything else byte for byte. */
function substitute(text: string, replace: Record<string, string>, startLine?: string): string {
  const split = text.indexOf(CRLF + CRLF);
  const lines = text.slice(0, split).split(CRLF);
  if (startLine !== undefined) lines[0] = startLine;
  const out = lines.map((line, i) => {
    if (i === 0) return line;
    const name = line.slice(0, line.indexOf(':'));
    const value = replace[name.toLowerCase()];
    return value === undefined ? line : `${name}: ${value}`;
  });
  return out.join(CRLF) + text.slice(split);
}
function tagOf(value: string | undefined): string | null {
  return /;tag=([^;>\s]+)/.exec(value ?? '')?.[1] ?? null;
}
function uriOf(value: string): string {
  return /<([^>]+)>/.exec(value)?.[1] ?? value.split(';')[0] ?? value;
}
function token(n = 13): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789';
  return [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
}
function hex(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
}
function stackTime(): string {
  return new Date().toISOString().slice(11, 23) + '000';
}
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

// Headers sofia knows, in the order it writes them; anything else is appended after them.
const KNOWN = [
  'Via', 'Route', 'Record-Route', 'Max-Forwards', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Expires',
  'Date', 'Retry-After', 'Subject', 'Priority', 'Call-Info', 'Organization', 'Server', 'User-Agent',
  'In-Reply-To', 'Accept', 'Allow', 'Require', 'Supported', 'Unsupported', 'Event', 'Allow-Events',
  'Subscription-State', 'Refer-To', 'Referred-By', 'Replaces', 'Session-Expires', 'Min-SE', 'Reason',
  'Privacy', 'Warning', 'RAck', 'Content-Type', 'Content-Encoding', 'Content-Disposition', 'Content-Length',
];
const KNOWN_LOWER = new Map(KNOWN.map((k) => [k.toLowerCase(), k]));
// drachtio-server maps an app-set Max-Forwards onto sofia's own (its header map has max_forwards), so it is
// placed with the fixed headers below instead of being dropped.
const DROPPED = new Set(['via', 'route', 'record-route', 'rseq', 'content-length', 'max-forwards']);
function canonical(name: string): string {
  return KNOWN_LOWER.get(name.toLowerCase()) ?? name.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('-');
}
function localhost(value: string): string {
  return value.replace(/@localhost\b/g, `@${SERVER_ADDR}`);
}

/** Writes a message the way the server does: fixed headers first, then known, then custom, PAI last. */
function assemble(start: string, fixed: Header[], app: Header[], body: string, defaults: { contact?: string }): string {
  const known: Header[] = [];
  const custom: Header[] = [];
  let pai: Header | null = null;
  let contentType: string | undefined;
  let contact: string | undefined;
  for (const h of app) {
    const lower = h.name.toLowerCase();
    if (DROPPED.has(lower) || ['from', 'to', 'call-id', 'cseq'].includes(lower)) continue;
    if (lower === 'contact') contact = localhost(h.value);
    else if (lower === 'content-type') contentType = h.value;
    else if (lower === 'p-asserted-identity') pai = { name: 'P-Asserted-Identity', value: h.value };
    else if (KNOWN_LOWER.has(lower)) known.push({ name: canonical(h.name), value: h.value });
    else custom.push({ name: canonical(h.name), value: h.value });
  }
  known.sort((a, b) => KNOWN.indexOf(a.name) - KNOWN.indexOf(b.name));
  const lines = [...fixed];
  contact ??= defaults.contact;
  if (contact !== undefined) lines.push({ name: 'Contact', value: contact });
  lines.push(...known);
  if (body !== '') lines.push({ name: 'Content-Type', value: contentType ?? 'application/sdp' });
  lines.push({ name: 'Content-Length', value: String(bytes(body)) });
  lines.push(...custom);
  if (pai) lines.push(pai);
  return [start, ...lines.map((h) => `${h.name}: ${h.value}`)].join(CRLF) + CRLF + CRLF + body;
}

// ---------------------------------------------------------------- state

interface PeerDialog {
  id: string;
  callId: string;
  /** The server's side: From in its requests. */
  localHeader: string;
  /** The far side: To in the server's requests. */
  remoteHeader: string;
  remoteTarget: string;
  localCseq: number;
  remoteCseq: number;
  inviteCseq: number;
  partyPort: number;
  /** Set when the dialog was created by a non-2xx: the server ACKs those itself. */
  failed: boolean;
}

/** A request the network sent to the app (server transaction). */
interface InboundTxn {
  id: string;
  method: string;
  text: string;
  partyPort: number;
  dialogId: string;
  toTag: string | null;
  finished: boolean;
}

/** An INVITE the app sent (client transaction). */
export interface OutboundInvite {
  readonly txn: string;
  readonly uri: string;
  readonly partyPort: number;
  readonly text: string;
  readonly dialogId: string;
  final: number | null;
  /** Set by the party script: answers the INVITE now (used for a 200 crossing a CANCEL). */
  answerNow?: () => void;
}

export type PartyBehaviour =
  | 'answer'
  | 'answer-no-ringing'
  | 'busy'
  | 'ring-only'
  | 'unavailable'
  | 'trunk-down'
  | 'silent'
  /** Rings, and answers 200 when CANCELled: the 200 crosses the CANCEL on the wire. */
  | 'late-answer';

export interface SipRecord {
  /** 'app' = sent by the app (as completed by the server), 'server' = the server's own, 'network' = from a party. */
  readonly by: 'app' | 'server' | 'network';
  readonly text: string;
  readonly partyPort: number;
  /** performance.now() when the peer sent or received it. */
  readonly at: number;
}

export interface CitizenCall {
  readonly callId: string;
  readonly fromTag: string;
  readonly txn: string;
  readonly dialogId: string;
  /** Responses the citizen got, in order (status codes). */
  readonly statuses: number[];
  final(timeoutMs?: number): Promise<number>;
  bye(): void;
  /** A re-INVITE from the citizen (e.g. hold: the recorded SDP with a=sendonly). */
  reinvite(sdp: string): void;
  cancel(): void;
}

export interface DrachtioPeerOptions {
  secret?: string;
  /** Delay between a party's provisional and final answer. */
  answerDelayMs?: number;
}

export class DrachtioPeer {
  readonly frames: { dir: 'in' | 'out'; body: string }[] = [];
  readonly sip: SipRecord[] = [];
  readonly outboundInvites: OutboundInvite[] = [];
  private readonly server: Server;
  private socket: Socket | null = null;
  private buffer = Buffer.alloc(0);
  private readonly dialogs = new Map<string, PeerDialog>();
  private readonly inbound = new Map<string, InboundTxn>();
  private readonly parties = new Map<number, PartyBehaviour>();
  private readonly citizenCalls = new Map<string, { statuses: number[]; waiters: (() => void)[]; cseq: number }>();
  private silent = false;
  private authenticated = false;
  private readonly secret: string;
  private readonly answerDelayMs: number;
  private readonly connectWaiters: (() => void)[] = [];
  port = 0;
  connections = 0;
  /** Delays the `Msg sent` echo of new INVITEs (a busy server), to open race windows in tests. */
  inviteEchoDelayMs = 0;
  pings = 0;

  constructor(options: DrachtioPeerOptions = {}) {
    this.secret = options.secret ?? 'cymru';
    this.answerDelayMs = options.answerDelayMs ?? 5;
    this.server = createServer((socket) => this.accept(socket));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    this.port = address.port;
    return this;
  }

  async stop(): Promise<void> {
    this.socket?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** How a party on a port answers INVITEs (ports as in the recordings: 5090 is 110, 5091 is 119). */
  party(port: number, behaviour: PartyBehaviour): this {
    this.parties.set(port, behaviour);
    return this;
  }

  /** Resolves once an app has authenticated (again). */
  async connected(count = 1, timeoutMs = 5000): Promise<void> {
    if (this.authenticated && this.connections >= count) return;
    await this.until(() => this.authenticated && this.connections >= count, timeoutMs, 'app to authenticate');
  }

  /** Closes the app's TCP connection, as a restarting drachtio-server would. */
  dropConnection(): void {
    this.authenticated = false;
    this.socket?.destroy();
    this.socket = null;
  }

  /** Stops answering anything (a half-open link: the TCP socket stays up but nothing comes back). */
  goSilent(silent = true): void {
    this.silent = silent;
  }

  async until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** SIP the app sent (completed by the server), optionally only requests of a method or to a port. */
  sentByApp(filter: { method?: string; status?: number; port?: number } = {}): string[] {
    return this.sip
      .filter((r) => r.by === 'app')
      .filter((r) => filter.port === undefined || r.partyPort === filter.port)
      .map((r) => r.text)
      .filter((t) => filter.method === undefined || t.startsWith(`${filter.method} `))
      .filter((t) => filter.status === undefined || t.startsWith(`SIP/2.0 ${filter.status} `));
  }

  // ------------------------------------------------------------ the citizen (the 12345 PBX on 5080)

  /**
   * The recorded citizen INVITE with fresh ids, delivered as the server delivers it. `edit` may change
   * the text (add a P-Asserted-Identity, break a header) before delivery; `from` the source address.
   */
  citizenInvite(options: { edit?: (text: string) => string; address?: string; port?: number; dialled?: string } = {}): CitizenCall {
    const port = options.port ?? 5080;
    const address = options.address ?? '127.0.0.1';
    const callId = `${Math.floor(Math.random() * 9000) + 1000}-${hex(6)}@127.0.0.1`;
    const fromTag = `${hex(4)}SIPpTag001`;
    const branch = `z9hG4bK-${hex(8)}-1-0`;
    let text = substitute(T.citizenInvite, {
      via: `SIP/2.0/UDP ${address}:${port};branch=${branch}`,
      from: `"Citizen" <sip:13800138000@${address}:${port}>;tag=${fromTag}`,
      'call-id': callId,
      contact: `<sip:13800138000@${address}:${port}>`,
      // The recording dialled 12345; across the trunk the PBX dials the other desk (110 by default).
      to: `<sip:${options.dialled ?? '110'}@127.0.0.1:5070>`,
    }, `INVITE sip:${options.dialled ?? '110'}@127.0.0.1:5070 SIP/2.0`);
    if (options.edit) text = options.edit(text);
    const txn = randomUUID();
    const dialogId = `${callId};from-tag=${fromTag}`;
    const withRport = this.withRport(text, port);
    this.inbound.set(txn, { id: txn, method: 'INVITE', text: withRport, partyPort: port, dialogId, toTag: null, finished: false });
    const state = { statuses: [] as number[], waiters: [] as (() => void)[], cseq: 1 };
    this.citizenCalls.set(dialogId, state);
    this.sip.push({ by: 'network', text, partyPort: port, at: performance.now() });
    // 100 Trying goes to the citizen from the server itself; the app never sees it.
    state.statuses.push(100);
    this.deliver(`sip|network|${bytes(text)}|udp|${address}|${port}|${stackTime()}|${txn}||127.0.0.1|5070|`, withRport);
    const until = (predicate: () => boolean, timeoutMs: number, what: string) => this.until(predicate, timeoutMs, what);
    return {
      callId,
      fromTag,
      txn,
      dialogId,
      statuses: state.statuses,
      async final(timeoutMs = 5000) {
        await until(() => state.statuses.some((s) => s >= 200), timeoutMs, `a final response on ${callId}`);
        return state.statuses.find((s) => s >= 200) ?? 0;
      },
      bye: () => this.citizenBye(dialogId, port),
      reinvite: (sdp: string) => this.citizenReinvite(dialogId, port, sdp),
      cancel: () => this.citizenCancel(txn, port),
    };
  }

  private citizenReinvite(dialogId: string, port: number, sdp: string): void {
    const dialog = this.dialogs.get(dialogId);
    const state = this.citizenCalls.get(dialogId);
    if (!dialog || !state) throw new Error(`no confirmed dialog ${dialogId}`);
    state.cseq += 1;
    const head = substitute(
      T.citizenInvite,
      {
        via: `SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${hex(8)}-1-8`,
        from: dialog.remoteHeader,
        to: dialog.localHeader,
        'call-id': dialog.callId,
        cseq: `${state.cseq} INVITE`,
        contact: `<${dialog.remoteTarget}>`,
        'content-length': String(bytes(sdp)),
      },
      `INVITE sip:${SERVER_ADDR} SIP/2.0`,
    );
    const text = head.slice(0, head.indexOf(CRLF + CRLF) + 4) + sdp;
    this.reinvites.set(this.networkRequest(text, port, dialogId, 'INVITE'), dialogId);
  }

  /** Re-INVITEs from the citizen (transaction → dialog) and the final statuses the app gave them. */
  readonly reinvites = new Map<string, string>();
  readonly reinviteStatuses = new Map<string, number>();

  /** A REFER from the citizen's side (the PBX), e.g. to check that only the answering desk may transfer. */
  referFromCitizen(dialogId: string, referTo: string): string {
    const dialog = this.dialogs.get(dialogId);
    const state = this.citizenCalls.get(dialogId);
    if (!dialog || !state) throw new Error(`no confirmed dialog ${dialogId}`);
    state.cseq += 1;
    const text = substitute(
      T.refer110,
      {
        via: `SIP/2.0/UDP 127.0.0.1:${dialog.partyPort};branch=z9hG4bK-${hex(8)}-1-6`,
        from: dialog.remoteHeader,
        to: dialog.localHeader,
        'call-id': dialog.callId,
        cseq: `${state.cseq} REFER`,
        contact: `<${dialog.remoteTarget}>`,
        'refer-to': referTo,
        'referred-by': `<${dialog.remoteTarget}>`,
      },
      `REFER sip:${SERVER_ADDR} SIP/2.0`,
    );
    return this.networkRequest(text, dialog.partyPort, dialogId, 'REFER');
  }

  private citizenBye(dialogId: string, port: number): void {
    const dialog = this.dialogs.get(dialogId);
    const state = this.citizenCalls.get(dialogId);
    if (!dialog || !state) throw new Error(`no confirmed dialog ${dialogId}`);
    state.cseq += 1;
    const text = substitute(T.citizenBye, {
      via: `SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${hex(8)}-1-7`,
      from: dialog.remoteHeader,
      to: dialog.localHeader,
      'call-id': dialog.callId,
      cseq: `${state.cseq} BYE`,
      contact: `<${dialog.remoteTarget}>`,
    });
    this.networkRequest(text, port, dialogId, 'BYE');
  }

  private citizenCancel(inviteTxn: string, port: number): void {
    const txn = this.inbound.get(inviteTxn);
    if (!txn) throw new Error('no such INVITE');
    const invite = parse(txn.text);
    const via = (get(invite, 'via') ?? '').replace(/;rport=\d+/, '');
    const cancel = substitute(T.citizenCancel, {
      via,
      from: get(invite, 'from') ?? '',
      to: get(invite, 'to') ?? '',
      'call-id': get(invite, 'call-id') ?? '',
    });
    this.sip.push({ by: 'network', text: cancel, partyPort: port, at: performance.now() });
    // The server answers 200 (CANCEL) and 487 (INVITE) itself, then tells the app.
    txn.finished = true;
    const state = this.citizenCalls.get(txn.dialogId);
    state?.statuses.push(487);
    state?.waiters.forEach((w) => w());
    const inviteBytes = bytes(txn.text) - bytes(`;rport=${port}`);
    this.deliver(
      `sip|network|${inviteBytes}|udp|127.0.0.1|${port}|${stackTime()}|${inviteTxn}|${txn.dialogId}|`,
      this.withRport(cancel, port),
    );
  }

  /** A party sends REFER inside a dialog the app created towards it (recorded REFER, fresh ids). */
  referFromParty(dialogId: string, options: { referTo: string; referredBy?: string | null; edit?: (text: string) => string }): string {
    const dialog = this.dialogs.get(dialogId);
    if (!dialog) throw new Error(`no dialog ${dialogId}`);
    dialog.remoteCseq += 1;
    const port = dialog.partyPort;
    const replace: Record<string, string> = {
      via: `SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${hex(8)}-1-4`,
      from: dialog.remoteHeader,
      to: dialog.localHeader,
      'call-id': dialog.callId,
      cseq: `${dialog.remoteCseq} REFER`,
      contact: `<${dialog.remoteTarget}>`,
      'refer-to': options.referTo,
    };
    if (options.referredBy) replace['referred-by'] = options.referredBy;
    let text = substitute(T.refer110, replace, `REFER ${uriOf(dialog.localHeader).replace('localhost', SERVER_ADDR)} SIP/2.0`);
    if (options.referredBy === null) text = text.replace(/Referred-By: [^\r]*\r\n/, '');
    if (options.edit) text = options.edit(text);
    return this.networkRequest(text, port, dialogId, 'REFER');
  }

  /** A party hangs up a dialog the app created towards it (the recorded BYE, fresh ids). */
  byeFromParty(dialogId: string): string {
    const dialog = this.dialogs.get(dialogId);
    if (!dialog) throw new Error(`no dialog ${dialogId}`);
    dialog.remoteCseq += 1;
    const port = dialog.partyPort;
    const text = substitute(
      T.citizenBye,
      {
        via: `SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${hex(8)}-1-9`,
        from: dialog.remoteHeader,
        to: dialog.localHeader,
        'call-id': dialog.callId,
        cseq: `${dialog.remoteCseq} BYE`,
        contact: `<${dialog.remoteTarget}>`,
      },
      `BYE ${uriOf(dialog.localHeader).replace('localhost', SERVER_ADDR)} SIP/2.0`,
    );
    this.dialogs.delete(dialogId);
    return this.networkRequest(text, port, dialogId, 'BYE');
  }

  /** Sends any request text into the app, as from the network (new transaction). */
  networkRequest(text: string, port: number, dialogId: string, method: string, address = '127.0.0.1'): string {
    const txn = randomUUID();
    const withRport = this.withRport(text, port);
    this.inbound.set(txn, { id: txn, method, text: withRport, partyPort: port, dialogId, toTag: null, finished: false });
    this.sip.push({ by: 'network', text, partyPort: port, at: performance.now() });
    this.deliver(`sip|network|${bytes(text)}|udp|${address}|${port}|${stackTime()}|${txn}|${dialogId}|`, withRport);
    return txn;
  }

  /** The dialog the app created towards a party (first confirmed one to that port). */
  dialogTo(port: number): string | null {
    for (const d of this.dialogs.values()) if (d.partyPort === port && !d.failed && !this.citizenCalls.has(d.id)) return d.id;
    return null;
  }

  // ------------------------------------------------------------ the wire

  private withRport(text: string, port: number): string {
    // sofia re-encodes a received request: the top Via gains ;rport=<source port>.
    return text.replace(/^(Via: [^\r]*)/m, `$1;rport=${port}`);
  }

  private accept(socket: Socket): void {
    this.socket?.destroy();
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.on('data', (data) => this.onData(data));
    socket.on('error', () => undefined);
  }

  private send(body: string): void {
    if (!this.socket || this.socket.destroyed) return;
    this.frames.push({ dir: 'out', body });
    this.socket.write(`${bytes(body)}#${body}`);
  }

  private deliver(leader: string, sip: string): void {
    this.send(`${randomUUID()}|${leader}${CRLF}${sip}`);
  }

  private reply(appMsgId: string, rest: string): void {
    this.send(`${randomUUID()}|response|${appMsgId}|${rest}`);
  }

  private onData(data: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, data]);
    for (;;) {
      const hash = this.buffer.indexOf('#');
      if (hash <= 0) return;
      const length = Number(this.buffer.toString('utf8', 0, hash));
      // The server accepts at most a 5-digit length.
      if (!Number.isInteger(length) || length <= 0 || hash > 5) {
        this.socket?.destroy();
        return;
      }
      if (this.buffer.length < hash + 1 + length) return;
      const body = this.buffer.toString('utf8', hash + 1, hash + 1 + length);
      this.buffer = this.buffer.subarray(hash + 1 + length);
      this.frames.push({ dir: 'in', body });
      if (!this.silent) this.onFrame(body);
    }
  }

  private onFrame(body: string): void {
    const crlf = body.indexOf(CRLF);
    const leader = crlf === -1 ? body : body.slice(0, crlf);
    const sip = crlf === -1 ? '' : body.slice(crlf + 2);
    const fields = leader.split('|');
    const [msgId = '', type = ''] = fields;
    switch (type) {
      case 'authenticate':
        if (fields[2] === this.secret) {
          this.authenticated = true;
          this.connections += 1;
          this.reply(msgId, `OK|${SERVER_HOSTPORTS}|${SERVER_VERSION}|${SERVER_HOSTPORTS}`);
          this.connectWaiters.splice(0).forEach((w) => w());
        } else {
          this.reply(msgId, 'NOK|incorrect secret');
        }
        return;
      case 'route':
        this.reply(msgId, 'OK');
        return;
      case 'ping':
        this.pings += 1;
        this.reply(msgId, 'OK|pong');
        return;
      case 'sip':
        this.onAppSip(msgId, fields[2] ?? '', fields[3] ?? '', sip);
        return;
      default:
        this.reply(msgId, `NOK|unknown message type ${type}`);
    }
  }

  private onAppSip(msgId: string, txnId: string, dialogId: string, text: string): void {
    if (text.startsWith('SIP/2.0 ')) return this.onAppResponse(msgId, txnId, text);
    const p = parse(text);
    const method = p.start.split(' ')[0] ?? '';
    if (method === 'CANCEL') return this.onAppCancel(msgId, txnId, text);
    if (dialogId !== '') return this.onAppInDialog(msgId, dialogId, method, p);
    if (method !== 'INVITE') {
      this.reply(msgId, `NOK|peer does not model out-of-dialog ${method}`);
      return;
    }
    // A new INVITE: the server completes it.
    const uri = p.start.split(' ')[1] ?? '';
    const portMatch = /:(\d+)(?:;|$)/.exec(uri.split('@')[1] ?? '');
    const partyPort = Number(portMatch?.[1] ?? 5060);
    const fromTag = token();
    const callId = `${hex(8)}-61ae-1240-${hex(4)}-e2267524b79b`;
    const cseq = 123154899 + Math.floor(Math.random() * 1000);
    const appFrom = get(p, 'from') ?? `<sip:${SERVER_ADDR}>`;
    const from = `${localhost(appFrom)};tag=${fromTag}`;
    const to = get(p, 'to') ?? `<${uri}>`;
    const fixed: Header[] = [
      { name: 'Via', value: `SIP/2.0/UDP ${SERVER_ADDR};rport;branch=z9hG4bK${token()}` },
      { name: 'Max-Forwards', value: get(p, 'max-forwards') ?? '70' },
      { name: 'From', value: from },
      { name: 'To', value: to },
      { name: 'Call-ID', value: callId },
      { name: 'CSeq', value: `${cseq} INVITE` },
    ];
    const completed = assemble(p.start, fixed, p.headers, p.body, { contact: `<sip:${SERVER_ADDR}>` });
    const txn = randomUUID();
    const dialog: PeerDialog = {
      id: `${callId};from-tag=${fromTag}`,
      callId,
      localHeader: from,
      remoteHeader: to,
      remoteTarget: uri,
      localCseq: cseq,
      remoteCseq: 0,
      inviteCseq: cseq,
      partyPort,
      failed: false,
    };
    const invite: OutboundInvite = { txn, uri, partyPort, text: completed, dialogId: dialog.id, final: null };
    this.outboundInvites.push(invite);
    this.sip.push({ by: 'app', text: completed, partyPort, at: performance.now() });
    const echo = () => {
      this.reply(msgId, `OK|application|${bytes(completed)}|udp|127.0.0.1|5070|${stackTime()}|${txn}|Msg sent:|${CRLF}${completed}`);
      this.playParty(invite, dialog);
    };
    if (this.inviteEchoDelayMs > 0) setTimeout(echo, this.inviteEchoDelayMs);
    else echo();
  }

  /** The far end answering an INVITE from the app, with the recorded responses. */
  private playParty(invite: OutboundInvite, dialog: PeerDialog): void {
    const behaviour = this.parties.get(invite.partyPort) ?? 'answer';
    const is119 = invite.partyPort === 5091;
    const partyTag = `${hex(4)}SIPpTag011`;
    const req = parse(invite.text);
    const ids = {
      via: get(req, 'via') ?? '',
      from: get(req, 'from') ?? '',
      to: `${get(req, 'to') ?? ''};tag=${partyTag}`,
      'call-id': get(req, 'call-id') ?? '',
      cseq: get(req, 'cseq') ?? '',
      contact: `<${invite.uri.split(';')[0]};transport=UDP>`,
    };
    const respond = (template: string, delay: number) =>
      setTimeout(() => {
        if (invite.final !== null) return;
        const text = substitute(template, ids);
        const status = Number(text.split(' ')[1]);
        if (status >= 200) {
          invite.final = status;
          if (status < 300) {
            dialog.remoteHeader = ids.to;
            dialog.remoteTarget = `${invite.uri.split(';')[0]};transport=UDP`;
            this.dialogs.set(dialog.id, dialog);
          } else {
            dialog.failed = true;
            this.dialogs.set(dialog.id, dialog);
          }
        }
        this.fromParty(text, invite.partyPort, invite.txn, dialog.id);
      }, delay);
    const d = this.answerDelayMs;
    switch (behaviour) {
      case 'answer':
        respond(is119 ? T.ringing119 : T.ringing110, d);
        respond(is119 ? T.ok119 : T.ok110, 2 * d);
        break;
      case 'answer-no-ringing':
        respond(is119 ? T.ok119 : T.ok110, d);
        break;
      case 'busy':
        respond(T.busy110, d);
        break;
      case 'ring-only':
        respond(is119 ? T.ringing119 : T.ringing110, d);
        break;
      case 'late-answer':
        respond(is119 ? T.ringing119 : T.ringing110, d);
        invite.answerNow = () => respond(is119 ? T.ok119 : T.ok110, 0);
        break;
      case 'unavailable':
        respond(T.busy110.replace('486 Busy Here', '480 Temporarily Unavailable'), d);
        break;
      case 'trunk-down':
        respond(T.busy110.replace('486 Busy Here', '503 Service Unavailable'), d);
        break;
      case 'silent':
        break;
    }
  }

  private fromParty(text: string, port: number, txn: string, dialogId: string): void {
    this.sip.push({ by: 'network', text, partyPort: port, at: performance.now() });
    this.deliver(`sip|network|${bytes(text)}|udp|127.0.0.1|${port}|${stackTime()}|${txn}|${dialogId}|`, text);
  }

  private onAppCancel(msgId: string, inviteTxn: string, text: string): void {
    const invite = this.outboundInvites.find((i) => i.txn === inviteTxn);
    if (!invite || invite.final !== null) {
      this.reply(msgId, 'NOK|Unknown transaction');
      return;
    }
    const req = parse(invite.text);
    const p = parse(text);
    const fixed: Header[] = [
      { name: 'Via', value: get(req, 'via') ?? '' },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: get(req, 'from') ?? '' },
      { name: 'To', value: get(req, 'to') ?? '' },
      { name: 'Call-ID', value: get(req, 'call-id') ?? '' },
      { name: 'CSeq', value: `${(get(req, 'cseq') ?? '').split(' ')[0]} CANCEL` },
    ];
    const completed = assemble(p.start, fixed, p.headers, p.body, {});
    this.sip.push({ by: 'app', text: completed, partyPort: invite.partyPort, at: performance.now() });
    this.reply(msgId, `OK|application|${bytes(completed)}|udp|127.0.0.1|5070|${stackTime()}|${randomUUID()}|Msg sent:|${CRLF}${completed}`);
    if (invite.answerNow) {
      // Too late: the party had already answered; its 200 to the INVITE arrives instead of a 487.
      invite.answerNow();
      return;
    }
    // The party's 200 to the CANCEL is not passed up; its 487 is, and the server ACKs it itself.
    setTimeout(() => {
      if (invite.final !== null) return;
      invite.final = 487;
      const dialog = [...this.dialogs.values()].find((d) => d.id === invite.dialogId);
      if (dialog) dialog.failed = true;
      else this.dialogs.set(invite.dialogId, { id: invite.dialogId, callId: get(req, 'call-id') ?? '', localHeader: '', remoteHeader: '', remoteTarget: invite.uri, localCseq: 0, remoteCseq: 0, inviteCseq: 0, partyPort: invite.partyPort, failed: true });
      const partyTag = `${hex(4)}SIPpTag011`;
      const resp = substitute(T.terminated110, {
        via: get(req, 'via') ?? '',
        from: get(req, 'from') ?? '',
        to: `${get(req, 'to') ?? ''};tag=${partyTag}`,
        'call-id': get(req, 'call-id') ?? '',
        cseq: get(req, 'cseq') ?? '',
      });
      this.fromParty(resp, invite.partyPort, invite.txn, invite.dialogId);
    }, this.answerDelayMs);
  }

  private onAppInDialog(msgId: string, dialogId: string, method: string, p: Parsed): void {
    const dialog = this.dialogs.get(dialogId);
    if (!dialog) {
      this.reply(msgId, 'NOK|unable to find dialog');
      return;
    }
    if (method === 'ACK' && dialog.failed) {
      this.reply(msgId, 'NOK|Server error: ACK for non-success final response is automatically generated by server');
      return;
    }
    if (dialog.failed) {
      this.reply(msgId, 'NOK|unable to find dialog');
      return;
    }
    const cseq = method === 'ACK' ? dialog.inviteCseq : ++dialog.localCseq;
    if (method === 'INVITE') dialog.inviteCseq = cseq;
    const fixed: Header[] = [
      { name: 'Via', value: `SIP/2.0/UDP ${SERVER_ADDR};rport;branch=z9hG4bK${token()}` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: dialog.localHeader },
      { name: 'To', value: dialog.remoteHeader },
      { name: 'Call-ID', value: dialog.callId },
      { name: 'CSeq', value: `${cseq} ${method}` },
    ];
    const start = `${method} ${dialog.remoteTarget} SIP/2.0`;
    const completed = assemble(start, fixed, p.headers, p.body, method === 'INVITE' ? { contact: `<sip:${SERVER_ADDR}>` } : {});
    const txn = randomUUID();
    this.sip.push({ by: 'app', text: completed, partyPort: dialog.partyPort, at: performance.now() });
    this.reply(msgId, `OK|application|${bytes(completed)}|udp|127.0.0.1|5070|${stackTime()}|${txn}|Msg sent:|${CRLF}${completed}`);
    if (method === 'ACK') return;
    if (method === 'BYE') {
      dialog.failed = true; // gone; later requests find no dialog
      this.dialogs.delete(dialogId);
    }
    // The party answers 200, with the recorded texts (a re-INVITE gets the citizen's answer SDP).
    const template = method === 'INVITE' ? T.okReinviteCitizen : method === 'NOTIFY' ? T.okNotify110 : T.okBye110;
    const resp = substitute(template, {
      via: `SIP/2.0/UDP ${SERVER_ADDR};rport;branch=${/branch=([^;\s]+)/.exec(fixed[0]?.value ?? '')?.[1] ?? ''}`,
      from: dialog.localHeader,
      to: dialog.remoteHeader,
      'call-id': dialog.callId,
      cseq: `${cseq} ${method}`,
      contact: `<${dialog.remoteTarget}>`,
    });
    setTimeout(() => this.fromParty(resp, dialog.partyPort, txn, dialogId), this.answerDelayMs);
  }

  private onAppResponse(msgId: string, txnId: string, text: string): void {
    const txn = this.inbound.get(txnId);
    if (!txn || txn.finished) {
      this.reply(msgId, 'NOK|Response not sent due to unknown transaction');
      return;
    }
    const p = parse(text);
    const status = Number(p.start.split(' ')[1]);
    const req = parse(txn.text);
    let to = get(req, 'to') ?? '';
    if (tagOf(to) === null && status > 100) {
      txn.toTag ??= token();
      to = `${to};tag=${txn.toTag}`;
    }
    const fixed: Header[] = [
      ...getAll(req, 'via'),
      { name: 'From', value: get(req, 'from') ?? '' },
      { name: 'To', value: to },
      { name: 'Call-ID', value: get(req, 'call-id') ?? '' },
      { name: 'CSeq', value: get(req, 'cseq') ?? '' },
    ];
    const isInvite = txn.method === 'INVITE';
    const completed = assemble(p.start, fixed, p.headers, p.body, isInvite && status >= 200 && status < 300 ? { contact: `<sip:${SERVER_ADDR}>` } : {});
    this.sip.push({ by: 'app', text: completed, partyPort: txn.partyPort, at: performance.now() });
    if (status >= 200) txn.finished = true;
    let leader: string;
    if (isInvite) {
      leader = `OK|application|${bytes(completed)}|udp|127.0.0.1|${txn.partyPort}|${stackTime()}|${txn.id}|${txn.dialogId}||Msg sent:|`;
    } else if (txn.method === 'BYE') {
      leader = `OK|application|${bytes(completed)}||127.0.0.1|${txn.partyPort}|${stackTime()}|${txn.id}|||Msg sent:|`;
    } else {
      leader = `OK|application|${bytes(completed)}||127.0.0.1|${txn.partyPort}|${stackTime()}|${txn.id}|${txn.dialogId}||Msg sent:|`;
    }
    this.reply(msgId, `${leader}${CRLF}${completed}`);

    const citizen = this.reinvites.has(txn.id) ? undefined : this.citizenCalls.get(txn.dialogId);
    if (isInvite && this.reinvites.has(txn.id) && status >= 200) {
      this.reinviteStatuses.set(txn.id, status);
      if (status < 300) {
        const ack = substitute(T.citizenAck, {
          via: `SIP/2.0/UDP 127.0.0.1:${txn.partyPort};branch=z9hG4bK-${hex(8)}-1-9`,
          from: get(req, 'from') ?? '',
          to: to,
          'call-id': get(req, 'call-id') ?? '',
          cseq: `${(get(req, 'cseq') ?? '1').split(' ')[0]} ACK`,
        });
        setTimeout(() => this.deliver(`sip|network|${bytes(ack)}||127.0.0.1|${txn.partyPort}|${stackTime()}|${txn.id}|${txn.dialogId}|`, this.withRport(ack, txn.partyPort)), 1);
      }
    }
    if (isInvite && citizen) {
      citizen.statuses.push(status);
      if (status >= 200 && status < 300) {
        const ourTo = to;
        const contact = uriOf(get(req, 'contact') ?? '');
        this.dialogs.set(txn.dialogId, {
          id: txn.dialogId,
          callId: get(req, 'call-id') ?? '',
          localHeader: ourTo,
          remoteHeader: get(req, 'from') ?? '',
          remoteTarget: contact,
          localCseq: 1,
          remoteCseq: 1,
          inviteCseq: 1,
          partyPort: txn.partyPort,
          failed: false,
        });
        // The citizen ACKs the 2xx (delivered, on the INVITE's transaction); a non-2xx ACK is absorbed.
        const ack = substitute(T.citizenAck, {
          via: `SIP/2.0/UDP 127.0.0.1:${txn.partyPort};branch=z9hG4bK-${hex(8)}-1-5`,
          from: get(req, 'from') ?? '',
          to: ourTo,
          'call-id': get(req, 'call-id') ?? '',
          contact: get(req, 'contact') ?? '',
        });
        setTimeout(() => {
          this.sip.push({ by: 'network', text: ack, partyPort: txn.partyPort, at: performance.now() });
          this.deliver(`sip|network|${bytes(ack)}||127.0.0.1|${txn.partyPort}|${stackTime()}|${txn.id}|${txn.dialogId}|`, this.withRport(ack, txn.partyPort));
        }, 1);
      }
    }
  }
}
