// The parts of drachtio-srf 5.0.29 this adapter uses, typed from its source (lib/srf.js, dialog.js,
// request.js, response.js). The package's own .d.ts is looser and partly wrong (createB2BUA's callbacks,
// Dialog.id, Request.source_address), so the adapter narrows the Srf instance to these shapes.
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

export interface SrfMessage {
  readonly method?: string;
  readonly status?: number;
  readonly reason?: string;
  readonly body: string;
  readonly raw?: string;
  get(name: string): string | undefined;
  has(name: string): boolean;
}

export interface SrfRequest extends SrfMessage, EventEmitter {
  readonly method: string;
  readonly uri: string;
  readonly source_address: string;
  readonly source_port: number;
  readonly stackTxnId: string;
  readonly stackDialogId?: string;
  readonly msg: { readonly raw?: string };
  cancel(opts?: { headers?: Record<string, string> }, callback?: (err: unknown) => void): void;
}

export interface SrfResponse {
  readonly finalResponseSent: boolean;
  send(status: number, reason?: string, opts?: { headers?: Record<string, string>; body?: string }): void;
  send(status: number, opts?: { headers?: Record<string, string>; body?: string }): void;
}

export interface SrfDialog extends EventEmitter {
  readonly id: string;
  readonly type: 'uac' | 'uas';
  readonly sip: { readonly callId: string; readonly localTag: string; readonly remoteTag: string };
  readonly local: { sdp: string; uri: string };
  readonly remote: { sdp: string; uri: string };
  readonly req: SrfRequest;
  readonly res: SrfMessage;
  connected: boolean;
  other?: SrfDialog;
  destroy(opts?: { headers?: Record<string, string> }): Promise<unknown>;
  modify(sdp: string): Promise<string>;
  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<SrfMessage>;
}

export interface SipErrorShape {
  readonly status?: number;
  readonly reason?: string;
  readonly res?: SrfMessage;
}

export interface B2buaOptions {
  headers: Record<string, string>;
  proxyRequestHeaders: string[];
  proxyResponseHeaders: string[];
  passFailure: boolean;
  passProvisionalResponses: boolean;
}

export interface SrfLike extends EventEmitter {
  connect(opts: Record<string, unknown>): unknown;
  disconnect(): void;
  invite(handler: (req: SrfRequest, res: SrfResponse) => void): void;
  use(method: string, handler: (req: SrfRequest, res: SrfResponse, next: () => void) => void): void;
  createB2BUA(
    req: SrfRequest,
    res: SrfResponse,
    uri: string,
    opts: B2buaOptions,
    callbacks: {
      cbRequest?: (err: unknown, req: SrfRequest) => void;
      cbProvisional?: (res: SrfMessage) => void;
      cbFinalizedUac?: (uac: SrfDialog) => void;
    },
  ): Promise<{ uas: SrfDialog; uac: SrfDialog }>;
  createUAC(
    uri: string,
    opts: { headers: Record<string, string>; localSdp: string },
    callbacks: { cbRequest?: (err: unknown, req: SrfRequest) => void; cbProvisional?: (res: SrfMessage) => void },
  ): Promise<SrfDialog>;
  findDialogByCallIDAndFromTag(callId: string, tag: string): SrfDialog | undefined;
  readonly app: { client?: { wp?: EventEmitter & { closing?: boolean; reconnectVars?: { retryTimer: NodeJS.Timeout | null } } } };
}

export type WireSocket = Socket;
