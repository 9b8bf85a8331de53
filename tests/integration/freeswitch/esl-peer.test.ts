// The test peer checked against the recording it replays: driven by the recorder's own commands from
// 04 (ids as recorded, timestamps kept), it must send back exactly the bytes FreeSWITCH sent.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EslPeer } from '../../support/esl-peer.js';
import { readConnections } from '../../support/esl-transcript.js';

describe('the ESL test peer against the recording of 04', () => {
  let peer: EslPeer | null = null;
  let socket: Socket | null = null;
  afterEach(async () => {
    socket?.destroy();
    await peer?.close();
  });

  it('answers the recorded commands with the recorded bytes, byte for byte', async () => {
    const recording = readConnections('04-citizen-to-110-bridged.txt')[0]!;
    const citizen = '9169450d-e820-42e3-bf1f-588df5261ac6';
    const job = 'c1f8479e-74cd-43c3-af9c-c36bbb2ea3a7';
    // Every server message except the replies to create_uuid (the peer makes a fresh uuid for those).
    const createUuidCommands = new Set(recording.commands.flatMap((c, i) => (c.startsWith('api create_uuid') ? [i] : [])));
    const expected = Buffer.concat(
      recording.messages.filter((m) => !createUuidCommands.has(m.afterCommand)).map((m) => recording.stream.subarray(m.start, m.end)),
    );

    peer = await EslPeer.start({ keepTimestamps: true });
    const received: Buffer[] = [];
    socket = connect(peer.port, '127.0.0.1');
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const receivedBytes = () => Buffer.concat(received).length;
    const waitFor = async (bytes: number) => {
      const deadline = Date.now() + 3_000;
      while (receivedBytes() < bytes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };
    const expectedUpTo = (k: number) =>
      recording.messages
        .filter((m) => m.afterCommand <= k && !createUuidCommands.has(m.afterCommand))
        .reduce((n, m) => n + (m.end - m.start), 0);

    for (const [k, command] of recording.commands.entries()) {
      if (createUuidCommands.has(k)) continue;
      // The recorder let FreeSWITCH choose the Job-UUID; here the client names the recorded one.
      socket.write(command.startsWith('bgapi ') ? command.replace(/\n\n$/, `\nJob-UUID: ${job}\n\n`) : command);
      if (command.startsWith('event json')) {
        await waitFor(expectedUpTo(k - 1) + 1);
        peer.citizenCall(citizen); // the citizen's call arrives, as it did while the recorder waited
      }
      await waitFor(expectedUpTo(k));
    }
    await waitFor(expected.length);
    const actual = Buffer.concat(received);
    expect(actual.length).toBe(expected.length);
    expect(actual.equals(expected)).toBe(true);
  });
});
