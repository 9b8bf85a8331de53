// Event Socket framing: a header block ending in "\n\n", then Content-Length bytes of body when that
// header is present. Reads arrive in arbitrary chunks (a chunk may hold several messages or end inside
// one), so the parser buffers bytes, never characters: Content-Length counts bytes of UTF-8.
import { EslError } from './esl-errors.js';

export interface EslMessage {
  /** Header names as sent (FreeSWITCH does not repeat names); order is not relied on. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body decoded as UTF-8, '' when there is none. */
  readonly body: string;
}

export interface EslParserLimits {
  /** A header block longer than this without its blank line is a broken stream, not a slow one. */
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
}

const DEFAULT_LIMITS: EslParserLimits = { maxHeaderBytes: 64 * 1024, maxBodyBytes: 16 * 1024 * 1024 };
const HEADER_END = Buffer.from('\n\n');

/**
 * Incremental parser. push() returns every message completed by the chunk; it throws an EslError with
 * code 'frame' on bytes that can never become a valid message. After an error the stream is out of
 * step and must be dropped (the connection reconnects); the parser refuses further input.
 */
export class EslFrameParser {
  private buffer: Buffer = Buffer.alloc(0);
  private pending: { headers: Record<string, string>; bodyLength: number; headerBytes: number } | null = null;
  private failed: EslError | null = null;
  /** How far the current header block has been searched for its blank line already. */
  private scanned = 0;

  constructor(private readonly limits: EslParserLimits = DEFAULT_LIMITS) {}

  push(chunk: Buffer): EslMessage[] {
    if (this.failed) throw this.failed;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const messages: EslMessage[] = [];
    try {
      for (;;) {
        const message = this.next();
        if (!message) break;
        messages.push(message);
      }
    } catch (err) {
      this.failed = err instanceof EslError ? err : new EslError('frame', String(err));
      this.buffer = Buffer.alloc(0);
      throw this.failed;
    }
    return messages;
  }

  /** Bytes received (header included) that do not yet form a whole message. */
  get bufferedBytes(): number {
    return this.buffer.length + (this.pending?.headerBytes ?? 0);
  }

  /** Call when the socket ends: a partial message left over means the stream was cut. */
  end(): void {
    if (this.failed) return;
    if (this.buffer.length > 0 || this.pending) {
      const expected = this.pending ? `a body of ${this.pending.bodyLength} bytes` : 'the end of a header block';
      this.failed = new EslError('frame', `truncated frame: the stream ended with ${this.buffer.length} bytes while waiting for ${expected}`);
      this.buffer = Buffer.alloc(0);
      this.pending = null;
      throw this.failed;
    }
  }

  private next(): EslMessage | null {
    if (!this.pending) {
      const end = this.buffer.indexOf(HEADER_END, Math.max(0, this.scanned - 1));
      if (end < 0) {
        this.scanned = this.buffer.length;
        if (this.buffer.length > this.limits.maxHeaderBytes) {
          throw new EslError('frame', `header block longer than ${this.limits.maxHeaderBytes} bytes without a blank line`);
        }
        return null;
      }
      const headers = parseHeaderBlock(this.buffer.subarray(0, end).toString('utf8'));
      this.buffer = this.buffer.subarray(end + HEADER_END.length);
      this.scanned = 0;
      const lengthText = headers['Content-Length'];
      let bodyLength = 0;
      if (lengthText !== undefined) {
        if (!/^\d{1,10}$/.test(lengthText)) throw new EslError('frame', `Content-Length is not a byte count: ${snippet(lengthText)}`);
        bodyLength = Number(lengthText);
        if (bodyLength > this.limits.maxBodyBytes) {
          throw new EslError('frame', `Content-Length ${bodyLength} exceeds the ${this.limits.maxBodyBytes}-byte limit`);
        }
      }
      this.pending = { headers, bodyLength, headerBytes: end + HEADER_END.length };
    }
    const { headers, bodyLength } = this.pending;
    if (this.buffer.length < bodyLength) return null;
    const body = this.buffer.subarray(0, bodyLength).toString('utf8');
    this.buffer = this.buffer.subarray(bodyLength);
    this.pending = null;
    return { headers, body };
  }
}

/** A short, quoted piece of a broken frame for an error message, with long digit runs masked. */
function snippet(text: string): string {
  const masked = text.slice(0, 60).replace(/\d{7,}/g, (run) => `${run.slice(0, 3)}${'*'.repeat(run.length - 7)}****`);
  return JSON.stringify(masked);
}

/** "Name: value" lines. A line without a colon is a broken frame, not something to guess about. */
export function parseHeaderBlock(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  if (text.length === 0) throw new EslError('frame', 'empty header block');
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new EslError('frame', `header line without a name: ${snippet(line)}`);
    const name = line.slice(0, colon);
    if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new EslError('frame', `bad header name: ${snippet(name)}`);
    headers[name] = line.slice(colon + 1).replace(/^ /, '');
  }
  return headers;
}

/** The body of a text/event-plain message: headers with URL-encoded values, then an optional body. */
export function parsePlainEvent(body: string): Record<string, string> {
  const split = body.indexOf('\n\n');
  const head = split < 0 ? body.replace(/\n$/, '') : body.slice(0, split);
  const event: Record<string, string> = {};
  for (const [name, value] of Object.entries(parseHeaderBlock(head))) {
    try {
      event[name] = decodeURIComponent(value);
    } catch {
      event[name] = value;
    }
  }
  if (split >= 0) {
    const rest = body.slice(split + 2);
    if (rest.length > 0) event._body = rest;
  }
  return event;
}

/** The body of a text/event-json message: a flat object of strings ("_body" holds a job's result). */
export function parseJsonEvent(body: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new EslError('frame', `event body is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new EslError('frame', 'event body is not a JSON object');
  }
  const event: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value === 'string') event[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') event[name] = String(value);
  }
  if (typeof event['Event-Name'] !== 'string') throw new EslError('frame', 'event without Event-Name');
  return event;
}
