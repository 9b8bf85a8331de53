// Starts the drachtio test peer, the real DrachtioCallControl (drachtio-srf inside) connected to it, and
// the real TransferService on the in-memory stores driving it, as main.ts wires them; captures log lines
// (the edge's and the service's) for the "no whole numbers" check. A thin wrapper around `submit` records
// what the edge asked for and what it got, so tests can find the (UUID) transfer ids.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { MemoryEventBus } from '../../src/adapters/memory/memory-event-bus.js';
import { MemoryTicketStore, MemoryTransferStore } from '../../src/adapters/memory/memory-stores.js';
import { DrachtioCallControl } from '../../src/adapters/sip/drachtio-call-control.js';
import { SipEdgeConfigSchema, type SipEdgeConfig } from '../../src/adapters/sip/sip-edge-config.js';
import { deskNumber } from '../../src/adapters/sip/sip-policy.js';
import type { TransferRequester } from '../../src/adapters/sip/transfer-requester.js';
import type { TicketStub } from '../../src/domain/ticket-stub.js';
import type { Transfer } from '../../src/domain/transfer.js';
import type { TicketStore, TransitionRecord } from '../../src/ports.js';
import type { TransferRequestInput } from '../../src/transfer/transfer-request.js';
import { TransferService, type DeskDirectory, type RequestOptions } from '../../src/transfer/transfer-service.js';
import { DrachtioPeer, type DrachtioPeerOptions } from './drachtio-peer.js';

/** One `submit` the edge made, and its outcome once it has one. */
export interface Submitted {
  readonly input: TransferRequestInput;
  readonly idempotencyKey: string | null;
  readonly principal: string;
  result: { transfer: Transfer; replay: boolean } | null;
  error: unknown;
}

export interface Harness {
  readonly peer: DrachtioPeer;
  readonly edge: DrachtioCallControl;
  readonly service: TransferService;
  readonly transfers: MemoryTransferStore;
  readonly tickets: OutageTicketStore;
  readonly config: SipEdgeConfig;
  readonly logLines: string[];
  /** Every `submit` the edge made, in order. */
  readonly requests: Submitted[];
  /** The next `submit` throws this before reaching the service. */
  failNextSubmit(err: Error): void;
  /** The id of the transfer the n-th submit made (waits for the submit to resolve). */
  transferId(n: number, timeoutMs?: number): Promise<string>;
  /** The transfer the n-th submit made, as the service reports it now. */
  transfer(n: number): Promise<Transfer>;
  /** The transfer's audit trail from the store: every transition, oldest first. */
  trail(n: number): Promise<TransitionRecord[]>;
  /** The states the transfer went through, from its audit trail. */
  states(n: number): Promise<string[]>;
  /** Waits until the n-th submit's transfer has passed through `state`. */
  untilState(n: number, state: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The in-memory ticket store, with a switch to make it fail the way an unreachable store does. */
export class OutageTicketStore implements TicketStore {
  down = false;
  readonly inner: MemoryTicketStore;
  constructor(clock: { now(): Date }) {
    this.inner = new MemoryTicketStore(clock);
  }
  async put(stub: TicketStub, ttlSeconds: number): Promise<void> {
    if (this.down) throw new Error('connect ECONNREFUSED (test outage)');
    return this.inner.put(stub, ttlSeconds);
  }
  async get(ticketId: string): Promise<TicketStub | null> {
    if (this.down) throw new Error('connect ECONNREFUSED (test outage)');
    return this.inner.get(ticketId);
  }
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

/**
 * The service's desk directory (config.desks in main.ts). Its trunks are another switch's gateway names,
 * which the edge does not have: every call placed here only connects if the service dialled the edge's
 * own trunks (CallControl.trunksFor).
 */
function directoryFor(config: SipEdgeConfig): DeskDirectory {
  return Object.fromEntries(Object.keys(config.desks).map((desk) => [desk, { number: deskNumber(config, desk), trunks: [`fs-gw-${desk}`] }]));
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
  const ids = { uuid: () => randomUUID() };
  const clock = { now: () => new Date() };
  const tickets = new OutageTicketStore(clock);
  const bus = new MemoryEventBus();
  const transfers = new MemoryTransferStore(tickets, bus);
  const edge = new DrachtioCallControl({ config, ids, logger, desk: '12345' });
  const service = new TransferService({
    tickets,
    transfers,
    bus,
    clock,
    ids,
    logger,
    desks: directoryFor(config),
    settings: {
      ticketTtlSeconds: 3600,
      answerTimeoutSeconds: options.answerTimeoutSeconds ?? 30,
      publicBaseUrl: 'https://hotline.invalid',
      deferredWriteRetryMs: 100,
      answerGuardGraceMs: 5000,
    },
  });
  service.attachSwitch(edge);

  const requests: Submitted[] = [];
  let failNext: Error | null = null;
  const recorder: TransferRequester = {
    async submit(input: TransferRequestInput, opts: RequestOptions) {
      const entry: Submitted = { input, idempotencyKey: opts.idempotencyKey, principal: opts.principal, result: null, error: undefined };
      requests.push(entry);
      try {
        if (failNext) {
          const err = failNext;
          failNext = null;
          throw err;
        }
        entry.result = await service.submit(input, opts);
        return entry.result;
      } catch (err) {
        entry.error = err;
        throw err;
      }
    },
  };
  edge.attach(recorder);
  edge.start();
  await peer.connected();
  await peer.until(() => edge.status().state === 'connected', 2000, 'edge connected');

  const transferId = async (n: number, timeoutMs = 3000) => {
    await peer.until(() => requests[n]?.result != null || requests[n]?.error !== undefined, timeoutMs, `submit ${n} to resolve`);
    const id = requests[n]?.result?.transfer.id;
    if (id === undefined) throw new Error(`submit ${n} failed: ${String(requests[n]?.error)}`);
    return id;
  };
  const states = async (n: number) => (await transfers.auditTrail(await transferId(n))).map((r) => r.to);
  return {
    peer,
    edge,
    service,
    transfers,
    tickets,
    config,
    logLines,
    requests,
    failNextSubmit(err: Error) {
      failNext = err;
    },
    transferId,
    transfer: async (n) => service.get(await transferId(n)),
    trail: async (n) => transfers.auditTrail(await transferId(n)),
    states,
    async untilState(n, state, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      const id = await transferId(n, timeoutMs);
      while (!(await transfers.auditTrail(id)).some((r) => r.to === state)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for transfer ${n} to be ${state}: ${(await states(n)).join(' → ')}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async stop() {
      await edge.close();
      await service.close();
      await bus.close();
      await peer.stop();
    },
  };
}
