// Assembles the linkage policy from adapters the composition root chose: the routing check for the
// transfer service, the services behind its routes, and the observers of the service's own events
// (call records, metrics). main.ts and the tests build it the same way.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { parseRoutingList, type RoutingList } from '../domain/routing-list.js';
import type { PolicyRouteDeps } from '../http/routes/policy-routes.js';
import { LinkageMetrics } from '../metrics/metrics.js';
import type { Clock, EventBus, HealthCheck, ObservedEvent } from '../ports.js';
import type { CallRecordStore } from '../records/call-record.js';
import { RecordWriter, tapBus } from '../records/record-writer.js';
import type { TransferService } from '../transfer/transfer-service.js';
import { FeedbackService } from './feedback-service.js';
import { NumberHasher, type NuisanceStore } from './nuisance.js';
import { NuisanceService } from './nuisance-service.js';
import { RedirectService } from './redirect-service.js';
import { RoutingPolicy, type NuisanceSettings } from './transfer-policy.js';

export class RoutingListError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid routing list ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RoutingListError';
  }
}

/** Reads and validates a routing list file; every problem names its path in the file. */
export function loadRoutingList(file: string, configuredDesks: readonly string[]): RoutingList {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new RoutingListError(file, [`(file): ${err instanceof Error ? err.message : String(err)}`]);
  }
  const result = parseRoutingList(raw, configuredDesks);
  if (!result.ok) throw new RoutingListError(file, result.problems);
  return result.list;
}

export interface LinkagePolicySettings {
  readonly nuisance: NuisanceSettings & { readonly hashKey: string };
  readonly unlistedCategories: 'allow' | 'refuse';
  readonly feedbackDeadlineHours: number;
  readonly summaryUtcOffsetMinutes: number;
  /** API key name → the desks it acts for (config `feed.desksByKey`); a key not listed acts for every desk. */
  readonly desksByKey: Readonly<Record<string, readonly string[]>>;
}

export interface LinkagePolicyParts {
  readonly list: RoutingList;
  readonly nuisance: NuisanceStore;
  readonly records: CallRecordStore;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly healthChecks: readonly HealthCheck[];
  readonly settings: LinkagePolicySettings;
  readonly defaultMetrics?: boolean;
}

export class LinkagePolicy {
  readonly metrics: LinkageMetrics;
  readonly writer: RecordWriter;
  /** The bus to hand the transfer service and the policy services: records and metrics see it first. */
  readonly bus: EventBus;
  readonly routing: RoutingPolicy;
  readonly nuisance: NuisanceService;
  readonly feedback: FeedbackService;
  readonly recordsCheck: HealthCheck;

  constructor(private readonly parts: LinkagePolicyParts) {
    // Transfers go on without the records store (writes are retried), so it never takes the instance out.
    this.recordsCheck = { name: 'call-records', critical: false, check: () => parts.records.healthy() };
    this.metrics = new LinkageMetrics({
      healthChecks: [...parts.healthChecks, this.recordsCheck],
      defaultMetrics: parts.defaultMetrics ?? false,
    });
    this.writer = new RecordWriter(parts.records, parts.logger);
    this.writer.onDrop((n) => this.metrics.recordWritesDropped(n));
    this.metrics.countPendingRecordWrites(() => this.writer.pendingCount);
    this.bus = tapBus(parts.bus, (e) => this.observe(e));
    const hasher = new NumberHasher(parts.settings.nuisance.hashKey);
    this.routing = new RoutingPolicy({
      list: parts.list,
      nuisance: parts.nuisance,
      hasher,
      clock: parts.clock,
      logger: parts.logger,
      settings: { ...parts.settings.nuisance, unlistedCategories: parts.settings.unlistedCategories },
    });
    this.nuisance = new NuisanceService({ store: parts.nuisance, hasher, clock: parts.clock, bus: this.bus, settings: parts.settings.nuisance });
    this.feedback = new FeedbackService({
      records: parts.records,
      bus: this.bus,
      clock: parts.clock,
      settings: { deadlineHours: parts.settings.feedbackDeadlineHours, desksByKey: parts.settings.desksByKey },
    });
  }

  /** Records and counts an event of this instance's: the policy's own (through `bus`) and each transfer transition. */
  observe(event: ObservedEvent): void {
    for (const observer of [this.writer, this.metrics]) {
      try {
        observer.observe(event);
      } catch {
        // one observer's bug must not keep the event from the other, nor stop the transfer
      }
    }
  }

  /** The routes' dependencies, once the transfer service exists (redirects go through it). */
  routes(service: TransferService): PolicyRouteDeps {
    return {
      list: this.parts.list,
      redirects: new RedirectService({ list: this.parts.list, service, records: this.parts.records, bus: this.bus, clock: this.parts.clock }),
      nuisance: this.nuisance,
      feedback: this.feedback,
      records: this.parts.records,
      metrics: this.metrics,
      clock: this.parts.clock,
      settings: {
        feedbackDeadlineHours: this.parts.settings.feedbackDeadlineHours,
        summaryUtcOffsetMinutes: this.parts.settings.summaryUtcOffsetMinutes,
      },
    };
  }
}
