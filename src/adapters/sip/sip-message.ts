// Pure parsing and validation of what arrives over SIP: header lines, URIs, name-addrs, INVITE sanity.
// No I/O. drachtio-srf's parser merges duplicate headers and never rejects, so the edge checks the raw
// text itself before trusting anything in it (RFC 3261 §16.3-style sanity on a B2BUA).

export interface HeaderLine {
  /** Lower case, compact forms expanded (RFC 3261 §7.3.3). */
  readonly name: string;
  readonly value: string;
}

const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  r: 'refer-to',
  b: 'referred-by',
  o: 'event',
  u: 'allow-events',
  x: 'session-expires',
};

export function canonicalHeaderName(name: string): string {
  const lower = name.trim().toLowerCase();
  return COMPACT[lower] ?? lower;
}

export interface RawMessage {
  readonly startLine: string;
  readonly headers: readonly HeaderLine[];
  readonly body: string;
}

/** Splits a SIP message into its start line, header lines (unfolded) and body. Null if it has no start line. */
export function parseRawMessage(raw: string): RawMessage | null {
  const split = raw.indexOf('\r\n\r\n');
  const head = split === -1 ? raw : raw.slice(0, split);
  const body = split === -1 ? '' : raw.slice(split + 4);
  const lines = head.split(/\r?\n/);
  const startLine = lines.shift();
  if (startLine === undefined || startLine.trim() === '') return null;
  const headers: HeaderLine[] = [];
  for (const line of lines) {
    if (line === '') continue;
    if (/^[ \t]/.test(line)) {
      // RFC 3261 §7.3.1 line folding: a continuation of the previous header.
      const last = headers.pop();
      if (last) headers.push({ name: last.name, value: `${last.value} ${line.trim()}` });
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      headers.push({ name: '', value: line });
      continue;
    }
    headers.push({ name: canonicalHeaderName(line.slice(0, colon)), value: line.slice(colon + 1).trim() });
  }
  return { startLine, headers, body };
}

export function headerValues(headers: readonly HeaderLine[], name: string): string[] {
  const wanted = canonicalHeaderName(name);
  return headers.filter((h) => h.name === wanted).map((h) => h.value);
}

// ---------------------------------------------------------------- URIs

export interface SipUri {
  readonly scheme: 'sip' | 'sips' | 'tel';
  readonly user: string | null;
  readonly host: string | null;
  readonly port: number | null;
  readonly params: Readonly<Record<string, string | null>>;
  /** URI headers (after `?`), percent-decoded: Refer-To's `?Replaces=…` lives here. */
  readonly headers: Readonly<Record<string, string>>;
}

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z](?:[0-9A-Za-z.-]{0,251}[0-9A-Za-z])?)$/;
const USER = /^[0-9A-Za-z\-_.!~*'()&=+$,;?/%#]{1,64}$/;

function parseParams(text: string): Record<string, string | null> {
  const params: Record<string, string | null> = {};
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq === -1) params[part.toLowerCase()] = null;
    else params[part.slice(0, eq).toLowerCase()] = part.slice(eq + 1);
  }
  return params;
}

function safeDecode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/** Parses a sip:, sips: or tel: URI; null when it is not one or is malformed. */
export function parseUri(text: string): SipUri | null {
  const trimmed = text.trim();
  const m = /^(sips?|tel):(.*)$/i.exec(trimmed);
  if (!m || m[1] === undefined || m[2] === undefined) return null;
  const scheme = m[1].toLowerCase() as SipUri['scheme'];
  let rest = m[2];
  if (/[\s<>"]/.test(rest)) return null;

  const headers: Record<string, string> = {};
  const q = rest.indexOf('?');
  if (q !== -1) {
    for (const pair of rest.slice(q + 1).split('&')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) return null;
      const value = safeDecode(pair.slice(eq + 1));
      if (value === null) return null;
      headers[pair.slice(0, eq).toLowerCase()] = value;
    }
    rest = rest.slice(0, q);
  }

  if (scheme === 'tel') {
    const [number = '', ...params] = rest.split(';');
    if (!/^\+?[\d\-.()]{2,32}$/.test(number)) return null;
    return { scheme, user: number.replace(/[-.()]/g, ''), host: null, port: null, params: parseParams(params.join(';')), headers };
  }

  let user: string | null = null;
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER.test(user)) return null;
    const decoded = safeDecode(user);
    if (decoded === null) return null;
    user = decoded;
  }
  const semi = rest.indexOf(';');
  const hostport = semi === -1 ? rest : rest.slice(0, semi);
  const params = semi === -1 ? {} : parseParams(rest.slice(semi + 1));
  const pm = /^(.*?)(?::(\d{1,5}))?$/.exec(hostport);
  const host = pm?.[1] ?? '';
  if (!HOST.test(host)) return null;
  const port = pm?.[2] === undefined ? null : Number(pm[2]);
  if (port !== null && (port < 1 || port > 65535)) return null;
  return { scheme, user, host: host.toLowerCase(), port, params, headers };
}

export interface NameAddr {
  readonly display: string | null;
  readonly uri: SipUri;
  readonly params: Readonly<Record<string, string | null>>;
}

/** Parses `"Name" <sip:…>;tag=x` or `sip:…;tag=x` (RFC 3261 §20.10); null when malformed. */
export function parseNameAddr(value: string): NameAddr | null {
  const text = value.trim();
  const m = /^(?:(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*)?<([^>]*)>(.*)$/.exec(text);
  if (m) {
    const uri = parseUri(m[3] ?? '');
    if (!uri) return null;
    const tail = (m[4] ?? '').trim();
    if (tail !== '' && !tail.startsWith(';')) return null;
    const display = m[1] ?? (m[2]?.trim() || null);
    return { display: display ?? null, uri, params: parseParams(tail.slice(1)) };
  }
  // addr-spec form: the parameters after the URI belong to the header (§20.10), and no `?` headers.
  if (text.includes('?') || text.includes(',')) return null;
  const semi = text.indexOf(';');
  const uri = parseUri(semi === -1 ? text : text.slice(0, semi));
  if (!uri) return null;
  return { display: null, uri, params: semi === -1 ? {} : parseParams(text.slice(semi + 1)) };
}

// ---------------------------------------------------------------- INVITE sanity

export interface SipRejection {
  readonly status: number;
  readonly reason: string;
  /** RFC 3261 §20.43 Warning text (code 399), saying what was wrong. */
  readonly warning: string;
}

function reject(status: number, reason: string, warning: string): { ok: false; rejection: SipRejection } {
  return { ok: false, rejection: { status, reason, warning } };
}

export interface ValidatedRequest {
  readonly method: string;
  readonly requestUri: SipUri;
  readonly from: NameAddr;
  readonly to: NameAddr;
  readonly callId: string;
  readonly headers: readonly HeaderLine[];
  readonly body: string;
}

export interface RequestLimits {
  readonly maxMessageBytes: number;
  readonly maxHeaderBytes: number;
}

/**
 * Headers allowed once only (RFC 3261 §7.3.1, RFC 3515 §2.1 for Refer-To, RFC 3892 for Referred-By, and
 * our X-Ticket-Id); a second copy is an attack or a broken peer. User-to-User may repeat (RFC 7433 §4.1).
 */
const SINGLE_HEADERS = [
  'from',
  'to',
  'call-id',
  'cseq',
  'max-forwards',
  'content-length',
  'content-type',
  'refer-to',
  'referred-by',
  'x-ticket-id',
] as const;
const REQUIRED_HEADERS = ['from', 'to', 'call-id', 'cseq', 'via'] as const;

/**
 * Checks a request's raw text before the edge acts on it: size, mandatory and duplicated headers,
 * Max-Forwards, URIs. Returns the parsed parts or the SIP rejection to send.
 */
export function validateRequest(
  raw: string,
  limits: RequestLimits,
): { ok: true; request: ValidatedRequest } | { ok: false; rejection: SipRejection } {
  if (Buffer.byteLength(raw, 'utf8') > limits.maxMessageBytes) {
    return reject(513, 'Message Too Large', `message larger than ${limits.maxMessageBytes} bytes`);
  }
  const message = parseRawMessage(raw);
  if (!message) return reject(400, 'Bad Request', 'no request line');
  const start = /^([A-Z]{3,16}) (\S+) SIP\/2\.0$/.exec(message.startLine);
  if (!start || start[1] === undefined || start[2] === undefined) return reject(400, 'Bad Request', 'malformed request line');

  for (const header of message.headers) {
    if (header.name === '' || !/^[A-Za-z0-9\-.!%*_+`'~]+$/.test(header.name)) {
      return reject(400, 'Bad Request', 'malformed header line');
    }
    if (Buffer.byteLength(header.value, 'utf8') > limits.maxHeaderBytes) {
      return reject(400, 'Header Too Long', `${header.name} longer than ${limits.maxHeaderBytes} bytes`);
    }
  }
  for (const name of REQUIRED_HEADERS) {
    if (headerValues(message.headers, name).length === 0) return reject(400, 'Bad Request', `missing ${name} header`);
  }
  for (const name of SINGLE_HEADERS) {
    if (headerValues(message.headers, name).length > 1) return reject(400, 'Bad Request', `duplicate ${name} header`);
  }
  const pai = headerValues(message.headers, 'p-asserted-identity').flatMap((v) => v.split(','));
  // RFC 3325 §9.1: at most two identities (one sip/sips, one tel).
  if (pai.length > 2) return reject(400, 'Bad Request', 'more than two P-Asserted-Identity values');

  const maxForwards = headerValues(message.headers, 'max-forwards')[0];
  if (maxForwards !== undefined) {
    if (!/^\d{1,3}$/.test(maxForwards)) return reject(400, 'Bad Request', 'malformed Max-Forwards');
    if (Number(maxForwards) === 0) return reject(483, 'Too Many Hops', 'Max-Forwards reached 0');
  }
  const cseq = /^(\d{1,10})\s+([A-Z]+)$/.exec(headerValues(message.headers, 'cseq')[0] ?? '');
  if (!cseq || cseq[2] !== start[1]) return reject(400, 'Bad Request', 'CSeq does not match the request');

  const requestUri = parseUri(start[2]);
  if (!requestUri) {
    if (!/^sips?:/i.test(start[2]) && /^[a-z][a-z0-9+.-]*:/i.test(start[2])) {
      return reject(416, 'Unsupported URI Scheme', 'only sip and sips Request-URIs are accepted');
    }
    return reject(400, 'Bad Request', 'malformed Request-URI');
  }
  if (requestUri.scheme === 'tel') return reject(416, 'Unsupported URI Scheme', 'only sip and sips Request-URIs are accepted');

  const from = parseNameAddr(headerValues(message.headers, 'from')[0] ?? '');
  if (!from) return reject(400, 'Bad Request', 'malformed From');
  const to = parseNameAddr(headerValues(message.headers, 'to')[0] ?? '');
  if (!to) return reject(400, 'Bad Request', 'malformed To');
  const callId = headerValues(message.headers, 'call-id')[0] ?? '';
  if (!/^[\x21-\x7e]{1,255}$/.test(callId)) return reject(400, 'Bad Request', 'malformed Call-ID');

  return {
    ok: true,
    request: { method: start[1], requestUri, from, to, callId, headers: message.headers, body: message.body },
  };
}

/** An INVITE offer must be SDP with at least one media line (early offer; RFC 3264). */
export function checkOffer(request: ValidatedRequest): SipRejection | null {
  const contentType = (headerValues(request.headers, 'content-type')[0] ?? '').toLowerCase();
  if (request.body.trim() === '') {
    return { status: 488, reason: 'Not Acceptable Here', warning: 'an INVITE without an SDP offer is not accepted' };
  }
  if (!contentType.startsWith('application/sdp')) {
    return { status: 415, reason: 'Unsupported Media Type', warning: 'the body must be application/sdp' };
  }
  if (!/^v=0\r?$/m.test(request.body) || !/^m=(audio|video) \d+ /m.test(request.body)) {
    return { status: 488, reason: 'Not Acceptable Here', warning: 'the SDP offer has no usable media line' };
  }
  return null;
}
