// Prometheus metrics (prom-client), fed by the events this instance publishes. One registry per app,
// so tests can build several. Labels are desks, modes and outcomes: never a number or an id.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isTerminal } from '../domain/transfer.js';
import type { HealthCheck, ObservedEvent } from '../ports.js';
import { isTrunkFallback, outcomeOf, rowOf } from '../records/call-record.js';

export class LinkageMetrics {
  readonly registry = new Registry();
  private readonly transfers: Counter<'direction' | 'mode' | 'outcome' | 'basis'>;
  private readonly answerSeconds: Histogram<'direction' | 'priority'>;
  private readonly trunkFallbacks: Counter<'direction'>;
  private readonly redirects: Counter<'via' | 'target' | 'action'>;
  private readonly feedbackDelay: Histogram<'desk' | 'outcome'>;
  private readonly bounceBacks: Counter<'desk'>;
  private readonly nuisanceFlags: Counter<'action' | 'kind'>;
  private readonly feedClients: Gauge;
  private readonly recordsDropped: Counter;
  private readonly recordsPending: Gauge;
  private readonly dependencyUp: Gauge<'dependency'>;

  constructor(options: { healthChecks: readonly HealthCheck[]; defaultMetrics?: boolean }) {
    const registers = [this.registry];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.transfers = new Counter({
      name: 'linkage_transfers_total',
      help: 'Transfers that ended, by direction (from-to), mode, outcome and routing basis',
      labelNames: ['direction', 'mode', 'outcome', 'basis'],
      registers,
    });
    this.answerSeconds = new Histogram({
      name: 'linkage_key_press_to_answer_seconds',
      help: 'From the transfer key press to the other desk answering',
      labelNames: ['direction', 'priority'],
      buckets: [1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60],
      registers,
    });
    this.trunkFallbacks = new Counter({
      name: 'linkage_trunk_fallbacks_total',
      help: 'Attempts that moved on to the next backup trunk (备用专线)',
      labelNames: ['direction'],
      registers,
    });
    this.redirects = new Counter({
      name: 'linkage_redirects_total',
      help: 'Callers redirected to another hotline or a utility, carried over or advised',
      labelNames: ['via', 'target', 'action'],
      registers,
    });
    this.feedbackDelay = new Histogram({
      name: 'linkage_feedback_delay_seconds',
      help: 'From the transfer to the receiving desk writing the outcome back (反馈回写)',
      labelNames: ['desk', 'outcome'],
      buckets: [60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 7 * 24 * 3600],
      registers,
    });
    this.bounceBacks = new Counter({
      name: 'linkage_bounce_backs_total',
      help: 'Tickets sent back as not belonging to the receiving desk (无效回流)',
      labelNames: ['desk'],
      registers,
    });
    this.nuisanceFlags = new Counter({
      name: 'linkage_nuisance_flag_changes_total',
      help: 'Numbers flagged or unflagged as nuisance callers',
      labelNames: ['action', 'kind'],
      registers,
    });
    this.recordsDropped = new Counter({
      name: 'linkage_call_record_writes_dropped_total',
      help: 'Call record writes given up: the queue was full, the store refused the write, or the service stopped while the store was away',
      registers,
    });
    const pendingRecordWrites = () => this.pendingRecordWrites();
    this.recordsPending = new Gauge({
      name: 'linkage_call_record_writes_pending',
      help: 'Call record writes queued and not yet stored (they wait out a records store outage)',
      registers,
      collect() {
        this.set(pendingRecordWrites());
      },
    });
    const feedClientCount = () => this.feedClientCount();
    this.feedClients = new Gauge({
      name: 'linkage_feed_clients',
      help: 'Websocket clients on the live feed',
      registers,
      // Read when scraped, from the feed itself.
      collect() {
        this.set(feedClientCount());
      },
    });
    const checks = options.healthChecks;
    this.dependencyUp = new Gauge({
      name: 'linkage_dependency_up',
      help: '1 when a dependency answers its health check, else 0',
      labelNames: ['dependency'],
      registers,
      async collect() {
        await Promise.all(
          checks.map(async (check) => {
            const healthy = await check
              .check()
              .then((r) => r.healthy)
              .catch(() => false);
            this.set({ dependency: check.name }, healthy ? 1 : 0);
          }),
        );
      },
    });
  }

  recordWritesDropped(count: number): void {
    this.recordsDropped.inc(count);
  }

  private pendingRecordWrites: () => number = () => 0;

  /** Where the pending-writes gauge reads its value when scraped: the record writer. */
  countPendingRecordWrites(read: () => number): void {
    this.pendingRecordWrites = read;
  }

  private feedClientCount: () => number = () => 0;

  /** Where the feed-clients gauge reads its value when scraped: the live feed's hub. */
  countFeedClients(read: () => number): void {
    this.feedClientCount = read;
  }

  observe(event: ObservedEvent): void {
    switch (event.kind) {
      case 'transfer': {
        const { transfer, record } = event;
        const direction = `${transfer.direction.from}-${transfer.direction.to}`;
        // Entering answered, not staying there (the agent hanging up, the nuisance mark).
        if (record.to === 'answered' && record.from !== 'answered') {
          this.answerSeconds.observe(
            { direction, priority: transfer.priority },
            Math.max(0, (Date.parse(record.at) - Date.parse(transfer.createdAt)) / 1000),
          );
        }
        if (isTrunkFallback(record)) this.trunkFallbacks.inc({ direction });
        if (isTerminal(transfer.state) && record.from !== null && !isTerminal(record.from)) {
          const row = rowOf(transfer, record);
          // answeredAt on a terminal row only knows this transition; an end after a bridge was connected.
          const outcome = transfer.state === 'completed' ? 'connected' : (outcomeOf(row) ?? transfer.state);
          this.transfers.inc({ direction, mode: transfer.mode, outcome, basis: transfer.routing?.basis ?? 'none' });
        }
        return;
      }
      case 'redirect':
        this.redirects.inc({ via: event.via, target: event.target, action: event.action });
        return;
      case 'feedback':
        this.feedbackDelay.observe({ desk: event.desk, outcome: event.outcome }, event.delaySeconds);
        if (event.bounceBack) this.bounceBacks.inc({ desk: event.desk });
        return;
      case 'nuisance':
        this.nuisanceFlags.inc({ action: event.action, kind: event.nuisance ?? 'none' });
        return;
      default:
        return;
    }
  }
}
