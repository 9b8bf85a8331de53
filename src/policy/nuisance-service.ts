// Agents flag nuisance numbers; the flags expire per config and every change goes on the bus, so the
// supervisors' wall shows it. Numbers arrive in request bodies only (never in URLs, which are logged).
import { z } from 'zod';
import { CallerNumberSchema } from '../domain/phone-number.js';
import { HarassmentKindSchema } from '../domain/routing-decision.js';
import { AppError } from '../errors.js';
import type { Clock, EventBus } from '../ports.js';
import type { NuisanceFlag, NuisanceStore, NumberHasher } from './nuisance.js';
import type { NuisanceSettings } from './transfer-policy.js';

export const FlagRequestSchema = z
  .object({
    callerNumber: CallerNumberSchema,
    kind: HarassmentKindSchema,
    note: z.string().trim().min(1).max(200).optional(),
    /** Shorter than the configured expiry if the agent wants; never longer. */
    ttlSeconds: z.number().int().min(60).optional(),
  })
  .strict();
export const NumberRequestSchema = z.object({ callerNumber: CallerNumberSchema }).strict();

export class NuisanceService {
  constructor(
    private readonly deps: {
      store: NuisanceStore;
      hasher: NumberHasher;
      clock: Clock;
      bus: EventBus;
      settings: NuisanceSettings;
    },
  ) {}

  async flag(input: z.output<typeof FlagRequestSchema>, by: string): Promise<NuisanceFlag> {
    const hash = this.hashOf(input.callerNumber);
    const now = this.deps.clock.now();
    const ttl = Math.min(input.ttlSeconds ?? this.deps.settings.flagTtlSeconds, this.deps.settings.flagTtlSeconds);
    const flag: NuisanceFlag = {
      numberHash: hash,
      masked: this.deps.hasher.masked(input.callerNumber),
      kind: input.kind,
      note: input.note ?? null,
      flaggedBy: by,
      flaggedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttl * 1000).toISOString(),
    };
    await this.guard(() => this.deps.store.flag(flag));
    await this.publish({ action: 'flagged', numberHash: hash, masked: flag.masked, nuisance: flag.kind });
    return flag;
  }

  async unflag(callerNumber: z.output<typeof NumberRequestSchema>['callerNumber']): Promise<boolean> {
    const hash = this.hashOf(callerNumber);
    const removed = await this.guard(() => this.deps.store.unflag(hash));
    if (removed) await this.publish({ action: 'unflagged', numberHash: hash, masked: this.deps.hasher.masked(callerNumber), nuisance: null });
    return removed;
  }

  async lookup(callerNumber: z.output<typeof NumberRequestSchema>['callerNumber']) {
    const hash = this.hashOf(callerNumber);
    const now = this.deps.clock.now();
    const [flag, recentCalls] = await this.guard(() =>
      Promise.all([this.deps.store.get(hash, now), this.deps.store.recentCalls(hash, now, this.deps.settings.repeatWindowSeconds)]),
    );
    return this.standing(callerNumber, flag, recentCalls);
  }

  /** The switch reports an incoming call: counted, and the answer says whether to warn the agent. */
  async countCall(callerNumber: z.output<typeof NumberRequestSchema>['callerNumber']) {
    const hash = this.deps.hasher.hash(callerNumber);
    if (hash === null) return { masked: 'withheld', flag: null, recentCalls: 0, windowSeconds: this.deps.settings.repeatWindowSeconds, repeated: false };
    const now = this.deps.clock.now();
    const { flag, recentCalls } = await this.guard(() => this.deps.store.countCall(hash, now, this.deps.settings.repeatWindowSeconds));
    return this.standing(callerNumber, flag, recentCalls);
  }

  /** What an agent is told about a number: its flag, and whether it calls again and again. */
  private standing(
    callerNumber: z.output<typeof NumberRequestSchema>['callerNumber'],
    flag: NuisanceFlag | null,
    recentCalls: number,
  ) {
    return {
      masked: this.deps.hasher.masked(callerNumber),
      flag,
      recentCalls,
      windowSeconds: this.deps.settings.repeatWindowSeconds,
      repeated: recentCalls >= this.deps.settings.repeatThreshold,
    };
  }

  async list(limit: number): Promise<NuisanceFlag[]> {
    return this.guard(() => this.deps.store.list(this.deps.clock.now(), limit));
  }

  private hashOf(callerId: z.output<typeof NumberRequestSchema>['callerNumber']): string {
    const hash = this.deps.hasher.hash(callerId);
    if (hash === null) throw new AppError('invalid_request', 'a withheld number cannot be flagged', { field: 'callerNumber' });
    return hash;
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw new AppError('store_unavailable', `the nuisance store is unavailable: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async publish(event: { action: 'flagged' | 'unflagged'; numberHash: string; masked: string; nuisance: NuisanceFlag['kind'] | null }) {
    await this.deps.bus.publish({ kind: 'nuisance', ...event, at: this.deps.clock.now().toISOString() }).catch(() => undefined);
  }
}
