// The linkage policy's routes: the routing list, redirects, nuisance numbers, feedback write-back,
// call records (query and bulk export), the daily summary and /metrics.
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { resolveCategory, type RoutingList } from '../../domain/routing-list.js';
import { TicketIdSchema } from '../../domain/ticket-stub.js';
import { AppError } from '../../errors.js';
import { dayBounds, summariseDay } from '../../metrics/daily-summary.js';
import type { LinkageMetrics } from '../../metrics/metrics.js';
import type { FeedbackService } from '../../policy/feedback-service.js';
import { FlagRequestSchema, NumberRequestSchema, type NuisanceService } from '../../policy/nuisance-service.js';
import type { RedirectService } from '../../policy/redirect-service.js';
import { decodeCursor, FeedbackInputSchema, RecordFilterSchema, type CallRecord, type CallRecordStore } from '../../records/call-record.js';
import { TransferRequestSchema } from '../../transfer/transfer-request.js';
import type { ApiKeyAuthenticator } from '../auth.js';
import { transferView } from '../transfer-view.js';

export interface PolicyRouteDeps {
  readonly list: RoutingList;
  readonly redirects: RedirectService;
  readonly nuisance: NuisanceService;
  readonly feedback: FeedbackService;
  readonly records: CallRecordStore;
  readonly metrics: LinkageMetrics;
  readonly clock: { now(): Date };
  readonly settings: { readonly feedbackDeadlineHours: number; readonly summaryUtcOffsetMinutes: number };
}

const ANY = ['agent', 'seat', 'supervisor', 'pbx'] as const;

export async function registerPolicyRoutes(
  base: FastifyInstance,
  auth: ApiKeyAuthenticator,
  deps: PolicyRouteDeps,
): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.get('/v1/routing', { schema: { summary: 'The routing list (分流转办事项清单) in force' } }, async (request) => {
    auth.authorise(request, ANY);
    return deps.list;
  });

  app.get(
    '/v1/routing/suggest',
    { schema: { summary: 'The desk or redirect for a category (code or Chinese name)', querystring: z.object({ category: z.string().min(1).max(100) }) } },
    async (request) => {
      auth.authorise(request, ANY);
      const resolved = resolveCategory(deps.list, request.query.category);
      if (!resolved) throw new AppError('unknown_category', 'the category is not in the routing list', { category: request.query.category });
      const r = resolved.resolution;
      return {
        category: { code: resolved.category.code, name: resolved.category.name, section: resolved.category.section },
        subcategory: resolved.subcategory,
        ...(r.kind === 'desk'
          ? { action: 'transfer' as const, desk: r.desk }
          : { action: r.action === 'transfer' ? ('redirect-transfer' as const) : ('advise' as const), redirect: r }),
        emergencyDesk: deps.list.emergency.desk,
      };
    },
  );

  app.post(
    '/v1/redirects',
    {
      schema: {
        summary: 'Redirect a caller to another hotline or a utility: carry the call over or advise, as the list says',
        body: TransferRequestSchema.omit({ to: true }),
        headers: z.object({ 'idempotency-key': z.string().regex(/^[\x21-\x7e]{1,128}$/).optional() }),
      },
    },
    async (request, reply) => {
      const principal = auth.authorise(request, ['agent', 'pbx']);
      const outcome = await deps.redirects.redirect(request.body, {
        idempotencyKey: request.headers['idempotency-key'] ?? null,
        principal: principal.name,
      });
      if (outcome.action === 'transfer') {
        return reply.status(202).send({ action: 'transfer', replay: outcome.replay, transfer: transferView(outcome.transfer) });
      }
      return reply.status(201).send(outcome);
    },
  );

  // Nuisance numbers arrive in bodies only: URLs are logged, bodies are not.
  app.post('/v1/nuisance/flags', { schema: { summary: 'Flag a number as a nuisance caller', body: FlagRequestSchema } }, async (request, reply) => {
    const principal = auth.authorise(request, ['agent', 'supervisor']);
    const flag = await deps.nuisance.flag(request.body, principal.name);
    return reply.status(201).send(flag);
  });
  app.post('/v1/nuisance/unflag', { schema: { summary: 'Remove a nuisance flag', body: NumberRequestSchema } }, async (request) => {
    auth.authorise(request, ['agent', 'supervisor']);
    return { removed: await deps.nuisance.unflag(request.body.callerNumber) };
  });
  app.post('/v1/nuisance/lookup', { schema: { summary: "A number's flag and recent calls", body: NumberRequestSchema } }, async (request) => {
    auth.authorise(request, ['agent', 'supervisor', 'pbx']);
    return deps.nuisance.lookup(request.body.callerNumber);
  });
  app.post(
    '/v1/nuisance/calls',
    { schema: { summary: 'The switch reports an incoming call: counts it, answers whether the number is flagged or repeating', body: NumberRequestSchema } },
    async (request) => {
      auth.authorise(request, ['pbx']);
      return deps.nuisance.countCall(request.body.callerNumber);
    },
  );
  app.get(
    '/v1/nuisance/flags',
    { schema: { summary: 'Flagged numbers (masked)', querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }) } },
    async (request) => {
      auth.authorise(request, ['agent', 'supervisor']);
      return { flags: await deps.nuisance.list(request.query.limit) };
    },
  );

  app.post(
    '/v1/tickets/:id/feedback',
    { schema: { summary: "The receiving desk writes the ticket's outcome back (反馈回写)", params: z.object({ id: TicketIdSchema }), body: FeedbackInputSchema } },
    async (request, reply) => {
      const principal = auth.authorise(request, ['seat', 'pbx']);
      return reply.status(201).send(await deps.feedback.post(request.params.id, request.body, principal.name));
    },
  );
  app.get(
    '/v1/tickets/:id/feedback',
    { schema: { summary: 'What the receiving desk wrote back', params: z.object({ id: TicketIdSchema }) } },
    async (request) => {
      auth.authorise(request, ['agent', 'supervisor', 'pbx']);
      return deps.feedback.forTicket(request.params.id);
    },
  );
  app.get(
    '/v1/feedback/overdue',
    { schema: { summary: 'Connected transfers with no feedback past the deadline', querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }) } },
    async (request) => {
      auth.authorise(request, ['agent', 'supervisor']);
      const { deadlineHours, records } = await deps.feedback.overdue(request.query.limit);
      return { deadlineHours, records };
    },
  );

  const QuerySchema = RecordFilterSchema.extend({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().max(200).optional(),
  });
  app.get('/v1/transfers', { schema: { summary: 'Call records, newest first, paged', querystring: QuerySchema } }, async (request) => {
    auth.authorise(request, ['agent', 'supervisor']);
    const { limit, cursor, ...filter } = request.query;
    if (cursor !== undefined && decodeCursor(cursor) === null) {
      throw new AppError('invalid_request', 'the cursor is not one this API gave out', { field: 'cursor' });
    }
    return records(() => deps.records.query(filter, { limit, cursor: cursor ?? null }));
  });

  app.get(
    '/v1/transfers/:id/record',
    { schema: { summary: "A transfer's call record: transitions, outcome, owner (首接负责制), routing, feedback", params: z.object({ id: z.uuid() }) } },
    async (request) => {
      auth.authorise(request, ['agent', 'supervisor']);
      const record = await records(() => deps.records.get(request.params.id));
      if (!record) throw new AppError('transfer_not_found', `no call record for transfer ${request.params.id}`);
      return record;
    },
  );

  app.get(
    '/v1/transfers/export',
    {
      schema: {
        summary: 'Every matching call record, streamed as NDJSON or CSV',
        querystring: RecordFilterSchema.extend({ format: z.enum(['ndjson', 'csv']).default('ndjson') }),
      },
    },
    async (request, reply) => {
      auth.authorise(request, ['supervisor']);
      const { format, ...filter } = request.query;
      const rows = deps.records.stream(filter);
      if (format === 'csv') {
        reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="call-records.csv"');
        return reply.send(Readable.from(csvLines(rows)));
      }
      reply.header('content-type', 'application/x-ndjson; charset=utf-8');
      return reply.send(Readable.from(ndjsonLines(rows)));
    },
  );

  app.get(
    '/v1/summary',
    {
      schema: {
        summary: 'Daily figures per direction: success rate, time to connect, bounce-backs, overdue feedback',
        querystring: z.object({ day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD'), desk: z.string().regex(/^[0-9A-Za-z_-]{2,32}$/).optional() }),
      },
    },
    async (request) => {
      auth.authorise(request, ['agent', 'supervisor']);
      if (Number.isNaN(Date.parse(`${request.query.day}T00:00:00Z`))) {
        throw new AppError('invalid_request', 'not a calendar day', { field: 'day' });
      }
      const bounds = dayBounds(request.query.day, deps.settings.summaryUtcOffsetMinutes);
      const desks = await summariseDay(deps.records.stream({ ...bounds, ...(request.query.desk ? { desk: request.query.desk } : {}) }), {
        now: deps.clock.now(),
        deadlineHours: deps.settings.feedbackDeadlineHours,
      });
      return { day: request.query.day, utcOffsetMinutes: deps.settings.summaryUtcOffsetMinutes, ...bounds, desks };
    },
  );

  // Prometheus scrapes with a supervisor key (scrape_config authorization: Bearer …): only health is open.
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    auth.authorise(request, ['supervisor']);
    const text = await deps.metrics.registry.metrics();
    return reply.header('content-type', deps.metrics.registry.contentType).send(text);
  });
}

async function records<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('store_unavailable', `the call records are unavailable: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function* ndjsonLines(rows: AsyncIterable<CallRecord>): AsyncGenerator<string> {
  for await (const row of rows) yield `${JSON.stringify(row)}\n`;
}

const CSV_COLUMNS = [
  'transferId', 'kind', 'ticketId', 'from', 'to', 'mode', 'priority', 'firstReceiver', 'owner', 'ownerBasis', 'callerId',
  'categoryCode', 'routingBasis', 'overrideReason', 'state', 'outcome', 'createdAt', 'answeredAt', 'endedAt', 'connectMs',
  'trunkFallbacks', 'feedbackOutcome', 'bounceBack', 'transitions',
] as const;

async function* csvLines(rows: AsyncIterable<CallRecord>): AsyncGenerator<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  for await (const r of rows) {
    const last = r.feedback.at(-1);
    const values: Record<(typeof CSV_COLUMNS)[number], unknown> = {
      transferId: r.transferId, kind: r.kind, ticketId: r.ticketId, from: r.from, to: r.to, mode: r.mode, priority: r.priority,
      firstReceiver: r.firstReceiver, owner: r.owner?.desk, ownerBasis: r.owner?.basis, callerId: r.callerId,
      categoryCode: r.categoryCode, routingBasis: r.routing?.basis, overrideReason: r.routing?.overrideReason, state: r.state,
      outcome: r.outcome, createdAt: r.createdAt, answeredAt: r.answeredAt, endedAt: r.endedAt, connectMs: r.connectMs,
      trunkFallbacks: r.trunkFallbacks, feedbackOutcome: last?.outcome, bounceBack: last?.bounceBack,
      transitions: r.transitions.map((t) => `${t.at} ${t.to}`).join('; '),
    };
    yield `${CSV_COLUMNS.map((c) => csvCell(values[c])).join(',')}\r\n`;
  }
}

/** RFC 4180 quoting; a leading =, +, - or @ is defused so a spreadsheet does not run it as a formula. */
function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (/^[=+\-@]/.test(text) && !/^-?\d/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
