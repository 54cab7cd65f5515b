import type { Logger } from '../logger.js';
import {
  superviseLoop,
  type BackoffOptions,
  type LoopStatus,
  type SupervisedLoop,
} from '../supervision.js';
import type { ChangeLog, ChangeLogEntry } from './types.js';

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
 *
 * The tail is supervised: when a read fails (a server selection timeout, a
 * failover), the follower logs it and resumes after the last entry it delivered,
 * with backoff, so no entry is skipped or delivered twice.
 */
export class ChangeLogFollower {
  readonly #listeners = new Set<(entry: ChangeLogEntry) => void>();
  readonly #loop: SupervisedLoop;
  #waiters: Waiter[] = [];
  #started = false;
  #seen = 0;

  constructor(
    private readonly changeLog: ChangeLog,
    private readonly logger: Logger,
    backoff: BackoffOptions = {},
  ) {
    this.#loop = superviseLoop({
      ...backoff,
      name: 'change-log-follower',
      logger,
      run: async (signal, progress) => {
        const tail = changeLog.tail(this.#seen);
        const close = () => void tail.close();
        signal.addEventListener('abort', close, { once: true });
        try {
          progress();
          for await (const entry of tail) {
            if (entry.cursor <= this.#seen) continue;
            this.#deliver(entry);
            progress();
          }
        } finally {
          signal.removeEventListener('abort', close);
          await tail.close();
        }
      },
    });
  }

  /** The supervised tail's state, for health and readiness. */
  status(): LoopStatus {
    return this.#loop.status();
  }

  /** Cursor of the newest entry this process has seen. */
  get seen(): number {
    return this.#seen;
  }

  /** Starts following from the current head. Fails when the change log cannot be read. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#seen = await this.changeLog.head();
    this.#started = true;
    this.#loop.start();
  }

  /** Stops following; `start` may be called again afterwards. */
  async stop(): Promise<void> {
    await this.#loop.stop();
    this.#started = false;
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
