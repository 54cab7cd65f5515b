import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { createBoardArchivePlan } from './boards/archive/plan.js';
import { BoardAccessView } from './boards/board/accessView.js';
import { createBoardCommands } from './boards/commands.js';
import { BoardReads } from './boards/reads.js';
import { projections } from './boards/readModel.js';
import type { Config } from './config.js';
import type { Services } from './graphql/context.js';
import { GRAPHIQL_TABS } from './graphql/graphiqlTabs.js';
import { builtInAuthenticator, oidcAuthenticator } from './graphql/auth.js';
import { SDK_OPERATION_NAMES, trustedDocumentPolicy } from './graphql/trustedDocuments.js';
import { attachWebSocketServer, type AttachedWebSocketServer } from './graphql/websocket.js';
import { ArchiveSweeper } from './eventstore/archiveSweeper.js';
import { CredentialWatch } from './identity/credentialWatch.js';
import { createOidcVerifier } from './identity/oidcVerifier.js';
import { createGraphQLServer, GRAPHQL_PATH } from './graphql/yoga.js';
import { BoardChangeHub } from './live/BoardChangeHub.js';
import { resolveLiveLimits, type LiveLimits } from './live/limits.js';
import { createDemoPage } from './demo/demoPage.js';
import { createGraphiQLPage } from './http/graphiqlAssets.js';
import { checkGraphQLBody, RequestRejected, sendRejection } from './http/requestBody.js';
import { RequestDrain, serverOptions } from './http/serverLimits.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics } from './ops/metrics.js';
import { checkHealth, HealthReasonCode } from './ops/health.js';
import { createOpsRoutes, OPS_PATHS } from './ops/routes.js';
import { ChangeLogFollower } from './projector/ChangeLogFollower.js';
import { ProjectorRuntime } from './projector/ProjectorRuntime.js';
import type { Projection } from './projector/types.js';
import { openStorage, type Storage } from './storage.js';
import { RateLimiter } from './rateLimiter.js';
import { graphqlTracingPlugins } from './telemetry/graphqlTracing.js';

export interface AppDependencies {
  /** Storage to run on instead of the configured one; the app does not close it. */
  storage?: Storage;
  logger?: Logger;
  projections?: readonly Projection[];
  /** Bounds of the live side instead of `DEFAULT_LIVE_LIMITS`. */
  live?: Partial<LiveLimits>;
  /** How the identity provider's discovery document and keys are fetched. @default fetch */
  fetch?: typeof fetch;
}

/** A running Corkboard instance. */
export interface App {
  /**
   * Listens on `port` (0 = any free port) and resolves with the base URL, and with the
   * URL of the separate metrics listener when `METRICS_PORT` is set.
   */
  start(port?: number): Promise<{ url: string; metricsUrl?: string }>;
  /**
   * Shuts down as load balancers expect: `/readyz` 503 at once, accepting and serving
   * for `SHUTDOWN_DELAY_MS` (answers close their connections), then no new connection;
   * answers every request already received (at most `DRAIN_TIMEOUT_MS`), lets
   * subscribers receive the changes of every commit acknowledged, closes websockets
   * with 1001 and ends SSE subscriptions with `complete`; then closes the projector,
   * the follower and the storage it opened itself.
   */
  stop(): Promise<void>;
  readonly storage: Storage;
  readonly projector: ProjectorRuntime;
  readonly follower: ChangeLogFollower;
  /** Fans the change log out to this instance's subscriptions. */
  readonly live: BoardChangeHub;
  /** The graphql-ws side: open sockets and their subscriptions (prepared or running). */
  readonly websockets: Pick<AttachedWebSocketServer, 'connections' | 'subscriptions'>;
  readonly logger: Logger;
  readonly services: Services;
  /** The admin API's bearer token; `generated` when ADMIN_TOKEN was unset. */
  readonly admin: { token: string; generated: boolean };
}

/**
 * The composition root: storage, projector, change log follower and the HTTP
 * server. The only module that knows every part.
 */
export async function createApp(config: Config, deps: AppDependencies = {}): Promise<App> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const storage = deps.storage ?? (await openStorage(config, logger));
  const ownsStorage = !deps.storage;
  const projector = new ProjectorRuntime({
    store: storage.store,
    storage: storage.projector,
    projections: deps.projections ?? projections,
    logger,
    leaseTtlMs: config.projectorLeaseTtlMs,
  });
  const adminToken = config.adminToken ?? randomBytes(24).toString('base64url');
  const follower = new ChangeLogFollower(storage.projector.changeLog, logger);
  // ARCHIVE_AFTER_DAYS: archived boards' streams move to the archive; only the instance
  // holding the projector lease sweeps. A board archived or restored wakes it.
  const sweeper =
    config.archiveAfterMs === undefined
      ? undefined
      : new ArchiveSweeper({
          store: storage.store,
          plan: createBoardArchivePlan({
            store: storage.store,
            readModels: storage.projector.readModels,
          }),
          archiveAfterMs: config.archiveAfterMs,
          mayRun: () => projector.active,
          logger,
        });
  const stopWakingSweeper = follower.onEntry((entry) => {
    if (entry.invalidated.some((i) => i.typename === 'Board' && i.fields.includes('archived'))) {
      sweeper?.wake();
    }
  });
  const metrics = createMetrics({ knownOperations: SDK_OPERATION_NAMES });
  const liveLimits = resolveLiveLimits(deps.live);
  const live = new BoardChangeHub({
    changeLog: storage.projector.changeLog,
    follower: metrics.timeFanOut(follower),
    logger,
    limits: liveLimits,
  });
  // Reads decide access on the event store: this process's own member changes reach the
  // view as their appends return, other processes' through the change log.
  const access = new BoardAccessView(storage.store);
  const stopWatchingAccess = access.watch(follower);
  const commands = createBoardCommands({
    store: access.observe(metrics.instrumentStore(storage.store)),
    now: () => new Date(),
    newId: randomUUID,
    ...(config.tokenSecret ? { tokenSecret: config.tokenSecret } : {}),
    snapshots: storage.snapshots,
    onSnapshotError: (err, stream) => logger.warn({ err, stream }, 'stream snapshot failed'),
    ...(config.auth.oidc && { externalIssuer: config.auth.oidc.issuer }),
    signInRateLimit: { points: config.auth.signInAttemptsPerMinute, windowMs: 60_000 },
    maxQueuedCommandsPerStream: config.clientLimits.maxQueuedCommandsPerStream || Infinity,
  });
  const oidc = config.auth.oidc;
  const credentials = new CredentialWatch();
  // Every instance learns of ended sessions from the change log, and ends what it holds.
  const stopWatchingSessions = follower.onEntry((entry) => {
    for (const { typename, id, fields } of entry.invalidated) {
      if (typename === 'Session' && fields.includes('endedAt')) credentials.sessionEnded(id);
    }
  });
  const services: Services = {
    commands,
    auth: oidc
      ? oidcAuthenticator({
          config: oidc,
          verifier: createOidcVerifier(oidc, deps.fetch),
          commands,
          follower,
          readYourWritesTimeoutMs: config.readYourWritesTimeoutMs,
          logger,
        })
      : builtInAuthenticator({
          sessionTtlMs: config.auth.sessionTtlMs,
          commands,
          currentSession: async (tokenHash) => {
            const view = await storage.projector.readModels.active({ fresh: true });
            return new BoardReads(view, new AbortController().signal).sessionByTokenHash(tokenHash);
          },
          logger,
        }),
    credentials,
    sessionTtlMs: config.auth.sessionTtlMs,
    readModels: storage.projector.readModels,
    store: storage.store,
    access,
    follower,
    live,
    logger,
    readYourWritesTimeoutMs: config.readYourWritesTimeoutMs,
    projector,
    adminToken,
  };
  const trustedDocuments = trustedDocumentPolicy({ mode: config.trustedDocuments, adminToken });
  const yoga = createGraphQLServer(services, {
    trustedDocuments,
    plugins: [...metrics.yogaPlugins, ...graphqlTracingPlugins()],
    production: config.production,
    introspection: config.introspection,
    csrfPrevention: config.csrfPrevention,
    corsOrigins: config.corsOrigins,
    maxJsonDepth: config.http.maxJsonDepth,
    sseCloseGraceMs: liveLimits.slowConsumerCloseGraceMs,
    clientLimits: new RateLimiter({
      registrations: { points: config.clientLimits.registrationsPerMinute },
      mutations: { points: config.clientLimits.mutationsPerMinute },
      subscribes: { points: config.clientLimits.subscribesPerMinute },
    }),
  });
  const graphiql = config.graphiql
    ? createGraphiQLPage({
        title: 'Corkboard',
        pagePath: GRAPHQL_PATH,
        graphiql: { title: 'Corkboard', defaultTabs: GRAPHIQL_TABS },
      })
    : undefined;
  // The /demo board page: a development tool like GraphiQL, served when it is.
  const demo = config.graphiql ? createDemoPage() : undefined;
  const loops = () => [projector.status(), follower.status()];
  const health = {
    storeKind: storage.kind,
    store: storage.store,
    changeLog: storage.projector.changeLog,
    projector,
    follower,
    loops,
    maxLagSeconds: config.readyMaxLagSeconds,
  };
  const ops = createOpsRoutes({ metrics, metricsToken: adminToken, health, logger });

  /** Set on `stop()`: not ready any more, whatever else holds. */
  let stopping = false;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (stopping && url.pathname === OPS_PATHS.readyz) {
      res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      const reasons = [HealthReasonCode.ShuttingDown];
      res.end(JSON.stringify({ ready: false, status: 'stopping', reasons }));
      return;
    }
    if (await ops(req, res, url.pathname)) return;
    if (graphiql && (await graphiql.serve(req, res, url.pathname))) return;
    if (demo && (await demo.serve(req, res, url.pathname))) return;
    if (url.pathname === GRAPHQL_PATH) {
      if (req.method === 'POST') {
        try {
          await checkGraphQLBody(req, config.http);
        } catch (error) {
          if (!(error instanceof RequestRejected)) throw error;
          sendRejection(req, res, error);
          return;
        }
      }
      await yoga.handle(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not found', graphql: GRAPHQL_PATH }));
  };
  const server: Server = createServer(serverOptions(config.http), (req, res) => {
    drain.track(req, res);
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'internal error' }));
    });
  });
  const drain = new RequestDrain(server);
  // METRICS_PORT: /metrics alone, without a token, on a listener only the scraper reaches.
  const metricsRoutes = createOpsRoutes({ metrics, metricsToken: null, metricsOnly: true, health });
  const metricsServer = config.metricsListener
    ? createServer((req, res) => {
        const { pathname } = new URL(req.url ?? '/', 'http://localhost');
        metricsRoutes(req, res, pathname)
          .then((handled) => {
            if (handled) return;
            res.writeHead(404, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: 'not found', metrics: '/metrics' }));
          })
          .catch((error: unknown) => {
            logger.error({ err: error }, 'metrics request failed');
            if (!res.headersSent) res.writeHead(500);
            res.end();
          });
      })
    : undefined;
  const websockets = attachWebSocketServer(server, yoga, {
    logger,
    limits: liveLimits,
    maxJsonDepth: config.http.maxJsonDepth,
    trustedDocuments,
  });
  metrics.observe({
    projector,
    follower,
    // The sweeper shows in /metrics only: serving does not need it, so it never fails /readyz.
    loops: () => [...loops(), ...(sweeper ? [sweeper.status()] : [])],
    live: {
      subscribers: () => live.stats().subscribers,
      connections: () => websockets.connections,
      slowConsumers: () => live.stats().slowConsumers,
      groups: () => live.stats().groups,
      groupExecutions: () => live.stats().executions,
    },
    ready: async () => !stopping && (await checkHealth(health)).status === 'ok',
  });

  return {
    storage,
    projector,
    follower,
    live,
    websockets,
    logger,
    services,
    admin: { token: adminToken, generated: !config.adminToken },
    async start(port = config.port) {
      await follower.start();
      live.start();
      projector.start();
      sweeper?.start();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, config.host, () => resolve());
      });
      const { port: bound } = server.address() as AddressInfo;
      const host = ['0.0.0.0', '::'].includes(config.host) ? 'localhost' : config.host;
      const listener = config.metricsListener;
      if (!metricsServer || !listener) return { url: `http://${host}:${bound}` };
      await new Promise<void>((resolve, reject) => {
        metricsServer.once('error', reject);
        metricsServer.listen(listener.port, listener.host, () => resolve());
      });
      const metricsPort = (metricsServer.address() as AddressInfo).port;
      const metricsHost = ['0.0.0.0', '::'].includes(listener.host) ? 'localhost' : listener.host;
      return {
        url: `http://${host}:${bound}`,
        metricsUrl: `http://${metricsHost}:${metricsPort}/metrics`,
      };
    },
    async stop() {
      // As load balancers expect: not ready at once, yet still accepting and serving for
      // SHUTDOWN_DELAY_MS (each answer closing its connection) while they stop sending
      // here; then no new connection, and what was received is answered (bounded by
      // DRAIN_TIMEOUT_MS). Connections the kernel had queued are accepted meanwhile,
      // not reset.
      stopping = true;
      drain.closeConnectionsAfterAnswers();
      const { shutdownDelayMs, drainTimeoutMs } = config.http;
      if (shutdownDelayMs > 0) {
        logger.info({ shutdownDelayMs }, 'not ready; serving until the shutdown delay ends');
        await new Promise((resolve) => setTimeout(resolve, shutdownDelayMs));
      }
      const deadline = Date.now() + drainTimeoutMs;
      const unanswered = await drain.drain(drainTimeoutMs);
      if (unanswered > 0) logger.warn({ unanswered }, 'drain timeout: closing unanswered requests');
      // Every commit acknowledged so far reaches the subscribers before their sockets
      // close with 1001 and their SSE streams complete.
      if (!(await live.settled(Math.max(0, deadline - Date.now())))) {
        logger.warn('drain timeout: closing subscriptions with changes undelivered');
      }
      await websockets.close();
      live.stop();
      await drain.drain(Math.max(100, deadline - Date.now()), { streams: true });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (metricsServer?.listening) {
        metricsServer.closeAllConnections();
        await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      }
      await sweeper?.stop();
      stopWakingSweeper();
      await projector.stop();
      stopWatchingSessions();
      stopWatchingAccess();
      await follower.stop();
      if (ownsStorage) await storage.close();
    },
  };
}
