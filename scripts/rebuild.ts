/**
 * Rebuilds every read model from the events, without downtime: replays all commits
 * into a fresh generation while the running servers keep serving the current one,
 * then switches atomically. Takes over the projector lease for the duration (the
 * running projector hands it over and resumes afterwards).
 *
 *   MONGODB_URI=mongodb://... npm run rebuild
 */
import { SingleBar } from 'cli-progress';
import { boardProjections } from '../src/boards/projections.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { ProjectorRuntime } from '../src/projector/ProjectorRuntime.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`rebuild: ${error.message}`);
  process.exit(1);
}
if (!config.mongodbUri || config.store === 'memory') {
  console.error(
    'rebuild: set MONGODB_URI to the replica set to rebuild. The memory store lives inside one ' +
      'server process; rebuild it there (ProjectorRuntime.rebuild).',
  );
  process.exit(1);
}

const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
const { openMongoStorage } = await import('../src/mongoStorage.js');
const storage = await openMongoStorage({
  uri: config.mongodbUri,
  dbName: config.mongodbDb,
  config,
});
const runtime = new ProjectorRuntime({
  store: storage.store,
  storage: storage.projector,
  projections: boardProjections,
  logger,
  owner: `rebuild-${process.pid}`,
});
const bar = new SingleBar({
  format:
    'rebuild [{bar}] {percentage}% | {value}/{total} commits | {rate} commits/s | ETA {eta_formatted}',
  hideCursor: true,
});
bar.start(await storage.store.headPosition(), 0, { rate: 0 });
try {
  const report = await runtime.rebuild({
    onProgress: ({ applied, total, rate }) => {
      bar.setTotal(total);
      bar.update(applied, { rate: Math.round(rate) });
    },
  });
  bar.stop();
  console.log(
    `rebuilt ${report.commits} commits (${report.events} events) into generation ${report.to} ` +
      `in ${report.seconds.toFixed(1)} s; reads now use it (was ${report.from}).`,
  );
} finally {
  bar.stop();
  await runtime.stop();
  await storage.close();
}
