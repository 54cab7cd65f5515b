import type { Logger } from '../logger.js';
import type { ChangeLog, ChangeLogEntry, ChangeLogTail } from './types.js';

/** Thrown by `waitFor` when the commit was not projected in time. */
export class ProjectionTimeout extends Error {
  override readonly name = 'ProjectionTimeout';
  constructor(
    readonly cursor: number,
    readonly timeoutMs: number,
  ) {
    super(`commit ${cursor} was not projected within ${timeoutMs} ms`);
  }
}

interface Waiter {
  cursor: number;
  resolve: () => void;
}

/**
 * Follows the change log once per process and fans entries out to in-process
 * listeners. An entry is recorded only after its commit's read documents are
 * written, so `waitFor` is the read-your-writes primitive.
 */
export class ChangeLogFollower {
  readonly #listeners = new Set<(entry: ChangeLogEntry) => void>();
  #waiters: Waiter[] = [];
  #tail: ChangeLogTail | undefined;
  #running: Promise<void> | undefined;
  #seen = 0;

  constructor(
    private readonly changeLog: ChangeLog,
    private readonly logger: Logger,
  ) {}

  /** Cursor of the newest entry this process has seen. */
  get seen(): number {
    return this.#seen;
  }

  /** Starts following from the current head. */
  async start(): Promise<void> {
    if (this.#tail) return;
    this.#seen = await this.changeLog.head();
    const tail = (this.#tail = this.changeLog.tail(this.#seen));
    this.#running = (async () => {
      for await (const entry of tail) this.#deliver(entry);
    })().catch((error: unknown) => {
      this.logger.error({ err: error }, 'change log follower stopped');
    });
  }

  async stop(): Promise<void> {
    await this.#tail?.close();
    await this.#running;
    this.#tail = undefined;
  }

  /** Calls `listener` with every entry recorded from now on; returns the unsubscribe. */
  onEntry(listener: (entry: ChangeLogEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves once the entry with `cursor` (and so its read documents) exists.
   * Rejects with `ProjectionTimeout` after `timeoutMs`, or with the signal's reason.
   */
  async waitFor(
    cursor: number,
    options: { timeoutMs: number; signal?: AbortSignal | undefined },
  ): Promise<void> {
    options.signal?.throwIfAborted();
    if (this.#seen >= cursor) return;
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        cursor,
        resolve: () => {
          cleanup();
          resolve();
        },
      };
      const onAbort = () => {
        cleanup();
        reject(options.signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ProjectionTimeout(cursor, options.timeoutMs));
      }, options.timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #deliver(entry: ChangeLogEntry): void {
    this.#seen = Math.max(this.#seen, entry.cursor);
    for (const waiter of this.#waiters) if (waiter.cursor <= this.#seen) waiter.resolve();
    for (const listener of this.#listeners) {
      try {
        listener(entry);
      } catch (error) {
        this.logger.error({ err: error }, 'change log listener failed');
      }
    }
  }
}
