// Starts the drachtio test peer, the real DrachtioCallControl (drachtio-srf inside) connected to it, and
// the fake transfer service that drives it; captures log lines for the "no whole numbers" check.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { DrachtioCallControl } from '../../src/adapters/sip/drachtio-call-control.js';
import { SipEdgeConfigSchema, trunkNamesFor, type SipEdgeConfig } from '../../src/adapters/sip/sip-edge-config.js';
import { deskNumber } from '../../src/adapters/sip/sip-policy.js';
import { DrachtioPeer, type DrachtioPeerOptions } from './drachtio-peer.js';
import { FakeTransferService } from './fake-transfer-service.js';

export interface Harness {
  readonly peer: DrachtioPeer;
  readonly edge: DrachtioCallControl;
  readonly service: FakeTransferService;
  readonly config: SipEdgeConfig;
  readonly logLines: string[];
  stop(): Promise<void>;
}

export function edgeConfig(port: number, overrides: Record<string, unknown> = {}): SipEdgeConfig {
  return SipEdgeConfigSchema.parse({
    drachtio: { host: '127.0.0.1', port, secret: 'cymru', pingIntervalMs: 5000, retryMaxDelayMs: 200 },
    domain: 'hotline.example',
    peers: [
      { name: 'pbx12345', desk: '12345', addresses: ['127.0.0.1'], trusted: true, divisionCode: '450300', categoryCode: 'C01' },
      { name: 'overflow', desk: '12345', addresses: ['10.9.9.9'], trusted: false, divisionCode: '450300', categoryCode: 'C01' },
      { name: 'sw110', desk: '110', addresses: ['10.0.0.110'], trusted: true, divisionCode: '450300', categoryCode: 'P01' },
    ],
    desks: {
      '12345': { numbers: ['12345'], trunks: [{ name: 'to-12345', host: '127.0.0.1', port: 5080 }] },
      '110': {
        numbers: ['110'],
        trunks: [
          { name: '110-main', host: '127.0.0.1', port: 5090 },
          { name: '110-backup', host: '127.0.0.1', port: 5092 },
        ],
      },
      '119': { numbers: ['119'], trunks: [{ name: '119-main', host: '127.0.0.1', port: 5091 }] },
      '120': { numbers: ['120'], trunks: [{ name: '120-main', host: '127.0.0.1', port: 5094 }] },
      '12313': { numbers: ['12313'], trunks: [{ name: '12313-main', host: '127.0.0.1', port: 5093 }], referTarget: false },
    },
    ...overrides,
  });
}

export async function startHarness(
  options: { peer?: DrachtioPeerOptions; answerTimeoutSeconds?: number; config?: Record<string, unknown> } = {},
): Promise<Harness> {
  const peer = await new DrachtioPeer(options.peer).start();
  const config = edgeConfig(peer.port, options.config);
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const edge = new DrachtioCallControl({ config, ids: { uuid: () => randomUUID() }, logger, desk: '12345' });
  const service = new FakeTransferService(
    edge,
    { number: (desk) => deskNumber(config, desk), trunks: (desk) => trunkNamesFor(config, desk) },
    { answerTimeoutSeconds: options.answerTimeoutSeconds ?? 30 },
  );
  edge.attach(service);
  edge.start();
  await peer.connected();
  await peer.until(() => edge.status().state === 'connected', 2000, 'edge connected');
  return {
    peer,
    edge,
    service,
    config,
    logLines,
    async stop() {
      await edge.close();
      await peer.stop();
    },
  };
}
