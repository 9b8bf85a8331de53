// buildApp wires the HTTP API onto the transfer service. It never listens: main.ts does, and tests
// use app.inject.
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ROLES as EVERY_ROLE, type Role } from '../config.js';
import { TicketIdSchema, TicketStubSchema } from '../domain/ticket-stub.js';
import { AppError } from '../errors.js';
import type { HealthCheck } from '../ports.js';
import { TransferRequestSchema } from '../transfer/transfer-request.js';
import type { TransferService } from '../transfer/transfer-service.js';
import { feedPlugin, type FeedOptions } from '../feed/feed-plugin.js';
import { ApiKeyAuthenticator, credentialOf, type ApiKey } from './auth.js';
import { handleError } from './error-handler.js';
import { registerPolicyRoutes, type PolicyRouteDeps } from './routes/policy-routes.js';
import { TransferViewSchema, transferView } from './transfer-view.js';

export interface AppDeps {
  readonly service: TransferService;
  readonly apiKeys: readonly ApiKey[];
  readonly healthChecks: readonly HealthCheck[];
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** The live feed and wall (src/feed); absent, the app has no feed. */
  readonly feed?: FeedOptions;
  /** The linkage policy's routes (routing list, redirects, nuisance, feedback, records, metrics). */
  readonly policy?: PolicyRouteDeps;
}

const ErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
});
const TransferIdParams = z.object({ id: z.uuid() });
const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,128}$/, '1-128 visible ASCII characters')
    .optional(),
});

const ROLES: Record<'transfer' | 'readTransfer' | 'readTicket', readonly Role[]> = {
  transfer: ['agent', 'pbx'],
  readTransfer: ['agent', 'supervisor', 'pbx'],
  readTicket: ['seat', 'supervisor', 'pbx'],
};

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // The app is typed as a plain FastifyInstance outside; inside, the zod type provider types each route.
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.bodyLimitBytes,
    return503OnClosing: true,
    // Errors raised before routing (a malformed URL, an overlong path parameter) get the one shape too.
    frameworkErrors: (error, request, reply) => handleError(error, request, reply),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url}` } }),
  );

  const auth = new ApiKeyAuthenticator(deps.apiKeys);
  const { service } = deps;

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: '12345 ↔ 110 linkage',
        description: 'One-key number-carrying transfer between the 12345 hotline and the 110 desk.',
        version: '0.1.0',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  // The API description is for holders of a key, whatever their role: it names every route. A browser
  // cannot send a bearer key when it opens a page, so a request without one is answered with a Basic
  // challenge; the browser then asks for a name (any) and a password (the key).
  await app.register(async (docs) => {
    docs.addHook('onRequest', async (request, reply) => {
      if (credentialOf(request.headers.authorization, request.headers['x-api-key']) === null) {
        void reply.header('www-authenticate', 'Basic realm="API description", charset="UTF-8"');
      }
      auth.authorise(request, EVERY_ROLE);
    });
    await docs.register(fastifySwaggerUi, { routePrefix: '/docs' });
  });

  app.post(
    '/v1/transfers',
    {
      schema: {
        summary: 'The transfer key: move the live call to another desk, or open a three-way call',
        headers: IdempotencyHeaders,
        body: TransferRequestSchema,
        response: { 202: z.object({ replay: z.boolean(), transfer: TransferViewSchema }), 400: ErrorSchema, 409: ErrorSchema, 503: ErrorSchema },
      },
    },
    async (request, reply) => {
      const principal = auth.authorise(request, ROLES.transfer);
      const { transfer, replay } = await service.request(request.body, {
        idempotencyKey: request.headers['idempotency-key'] ?? null,
        principal: principal.name,
      });
      return reply.status(202).send({ replay, transfer: transferView(transfer) });
    },
  );

  app.get(
    '/v1/transfers/:id',
    { schema: { summary: 'A transfer and its state', params: TransferIdParams, response: { 200: TransferViewSchema, 404: ErrorSchema } } },
    async (request) => {
      auth.authorise(request, ROLES.readTransfer);
      return transferView(await service.get(request.params.id));
    },
  );

  app.get(
    '/v1/transfers/:id/audit',
    { schema: { summary: "A transfer's transitions, oldest first", params: TransferIdParams } },
    async (request) => {
      auth.authorise(request, ROLES.readTransfer);
      return { transitions: await service.auditTrail(request.params.id) };
    },
  );

  app.delete(
    '/v1/transfers/:id',
    {
      schema: {
        summary: 'Cancel a transfer that has not been answered yet; the citizen stays with the agent',
        params: TransferIdParams,
        response: { 200: TransferViewSchema, 404: ErrorSchema, 409: ErrorSchema },
      },
    },
    async (request) => {
      auth.authorise(request, ROLES.transfer);
      return transferView(await service.cancel(request.params.id));
    },
  );

  app.get(
    '/v1/tickets/:id',
    {
      schema: {
        summary: "The receiving seat's read of the ticket stub (the caller's whole number)",
        params: z.object({ id: TicketIdSchema }),
        response: { 200: TicketStubSchema, 404: ErrorSchema },
      },
    },
    async (request) => {
      auth.authorise(request, ROLES.readTicket);
      return service.ticket(request.params.id);
    },
  );

  if (deps.feed) {
    await app.register(feedPlugin, { ...deps.feed, service, logger: deps.logger, authenticator: auth });
  }
  if (deps.policy) await registerPolicyRoutes(app, auth, deps.policy);

  app.get('/health/live', { schema: { hide: true } }, async () => ({ status: 'live' }));

  app.get('/health/ready', { schema: { summary: 'Readiness: the store and every switch connection' } }, async (_request, reply) => {
    const checks = await Promise.all(
      deps.healthChecks.map(async (check) => {
        try {
          return { name: check.name, ...(await check.check()) };
        } catch (err) {
          return { name: check.name, healthy: false, detail: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    const switches = service.switchStatuses();
    const anySwitch = switches.some((s) => s.state === 'connected');
    const critical = new Set(deps.healthChecks.filter((c) => c.critical !== false).map((c) => c.name));
    const ready = !service.isDraining && checks.every((c) => c.healthy || !critical.has(c.name)) && anySwitch;
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not-ready',
      draining: service.isDraining,
      checks,
      switches,
      pendingWrites: service.pendingWrites(),
      liveTransfers: service.liveCount,
    });
  });

  // Keeps handlers honest: anything they throw that is not an AppError is logged as a bug.
  app.addHook('onError', async (request, _reply, error) => {
    if (!(error instanceof AppError)) request.log.debug({ code: (error as { code?: string }).code }, 'request error');
  });

  return app;
}
