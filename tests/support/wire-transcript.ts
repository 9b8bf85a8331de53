// Reads the recorded drachtio transcripts (tests/fixtures/drachtio-wire, copied byte for byte from the
// recordings). Format: `#` preamble, `---` TCP events, chunk header lines `>>> app->server … len=N`,
// `<<< server->app … len=N` or `=== udp … len=N`, then exactly N payload bytes, then "\n\n".
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'drachtio-wire');

export interface Chunk {
  readonly direction: 'app->server' | 'server->app' | 'udp';
  readonly header: string;
  readonly payload: string;
}

export function readTranscript(name: string): Chunk[] {
  const bytes = readFileSync(join(FIXTURES_DIR, name));
  const chunks: Chunk[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const eol = bytes.indexOf(0x0a, pos);
    const line = bytes.toString('utf8', pos, eol === -1 ? bytes.length : eol);
    pos = eol === -1 ? bytes.length : eol + 1;
    const m = /^(>>> app->server|<<< server->app|=== udp) .* len=(\d+)$/.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined) continue; // preamble, TCP events, blank separators
    const len = Number(m[2]);
    const payload = bytes.toString('utf8', pos, pos + len);
    pos += len;
    const direction = m[1].startsWith('>>>') ? 'app->server' : m[1].startsWith('<<<') ? 'server->app' : 'udp';
    chunks.push({ direction, header: line, payload });
  }
  return chunks;
}

/** A wire chunk's frame body (after `<len>#`), checking the length prefix against the bytes. */
export function frameBody(chunk: Chunk): string {
  const hash = chunk.payload.indexOf('#');
  const declared = Number(chunk.payload.slice(0, hash));
  const body = chunk.payload.slice(hash + 1);
  if (Buffer.byteLength(body, 'utf8') !== declared) throw new Error(`length prefix ${declared} does not match ${chunk.header}`);
  return body;
}

/** The SIP texts the server delivered from the network (`sip|network|…`), in order. */
export function networkMessages(name: string): string[] {
  return readTranscript(name)
    .filter((c) => c.direction === 'server->app')
    .map(frameBody)
    .filter((body) => body.split('|')[1] === 'sip' && body.split('|')[2] === 'network')
    .map((body) => body.slice(body.indexOf('\r\n') + 2));
}

/** The first network message whose start line matches, e.g. `INVITE ` or `SIP/2.0 486`. */
export function networkMessage(name: string, startsWith: string, nth = 0): string {
  const found = networkMessages(name).filter((m) => m.startsWith(startsWith))[nth];
  if (found === undefined) throw new Error(`no "${startsWith}" message in ${name}`);
  return found;
}
