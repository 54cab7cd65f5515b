/**
 * The server side of `aggregates.ts`, run by it as a child process (never by hand):
 *
 *   node --import tsx scripts/bench/aggregatesServer.ts
 *
 * The real app (`createApp`, memory store) on 127.0.0.1, any free port. A child of its
 * own so that a server stuck in a long synchronous fold cannot stall the clients'
 * timers, and can be killed when a cell runs out of time.
 *
 * Sends `{ type: 'ready', url }` once listening, then answers each `{ id, type }`
 * request with `{ id, ... }`:
 * - `seed`: appends `count` cards at the end of a column straight through the event
 *   store (large commits) and waits until they are projected. Answers `{ seconds }`.
 * - `restart`: stops the app and starts a new one on the same storage (a crash-restart:
 *   nothing cached, the event store and the snapshots kept), once the column has a
 *   snapshot (at most 2 s: small columns have none). Answers `{ url }`, the new app's.
 * It exits when the parent goes away (the IPC channel closes).
 */
import { pino } from 'pino';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { NO_CLIENT_LIMITS } from '../../test/support/server.js';
import { rawIdOf } from '../../src/graphql/globalIds.js';
import { openMemoryStorage } from '../../src/storage.js';
import { seedCards } from '../../test/support/seedCards.js';

/** What the parent may ask; each answer echoes `id`. */
export type AggregatesServerRequest =
  | {
      id: number;
      type: 'seed';
      /** Global ids, as the API returned them. */
      boardId: string;
      columnId: string;
      count: number;
    }
  | { id: number; type: 'restart'; columnId: string };

const send = (message: unknown) => process.send?.(message);
process.on('disconnect', () => process.exit(0));

const storage = openMemoryStorage({});
const startApp = async () => {
  const started = await createApp(
    loadConfig({ STORE: 'memory', LOG_LEVEL: 'silent', HOST: '127.0.0.1', ...NO_CLIENT_LIMITS }),
    { storage, logger: pino({ level: 'silent' }) },
  );
  return { app: started, url: (await started.start(0)).url };
};
let { app, url } = await startApp();

process.on('message', (message: AggregatesServerRequest) => {
  void (async () => {
    if (message.type === 'restart') {
      // Commands snapshot a big column in the background: give that a moment to land.
      const stream = `column-${rawIdOf(message.columnId, 'Column')!}`;
      for (let i = 0; i < 20 && !(await storage.snapshots.load(stream)); i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await app.stop();
      ({ app, url } = await startApp());
      send({ id: message.id, url });
      return;
    }
    const started = performance.now();
    const { position } = await seedCards(storage.store, {
      boardId: rawIdOf(message.boardId, 'Board')!,
      columnId: rawIdOf(message.columnId, 'Column')!,
      count: message.count,
    });
    await app.follower.waitFor(position, { timeoutMs: 10 * 60_000 });
    send({ id: message.id, seconds: (performance.now() - started) / 1_000 });
  })().catch((error: unknown) => send({ id: message.id, error: String(error) }));
});

send({ type: 'ready', url });
