import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  loadConfig,
  MAX_TIMER_MS,
  MAX_TTL_MS,
  MIN_PROJECTOR_LEASE_TTL_MS,
  SECRET_SETTINGS,
  TOKEN_SECRET_MIN,
} from '../../src/config.js';

describe('loadConfig', () => {
  it('applies defaults when nothing is set', () => {
    expect(loadConfig({})).toMatchObject({
      port: 4000,
      store: 'auto',
      mongodbUri: undefined,
      mongodbDb: 'corkboard',
      logLevel: 'info',
    });
  });

  it('reads ARCHIVE_AFTER_DAYS in days (fractions too), unset meaning never, and refuses a bad one', () => {
    const day = 24 * 60 * 60 * 1000;
    expect(loadConfig({}).archiveAfterMs).toBeUndefined();
    expect(loadConfig({ ARCHIVE_AFTER_DAYS: '' }).archiveAfterMs).toBeUndefined();
    expect(loadConfig({ ARCHIVE_AFTER_DAYS: '30' }).archiveAfterMs).toBe(30 * day);
    expect(loadConfig({ ARCHIVE_AFTER_DAYS: '0.5' }).archiveAfterMs).toBe(day / 2);
    expect(loadConfig({ ARCHIVE_AFTER_DAYS: '0' }).archiveAfterMs).toBe(0);
    for (const bad of ['-1', 'soon', '30d', '40000']) {
      expect(() => loadConfig({ ARCHIVE_AFTER_DAYS: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ARCHIVE_AFTER_DAYS: bad })).toThrow(/ARCHIVE_AFTER_DAYS/);
    }
  });

  it('leaves the admin token unset unless ADMIN_TOKEN is given, and reads the readiness lag bound', () => {
    expect(loadConfig({})).toMatchObject({ adminToken: undefined, readyMaxLagSeconds: 30 });
    const token = 'a'.repeat(32);
    expect(loadConfig({ ADMIN_TOKEN: token, READY_MAX_LAG_SECONDS: '5' })).toMatchObject({
      adminToken: token,
      readyMaxLagSeconds: 5,
    });
  });

  it('reads every variable it knows and treats empty strings as unset', () => {
    const config = loadConfig({
      PORT: '8080',
      STORE: 'mongo',
      MONGODB_URI: 'mongodb://localhost:27017/?replicaSet=rs0',
      LOG_LEVEL: 'debug',
      MONGODB_DB: '',
      CHANGE_LOG_RETENTION: '500',
      PROJECTOR_LEASE_TTL_MS: '30000',
    });
    expect(config).toMatchObject({
      port: 8080,
      store: 'mongo',
      mongodbUri: 'mongodb://localhost:27017/?replicaSet=rs0',
      mongodbDb: 'corkboard',
      logLevel: 'debug',
      changeLogRetention: 500,
      projectorLeaseTtlMs: 30_000,
    });
  });

  it.each([
    ['PORT', { PORT: 'eighty' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '0x10' }],
    ['PORT', { PORT: '8e3' }],
    ['PORT', { PORT: ' 80' }],
    ['CHANGE_LOG_RETENTION', { CHANGE_LOG_RETENTION: '1.5' }],
    ['STORE', { STORE: 'postgres' }],
    ['MONGODB_URI', { MONGODB_URI: 'http://localhost' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['CHANGE_LOG_RETENTION', { CHANGE_LOG_RETENTION: '-1' }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'too-short' }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'has spaces and is long enough to pass the length' }],
    ['READY_MAX_LAG_SECONDS', { READY_MAX_LAG_SECONDS: '0' }],
    ['PROJECTOR_LEASE_TTL_MS', { PROJECTOR_LEASE_TTL_MS: '0' }],
    ['MONGODB_URI', { STORE: 'mongo' }],
    ['MONGODB_URI', { NODE_ENV: 'production' }],
    ['STORE=memory', { NODE_ENV: 'production', STORE: 'auto' }],
    ['GRAPHIQL', { TRUSTED_DOCUMENTS: 'only', GRAPHIQL: 'true' }],
    ['TRUSTED_DOCUMENTS', { TRUSTED_DOCUMENTS: 'some' }],
    ['MUTATIONS_PER_MINUTE', { MUTATIONS_PER_MINUTE: '-1' }],
    ['METRICS_PORT', { METRICS_PORT: '70000' }],
    ['TOKEN_SECRET', { TOKEN_SECRET: ' '.repeat(TOKEN_SECRET_MIN) }],
    ['TOKEN_SECRET', { TOKEN_SECRET: `${'x '.repeat(TOKEN_SECRET_MIN - 2)}x` }],
    ['TOKEN_SECRET', { TOKEN_SECRET: 'x'.repeat(TOKEN_SECRET_MIN - 1) }],
  ])('stops with a one-line message naming %s when it is bad', (name, env) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(name);
    expect(message).not.toContain('\n');
  });

  /** The message `env` stops start-up with (fails when it starts). */
  function refusal(env: Record<string, string>): string {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`${JSON.stringify(env)} was accepted`);
  }

  it('refuses a projector lease shorter than a replica set election, naming the variable and the bound', () => {
    for (const ttl of ['1', '0', String(MIN_PROJECTOR_LEASE_TTL_MS - 1)]) {
      const message = refusal({ PROJECTOR_LEASE_TTL_MS: ttl });
      expect(message).toContain(`PROJECTOR_LEASE_TTL_MS="${ttl}"`);
      expect(message).toContain(`at least ${MIN_PROJECTOR_LEASE_TTL_MS} ms`);
    }
    expect(
      loadConfig({ PROJECTOR_LEASE_TTL_MS: String(MIN_PROJECTOR_LEASE_TTL_MS) })
        .projectorLeaseTtlMs,
    ).toBe(MIN_PROJECTOR_LEASE_TTL_MS);
    expect(loadConfig({}).projectorLeaseTtlMs).toBeGreaterThanOrEqual(MIN_PROJECTOR_LEASE_TTL_MS);
  });

  // Each is a timer's delay: past 2^31-1 ms Node fires it after 1 ms instead.
  const timers = [
    'READ_YOUR_WRITES_TIMEOUT_MS',
    'PROJECTOR_LEASE_TTL_MS',
    'EMBEDDED_MONGO_TIMEOUT_MS',
    'REQUEST_TIMEOUT_MS',
    'HEADERS_TIMEOUT_MS',
    'KEEP_ALIVE_TIMEOUT_MS',
    'DRAIN_TIMEOUT_MS',
    'SHUTDOWN_DELAY_MS',
    'AUTH_JWKS_COOLDOWN_MS',
  ];
  it.each(timers)('refuses %s past the longest timer, and takes the longest', (name) => {
    const message = refusal({ [name]: String(MAX_TIMER_MS + 1) });
    expect(message).toContain(name);
    expect(message).toContain(`at most ${MAX_TIMER_MS} ms`);
    expect(() => loadConfig({ [name]: String(MAX_TIMER_MS) })).not.toThrow();
  });

  it.each(timers.filter((name) => !['SHUTDOWN_DELAY_MS', 'AUTH_JWKS_COOLDOWN_MS'].includes(name)))(
    'refuses %s=0, a timer that would fire at once',
    (name) => {
      expect(refusal({ [name]: '0' })).toContain(name);
    },
  );

  it('keeps SHUTDOWN_DELAY_MS=0 and AUTH_JWKS_COOLDOWN_MS=0, where 0 means none', () => {
    expect(loadConfig({ SHUTDOWN_DELAY_MS: '0' }).http.shutdownDelayMs).toBe(0);
    const oidc = loadConfig({ AUTH_ISSUER: 'https://id.example.com', AUTH_JWKS_COOLDOWN_MS: '0' });
    expect(oidc.auth.oidc?.jwksCooldownMs).toBe(0);
  });

  it('refuses lifetimes past ten years, whose expiry dates would stop being dates', () => {
    expect(refusal({ IDEMPOTENCY_TTL_MS: String(MAX_TTL_MS + 1) })).toContain('IDEMPOTENCY_TTL_MS');
    expect(refusal({ IDEMPOTENCY_TTL_MS: '999' })).toContain('IDEMPOTENCY_TTL_MS');
    expect(loadConfig({ IDEMPOTENCY_TTL_MS: String(MAX_TTL_MS) }).idempotencyTtlMs).toBe(
      MAX_TTL_MS,
    );
    expect(refusal({ SESSION_TTL: '3651d' })).toContain('SESSION_TTL');
    expect(refusal({ SESSION_TTL: '99999999999d' })).toContain('SESSION_TTL');
    expect(loadConfig({ SESSION_TTL: '3650d' }).auth.sessionTtlMs).toBe(MAX_TTL_MS);
  });

  it('turns GraphiQL and introspection off by default under TRUSTED_DOCUMENTS=only', () => {
    expect(loadConfig({ TRUSTED_DOCUMENTS: 'only' })).toMatchObject({
      trustedDocuments: 'only',
      graphiql: false,
      introspection: false,
    });
  });

  it('starts in production only with a database or an explicit STORE=memory', () => {
    expect(loadConfig({ NODE_ENV: 'production', STORE: 'memory' })).toMatchObject({
      production: true,
      store: 'memory',
    });
    const uri = 'mongodb://db:27017/?replicaSet=rs0';
    expect(loadConfig({ NODE_ENV: 'production', MONGODB_URI: uri })).toMatchObject({
      mongodbUri: uri,
    });
    expect(() => loadConfig({ NODE_ENV: 'production', STORE: '' })).toThrow(ConfigError);
    expect(loadConfig({}).production).toBe(false);
  });

  it('reads the client limits (0 turns one off), the metrics listener and trusted documents', () => {
    expect(loadConfig({})).toMatchObject({
      clientLimits: {
        registrationsPerMinute: 20,
        mutationsPerMinute: 600,
        subscribesPerMinute: 120,
        maxQueuedCommandsPerStream: 100,
      },
      metricsListener: undefined,
      trustedDocuments: 'allow',
      graphiql: true,
    });
    expect(
      loadConfig({
        REGISTRATIONS_PER_MINUTE: '0',
        MUTATIONS_PER_MINUTE: '5',
        SUBSCRIBES_PER_MINUTE: '6',
        MAX_QUEUED_COMMANDS_PER_STREAM: '7',
        METRICS_PORT: '9464',
      }),
    ).toMatchObject({
      clientLimits: {
        registrationsPerMinute: 0,
        mutationsPerMinute: 5,
        subscribesPerMinute: 6,
        maxQueuedCommandsPerStream: 7,
      },
      metricsListener: { host: '127.0.0.1', port: 9464 },
      trustedDocuments: 'allow',
    });
  });

  it('names a bad secret variable without echoing its value', () => {
    const values: Record<string, string> = {
      ADMIN_TOKEN: 'the admin token, pasted with spaces',
      TOKEN_SECRET: 'a-short-token-secret',
      MONGODB_URI: 'postgres://admin:hunter2-password@db.example.com/corkboard',
    };
    expect(Object.keys(values).sort()).toEqual([...SECRET_SETTINGS].sort());
    for (const [name, value] of Object.entries(values)) {
      let message = '';
      try {
        loadConfig({ [name]: value });
      } catch (error) {
        message = (error as ConfigError).message;
      }
      expect(message).toMatch(new RegExp(`^invalid ${name} \\(value not shown\\): `));
      expect(message).not.toContain(value);
    }
    // Other values are shown, so that a typo is easy to see.
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow('invalid LOG_LEVEL="loud"');
  });
});
