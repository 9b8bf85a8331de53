// The transfer service (state machine, stores, effects) driving the real ESL driver against the
// transcript peer: what an agent's key press becomes on a FreeSWITCH, end to end in one process.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../../src/adapters/memory/memory-event-bus.js';
import { MemoryTicketStore, MemoryTransferStore } from '../../../src/adapters/memory/memory-stores.js';
import type { Transfer } from '../../../src/domain/transfer.js';
import { TransferRequestSchema } from '../../../src/transfer/transfer-request.js';
import { TransferService } from '../../../src/transfer/transfer-service.js';
import { EslPeer } from '../../support/esl-peer.js';
import { testDriver, type TestDriver } from '../../support/esl-driver.js';
import { memoryLogger } from '../../support/memory-logger.js';

describe('the transfer service driving FreeSWITCH through the ESL driver', () => {
  let peer: EslPeer;
  let t: TestDriver;
  let service: TransferService;
  const log = memoryLogger();

  beforeEach(async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port, { switchId: 'fs-12345', logger: log.logger });
    t.driver.start();
    await t.driver.ready();
    const clock = { now: () => new Date() };
    const tickets = new MemoryTicketStore(clock);
    const bus = new MemoryEventBus();
    service = new TransferService({
      tickets,
      transfers: new MemoryTransferStore(tickets, bus),
      bus,
      clock,
      ids: { uuid: () => randomUUID() },
      logger: log.logger,
      desks: {
        '12345': { number: '12345', trunks: ['to12345'] },
        '110': { number: '110', trunks: ['sw110', 'sw110-backup'] },
      },
      settings: {
        ticketTtlSeconds: 3600,
        answerTimeoutSeconds: 20,
        publicBaseUrl: 'https://hotline.example.cn',
        deferredWriteRetryMs: 100,
        answerGuardGraceMs: 200,
      },
    });
    service.attachSwitch(t.driver);
  });
  afterEach(async () => {
    await service.close();
    await t.driver.close();
    await peer.close();
  });

  async function transferOf(mode: 'blind' | 'three-way', citizen: string, agent: string): Promise<Transfer> {
    const request = TransferRequestSchema.parse({
      citizenLeg: { switchId: 'fs-12345', legId: citizen },
      agent: { agentId: 'A1001', seatId: 'S07', legId: agent },
      from: '12345',
      to: '110',
      mode,
      priority: 'emergency',
      callerNumber: '13800138000',
      ticket: {
        ticketId: 'GD-2026-000123',
        kind: 'work-order',
        categoryCode: '0301',
        divisionCode: '450300',
        summary: '市民反映小区门口有人持刀争吵，请求警方处置。',
        urgency: 'urgent',
      },
    });
    const { transfer } = await service.request(request, { idempotencyKey: null, principal: 'test' });
    return transfer;
  }

  async function settles(id: string, state: Transfer['state']): Promise<Transfer> {
    await expect.poll(async () => (await service.get(id)).state).toBe(state);
    return service.get(id);
  }

  it('blind: the citizen ends up bridged to 110 with the number and ticket carried, and the agent is released', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    const transfer = await transferOf('blind', citizen, agent);
    const done = await settles(transfer.id, 'bridged');
    expect(peer.channels.get(citizen)?.bridgedTo).toBe(done.targetLegId);
    await expect.poll(() => peer.commandsLike(`api uuid_kill ${agent}`).length).toBe(1);
    const originate = peer.commandsLike('bgapi originate')[0] ?? '';
    expect(originate).toContain('origination_caller_id_number=13800138000');
    expect(originate).toContain('sip_h_X-Ticket-Id=GD-2026-000123');
    expect(originate).toContain(`sip_h_User-to-User=${Buffer.from('GD-2026-000123').toString('hex')};encoding=hex`);
    expect(originate).toContain('sip_h_Call-Info=<https://hotline.example.cn/v1/tickets/GD-2026-000123>;purpose=info');
    expect(originate).toContain('sip_h_Diversion=<sip:12345@hotline.example.cn>;reason=deflection;counter=1');
    expect(originate).toContain('sip_h_Priority=emergency');
    expect(log.text()).not.toContain('13800138000');
  });

  it('busy on the 110 trunk, answered on the backup trunk (备用专线)', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    peer.setOutcomes('sw110', ['busy']);
    const transfer = await transferOf('blind', citizen, agent);
    await settles(transfer.id, 'bridged');
    expect(peer.commandsLike('bgapi originate').map((c) => /sofia\/gateway\/([^/]+)\//.exec(c)?.[1])).toEqual(['sw110', 'sw110-backup']);
  });

  it('every trunk fails: the transfer ends failed with the last cause and the citizen stays with the agent', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    peer.setOutcomes('sw110', ['busy']);
    peer.setOutcomes('sw110-backup', ['unavailable']);
    const transfer = await transferOf('blind', citizen, agent);
    const failed = await settles(transfer.id, 'failed');
    expect(failed.failure).toEqual({ reason: 'unreachable', cause: 'NO_USER_RESPONSE' });
    await expect.poll(() => peer.commandsLike(`api uuid_getvar ${citizen} bridge_uuid`).length).toBe(1);
    expect(peer.channels.get(citizen)?.bridgedTo).toBe(agent);
    expect(peer.commandsLike('api uuid_bridge')).toEqual([]);
  });

  it('three-way: all three in one conference; 110 leaves and the citizen stays with the agent (首接负责制)', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    const transfer = await transferOf('three-way', citizen, agent);
    const joined = await settles(transfer.id, 'conferenced');
    peer.hangUp(joined.targetLegId!);
    const done = await settles(transfer.id, 'completed');
    expect(done.endedBy).toBe('target');
    expect(peer.channels.get(citizen)?.conference).toBe(`hl-${transfer.id}`);
    expect(peer.channels.has(agent)).toBe(true);
  });
});
