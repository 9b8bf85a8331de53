// The routing check the transfer service calls before it stores the stub (the pure routing decision),
// and the nuisance lookup it starts once the transfer is stored: it counts the call and reads the
// number's flag. The mark never changes where the call goes, so the call does not wait for it; a
// failing nuisance store never blocks a transfer: the mark is left unknown.
import type { Logger } from 'pino';
import { decideRouting, type NuisanceMark } from '../domain/routing-decision.js';
import type { RoutingList } from '../domain/routing-list.js';
import { AppError } from '../errors.js';
import type { Clock } from '../ports.js';
import type { TransferRequest } from '../transfer/transfer-request.js';
import type { PolicyDecision, TransferPolicy } from '../transfer/transfer-service.js';
import type { NuisanceStore, NumberHasher } from './nuisance.js';

export interface NuisanceSettings {
  readonly flagTtlSeconds: number;
  readonly repeatWindowSeconds: number;
  /** Calls within the window from which a number counts as a repeat caller. */
  readonly repeatThreshold: number;
}

export interface RoutingPolicyDeps {
  readonly list: RoutingList;
  readonly nuisance: NuisanceStore;
  readonly hasher: NumberHasher;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: NuisanceSettings & { readonly unlistedCategories: 'allow' | 'refuse' };
}

export class RoutingPolicy implements TransferPolicy {
  constructor(private readonly deps: RoutingPolicyDeps) {}

  decide(request: TransferRequest): PolicyDecision {
    const verdict = decideRouting(this.deps.list, {
      from: request.from,
      to: request.to,
      categoryCode: request.ticket.categoryCode,
      emergencyPriority: request.priority === 'emergency' || request.ticket.urgency === 'emergency',
      danger: request.danger === true,
      harassment: request.harassment ?? null,
      reason: request.reason ?? null,
      unlisted: this.deps.settings.unlistedCategories,
    });
    if (!verdict.ok) throw new AppError(verdict.code, verdict.message, verdict.details);
    return {
      to: verdict.to,
      priority: verdict.emergency ? 'emergency' : request.priority,
      routing: { ...verdict.routing, nuisance: null },
    };
  }

  async nuisanceMark(request: TransferRequest): Promise<NuisanceMark | null> {
    const hash = this.deps.hasher.hash(request.callerNumber);
    if (hash === null) return { flagged: null, recentCalls: 0, repeated: false };
    const now = this.deps.clock.now();
    const { repeatWindowSeconds, repeatThreshold } = this.deps.settings;
    try {
      const { flag, recentCalls } = await this.deps.nuisance.countCall(hash, now, repeatWindowSeconds);
      return { flagged: flag?.kind ?? null, recentCalls, repeated: recentCalls >= repeatThreshold };
    } catch (err) {
      this.deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'nuisance lookup failed; transfer goes on unmarked');
      return null;
    }
  }
}
