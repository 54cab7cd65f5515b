import { MongoMemoryReplSet } from 'mongodb-memory-server-core';

/** A single-node MongoDB replica set run by this process. */
export interface EmbeddedMongo {
  uri: string;
  stop(): Promise<void>;
}

/**
 * Starts a single-node replica set (transactions and change streams need one)
 * with mongodb-memory-server, which downloads a mongod on first use and caches it.
 * Rejects when none can be had (offline) or when it takes longer than `timeoutMs`.
 */
export async function startEmbeddedMongo(timeoutMs: number): Promise<EmbeddedMongo> {
  // The library prints its own multi-line failure report on console.warn; the caller
  // reports the failure once, in one line, so that report is muted while starting.
  const warn = console.warn;
  console.warn = () => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    const starting = MongoMemoryReplSet.create({
      replSet: { count: 1, storageEngine: 'wiredTiger' },
    });
    const replSet = await Promise.race([
      starting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`embedded MongoDB did not start within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]).catch((error: unknown) => {
      // A late start must not leave a mongod running.
      void starting.then((late) => late.stop()).catch(() => undefined);
      throw error;
    });
    return { uri: replSet.getUri(), stop: async () => void (await replSet.stop()) };
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new Error(`embedded MongoDB unavailable: ${detail}`, { cause: error });
  } finally {
    clearTimeout(timer);
    console.warn = warn;
  }
}
