import { pino } from 'pino';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { LiveLimits } from '../../src/live/limits.js';
import type { Logger } from '../../src/logger.js';
import type { Projection } from '../../src/projector/types.js';
import { openMemoryStorage, type Storage } from '../../src/storage.js';

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T;
  errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
  extensions?: Record<string, unknown>;
}

/**
 * Environment that turns every per-client limit off (rate limits and the per-stream
 * command queue bound), for tests and benches that deliberately flood one server.
 */
export const NO_CLIENT_LIMITS: Readonly<Record<string, string>> = {
  REGISTRATIONS_PER_MINUTE: '0',
  MUTATIONS_PER_MINUTE: '0',
  SUBSCRIBES_PER_MINUTE: '0',
  MAX_QUEUED_COMMANDS_PER_STREAM: '0',
};

export interface TestServer {
  app: App;
  url: string;
  /** The separate metrics listener's `/metrics` URL, when `METRICS_PORT` is set. */
  metricsUrl: string | undefined;
  /** The websocket (graphql-ws) endpoint, `ws://.../graphql`. */
  wsUrl: string;
  storage: Storage;
  /** POSTs one operation to /graphql, with a bearer token when given. */
  gql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<GraphQLResponse<T>>;
  /** Registers a user and returns its id and token. */
  register(username: string): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

/**
 * A real server on a free port over the given storage (a fresh memory store by
 * default). `close()` stops it and, when it made the storage, closes that too.
 */
export async function startTestServer(
  options: {
    storage?: Storage;
    live?: Partial<LiveLimits>;
    /** Environment settings (as `loadConfig` reads them) besides the memory store. */
    env?: Record<string, string>;
    projections?: readonly Projection[];
    logger?: Logger;
  } = {},
): Promise<TestServer> {
  const storage = options.storage ?? openMemoryStorage({});
  const config = loadConfig({ STORE: 'memory', LOG_LEVEL: 'silent', ...options.env });
  const app = await createApp(config, {
    storage,
    logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    ...(options.live ? { live: options.live } : {}),
    ...(options.projections ? { projections: options.projections } : {}),
  });
  const { url, metricsUrl } = await app.start(0);
  const gql: TestServer['gql'] = async (query, variables = {}, token) => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as GraphQLResponse<never>;
  };
  return {
    app,
    url,
    metricsUrl,
    wsUrl: `${url.replace(/^http/, 'ws')}/graphql`,
    storage,
    gql,
    async register(username) {
      const result = await gql<{ registerUser: { token: string; user: { id: string } } }>(
        `mutation ($input: RegisterUserInput!) {
          registerUser(input: $input) { ... on RegisterUserSuccess { token user { id } } ... on Error { code message } }
        }`,
        { input: { username, displayName: username } },
      );
      const success = result.data?.registerUser;
      if (!success?.token) throw new Error(`register ${username}: ${JSON.stringify(result)}`);
      return { id: success.user.id, token: success.token };
    },
    async close() {
      await app.stop();
      if (!options.storage) await storage.close();
    },
  };
}
