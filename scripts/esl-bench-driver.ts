// The FreeSWITCH driver as both ESL benchmarks build it: against the transcript peer on loopback, with
// generous timeouts so a loaded machine shows up as latency, not as failed transfers.
import { pino } from 'pino';
import { EslCallControl } from '../src/adapters/freeswitch/esl-call-control.js';

export function eslBenchDriver(port: number, switchId: string): EslCallControl {
  return new EslCallControl({
    switchId,
    desk: '12345',
    host: '127.0.0.1',
    port,
    password: 'ClueCon',
    callerIdHeader: 'pid',
    sipDomain: 'hotline.example.cn',
    conferenceProfile: 'default',
    commandTimeoutMs: 10_000,
    connectTimeoutMs: 5_000,
    reconnectInitialMs: 100,
    reconnectMaxMs: 1_000,
    jobGraceMs: 10_000,
    logger: pino({ level: 'warn' }),
  });
}
