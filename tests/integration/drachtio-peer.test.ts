// The test peer against the recordings: what it answers to the app's recorded frames must match what
// drachtio-server answered, once ids (UUIDs, tags, branches, Call-IDs, CSeq bases, times) are masked.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DrachtioPeer } from '../support/drachtio-peer.js';
import { frameBody, readTranscript } from '../support/wire-transcript.js';

function mask(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/branch=z9hG4bK[-\w]+/g, 'branch=<branch>')
    .replace(/tag=[-\w]+/g, 'tag=<tag>')
    .replace(/\d\d:\d\d:\d\d\.\d{6}/g, '<time>')
    .replace(/CSeq: \d+ /g, 'CSeq: <n> ');
}

class RawApp {
  private buffer = Buffer.alloc(0);
  readonly frames: string[] = [];
  constructor(readonly socket: Socket) {
    socket.on('data', (d) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      for (;;) {
        const hash = this.buffer.indexOf('#');
        if (hash <= 0) return;
        const len = Number(this.buffer.toString('utf8', 0, hash));
        if (this.buffer.length < hash + 1 + len) return;
        this.frames.push(this.buffer.toString('utf8', hash + 1, hash + 1 + len));
        this.buffer = this.buffer.subarray(hash + 1 + len);
      }
    });
  }
  send(body: string): void {
    this.socket.write(`${Buffer.byteLength(body)}#${body}`);
  }
  async next(count: number): Promise<string[]> {
    const deadline = Date.now() + 2000;
    while (this.frames.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.frames.length} frames`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.frames.slice(0, count);
  }
}

let peer: DrachtioPeer | null = null;
let app: RawApp | null = null;
afterEach(async () => {
  app?.socket.destroy();
  await peer?.stop();
});

async function open(): Promise<RawApp> {
  peer = await new DrachtioPeer().start();
  const socket = connect(peer.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  return (app = new RawApp(socket));
}

describe('the drachtio test peer reproduces the recorded server replies', () => {
  it('parses every transcript chunk with its declared length (byte for byte copies)', () => {
    for (const name of ['01-connect.txt', '02-b2bua-basic.txt', '03-refer.txt', '04-busy.txt', '05-cancel.txt']) {
      const chunks = readTranscript(name);
      expect(chunks.length).toBeGreaterThan(3);
      for (const c of chunks) expect(() => frameBody(c)).not.toThrow();
    }
  });

  it('answers authenticate and route as in 01-connect', async () => {
    const recorded = readTranscript('01-connect.txt').map(frameBody);
    const a = await open();
    a.send(recorded[0]!);
    a.send(recorded[2]!);
    const [auth, route] = await a.next(2);
    expect(mask(auth!)).toBe(mask(recorded[1]!));
    expect(mask(route!)).toBe(mask(recorded[3]!));
  });

  it('completes the app\'s B-leg INVITE exactly as the server did in 02-b2bua-basic', async () => {
    const recorded = readTranscript('02-b2bua-basic.txt').map(frameBody);
    const a = await open();
    a.send(recorded[0]!);
    await a.next(1);
    const appInvite = recorded.find((f) => f.includes('|sip||\r\nINVITE sip:110'))!;
    const echo = recorded.find((f) => f.includes('Msg sent:|\r\nINVITE sip:110'))!;
    a.send(appInvite);
    const frames = await a.next(2);
    // Same leader fields, same header order and capitalisation, same body, different ids.
    expect(mask(frames[1]!).replace(/Call-ID: \S+/, 'Call-ID: <callid>')).toBe(mask(echo).replace(/Call-ID: \S+/, 'Call-ID: <callid>'));
  });

  it('completes the app\'s INVITE to 119 (Referred-By, no Contact) as in 03-refer', async () => {
    const recorded = readTranscript('03-refer.txt').map(frameBody);
    const a = await open();
    a.send(recorded[0]!);
    await a.next(1);
    const appInvite = recorded.find((f) => f.includes('|sip||\r\nINVITE sip:119'))!;
    const echo = recorded.find((f) => f.includes('Msg sent:|\r\nINVITE sip:119'))!;
    a.send(appInvite);
    const frames = await a.next(2);
    expect(mask(frames[1]!).replace(/Call-ID: \S+/, 'Call-ID: <callid>')).toBe(mask(echo).replace(/Call-ID: \S+/, 'Call-ID: <callid>'));
  });

  it('delivers the citizen INVITE with the recorded leader and the rport re-encoding', async () => {
    const recorded = readTranscript('02-b2bua-basic.txt').map(frameBody);
    await open();
    peer!.citizenInvite({ dialled: '12345' });
    const [delivered] = await app!.next(1);
    const recordedInvite = recorded.find((f) => f.includes('|sip|network|') && f.includes('\r\nINVITE '))!;
    const m = (s: string) =>
      mask(s)
        .replace(/Call-ID: \S+/, 'Call-ID: <callid>')
        .replace(/\|network\|\d+\|/, '|network|<bytes>|');
    expect(m(delivered!)).toBe(m(recordedInvite));
    // <bytes> is the datagram's size: the text less the `;rport=5080` sofia added, as recorded (617 vs 628).
    for (const frame of [delivered!, recordedInvite]) {
      const declared = Number(frame.split('|')[3]);
      expect(Buffer.byteLength(frame.slice(frame.indexOf('\r\n') + 2))).toBe(declared + ';rport=5080'.length);
    }
  });

  it('refuses the app\'s ACK to a non-2xx with the recorded NOK, as in 04-busy', async () => {
    const recorded = readTranscript('04-busy.txt').map(frameBody);
    const nok = recorded.find((f) => f.includes('|NOK|'))!;
    const a = await open();
    peer!.party(5090, 'busy');
    a.send(recorded[0]!);
    await a.next(1);
    a.send(recorded.find((f) => f.includes('|sip||\r\nINVITE sip:110'))!);
    const frames = await a.next(3);
    const dialogId = /\|([^|]*;from-tag=[^|]*)\|\r\n/.exec(frames[2]!)?.[1] ?? '';
    expect(frames[2]).toContain('SIP/2.0 486 Busy Here');
    a.send(`${crypto.randomUUID()}|sip||${dialogId}\r\nACK sip:110@127.0.0.1:5090 SIP/2.0\r\nContent-Length: 0\r\n\r\n`);
    const [, , , reply] = await a.next(4);
    expect(mask(reply!)).toBe(mask(nok));
  });
});
