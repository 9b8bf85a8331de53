// Builds an EslCallControl against a test peer, and waits for the events a test expects.
import { randomUUID } from 'node:crypto';
import type { CallControlEvent, PlaceCallRequest } from '../../src/ports.js';
import { EslCallControl, type EslCallControlOptions } from '../../src/adapters/freeswitch/esl-call-control.js';
import { memoryLogger, type MemoryLogger } from './memory-logger.js';

export interface TestDriver {
  readonly driver: EslCallControl;
  readonly events: CallControlEvent[];
  readonly log: MemoryLogger;
  /** Resolves with the first event (already seen or future) that matches. */
  next(predicate: (event: CallControlEvent) => boolean, timeoutMs?: number): Promise<CallControlEvent>;
}

export function testDriver(port: number, overrides: Partial<EslCallControlOptions> = {}): TestDriver {
  const log = memoryLogger();
  const driver = new EslCallControl({
    switchId: 'fs-test',
    desk: '12345',
    host: '127.0.0.1',
    port,
    password: 'ClueCon',
    callerIdHeader: 'pid',
    sipDomain: 'hotline.example.cn',
    conferenceProfile: 'default',
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
    reconnectInitialMs: 20,
    reconnectMaxMs: 200,
    jobGraceMs: 2_000,
    logger: log.logger,
    ...overrides,
  });
  const events: CallControlEvent[] = [];
  const waiters: { predicate: (e: CallControlEvent) => boolean; resolve: (e: CallControlEvent) => void }[] = [];
  driver.onEvent((event) => {
    events.push(event);
    for (const w of [...waiters]) {
      if (w.predicate(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  });
  return {
    driver,
    events,
    log,
    next(predicate, timeoutMs = 5_000) {
      const seen = events.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; saw ${JSON.stringify(events)}`)), timeoutMs);
        waiters.push({
          predicate,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
  };
}

export function placeCallRequest(overrides: Partial<PlaceCallRequest> & { citizenLegId: string }): PlaceCallRequest {
  return {
    transferId: randomUUID(),
    legId: randomUUID(),
    agentLegId: null,
    mode: 'blind',
    priority: 'emergency',
    sourceDesk: '12345',
    target: { desk: '110', number: '110', trunk: 'sw110' },
    callerId: { kind: 'number', national: '13800138000', type: 'mobile' },
    ticket: { ticketId: 'T-123', stubUrl: 'https://hotline.example.cn/v1/tickets/T-123' },
    answerTimeoutSeconds: 20,
    ...overrides,
  };
}
