import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { adminBanner } from './ops/banner.js';

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
  const app = await createApp(config);
  const { url } = await app.start();
  app.logger.info({ store: app.storage.description }, 'storage ready');
  console.log(
    `\n  Corkboard is running on ${app.storage.description}\n  GraphiQL: ${url}/graphql\n  Health:   ${url}/health\n${adminBanner(url, app.admin)}`,
  );
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        app.logger.error({ err: error }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error('corkboard: failed to start:', error);
  process.exit(1);
});
