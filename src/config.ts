// The one schema over configuration: config/default.json, then the file named by CONFIG_FILE, then
// environment variables. Read once by main.ts, frozen, and a bad setting stops the service at boot
// with the setting's path and the reason.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FreeswitchInstancesSchema } from './adapters/freeswitch/config.js';
import { SipEdgeConfigSchema } from './adapters/sip/sip-edge-config.js';
import { DeskIdSchema } from './domain/ticket-stub.js';

export const ROLES = ['agent', 'seat', 'supervisor', 'pbx'] as const;
export type Role = (typeof ROLES)[number];

const DeskConfigSchema = z
  .object({
    name: z.string().min(1),
    /** What is dialled to reach the desk through its trunks. */
    number: z.string().regex(/^[0-9*#+]{2,32}$/, 'digits, *, # or +'),
    /** Gateways in order; the next is tried when one is busy or down (备用专线). */
    trunks: z.array(z.string().regex(/^[0-9A-Za-z_.-]{1,64}$/, 'a gateway name')).min(1),
  })
  .strict();

export const ConfigSchema = z
  .object({
    http: z
      .object({
        host: z.string().min(1),
        port: z.coerce.number().int().min(0).max(65535),
        /** Base of the stub URL sent in Call-Info, as the receiving side reaches this service. */
        publicBaseUrl: z.url(),
        bodyLimitBytes: z.number().int().min(1024).max(1_048_576),
      })
      .strict(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    redis: z
      .object({
        /** null: the embedded in-memory stores (one instance, nothing survives a restart). */
        url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').nullable(),
        /** Redis Sentinel instead of one URL: the master's name and the sentinels to ask for it. */
        sentinel: z
          .object({
            name: z.string().min(1),
            nodes: z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'host:port')).min(1),
          })
          .strict()
          .nullable(),
        namespace: z.string().regex(/^[0-9A-Za-z_-]{1,32}$/),
        commandTimeoutMs: z.number().int().min(10).max(10_000),
        connectTimeoutMs: z.number().int().min(10).max(60_000),
      })
      .strict(),
    tickets: z.object({ ttlSeconds: z.number().int().min(60) }).strict(),
    transfers: z
      .object({
        ttlSeconds: z.number().int().min(60),
        idempotencyTtlSeconds: z.number().int().min(60),
        answerTimeoutSeconds: z.number().int().min(5).max(300),
        drainTimeoutSeconds: z.number().int().min(0).max(3600),
        deferredWriteRetryMs: z.number().int().min(50).max(60_000),
        /** How long an instance's hold on a transfer lasts unrenewed; another takes it over after that. */
        leaseTtlMs: z.number().int().min(1000).max(300_000),
      })
      .strict(),
    /** The live feed (src/feed/README.md). */
    feed: z
      .object({
        /** Browser Origins allowed to open the feed besides the service's own pages. */
        allowedOrigins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'an origin: scheme://host[:port]')),
        maxPayloadBytes: z.number().int().min(256).max(65_536),
        maxBufferedBytes: z.number().int().min(4096).max(64 * 1024 * 1024),
        heartbeatMs: z.number().int().min(500).max(120_000),
        subscribeTimeoutMs: z.number().int().min(100).max(60_000),
        /** Events kept in the shared log (Redis Stream MAXLEN ~), the reach of a resume. */
        historySize: z.number().int().min(100).max(1_000_000),
        replayLimit: z.number().int().min(10).max(100_000),
        timeZone: z.string().refine((tz) => {
          try {
            new Intl.DateTimeFormat('en', { timeZone: tz });
            return true;
          } catch {
            return false;
          }
        }, 'an IANA time zone such as Asia/Shanghai'),
        /** API key name → desks it may watch; a key not listed watches every desk. */
        desksByKey: z.record(z.string(), z.array(DeskIdSchema).min(1)),
        statsIntervalMs: z.number().int().min(10).max(60_000),
        switchAnnounceMs: z.number().int().min(1000).max(3_600_000),
      })
      .strict(),
    desks: z.record(DeskIdSchema, DeskConfigSchema).refine((d) => Object.keys(d).length >= 2, 'at least two desks'),
    /** The linkage policy (src/policy): the routing list, nuisance numbers, feedback. */
    policy: z
      .object({
        /** The routing list (分流转办事项清单), relative to the config directory. */
        routingList: z.string().min(1),
        /** A category the list does not know: allowed and recorded as unlisted, or refused. */
        unlistedCategories: z.enum(['allow', 'refuse']),
        nuisance: z
          .object({
            /** HMAC key for the stored number hashes; the sample key is refused in production. */
            hashKey: z.string().min(16, 'at least 16 characters'),
            flagTtlSeconds: z.number().int().min(60),
            repeatWindowSeconds: z.number().int().min(60),
            repeatThreshold: z.number().int().min(2),
          })
          .strict(),
        feedbackDeadlineHours: z.number().min(1).max(24 * 90),
        /** Days of the daily summary are calendar days at this offset (China Standard Time: 480). */
        summaryUtcOffsetMinutes: z.number().int().min(-720).max(840),
      })
      .strict(),
    records: z
      .object({
        /** null: call records in memory (embedded default, not durable). */
        postgresUrl: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL').nullable(),
        retentionDays: z.number().int().min(1),
        memoryCap: z.number().int().min(100),
      })
      .strict(),
    /** One entry per FreeSWITCH instance this service drives over the Event Socket (issue 3). */
    freeswitch: FreeswitchInstancesSchema,
    /** The SIP edge on drachtio (issue 4), or null for none. */
    sip: SipEdgeConfigSchema.nullable(),
    auth: z
      .object({
        /** The sample keys in config/default.json; refused when NODE_ENV is production. */
        developmentKeys: z.boolean(),
        keys: z
          .array(
            z
              .object({
                name: z.string().regex(/^[0-9A-Za-z_.-]{1,64}$/),
                role: z.enum(ROLES),
                key: z.string().min(16, 'an API key has at least 16 characters'),
              })
              .strict(),
          )
          .min(1),
      })
      .strict(),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;

const DEVELOPMENT_HASH_KEY = 'dev-nuisance-hash-key-change-me';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

function readJsonFile(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError([`${path}: must hold a JSON object`]);
    }
    return parsed as Json;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`${path}: not valid JSON (${(err as Error).message})`]);
  }
}

/** Objects merge key by key; arrays and scalars replace. */
function merge(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] =
      isPlainObject(current) && isPlainObject(value) ? merge(current, value) : value;
  }
  return out;
}
function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** API_KEYS="role:name:key,role:name:key" replaces the configured keys. */
function parseApiKeys(raw: string): unknown[] {
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [role, name, ...rest] = entry.split(':');
      return { role, name, key: rest.join(':') };
    });
}

function parseJsonList(raw: string, name: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ConfigError([`${name}: not valid JSON (${(err as Error).message})`]);
  }
}

function fromEnvironment(env: NodeJS.ProcessEnv): Json {
  const out: Json = {};
  const http: Json = {};
  if (env.HOST !== undefined) http.host = env.HOST;
  if (env.PORT !== undefined) http.port = env.PORT;
  if (env.PUBLIC_BASE_URL !== undefined) http.publicBaseUrl = env.PUBLIC_BASE_URL;
  if (Object.keys(http).length > 0) out.http = http;
  const redis: Json = {};
  if (env.REDIS_URL !== undefined) redis.url = env.REDIS_URL === '' ? null : env.REDIS_URL;
  if (env.REDIS_SENTINELS !== undefined) {
    redis.sentinel = {
      name: env.REDIS_SENTINEL_NAME ?? 'mymaster',
      nodes: env.REDIS_SENTINELS.split(',').map((n) => n.trim()).filter(Boolean),
    };
  }
  if (Object.keys(redis).length > 0) out.redis = redis;
  if (env.LOG_LEVEL !== undefined) out.logLevel = env.LOG_LEVEL;
  if (env.DATABASE_URL !== undefined) out.records = { postgresUrl: env.DATABASE_URL === '' ? null : env.DATABASE_URL };
  if (env.ROUTING_LIST !== undefined || env.NUISANCE_HASH_KEY !== undefined) {
    out.policy = {
      ...(env.ROUTING_LIST !== undefined ? { routingList: env.ROUTING_LIST } : {}),
      ...(env.NUISANCE_HASH_KEY !== undefined ? { nuisance: { hashKey: env.NUISANCE_HASH_KEY } } : {}),
    };
  }
  if (env.API_KEYS !== undefined) out.auth = { developmentKeys: false, keys: parseApiKeys(env.API_KEYS) };
  // FREESWITCH_INSTANCES='[{"switchId":"fs-a","desk":"12345","password":"…"}]' replaces the list, so
  // Event Socket passwords can stay out of files.
  if (env.FREESWITCH_INSTANCES !== undefined) out.freeswitch = parseJsonList(env.FREESWITCH_INSTANCES, 'FREESWITCH_INSTANCES');
  // SIP_EDGE='{"drachtio":{"secret":"…"},"desks":{…}}' replaces the sip section (its secret stays out of files).
  if (env.SIP_EDGE !== undefined) out.sip = parseJsonList(env.SIP_EDGE, 'SIP_EDGE');
  if (env.FEED_ALLOWED_ORIGINS !== undefined) {
    out.feed = { allowedOrigins: env.FEED_ALLOWED_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean) };
  }
  return out;
}

export function loadConfig(options: { defaultsPath: string; env: NodeJS.ProcessEnv }): Readonly<Config> {
  let raw = readJsonFile(options.defaultsPath);
  if (options.env.CONFIG_FILE) raw = merge(raw, readJsonFile(options.env.CONFIG_FILE));
  raw = merge(raw, fromEnvironment(options.env));

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`),
    );
  }
  const config = parsed.data;
  if (options.env.NODE_ENV === 'production' && config.auth.developmentKeys) {
    throw new ConfigError(['auth.keys: the development keys are refused in production; set API_KEYS or CONFIG_FILE']);
  }
  if (options.env.NODE_ENV === 'production' && config.policy.nuisance.hashKey === DEVELOPMENT_HASH_KEY) {
    throw new ConfigError(['policy.nuisance.hashKey: the sample key is refused in production; set NUISANCE_HASH_KEY']);
  }
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
