// Pure SIP decisions of the edge: who is trusted (RFC 3325), which number is the citizen's, which desk a
// Request-URI or Refer-To means, and which headers the new leg carries (identity, RFC 5806 Diversion /
// RFC 7044 History-Info, RFC 3892 Referred-By, the ticket's id in X-Ticket-Id / RFC 7433 User-to-User /
// Call-Info). No I/O; the drachtio adapter applies the results.
import { normaliseCallerNumber, type CallerId } from '../../domain/phone-number.js';
import { TicketIdSchema, type DeskId } from '../../domain/ticket-stub.js';
import type { Priority } from '../../domain/transfer.js';
import type { Peer, SipEdgeConfig, Trunk } from './sip-edge-config.js';
import { headerValues, parseNameAddr, parseUri, type SipRejection, type SipUri, type ValidatedRequest } from './sip-message.js';
import type { TransferRequest } from './transfer-requester.js';

// ---------------------------------------------------------------- peers and trust

export function findPeer(config: SipEdgeConfig, address: string): Peer | null {
  const normalised = address.replace(/^::ffff:/, '').replace(/^\[|\]$/g, '').toLowerCase();
  return config.peers.find((p) => p.addresses.some((a) => a.toLowerCase() === normalised)) ?? null;
}

/** RFC 3323 §4.2: `Privacy: id` asks that the identity not leave the trust domain. */
export function wantsPrivacy(request: ValidatedRequest): boolean {
  return headerValues(request.headers, 'privacy').some((v) => v.toLowerCase().split(/[;,\s]+/).includes('id'));
}

/**
 * The citizen's number as this edge will present it. Only a trusted peer's word counts (RFC 3325 §4):
 * its P-Asserted-Identity first, else its From. From anyone else the number is withheld, and the
 * asserted identity is dropped, never passed on.
 */
export function citizenIdentity(request: ValidatedRequest, peer: Peer): { callerId: CallerId; source: 'pai' | 'from' | 'none' } {
  if (!peer.trusted) return { callerId: { kind: 'withheld' }, source: 'none' };
  const pai = headerValues(request.headers, 'p-asserted-identity')
    .flatMap((v) => v.split(','))
    .map((v) => parseNameAddr(v))
    .find((n) => n !== null && n.uri.user !== null);
  const candidates: { user: string | null; source: 'pai' | 'from' }[] = [];
  if (pai) candidates.push({ user: pai.uri.user, source: 'pai' });
  candidates.push({ user: request.from.uri.user, source: 'from' });
  for (const candidate of candidates) {
    // A user part may carry user parameters (;phone-context=…): the number is before them.
    const user = candidate.user?.split(';')[0] ?? null;
    const result = normaliseCallerNumber(user);
    if (result.ok && result.callerId.kind === 'number') return { callerId: result.callerId, source: candidate.source };
  }
  return { callerId: { kind: 'withheld' }, source: 'none' };
}

// ---------------------------------------------------------------- desks and targets

export function deskForNumber(config: SipEdgeConfig, user: string | null): DeskId | null {
  if (user === null) return null;
  const number = user.split(';')[0] ?? '';
  for (const [desk, route] of Object.entries(config.desks)) {
    if (route.numbers.includes(number)) return desk;
  }
  return null;
}

export function deskNumber(config: SipEdgeConfig, desk: DeskId): string {
  return config.desks[desk]?.numbers[0] ?? desk;
}

/** Which desk an INVITE from this peer is for; 404 if its Request-URI names none, 403 if it is the peer's own. */
export function inviteTarget(config: SipEdgeConfig, request: ValidatedRequest, peer: Peer): { ok: true; desk: DeskId } | { ok: false; rejection: SipRejection } {
  const desk = deskForNumber(config, request.requestUri.user);
  if (desk === null) {
    return { ok: false, rejection: { status: 404, reason: 'Not Found', warning: 'the Request-URI names no configured desk' } };
  }
  if (desk === peer.desk) {
    return { ok: false, rejection: { status: 403, reason: 'Forbidden', warning: `a call from desk ${peer.desk} cannot be transferred to itself` } };
  }
  if ((config.desks[desk]?.trunks.length ?? 0) === 0) {
    return { ok: false, rejection: { status: 404, reason: 'Not Found', warning: `desk ${desk} has no trunk` } };
  }
  return { ok: true, desk };
}

export interface Replaces {
  readonly callId: string;
  readonly toTag: string;
  readonly fromTag: string;
  readonly earlyOnly: boolean;
}

export type ReferTarget =
  | { readonly kind: 'desk'; readonly desk: DeskId; readonly uri: SipUri }
  | { readonly kind: 'replaces'; readonly desk: DeskId | null; readonly replaces: Replaces }
  | { readonly kind: 'rejected'; readonly rejection: SipRejection };

/** RFC 3891 §6.1: `callid;to-tag=…;from-tag=…[;early-only]`. */
export function parseReplaces(value: string): Replaces | null {
  const [callId, ...params] = value.split(';').map((p) => p.trim());
  if (!callId || !/^[\x21-\x7e]{1,255}$/.test(callId)) return null;
  const map = new Map<string, string>();
  let earlyOnly = false;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq === -1) {
      if (p.toLowerCase() === 'early-only') earlyOnly = true;
      continue;
    }
    map.set(p.slice(0, eq).toLowerCase(), p.slice(eq + 1));
  }
  const toTag = map.get('to-tag');
  const fromTag = map.get('from-tag');
  if (!toTag || !fromTag) return null;
  return { callId, toTag, fromTag, earlyOnly };
}

/**
 * Checks a Refer-To against the desks an agent may transfer to (110, 12345, the configured hotlines and
 * specialist seats). The host part is ignored: the edge dials only its configured trunks, never an
 * address a phone chose.
 */
export function referTarget(config: SipEdgeConfig, referTo: string, referrerDesk: DeskId | null): ReferTarget {
  const addr = parseNameAddr(referTo);
  if (!addr || addr.uri.user === null) {
    return { kind: 'rejected', rejection: { status: 400, reason: 'Bad Request', warning: 'malformed Refer-To' } };
  }
  const desk = deskForNumber(config, addr.uri.user);
  const replacesValue = addr.uri.headers['replaces'];
  if (replacesValue !== undefined) {
    const replaces = parseReplaces(replacesValue);
    if (!replaces) return { kind: 'rejected', rejection: { status: 400, reason: 'Bad Request', warning: 'malformed Replaces in Refer-To' } };
    return { kind: 'replaces', desk, replaces };
  }
  if (Object.keys(addr.uri.headers).length > 0) {
    return { kind: 'rejected', rejection: { status: 403, reason: 'Forbidden', warning: 'Refer-To may not carry headers other than Replaces' } };
  }
  const route = desk === null ? undefined : config.desks[desk];
  if (desk === null || !route || !route.referTarget) {
    return { kind: 'rejected', rejection: { status: 403, reason: 'Forbidden', warning: 'the Refer-To target is not an allowed desk' } };
  }
  if (desk === referrerDesk) {
    return { kind: 'rejected', rejection: { status: 403, reason: 'Forbidden', warning: `the call is already at desk ${desk}` } };
  }
  if (route.trunks.length === 0) {
    return { kind: 'rejected', rejection: { status: 403, reason: 'Forbidden', warning: `desk ${desk} has no trunk` } };
  }
  return { kind: 'desk', desk, uri: addr.uri };
}

// ---------------------------------------------------------------- the request for the transfer service

const AGENT_ID = /^[0-9A-Za-z_-]{1,32}$/;
const DIVISION = /^\d{6}$/;
const CATEGORY = /^[0-9A-Za-z][0-9A-Za-z.-]{0,31}$/;

/** The Max-Forwards for the re-originated INVITE: the caller's less one (RFC 3261 §16.6 step 3), 70 if absent. */
export function nextMaxForwards(request: ValidatedRequest): number {
  const value = headerValues(request.headers, 'max-forwards')[0];
  return value === undefined ? 70 : Math.max(0, Math.min(70, Number(value) - 1));
}

export function priorityOf(request: ValidatedRequest): Priority {
  // RFC 3261 §20.26 Priority: emergency; RFC 4412 Resource-Priority esnet.* is the emergency namespace.
  const priority = (headerValues(request.headers, 'priority')[0] ?? '').toLowerCase();
  const rph = headerValues(request.headers, 'resource-priority').join(',').toLowerCase();
  return priority === 'emergency' || rph.includes('esnet.') ? 'emergency' : 'normal';
}

function clean(text: string | undefined, max: number): string | undefined {
  if (text === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, max);
  return t === '' ? undefined : t;
}

/** The X-Ticket-Id a peer sent, checked; null when absent, 'invalid' when present but unusable. */
export function ticketIdOf(request: ValidatedRequest): string | null | 'invalid' {
  const value = headerValues(request.headers, 'x-ticket-id')[0];
  if (value === undefined) return null;
  return TicketIdSchema.safeParse(value).success ? value : 'invalid';
}

/**
 * Builds the transfer service's request for an INVITE a peer sent across the trunk. The ticket fields a
 * PBX can send are read from X-* headers; the rest come from the peer's configuration.
 */
export function inboundTransferRequest(args: {
  readonly request: ValidatedRequest;
  readonly peer: Peer;
  readonly targetDesk: DeskId;
  readonly switchId: string;
  readonly citizenLegId: string;
  readonly ticketId: string;
  readonly callerId: CallerId;
}): TransferRequest {
  const { request, peer } = args;
  const header = (name: string) => headerValues(request.headers, name)[0];
  const agentId = header('x-agent-id');
  const seatId = header('x-seat-id');
  const division = header('x-division-code');
  const category = header('x-category-code');
  const priority = priorityOf(request);
  const location = clean(header('x-location'), 200);
  const callerName = peer.trusted ? clean(request.from.display ?? undefined, 64) : undefined;
  return {
    citizenLeg: { switchId: args.switchId, legId: args.citizenLegId },
    agent: {
      agentId: agentId !== undefined && AGENT_ID.test(agentId) ? agentId : peer.name,
      seatId: seatId !== undefined && AGENT_ID.test(seatId) ? seatId : peer.name,
      legId: null,
    },
    from: peer.desk,
    to: args.targetDesk,
    mode: 'blind',
    priority,
    firstReceiver: peer.desk,
    callerNumber: args.callerId.kind === 'number' ? args.callerId.national : null,
    ticket: {
      ticketId: args.ticketId,
      kind: peer.desk === '110' ? 'incident' : 'work-order',
      categoryCode: category !== undefined && CATEGORY.test(category) ? category : peer.categoryCode,
      divisionCode: division !== undefined && DIVISION.test(division) ? division : peer.divisionCode,
      summary: clean(header('subject'), 1000) ?? `Call transferred from desk ${peer.desk}`,
      ...(location === undefined ? {} : { location }),
      urgency: priority === 'emergency' ? 'emergency' : 'normal',
      ...(callerName === undefined || callerName.toLowerCase() === 'anonymous' ? {} : { callerName }),
    },
  };
}

// ---------------------------------------------------------------- headers of the new leg

export function userToUser(ticketId: string): string {
  // RFC 7433 §4.1: hex of the payload; only the ticket's id, never the ticket (UUI payloads are small).
  return `${Buffer.from(ticketId, 'utf8').toString('hex')};encoding=hex`;
}

/** The ticket id back from a User-to-User value, or null. */
export function ticketIdFromUserToUser(value: string): string | null {
  const [hex = '', ...params] = value.split(';').map((p) => p.trim());
  if (!params.some((p) => p.toLowerCase() === 'encoding=hex') || !/^(?:[0-9a-fA-F]{2}){1,128}$/.test(hex)) return null;
  return Buffer.from(hex, 'hex').toString('utf8');
}

export interface LegHeadersInput {
  readonly config: SipEdgeConfig;
  readonly trunk: Trunk;
  readonly callerId: CallerId;
  readonly sourceDesk: DeskId;
  readonly targetNumber: string;
  readonly priority: Priority;
  readonly ticket: { readonly ticketId: string; readonly stubUrl: string };
  /** The REFER's Referred-By, recorded and passed on (RFC 3892 §3). */
  readonly referredBy?: string | null;
  /** The caller sent `Privacy: id` (RFC 3323): anonymous From, identity only inside the trust domain. */
  readonly privacy?: boolean;
  /** The caller's Max-Forwards less one, so a routing loop between PBXs through the edge still ends (483). */
  readonly maxForwards?: number;
}

/** The URI the new leg is sent to: the desk's number at the trunk named by the service. */
export function targetUri(trunk: Trunk, number: string): string {
  const transport = trunk.transport === 'udp' ? '' : `;transport=${trunk.transport}`;
  const scheme = trunk.transport === 'tls' ? 'sips' : 'sip';
  return `${scheme}:${number}@${trunk.host}:${trunk.port}${transport}`;
}

/**
 * Every header the new leg carries. drachtio-server fills Via, Call-ID, CSeq, To and tags, and turns
 * `localhost` in From into its own address.
 */
export function legHeaders(input: LegHeadersInput): Record<string, string> {
  const { config, callerId, trunk } = input;
  const headers: Record<string, string> = {};
  if (callerId.kind === 'number') {
    headers['From'] = input.privacy ? '"Anonymous" <sip:anonymous@anonymous.invalid>' : `<sip:${callerId.national}@localhost>`;
    // RFC 3325 §5: asserted only towards a next hop inside the trust domain, with the caller's Privacy
    // request passed along so the last hop in the domain removes it (RFC 3325 §9.3, RFC 3323).
    if (trunk.trustDomain) headers['P-Asserted-Identity'] = `<sip:${callerId.national}@${config.domain}>`;
    if (input.privacy) headers['Privacy'] = 'id';
  } else {
    // RFC 3323 §4.1.1.3: the anonymous From.
    headers['From'] = '"Anonymous" <sip:anonymous@anonymous.invalid>';
    headers['Privacy'] = 'id';
  }
  const source = `sip:${deskNumber(config, input.sourceDesk)}@${config.domain}`;
  if (config.diversionStyle === 'diversion') {
    // RFC 5806 §3: who diverted, and why (an agent's transfer is a deflection).
    headers['Diversion'] = `<${source}>;reason=deflection;counter=1`;
  } else {
    // RFC 7044 §4: the desk first reached, then the new target, mapped (mp) from it; cause per RFC 4458.
    headers['History-Info'] =
      `<${source}>;index=1,<sip:${input.targetNumber}@${trunk.host};cause=302>;index=1.1;mp=1`;
  }
  if (input.referredBy) headers['Referred-By'] = input.referredBy;
  headers['X-Ticket-Id'] = input.ticket.ticketId;
  headers['User-to-User'] = userToUser(input.ticket.ticketId);
  // RFC 3261 §20.9: where more about the call can be read.
  headers['Call-Info'] = `<${input.ticket.stubUrl}>;purpose=info`;
  if (input.priority === 'emergency') headers['Priority'] = 'emergency';
  if (input.maxForwards !== undefined) headers['Max-Forwards'] = String(Math.max(0, Math.min(70, input.maxForwards)));
  return headers;
}

/** A Referred-By worth recording: a parsable name-addr, else null (RFC 3892 §3). */
export function referredByOf(value: string | undefined): { header: string; user: string | null } | null {
  if (value === undefined) return null;
  const addr = parseNameAddr(value);
  if (!addr) return null;
  return { header: value.trim(), user: addr.uri.user };
}

export { parseUri };
