// Caller-ID rules for Chinese numbers. The number presented to the other desk is the citizen's own
// (号码双向推送), so it must be normalised, never invented, and masked wherever it is only displayed.
import { z } from 'zod';

export type NumberType = 'mobile' | 'fixed' | 'service';

export type CallerId =
  | { readonly kind: 'number'; readonly national: string; readonly type: NumberType }
  | { readonly kind: 'withheld' };

export type NormaliseResult = { ok: true; callerId: CallerId } | { ok: false; reason: string };

// Words switches and phones use for a number the caller chose not to show (RFC 3323 anonymous, CLIR).
const WITHHELD_WORDS = new Set(['', 'anonymous', 'unknown', 'restricted', 'private', 'withheld', 'unavailable']);

const MOBILE = /^1[3-9]\d{9}$/;
// Area codes: 010 and 02x are three digits with the trunk 0; all others four (0xxx). Subscriber 7-8 digits.
const FIXED = /^(?:0(?:10|2\d)\d{8}|0[3-9]\d{2}\d{7,8})$/;
// Short service numbers: 110, 119, 120, 122, 12345, 12313, 12348, 12395, 95598, 10086 …
const SERVICE = /^(?:1\d{2,4}|9\d{4})$/;

/** Normalises what a switch or an agent gives as the citizen's number to its national form. */
export function normaliseCallerNumber(raw: string | null | undefined): NormaliseResult {
  const trimmed = (raw ?? '').trim();
  if (WITHHELD_WORDS.has(trimmed.toLowerCase())) return { ok: true, callerId: { kind: 'withheld' } };
  if (!/^\+?[\d\s()-]+$/.test(trimmed)) return { ok: false, reason: 'contains characters that are not digits' };

  let digits = trimmed.replace(/[\s()-]/g, '');
  let international = false;
  if (digits.startsWith('+86')) {
    digits = digits.slice(3);
    international = true;
  } else if (digits.startsWith('0086')) {
    digits = digits.slice(4);
    international = true;
  } else if (digits.startsWith('+')) {
    return { ok: false, reason: 'international numbers outside China are not accepted' };
  } else if (digits.startsWith('86') && (digits.length === 13 || digits.length === 12 || digits.length === 11) && !MOBILE.test(digits)) {
    // 86 followed by a mobile (13 digits) or an area code without its trunk 0.
    digits = digits.slice(2);
    international = true;
  }
  // From abroad a fixed line is dialled without the trunk 0 (+86 773 …); put it back.
  if (international && !MOBILE.test(digits) && /^(?:10|[2-9])/.test(digits)) digits = `0${digits}`;

  if (MOBILE.test(digits)) return { ok: true, callerId: { kind: 'number', national: digits, type: 'mobile' } };
  if (FIXED.test(digits)) return { ok: true, callerId: { kind: 'number', national: digits, type: 'fixed' } };
  if (!international && SERVICE.test(digits)) {
    return { ok: true, callerId: { kind: 'number', national: digits, type: 'service' } };
  }
  return { ok: false, reason: 'not a Chinese mobile, fixed-line or service number' };
}

/** The number for displays and logs: 138****8000. Service numbers are public and shown whole. */
export function maskNumber(callerId: CallerId): string {
  if (callerId.kind === 'withheld') return 'withheld';
  return maskDigits(callerId.national, callerId.type);
}

export function maskDigits(national: string, type: NumberType): string {
  if (type === 'service') return national;
  if (type === 'mobile') return `${national.slice(0, 3)}****${national.slice(-4)}`;
  // Fixed line: keep the area code and the last four digits.
  const areaLength = /^0(?:10|2\d)/.test(national) ? 3 : 4;
  const hidden = national.length - areaLength - 4;
  return `${national.slice(0, areaLength)}${'*'.repeat(Math.max(hidden, 1))}${national.slice(-4)}`;
}

/** A zod schema that accepts any raw form and yields the normalised caller ID, or names the fault. */
export const CallerNumberSchema = z
  .string()
  .max(32)
  .nullable()
  .transform((raw, ctx): CallerId => {
    const result = normaliseCallerNumber(raw);
    if (!result.ok) {
      ctx.addIssue({ code: 'custom', message: result.reason });
      return z.NEVER;
    }
    return result.callerId;
  });
