import { z } from 'zod';
import { DEFAULT_MAX_JSON_DEPTH } from './http/requestBody.js';

/** Where events and read documents live. `auto`: MONGODB_URI, else embedded MongoDB, else memory. */
export const StoreKind = { Auto: 'auto', Memory: 'memory', Mongo: 'mongo' } as const;
export type StoreKind = (typeof StoreKind)[keyof typeof StoreKind];

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * A whole number written in decimal digits (`z.coerce.number` would also take "0x10",
 * "1e3" or " 7 "), as a number.
 */
const digits = z
  .string()
  .regex(/^\d+$/, 'must be a whole number in decimal digits')
  .transform(Number);

const positiveInt = (fallback: number) =>
  digits.pipe(z.number().int().positive()).default(fallback);

/**
 * Longest delay Node's timers take (about 24.8 days): a longer `setTimeout` fires at once
 * (after 1 ms), so every setting used as a delay stays at or under it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Shortest `PROJECTOR_LEASE_TTL_MS`: a replica set election (electionTimeoutMillis, 10 s)
 * must not outlast the lease, or a failover hands the projector to another instance while
 * its holder still runs (the holder renews every third of the ttl).
 */
export const MIN_PROJECTOR_LEASE_TTL_MS = 10_000;

/** Longest `SESSION_TTL` and `IDEMPOTENCY_TTL_MS`: 10 years (dates past it stop making sense). */
export const MAX_TTL_MS = 3_650 * 24 * 60 * 60_000;

/** Milliseconds used as a timer's delay: from `min` to `MAX_TIMER_MS`. */
const delayMs = (min: number, why = '') =>
  digits.pipe(
    z
      .number()
      .int()
      .min(min, `must be at least ${min} ms${why}`)
      .max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest timer)`),
  );

/** Characters a `TOKEN_SECRET` has at least, whitespace not counted (32 spaces sign nothing). */
export const TOKEN_SECRET_MIN = 32;

/** A TCP port; 0 asks the system for any free one. */
const port = () => digits.pipe(z.number().int().min(0).max(65_535));

/** A whole number >= 0 where 0 turns the limit off. */
const limitOrOff = (fallback: number) => digits.pipe(z.number().int().min(0)).default(fallback);

/** Which documents the server executes: see README "Trusted documents". */
export const TrustedDocuments = { Allow: 'allow', Only: 'only' } as const;
export type TrustedDocuments = (typeof TrustedDocuments)[keyof typeof TrustedDocuments];

const booleanFlag = z.enum(['true', 'false']).transform((v) => v === 'true');
/** A comma-separated list: each entry trimmed, empty ones dropped. */
const commaList = z.string().transform((list) =>
  list
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean),
);

const DAY_MS = 24 * 60 * 60_000;

/** `30d`, `12h`, `15m`, `90s` or plain seconds, in milliseconds. */
function durationMs(value: string): number {
  const unit = value.at(-1) ?? '';
  const units: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS };
  const scale = units[unit];
  return scale === undefined ? Number(value) * 1_000 : Number(value.slice(0, -1)) * scale;
}

const envSchema = z.object({
  PORT: port().default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  STORE: z.enum([StoreKind.Auto, StoreKind.Memory, StoreKind.Mongo]).default(StoreKind.Auto),
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .optional(),
  MONGODB_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,63}$/, 'must be 1-63 letters, digits, _ or -')
    .default('corkboard'),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  /** How long a mutation waits for its commit to be projected before answering. */
  READ_YOUR_WRITES_TIMEOUT_MS: delayMs(1).default(5_000),
  /** Change log entries kept for subscription replay. */
  CHANGE_LOG_RETENTION: positiveInt(100_000),
  /**
   * Secret from which the tokens of registrations carrying an idempotency key are
   * derived, so a retried registration returns the same token on any instance.
   */
  TOKEN_SECRET: z
    .string()
    .refine(
      (secret) => secret.replace(/\s/g, '').length >= TOKEN_SECRET_MIN,
      `must have at least ${TOKEN_SECRET_MIN} characters, spaces not counted`,
    )
    .optional(),
  /**
   * How long the projector lease lasts without renewal: a projector that died is replaced
   * after it. Keep it above a replica set election (electionTimeoutMillis is 10 s).
   */
  PROJECTOR_LEASE_TTL_MS: delayMs(
    MIN_PROJECTOR_LEASE_TTL_MS,
    ' (above a replica set election, 10 s)',
  ).default(20_000),
  /** How long the embedded MongoDB may take to start (it may download mongod first). */
  EMBEDDED_MONGO_TIMEOUT_MS: delayMs(1).default(60_000),
  /** Bearer token of the admin API and /admin; unset: a random one per process, printed at start. */
  ADMIN_TOKEN: z
    .string()
    .regex(/^[A-Za-z0-9_-]{32,128}$/, 'must be 32-128 letters, digits, _ or -')
    .optional(),
  /** /readyz answers 503 when the projector trails the store by more than this. */
  READY_MAX_LAG_SECONDS: positiveInt(30),
  // Limits and production posture: README "Limits and security".
  /** Only `production` changes anything. */
  NODE_ENV: z.string().optional(),
  IDEMPOTENCY_TTL_MS: digits
    .pipe(
      z
        .number()
        .int()
        .min(1_000, 'must be at least 1000 ms')
        .max(MAX_TTL_MS, 'must be at most 10 years'),
    )
    .default(24 * 60 * 60 * 1000),
  MAX_BODY_BYTES: positiveInt(1024 * 1024),
  MAX_JSON_DEPTH: positiveInt(DEFAULT_MAX_JSON_DEPTH),
  REQUEST_TIMEOUT_MS: delayMs(1).default(30_000),
  HEADERS_TIMEOUT_MS: delayMs(1).default(10_000),
  KEEP_ALIVE_TIMEOUT_MS: delayMs(1).default(5_000),
  DRAIN_TIMEOUT_MS: delayMs(1).default(10_000),
  /** On SIGTERM, how long to go on serving (not ready) before no longer accepting. */
  SHUTDOWN_DELAY_MS: delayMs(0).optional(),
  GRAPHIQL: booleanFlag.optional(),
  INTROSPECTION: booleanFlag.optional(),
  CSRF_PREVENTION: booleanFlag.optional(),
  /** Serve /metrics, without the admin token, on this port too (0: any free port). */
  METRICS_PORT: port().optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  TRUSTED_DOCUMENTS: z.enum([TrustedDocuments.Allow, TrustedDocuments.Only]).default('allow'),
  REGISTRATIONS_PER_MINUTE: limitOrOff(20),
  MUTATIONS_PER_MINUTE: limitOrOff(600),
  SUBSCRIBES_PER_MINUTE: limitOrOff(120),
  MAX_QUEUED_COMMANDS_PER_STREAM: limitOrOff(100),
  CORS_ORIGINS: commaList
    .pipe(z.array(z.url('each entry must be an origin like https://app.example.com')))
    .optional(),
  // Identity (README "Identity"): without AUTH_ISSUER, the built-in issuer.
  AUTH_ISSUER: z.url('must be the issuer URL, e.g. https://id.example.com/realms/main').optional(),
  AUTH_JWKS_URL: z.url('must be a URL').optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  AUTH_CLOCK_SKEW_SECONDS: digits.pipe(z.number().int().min(0).max(300)).default(30),
  AUTH_USERNAME_CLAIM: commaList
    .pipe(z.array(z.string()).min(1, 'must name at least one claim'))
    .optional(),
  AUTH_JWKS_COOLDOWN_MS: delayMs(0).default(30_000),
  SESSION_TTL: z
    .string()
    .regex(/^\d+[smhd]?$/, 'must be a duration like 30d, 12h, 15m or 3600 (seconds)')
    .transform(durationMs)
    .pipe(z.number().min(10_000, 'must be at least 10 s').max(MAX_TTL_MS, 'must be at most 3650d'))
    .default(30 * DAY_MS),
  SIGN_IN_RATE_LIMIT: digits.pipe(z.number().int().min(0)).default(10),
  /**
   * Days an archived board stays in the hot store before its streams move to the archive
   * (README "Archiving old boards"); unset: never. Fractions allowed (0.5 = 12 h).
   */
  ARCHIVE_AFTER_DAYS: z.coerce
    .number()
    .min(0, 'must be a number of days >= 0')
    .max(36_500, 'must be at most 36500 days')
    .optional(),
});

/** The process configuration, parsed once from the environment. */
export interface Config {
  port: number;
  host: string;
  store: StoreKind;
  mongodbUri: string | undefined;
  mongodbDb: string;
  logLevel: (typeof logLevels)[number];
  readYourWritesTimeoutMs: number;
  changeLogRetention: number;
  projectorLeaseTtlMs: number;
  /** `ARCHIVE_AFTER_DAYS` in milliseconds; undefined: archived boards' streams never move. */
  archiveAfterMs: number | undefined;
  embeddedMongoTimeoutMs: number;
  /** Unset: a random secret per process (a retried registration then works only on it). */
  tokenSecret: string | undefined;
  /** Unset: the app makes a random admin token per process and prints it at start. */
  adminToken: string | undefined;
  readyMaxLagSeconds: number;
  /** NODE_ENV=production: the defaults below take their safe side, errors say less. */
  production: boolean;
  /** How long an idempotency key replays its first result. @default 24 h */
  idempotencyTtlMs: number;
  http: HttpLimits;
  /** Serve GraphiQL on GET /graphql. @default true, false in production */
  graphiql: boolean;
  /** Answer introspection queries. @default GRAPHIQL's value */
  introspection: boolean;
  /** Require a header on requests a browser sends without preflight. @default production */
  csrfPrevention: boolean;
  /** Origins allowed to call from a browser (CORS); empty: the same origin only. */
  corsOrigins: string[];
  /**
   * A second listener serving only /metrics, to anyone who reaches it; unset: /metrics
   * is served on the main port to the bearer of the admin token only.
   */
  metricsListener: { host: string; port: number } | undefined;
  /** `only`: execute only the SDK's operations (by hash) and admin requests. @default allow */
  trustedDocuments: TrustedDocuments;
  clientLimits: ClientLimits;
  /** How callers are identified: the built-in issuer, or an OpenID Connect provider. */
  auth: AuthConfig;
}

/** Per-client rate limits and command queue bound (README "Limits and security"); 0 is off. */
export interface ClientLimits {
  /** `registerUser` calls per client address per minute. @default 20 */
  registrationsPerMinute: number;
  /** Mutation fields per client (user, or address when anonymous) per minute. @default 600 */
  mutationsPerMinute: number;
  /** Subscriptions started per client per minute. @default 120 */
  subscribesPerMinute: number;
  /** Commands waiting behind the running one on one stream; beyond, `BUSY`. @default 100 */
  maxQueuedCommandsPerStream: number;
}

/** `AUTH_*`: null `oidc` means the built-in issuer (tokens from `registerUser`). */
export interface AuthConfig {
  /** Set by `AUTH_ISSUER`: bearer tokens are the provider's JWTs. */
  oidc: OidcConfig | null;
  /** `SESSION_TTL`: a built-in session expires this long after its last use. @default 30 days */
  sessionTtlMs: number;
  /** `SIGN_IN_RATE_LIMIT`: `signIn` attempts per username per minute; 0: no limit. @default 10 */
  signInAttemptsPerMinute: number;
}

/** An OpenID Connect provider whose JWTs the server verifies (README "Identity"). */
export interface OidcConfig {
  /** `AUTH_ISSUER`: the exact `iss` of its tokens and the base of its discovery document. */
  issuer: string;
  /** `AUTH_JWKS_URL`. @default the discovery document's `jwks_uri` */
  jwksUrl: string | undefined;
  /** `AUTH_AUDIENCE`: the `aud` a token must name. @default unchecked */
  audience: string | undefined;
  /** `AUTH_CLOCK_SKEW_SECONDS`: leeway on `exp` and `nbf`. @default 30 */
  clockSkewSeconds: number;
  /** `AUTH_USERNAME_CLAIM`: claims tried in order for a new user's username. */
  usernameClaims: string[];
  /**
   * `AUTH_JWKS_COOLDOWN_MS`: after a key-set fetch, how long a token with an unknown
   * `kid` is refused without fetching again (a bound on what forged tokens can make the
   * server fetch). @default 30_000
   */
  jwksCooldownMs: number;
}

/** Claims tried for a JIT-provisioned user's username when `AUTH_USERNAME_CLAIM` is unset. */
export const DEFAULT_USERNAME_CLAIMS: readonly string[] = ['preferred_username', 'email'];

/** Bounds of the HTTP server (README "Limits and security"). */
export interface HttpLimits {
  /** Largest request body. @default 1 MiB */
  maxBodyBytes: number;
  /** Deepest nesting of arrays and objects in a JSON body. @default 64 */
  maxJsonDepth: number;
  /** Time to receive a whole request (node `server.requestTimeout`). @default 30 s */
  requestTimeoutMs: number;
  /** Time to receive a request's headers (node `server.headersTimeout`). @default 10 s */
  headersTimeoutMs: number;
  /** Idle time before a kept-alive socket is closed. @default 5 s */
  keepAliveTimeoutMs: number;
  /** On SIGTERM/SIGINT, how long requests already received may take to finish. @default 10 s */
  drainTimeoutMs: number;
  /**
   * On SIGTERM/SIGINT, how long the server goes on accepting and serving (`/readyz` 503,
   * every answer `Connection: close`) before it stops accepting and drains: a load
   * balancer's time to notice. @default 5 s in production, 0 otherwise
   */
  shutdownDelayMs: number;
}

/** Variables whose values are secrets (a MongoDB URI may hold a password): never echoed. */
export const SECRET_SETTINGS: ReadonlySet<string> = new Set([
  'ADMIN_TOKEN',
  'TOKEN_SECRET',
  'MONGODB_URI',
]);

/** A configuration value is unusable; `message` is one line naming the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses the environment into a `Config`. Throws `ConfigError` with a one-line
 * message naming the first bad variable. Empty strings count as unset.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key in envSchema.shape && value !== ''),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    // A secret's value never reaches the output (a log collector keeps stderr).
    const shown = SECRET_SETTINGS.has(name)
      ? ' (value not shown)'
      : `=${JSON.stringify(env[name])}`;
    throw new ConfigError(`invalid ${name}${shown}: ${issue.message}`);
  }
  const e = parsed.data;
  if (e.STORE === StoreKind.Mongo && !e.MONGODB_URI) {
    throw new ConfigError('invalid STORE="mongo": MONGODB_URI must be set too');
  }
  const production = e.NODE_ENV === 'production';
  if (production && !e.MONGODB_URI && present['STORE'] !== StoreKind.Memory) {
    throw new ConfigError(
      'NODE_ENV=production needs a database: set MONGODB_URI (a replica set), or STORE=memory to run on memory on purpose (every write is lost on restart)',
    );
  }
  const onlyTrusted = e.TRUSTED_DOCUMENTS === TrustedDocuments.Only;
  if (onlyTrusted && e.GRAPHIQL === true) {
    // GraphiQL sends the documents typed into it: exactly what `only` refuses.
    throw new ConfigError(
      'invalid GRAPHIQL="true": TRUSTED_DOCUMENTS="only" runs only manifest operations, so GraphiQL stays off',
    );
  }
  const graphiql = e.GRAPHIQL ?? (!production && !onlyTrusted);
  return {
    port: e.PORT,
    host: e.HOST,
    store: e.STORE,
    mongodbUri: e.MONGODB_URI,
    mongodbDb: e.MONGODB_DB,
    logLevel: e.LOG_LEVEL,
    readYourWritesTimeoutMs: e.READ_YOUR_WRITES_TIMEOUT_MS,
    changeLogRetention: e.CHANGE_LOG_RETENTION,
    projectorLeaseTtlMs: e.PROJECTOR_LEASE_TTL_MS,
    archiveAfterMs: e.ARCHIVE_AFTER_DAYS === undefined ? undefined : e.ARCHIVE_AFTER_DAYS * DAY_MS,
    embeddedMongoTimeoutMs: e.EMBEDDED_MONGO_TIMEOUT_MS,
    tokenSecret: e.TOKEN_SECRET,
    adminToken: e.ADMIN_TOKEN,
    readyMaxLagSeconds: e.READY_MAX_LAG_SECONDS,
    production,
    idempotencyTtlMs: e.IDEMPOTENCY_TTL_MS,
    http: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxJsonDepth: e.MAX_JSON_DEPTH,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
      drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
      shutdownDelayMs: e.SHUTDOWN_DELAY_MS ?? (production ? 5_000 : 0),
    },
    graphiql,
    introspection: e.INTROSPECTION ?? graphiql,
    csrfPrevention: e.CSRF_PREVENTION ?? production,
    corsOrigins: (e.CORS_ORIGINS ?? []).map((origin) => new URL(origin).origin),
    metricsListener:
      e.METRICS_PORT === undefined ? undefined : { host: e.METRICS_HOST, port: e.METRICS_PORT },
    trustedDocuments: e.TRUSTED_DOCUMENTS,
    clientLimits: {
      registrationsPerMinute: e.REGISTRATIONS_PER_MINUTE,
      mutationsPerMinute: e.MUTATIONS_PER_MINUTE,
      subscribesPerMinute: e.SUBSCRIBES_PER_MINUTE,
      maxQueuedCommandsPerStream: e.MAX_QUEUED_COMMANDS_PER_STREAM,
    },
    auth: {
      sessionTtlMs: e.SESSION_TTL,
      signInAttemptsPerMinute: e.SIGN_IN_RATE_LIMIT,
      oidc: e.AUTH_ISSUER
        ? {
            issuer: e.AUTH_ISSUER,
            jwksUrl: e.AUTH_JWKS_URL,
            audience: e.AUTH_AUDIENCE,
            clockSkewSeconds: e.AUTH_CLOCK_SKEW_SECONDS,
            usernameClaims: e.AUTH_USERNAME_CLAIM ?? [...DEFAULT_USERNAME_CLAIMS],
            jwksCooldownMs: e.AUTH_JWKS_COOLDOWN_MS,
          }
        : null,
    },
  };
}
