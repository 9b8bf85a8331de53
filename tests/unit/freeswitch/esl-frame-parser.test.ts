import { describe, expect, it } from 'vitest';
import { EslFrameParser, parseJsonEvent, parsePlainEvent, type EslMessage } from '../../../src/adapters/freeswitch/esl-frame-parser.js';
import { EslError } from '../../../src/adapters/freeswitch/esl-errors.js';
import { readConnections, readTranscript } from '../../support/esl-transcript.js';

const FILES = [
  '01-auth-status-subscribe.txt',
  '02-event-plain-all.txt',
  '03-event-json-all.txt',
  '04-citizen-to-110-bridged.txt',
  '05-citizen-to-110-failed.txt',
  '06-three-way-conference.txt',
  '07-blind-transfer-and-errors.txt',
  '08-auth-failures.txt',
];

function serverChunks(file: string): Buffer[][] {
  const connections: Buffer[][] = [];
  let current: Buffer[] | null = null;
  for (const r of readTranscript(file)) {
    if (r.dir === 'connection' || current === null) {
      current = [];
      connections.push(current);
    }
    if (r.dir === 'server') current.push(r.bytes);
  }
  return connections;
}

function errorOf(fn: () => unknown): EslError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EslError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('the ESL frame parser on the recorded FreeSWITCH streams', () => {
  it.each(FILES)('%s: chunks as recorded give every message, whole, with nothing left over', (file) => {
    const expected = readConnections(file);
    serverChunks(file).forEach((chunks, i) => {
      const parser = new EslFrameParser();
      const messages: EslMessage[] = [];
      for (const chunk of chunks) messages.push(...parser.push(chunk));
      expect(() => parser.end()).not.toThrow();
      const want = expected[i]!.messages;
      expect(messages.map((m) => m.headers['Content-Type'])).toEqual(want.map((m) => m.headers['Content-Type']));
      expect(messages.map((m) => m.body)).toEqual(want.map((m) => m.body));
    });
  });

  it('the recordings do split messages across reads, so the partial-frame path is exercised', () => {
    let cutMidMessage = 0;
    for (const file of FILES) {
      for (const chunks of serverChunks(file)) {
        const parser = new EslFrameParser();
        for (const chunk of chunks) {
          parser.push(chunk);
          if (parser.bufferedBytes > 0) cutMidMessage += 1;
        }
      }
    }
    expect(cutMidMessage).toBeGreaterThanOrEqual(5);
  });

  it('fed one byte at a time, 06 (conference, 159 kB) gives the same messages', () => {
    const [chunks] = serverChunks('06-three-way-conference.txt');
    const whole = Buffer.concat(chunks!);
    const bulk = new EslFrameParser().push(whole);
    const parser = new EslFrameParser();
    const trickled: EslMessage[] = [];
    for (let i = 0; i < whole.length; i++) trickled.push(...parser.push(whole.subarray(i, i + 1)));
    expect(trickled).toEqual(bulk);
    expect(bulk.filter((m) => m.headers['Content-Type'] === 'text/event-json')).toHaveLength(
      readConnections('06-three-way-conference.txt')[0]!.messages.filter((m) => m.event).length,
    );
  });

  it('reads 04 as the recorded story: answer, job result +OK <uuid>, bridge, hangups', () => {
    const [chunks] = serverChunks('04-citizen-to-110-bridged.txt');
    const parser = new EslFrameParser();
    const names = chunks!
      .flatMap((c) => parser.push(c))
      .filter((m) => m.headers['Content-Type'] === 'text/event-json')
      .map((m) => parseJsonEvent(m.body)['Event-Name']);
    expect(names).toEqual([
      'CHANNEL_CREATE', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_ANSWER',
      'CHANNEL_CREATE', 'CHANNEL_PROGRESS', 'CHANNEL_ANSWER', 'BACKGROUND_JOB',
      'CHANNEL_BRIDGE',
      'CHANNEL_HANGUP', 'CHANNEL_HANGUP', 'CHANNEL_UNBRIDGE', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_HANGUP_COMPLETE',
    ]);
  });

  it('counts Content-Length in bytes: a Chinese body split inside a character comes out whole', () => {
    const body = Buffer.from('{"Event-Name":"CUSTOM","Caller-Caller-ID-Name":"市民热线"}', 'utf8');
    const frame = Buffer.concat([Buffer.from(`Content-Length: ${body.length}\nContent-Type: text/event-json\n\n`), body]);
    const cut = frame.indexOf(Buffer.from('市', 'utf8')) + 1; // inside the three bytes of 市
    const parser = new EslFrameParser();
    expect(parser.push(frame.subarray(0, cut))).toEqual([]);
    const [message] = parser.push(frame.subarray(cut));
    expect(parseJsonEvent(message!.body)['Caller-Caller-ID-Name']).toBe('市民热线');
  });

  it('decodes plain events (02): URL-encoded values, and a BACKGROUND_JOB body after its own blank line', () => {
    const [chunks] = serverChunks('02-event-plain-all.txt');
    const parser = new EslFrameParser();
    const events = chunks!
      .flatMap((c) => parser.push(c))
      .filter((m) => m.headers['Content-Type'] === 'text/event-plain')
      .map((m) => parsePlainEvent(m.body));
    const job = events.find((e) => e['Event-Name'] === 'BACKGROUND_JOB');
    expect(job?._body).toMatch(/^\+OK [0-9a-f-]{36}\n$/);
    const create = events.find((e) => e['Event-Name'] === 'CHANNEL_CREATE');
    expect(create?.['Event-Date-Local']).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/); // "%20" and "%3A" decoded
  });
});

describe('the ESL frame parser on broken input', () => {
  it.each([
    ['a header line without a colon', 'Content-Type command/reply\n\n', /header line without a name/],
    ['a Content-Length that is not a number', 'Content-Length: 12abc\nContent-Type: api/response\n\n', /not a byte count/],
    ['a negative Content-Length', 'Content-Length: -5\n\n', /not a byte count/],
    ['a Content-Length beyond the limit', 'Content-Length: 999999999\n\n', /exceeds/],
    ['a header name with spaces', 'Content Type: x\n\n', /bad header name/],
  ])('%s is a frame error with a clear message, not a crash', (_what, input, message) => {
    const err = errorOf(() => new EslFrameParser().push(Buffer.from(input)));
    expect(err.code).toBe('frame');
    expect(err.message).toMatch(message);
  });

  it('a broken line quoted in an error has its long digit runs masked (it may hold a phone number)', () => {
    const err = errorOf(() => new EslFrameParser().push(Buffer.from('Caller 13800138000 here\n\n')));
    expect(err.message).toContain('138****');
    expect(err.message).not.toContain('13800138000');
  });

  it('a header block that never ends is refused once it passes the limit', () => {
    const parser = new EslFrameParser({ maxHeaderBytes: 1024, maxBodyBytes: 1024 });
    expect(parser.push(Buffer.from('Content-Type: api/response\n'))).toEqual([]);
    expect(errorOf(() => parser.push(Buffer.alloc(2048, 0x41))).code).toBe('frame');
  });

  it('after a frame error the parser refuses further input instead of guessing where the next frame starts', () => {
    const parser = new EslFrameParser();
    errorOf(() => parser.push(Buffer.from('garbage\n\n')));
    expect(errorOf(() => parser.push(Buffer.from('Content-Type: auth/request\n\n'))).code).toBe('frame');
  });

  it('a stream cut inside a body (truncated frame) is reported at end()', () => {
    const parser = new EslFrameParser();
    expect(parser.push(Buffer.from('Content-Type: api/response\nContent-Length: 50\n\nFreeSWITCH Ver'))).toEqual([]);
    const err = errorOf(() => parser.end());
    expect(err.code).toBe('frame');
    expect(err.message).toMatch(/truncated frame.*14 bytes.*body of 50 bytes/);
  });

  it('a stream cut inside a header block is reported at end()', () => {
    const parser = new EslFrameParser();
    parser.push(Buffer.from('Content-Type: comm'));
    expect(errorOf(() => parser.end()).message).toMatch(/truncated frame.*header block/);
  });

  it('an event body that is not JSON, or has no Event-Name, is a frame error', () => {
    expect(errorOf(() => parseJsonEvent('{"Event-Name":')).code).toBe('frame');
    expect(errorOf(() => parseJsonEvent('[1,2]')).code).toBe('frame');
    expect(errorOf(() => parseJsonEvent('{"Job-UUID":"x"}')).message).toMatch(/without Event-Name/);
  });
});
