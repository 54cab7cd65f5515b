import { ConfigError, loadConfig, StoreKind } from './config.js';
import { DEMO_PATHS } from './demo/demoPage.js';
import { adminBanner, adminTokenOutput } from './ops/banner.js';
import { assertPortAvailable, PortUnavailable, stopOnSignals } from './processLifecycle.js';
import { startTracing } from './telemetry/tracing.js';

/** Process entry: config -> app -> listen; stops cleanly on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`corkboard: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  try {
    await assertPortAvailable(config.host, config.port);
    const metrics = config.metricsListener;
    if (metrics) {
      await assertPortAvailable(metrics.host, metrics.port, {
        host: 'METRICS_HOST',
        port: 'METRICS_PORT',
      });
    }
  } catch (error) {
    if (error instanceof PortUnavailable) {
      console.error(`corkboard: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  // Tracing starts before the app is imported, so its instrumentations see `node:http`
  // and `mongodb` load; nothing of the OpenTelemetry SDK is loaded when it is off.
  let tracing;
  try {
    // The mongodb instrumentation only when the store may be MongoDB.
    tracing = await startTracing(process.env, { mongodb: config.store !== StoreKind.Memory });
  } catch (error) {
    console.error(`corkboard: tracing: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  // Imported only now, so a bad config or a busy port is reported before the whole
  // server (and possibly an embedded mongod) is loaded.
  const { createApp } = await import('./app.js');
  const app = await createApp(config);
  const { url, metricsUrl } = await app.start();
  app.logger.info({ store: app.storage.description }, 'storage ready');
  if (tracing) app.logger.info({ tracing: tracing.description }, 'tracing on');
  const graphiql = config.graphiql
    ? `\n  GraphiQL: ${url}/graphql\n  Demo:     ${url}${DEMO_PATHS.page}`
    : '';
  const { lines, tokenLine } = adminBanner(url, app.admin, metricsUrl);
  console.log(
    `\n  Corkboard is running on ${app.storage.description}${graphiql}\n  GraphQL:  ${url}/graphql\n  Health:   ${url}/health\n${lines}`,
  );
  // A generated admin token never goes into the log stream (see adminTokenOutput).
  if (tokenLine) {
    const output = adminTokenOutput(process.stdout.isTTY === true, config.production);
    if (output === 'stdout') console.log(tokenLine);
    else if (output === 'stderr') console.error(tokenLine);
  }
  stopOnSignals(async () => {
    await app.stop();
    // The spans of the drained requests are exported before the process exits.
    await tracing?.shutdown();
  }, app.logger);
}

main().catch((error: unknown) => {
  console.error('corkboard: failed to start:', error);
  process.exit(1);
});
