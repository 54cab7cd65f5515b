/**
 * A tail of the change log on MongoDB: its change stream, the catch-up reads around it,
 * and polling while change streams fail.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangeStream, ChangeStreamInsertDocument, Collection } from 'mongodb';
import type { ChangeLogEntry, ChangeLogRead, ChangeLogTail } from '../types.js';
import { fromChangeLogDoc, type ChangeLogDoc } from './documents.js';

/**
 * How long a tail whose change stream failed polls before it opens one again: this at
 * first, doubling on each failed reopen up to `TAIL_REOPEN_MAX_MS`, back to this once one
 * opens.
 */
export const TAIL_REOPEN_MIN_MS = 1_000;
export const TAIL_REOPEN_MAX_MS = 30_000;

type InsertChange = ChangeStreamInsertDocument<ChangeLogDoc>;
type InsertStream = ChangeStream<ChangeLogDoc, InsertChange>;

export interface TailDeps {
  /** The change log's `read`, in catch-up batches. */
  read: (after: number, signal: AbortSignal) => Promise<ChangeLogRead>;
  pollIntervalMs: number;
  onClose: (tail: MongoChangeLogTail) => void;
}

/** What `untilClosed` resolves to when the tail closed first. */
const CLOSED = Symbol('closed');

/**
 * Entries after a cursor, then new ones as they are recorded.
 *
 * How nothing is missed: the change stream on `changelog` is opened, and its first
 * `tryNext()` awaited (the driver sends the `aggregate` lazily, on first iteration), BEFORE
 * the backlog is read. Every insert committed after the stream's start reaches the
 * stream; every insert committed before it is seen by the backlog read, which goes to the
 * primary afterwards. Insert events always carry `fullDocument`, the inserted document
 * (manual, "Change Events: insert"), so an event is an entry; a `$match` on
 * `operationType: 'insert'` leaves out the trimming's deletes.
 *
 * How nothing is repeated or reordered: the tail remembers the last cursor it delivered,
 * skips anything at or below it, delivers the next cursor directly, and on a jump reads
 * the missing cursors from the collection first (change streams deliver majority-committed
 * changes in oplog order, and cursor n is inserted before n + 1, so those are committed).
 *
 * No resume token is kept: the cursor is the resume point, and reopening anything after a
 * failure goes through a catch-up read from the collection.
 *
 * When the change stream cannot be opened (a standalone server has none: error 40573) or
 * fails for good (the driver already resumes once by itself on resumable errors), the
 * tail polls `read()` every `pollIntervalMs` instead, from the last delivered cursor, and
 * tries the change stream again after a backoff (`TAIL_REOPEN_MIN_MS`, doubling up to
 * `TAIL_REOPEN_MAX_MS`), opening it before the next catch-up read as at the start.
 * A cursor older than the retained window resumes at the oldest kept entry, as in memory.
 */
export class MongoChangeLogTail implements ChangeLogTail {
  readonly #entries: Collection<ChangeLogDoc>;
  readonly #deps: TailDeps;
  readonly #closing = new AbortController();
  /** The last cursor delivered. */
  #cursor: number;
  /** The open change stream; null before it opens, in polling mode, and once closed. */
  #stream: InsertStream | null = null;
  /** In polling mode: when to try the change stream again, and the backoff after that. */
  #reopenAt = 0;
  #reopenDelayMs = TAIL_REOPEN_MIN_MS;

  constructor(entries: Collection<ChangeLogDoc>, after: number, deps: TailDeps) {
    this.#entries = entries;
    this.#cursor = after;
    this.#deps = deps;
  }

  /**
   * Ends the iteration: a pending `next()` resolves as done at once, and the change
   * stream is closed even if nobody iterates any more. Idempotent.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#deps.onClose(this);
    await this.#dropStream();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChangeLogEntry> {
    const signal = this.#closing.signal;
    try {
      let change = await this.#openStream(signal);
      if (change === CLOSED) return;
      yield* this.#catchUp(signal);
      while (!signal.aborted) {
        if (change) {
          yield* this.#deliver(change.fullDocument, signal);
          change = null;
          continue;
        }
        const stream = this.#stream;
        if (!stream) {
          await sleep(this.#deps.pollIntervalMs, undefined, { signal }).catch(() => undefined);
          if (performance.now() >= this.#reopenAt) {
            change = await this.#openStream(signal);
            if (change === CLOSED) return;
          }
          yield* this.#catchUp(signal);
          continue;
        }
        try {
          const next = await untilClosed(stream.tryNext(), signal);
          if (next === CLOSED) return;
          // An empty batch on a stream the server closed (the collection was dropped or
          // renamed: an invalidate) ends that stream; otherwise it is just a quiet batch.
          if (next === null && stream.closed) throw new Error('change stream closed by the server');
          change = next;
        } catch {
          if (signal.aborted) return;
          // Polling from here on; the catch-up covers whatever the stream had not shown.
          await this.#dropStream();
          yield* this.#catchUp(signal);
        }
      }
    } finally {
      await this.close();
    }
  }

  /**
   * Opens the change stream and forces its `aggregate` with a first `tryNext()`. Resolves
   * to the first change (or null), leaving `#stream` null when change streams fail.
   */
  async #openStream(signal: AbortSignal): Promise<InsertChange | null | typeof CLOSED> {
    if (signal.aborted) return CLOSED;
    const stream = (this.#stream = this.#entries.watch<ChangeLogDoc, InsertChange>([
      { $match: { operationType: 'insert' } },
    ]));
    try {
      const first = await untilClosed(stream.tryNext(), signal);
      this.#reopenDelayMs = TAIL_REOPEN_MIN_MS;
      return first;
    } catch {
      await this.#dropStream();
      return signal.aborted ? CLOSED : null;
    }
  }

  /** Closes the change stream (polling until `#reopenAt`, which backs off on each failure). */
  async #dropStream(): Promise<void> {
    const stream = this.#stream;
    this.#stream = null;
    if (stream && !this.#closing.signal.aborted) {
      this.#reopenAt = performance.now() + this.#reopenDelayMs;
      this.#reopenDelayMs = Math.min(TAIL_REOPEN_MAX_MS, this.#reopenDelayMs * 2);
    }
    // Closing kills the server cursor; if that fails the server times the cursor out,
    // which is all closing could achieve anyway.
    await stream?.close().catch(() => undefined);
  }

  /** Delivers entries after the cursor from the collection until there are none. */
  async *#catchUp(signal: AbortSignal): AsyncGenerator<ChangeLogEntry> {
    while (!signal.aborted) {
      let result: ChangeLogRead;
      try {
        result = await this.#deps.read(this.#cursor, signal);
      } catch (error) {
        if (signal.aborted) return;
        throw error;
      }
      if (result.kind === 'expired') {
        this.#cursor = result.oldest - 1;
        continue;
      }
      if (result.entries.length === 0) return;
      for (const entry of result.entries) {
        if (signal.aborted) return;
        this.#cursor = entry.cursor;
        yield entry;
      }
    }
  }

  async *#deliver(doc: ChangeLogDoc, signal: AbortSignal): AsyncGenerator<ChangeLogEntry> {
    if (doc._id <= this.#cursor) return;
    if (doc._id === this.#cursor + 1) {
      this.#cursor = doc._id;
      yield fromChangeLogDoc(doc);
      return;
    }
    // A jump: the cursors in between are in the collection; the read includes this one.
    yield* this.#catchUp(signal);
  }
}

/**
 * Settles with `promise`, or with CLOSED as soon as `signal` aborts. The abandoned promise
 * keeps a handler, so its later rejection (a closed stream rejects a pending `tryNext`)
 * is not unhandled.
 */
function untilClosed<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof CLOSED> {
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(CLOSED);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
