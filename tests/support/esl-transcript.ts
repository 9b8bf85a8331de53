// Reads the recorded Event Socket transcripts in tests/fixtures/freeswitch-esl (byte-for-byte copies of
// the recordings made against FreeSWITCH 1.10.12; their README explains the format): a marker line,
// exactly len=N raw bytes, then one "\n" the recorder added.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'freeswitch-esl');

export type TranscriptRecord =
  | { readonly dir: 'client'; readonly t: number; readonly bytes: Buffer }
  | { readonly dir: 'server'; readonly t: number; readonly bytes: Buffer }
  | { readonly dir: 'eof'; readonly t: number }
  | { readonly dir: 'connection'; readonly label: string };

export function readTranscript(name: string): TranscriptRecord[] {
  const data = readFileSync(join(FIXTURE_DIR, name));
  const records: TranscriptRecord[] = [];
  let i = 0;
  while (i < data.length) {
    const nl = data.indexOf(0x0a, i);
    if (nl < 0) throw new Error(`${name}: marker line without an end at byte ${i}`);
    const line = data.subarray(i, nl).toString('utf8');
    i = nl + 1;
    if (line.startsWith('#')) {
      if (line.startsWith('#== connection')) records.push({ dir: 'connection', label: line });
      continue;
    }
    const m = /^(>>>|<<<) (?:C->S|S->C) t=\+([0-9.]+) (?:len=(\d+)|EOF)/.exec(line);
    if (!m) throw new Error(`${name}: bad marker line ${JSON.stringify(line)}`);
    const t = Number(m[2]);
    if (m[3] === undefined) {
      records.push({ dir: 'eof', t });
      continue;
    }
    const n = Number(m[3]);
    const bytes = data.subarray(i, i + n);
    if (bytes.length !== n) throw new Error(`${name}: record shorter than len=${n}`);
    i += n;
    if (data[i] !== 0x0a) throw new Error(`${name}: no recorder newline after a record at byte ${i}`);
    i += 1;
    records.push({ dir: m[1] === '>>>' ? 'client' : 'server', t, bytes });
  }
  return records;
}

/** One server message of a connection, with where it sits in the recorded byte stream. */
export interface RecordedMessage {
  readonly start: number;
  readonly end: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** For events: the parsed JSON (only text/event-json). */
  readonly event: Record<string, string> | null;
  /** Index of the last client command sent before this message began. */
  readonly afterCommand: number;
}

export interface RecordedConnection {
  /** Every byte FreeSWITCH sent, concatenated. */
  readonly stream: Buffer;
  /** Offsets in `stream` where one recv() ended and the next began. */
  readonly chunkEnds: readonly number[];
  /** Time (s since connect) at which each chunk arrived. */
  readonly chunkTimes: readonly number[];
  readonly messages: readonly RecordedMessage[];
  /** The commands the recorder sent, in order, as text. */
  readonly commands: readonly string[];
}

/** Splits a transcript into its connections (08 holds two) and parses each server stream into messages. */
export function readConnections(name: string): RecordedConnection[] {
  const connections: { chunks: Buffer[]; times: number[]; commands: string[]; commandAt: number[] }[] = [];
  let current: (typeof connections)[number] | null = null;
  for (const record of readTranscript(name)) {
    if (record.dir === 'connection' || current === null) {
      current = { chunks: [], times: [], commands: [], commandAt: [] };
      connections.push(current);
      if (record.dir === 'connection') continue;
    }
    if (record.dir === 'client') {
      current.commands.push(record.bytes.toString('utf8'));
      current.commandAt.push(current.chunks.reduce((n, c) => n + c.length, 0));
    } else if (record.dir === 'server') {
      current.chunks.push(record.bytes);
      current.times.push(record.t);
    }
  }
  return connections.map((c) => {
    const stream = Buffer.concat(c.chunks);
    const chunkEnds: number[] = [];
    let offset = 0;
    for (const chunk of c.chunks) {
      offset += chunk.length;
      chunkEnds.push(offset);
    }
    const messages: RecordedMessage[] = [];
    let pos = 0;
    while (pos < stream.length) {
      const headerEnd = stream.indexOf('\n\n', pos);
      if (headerEnd < 0) throw new Error(`${name}: stream ends inside a header block`);
      const headers: Record<string, string> = {};
      for (const line of stream.subarray(pos, headerEnd).toString('utf8').split('\n')) {
        const colon = line.indexOf(': ');
        headers[line.slice(0, colon)] = line.slice(colon + 2);
      }
      const length = Number(headers['Content-Length'] ?? '0');
      const end = headerEnd + 2 + length;
      const body = stream.subarray(headerEnd + 2, end).toString('utf8');
      let afterCommand = -1;
      for (let k = 0; k < c.commandAt.length; k++) if ((c.commandAt[k] ?? Infinity) <= pos) afterCommand = k;
      messages.push({
        start: pos,
        end,
        headers,
        body,
        event: headers['Content-Type'] === 'text/event-json' ? (JSON.parse(body) as Record<string, string>) : null,
        afterCommand,
      });
      pos = end;
    }
    return { stream, chunkEnds, chunkTimes: c.times, messages, commands: c.commands };
  });
}
