// Nuisance numbers (恶意骚扰、扬言恐吓、疑似醉酒人员…反复滋扰): agents flag them, repeat calls are counted over a
// window, and transfers of a flagged number carry the mark. Numbers are kept only as keyed hashes
// (HMAC-SHA-256 with a secret from config): a plain hash of an 11-digit number is reversed by trying
// all 10^11 numbers in hours, a keyed one is not without the key. The masked form is kept beside it
// for display, so nobody needs the whole number to read the list.
import { createHmac } from 'node:crypto';
import { maskNumber, type CallerId } from '../domain/phone-number.js';
import type { HarassmentKind } from '../domain/routing-decision.js';

export interface NuisanceFlag {
  readonly numberHash: string;
  /** 138****8000: enough for an agent to recognise the caller, never enough to dial. */
  readonly masked: string;
  readonly kind: HarassmentKind;
  readonly note: string | null;
  readonly flaggedBy: string;
  readonly flaggedAt: string;
  readonly expiresAt: string;
}

/** A number's flag and its calls within the window. */
export interface CallStanding {
  readonly flag: NuisanceFlag | null;
  readonly recentCalls: number;
}

export interface NuisanceStore {
  /** Sets or replaces the flag; it disappears at expiresAt. */
  flag(flag: NuisanceFlag): Promise<void>;
  unflag(numberHash: string): Promise<boolean>;
  get(numberHash: string, now: Date): Promise<NuisanceFlag | null>;
  /** Flags not yet expired, most recent first, at most limit. */
  list(now: Date, limit: number): Promise<NuisanceFlag[]>;
  /**
   * Counts one call and returns the number's flag and its calls within the window, this one included:
   * one step (in Redis one script, one round trip), as every transfer of a number takes it.
   */
  countCall(numberHash: string, at: Date, windowSeconds: number): Promise<CallStanding>;
  recentCalls(numberHash: string, at: Date, windowSeconds: number): Promise<number>;
}

/** Calls kept per number: beyond this, the oldest are dropped (the count saturates, it never grows). */
export const CALLS_PER_NUMBER_CAP = 1000;

export class NumberHasher {
  constructor(private readonly key: string) {}

  /** The keyed hash of a caller's number, or null when it was withheld. */
  hash(callerId: CallerId): string | null {
    if (callerId.kind === 'withheld') return null;
    return createHmac('sha256', this.key).update(callerId.national).digest('base64url');
  }

  masked(callerId: CallerId): string {
    return maskNumber(callerId);
  }
}
