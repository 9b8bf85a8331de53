// The one entry point of the transfer service the SIP edge calls, so a transfer started from SIP lands
// in the same records, audit trail and live feed as one started over HTTP. main.ts passes the real
// TransferService; tests pass a small fake that drives a CallControl the same way.
import type { DeskId } from '../../domain/ticket-stub.js';
import type { Priority, Transfer, TransferMode } from '../../domain/transfer.js';

export interface TransferRequest {
  readonly citizenLeg: { readonly switchId: string; readonly legId: string };
  readonly agent: { readonly agentId: string; readonly seatId: string; readonly legId: string | null };
  readonly from: DeskId;
  readonly to: DeskId;
  readonly mode: TransferMode;
  readonly priority: Priority;
  readonly firstReceiver?: DeskId;
  readonly callerNumber: string | null;
  readonly ticket: {
    readonly ticketId: string;
    readonly kind: 'work-order' | 'incident';
    readonly categoryCode: string;
    readonly divisionCode: string;
    readonly summary: string;
    readonly location?: string;
    readonly urgency: 'emergency' | 'urgent' | 'normal';
    readonly callerName?: string;
  };
}

export interface TransferRequester {
  request(
    input: TransferRequest,
    options: { idempotencyKey: string | null; principal: string },
  ): Promise<{ transfer: Transfer; replay: boolean }>;
}
