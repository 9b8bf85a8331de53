import { describe, expect, it } from 'vitest';
import { CallerNumberSchema, maskNumber, normaliseCallerNumber } from '../../src/domain/phone-number.js';

describe('normaliseCallerNumber', () => {
  it.each([
    ['13800138000', '13800138000', 'mobile'],
    ['138 0013 8000', '13800138000', 'mobile'],
    ['138-0013-8000', '13800138000', 'mobile'],
    ['+8613800138000', '13800138000', 'mobile'],
    ['008613800138000', '13800138000', 'mobile'],
    ['8613800138000', '13800138000', 'mobile'],
    ['19912345678', '19912345678', 'mobile'],
    ['010-12345678', '01012345678', 'fixed'],
    ['(021) 6123 4567', '02161234567', 'fixed'],
    ['0773-2821234', '07732821234', 'fixed'],
    ['0991 4567890', '09914567890', 'fixed'],
    ['+86 773 2821234', '07732821234', 'fixed'],
    ['+861012345678', '01012345678', 'fixed'],
    ['0086 991 45678901', '099145678901', 'fixed'],
    ['110', '110', 'service'],
    ['12345', '12345', 'service'],
    ['12313', '12313', 'service'],
    ['95598', '95598', 'service'],
  ])('normalises %s to %s (%s)', (raw, national, type) => {
    expect(normaliseCallerNumber(raw)).toEqual({ ok: true, callerId: { kind: 'number', national, type } });
  });

  it.each([null, undefined, '', '  ', 'anonymous', 'Anonymous', 'unknown', 'restricted', 'private', 'withheld'])(
    'treats %s as withheld and never invents a number',
    (raw) => {
      expect(normaliseCallerNumber(raw)).toEqual({ ok: true, callerId: { kind: 'withheld' } });
    },
  );

  it.each([
    ['12800138000', 'not a Chinese'], // 12x is not a mobile prefix
    ['1380013800', 'not a Chinese'], // ten digits
    ['138001380001', 'not a Chinese'],
    ['+14155550100', 'outside China'],
    ['0012345678', 'not a Chinese'],
    ['13800138000; drop', 'not digits'],
    ['1380013800O', 'not digits'],
    ['{13800138000}', 'not digits'],
    ['+86110', 'not a Chinese'], // a service number cannot come from abroad
    ['12', 'not a Chinese'],
    ['9', 'not a Chinese'],
  ])('rejects %s', (raw, reason) => {
    const result = normaliseCallerNumber(raw);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toContain(reason);
  });
});

describe('maskNumber', () => {
  it.each([
    ['13800138000', '138****8000'],
    ['01012345678', '010****5678'],
    ['07732821234', '0773***1234'],
    ['12345', '12345'],
  ])('masks %s as %s', (raw, masked) => {
    const result = normaliseCallerNumber(raw);
    if (!result.ok) throw new Error(result.reason);
    expect(maskNumber(result.callerId)).toBe(masked);
  });

  it('shows a withheld number as withheld', () => {
    expect(maskNumber({ kind: 'withheld' })).toBe('withheld');
  });
});

describe('CallerNumberSchema', () => {
  it('names the fault for garbage', () => {
    const result = CallerNumberSchema.safeParse('abc');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toContain('not digits');
  });
  it('accepts null as withheld', () => {
    expect(CallerNumberSchema.parse(null)).toEqual({ kind: 'withheld' });
  });
});
