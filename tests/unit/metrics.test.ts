// The key-press-to-answer histogram counts a transfer once, when it enters answered: transitions that
// stay in answered (the agent hanging up, the nuisance mark arriving) are not a second answer.
import { describe, expect, it } from 'vitest';
import type { Transfer, TransferState } from '../../src/domain/transfer.js';
import { LinkageMetrics } from '../../src/metrics/metrics.js';
import type { TransitionRecord } from '../../src/ports.js';

const CREATED = '2026-11-23T08:00:00.000Z';

function answered(from: TransferState, event: TransitionRecord['event'], version: number) {
  const transfer = {
    id: 't-1',
    direction: { from: '12345', to: '110' },
    mode: 'blind',
    priority: 'normal',
    state: 'answered',
    createdAt: CREATED,
    version,
  } as unknown as Transfer;
  const record: TransitionRecord = { transferId: 't-1', at: '2026-11-23T08:00:04.000Z', from, to: 'answered', event, version };
  return { kind: 'transfer' as const, transfer, record };
}

describe('the answer-time histogram', () => {
  it('counts entering answered once, whatever stays in answered after it', async () => {
    const metrics = new LinkageMetrics({ healthChecks: [], defaultMetrics: false });
    metrics.observe(answered('ringing', 'target-answered', 5));
    metrics.observe(answered('answered', 'party-left', 6));
    metrics.observe(answered('answered', 'nuisance-checked', 7));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/linkage_key_press_to_answer_seconds_count\{direction="12345-110",priority="normal"\} 1\n/);
    expect(text).toMatch(/linkage_key_press_to_answer_seconds_sum\{direction="12345-110",priority="normal"\} 4\n/);
  });
});
