import { describe, expect, it } from 'vitest';
import { TICKET_STUB_MAX_BYTES, TicketStubSchema } from '../../src/domain/ticket-stub.js';

const stub = {
  ticketId: 'GD-2026-000123',
  kind: 'work-order',
  sourceDesk: '12345',
  categoryCode: '0301',
  divisionCode: '450300',
  summary: '市民反映小区门口有人持刀争吵，请求警方处置。',
  location: '桂林市七星区漓江路 18 号',
  urgency: 'urgent',
  callerNumber: '13800138000',
  callerName: '王先生',
  agentId: 'A1001',
  seatId: 'S07',
  createdAt: '2026-11-23T08:00:00.000Z',
};

describe('TicketStubSchema', () => {
  it('accepts a 12345 work order in Chinese', () => {
    expect(TicketStubSchema.parse(stub)).toEqual(stub);
  });

  it('accepts a withheld caller as null', () => {
    expect(TicketStubSchema.parse({ ...stub, callerNumber: null }).callerNumber).toBeNull();
  });

  it.each([
    ['divisionCode', '999999'],
    ['divisionCode', '45030'],
    ['ticketId', 'GD 1'],
    ['ticketId', 'GD,1'],
    ['kind', 'ticket'],
    ['urgency', 'high'],
    ['summary', ''],
    ['summary', '有人\u0007报警'],
    ['sourceDesk', '1'],
    ['createdAt', 'yesterday'],
  ])('rejects %s = %j', (field, value) => {
    const result = TicketStubSchema.safeParse({ ...stub, [field]: value });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual([field]);
  });

  it('rejects fields it does not know', () => {
    expect(TicketStubSchema.safeParse({ ...stub, idCard: '450300199001011234' }).success).toBe(false);
  });

  it(`rejects a stub over ${TICKET_STUB_MAX_BYTES} bytes of UTF-8 even when each field is within its limit`, () => {
    const within = { ...stub, summary: '警'.repeat(1000) };
    expect(TicketStubSchema.safeParse(within).success).toBe(true);
    const over = { ...within, location: '路'.repeat(200), callerName: '名'.repeat(64) };
    expect(new TextEncoder().encode(JSON.stringify(over)).length).toBeGreaterThan(TICKET_STUB_MAX_BYTES);
    const result = TicketStubSchema.safeParse(over);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toContain(`${TICKET_STUB_MAX_BYTES} bytes`);
  });
});
