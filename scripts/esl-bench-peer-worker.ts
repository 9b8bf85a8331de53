// The transcript peer in its own thread for scripts/bench-esl.ts, so the peer's work (rendering the
// recorded events) does not share an event loop with the driver being measured. Timestamps use
// process.hrtime.bigint(), one monotonic clock for every thread of the process.
import { parentPort } from 'node:worker_threads';
import { EslPeer } from '../tests/support/esl-peer.js';

if (!parentPort) throw new Error('run as a worker');
const port = parentPort;
const peer = await EslPeer.start();
peer.onCommand((command) => {
  if (!command.text.startsWith('bgapi originate')) return;
  const leg = /origination_uuid=([0-9a-f-]{36})/.exec(command.text)?.[1];
  const ticket = /sip_h_X-Ticket-Id=([0-9A-Za-z_-]+)/.exec(command.text)?.[1];
  if (leg) port.postMessage({ type: 'originate', leg, ticket, at: command.at });
});
port.on('message', (message: { type: 'call'; citizen: string; agent: string } | { type: 'close' }) => {
  if (message.type === 'call') peer.citizenWithAgent(message.citizen, message.agent);
  else void peer.close().then(() => port.close());
});
port.postMessage({ type: 'ready', port: peer.port });
