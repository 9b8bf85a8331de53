// The one entry point of the transfer service the SIP edge calls, so a transfer started from SIP lands
// in the same records, audit trail and live feed as one started over HTTP. The edge builds the service's
// own raw request shape (`TransferRequestInput`) and the service parses it, so the two cannot drift.
// main.ts and the tests pass the real TransferService.
import type { TransferService } from '../../transfer/transfer-service.js';

export type TransferRequester = Pick<TransferService, 'submit'>;
