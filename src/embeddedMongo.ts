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
    throw new Error(`embedded MongoDB unavailable: ${describeFailure(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
    console.warn = warn;
  }
}

/**
 * One line saying why: the library's multi-line message joined, without the empty
 * "Details:" it ends with when the download failed without a message, and with the
 * cause's own message when it adds one.
 */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const text = error.message
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/,?\s*Details:\s*("")?$/, '');
  const code = (error as { code?: unknown }).code;
  const withCode = typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
  const cause = error.cause === undefined ? '' : describeFailure(error.cause);
  return cause && !withCode.includes(cause) ? `${withCode}: ${cause}` : withCode || error.name;
}
