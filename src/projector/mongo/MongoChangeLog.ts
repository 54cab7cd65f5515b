/**
 * The change log on MongoDB: one document per commit in `changelog`, `_id` the cursor.
 */
import { ReadPreference, type Collection, type Db } from 'mongodb';
import {
  assertConsecutive,
  type ChangeLog,
  type ChangeLogEntry,
  type ChangeLogRead,
  type ChangeLogTail,
} from '../types.js';
import { expiredRead, isTrimPoint } from './changeLogWindow.js';
import {
  ProjectorCollection,
  fromChangeLogDoc,
  toChangeLogDoc,
  type ChangeLogDoc,
} from './documents.js';
import { isDuplicateKey, isNamespaceExists, translateDriverError } from './driverErrors.js';
import { MongoChangeLogTail } from './MongoChangeLogTail.js';

export interface MongoChangeLogOptions {
  /** Entries kept: the newest `retention` cursors. */
  retention: number;
  /** Trim when recording a cursor that is a multiple of this. */
  trimEvery: number;
  /** Pause between reads of a tail whose change stream failed. */
  pollIntervalMs: number;
}

/**
 * Entries by scope (multikey on `scopes`), in cursor order: a board's replay reads what
 * that board recorded since its cursor, not the whole log since then.
 */
export const SCOPE_INDEX = { key: { scopes: 1, _id: 1 }, name: 'scopes_cursor' } as const;

/** Entries per read while a tail catches up. */
const CATCH_UP_BATCH = 500;

/**
 * `record` inserts; the unique `_id` makes recording a cursor twice a no-op (E11000),
 * whether this process recorded it before a retry or a deposed projector raced us.
 * No gap can be written: a cursor is inserted only when it is the head + 1, checked
 * against the stored head unless this instance itself wrote the cursor just before
 * (stored head >= what we wrote, and a cursor at or below the stored head collides).
 *
 * `read` computes the retained window from the head, so it is exact however far behind
 * trimming is; trimming (`deleteMany` of everything out of the window) runs every
 * `trimEvery` cursors. A read that finds a hole at its start (entries trimmed by an
 * instance configured with a smaller retention) answers `expired` too, never a gap.
 *
 * Reads go to the primary: together with opening each tail's change stream before its
 * catch-up read, that is what lets `tail` promise no gap (see `MongoChangeLogTail`).
 */
export class MongoChangeLog implements ChangeLog {
  readonly #entries: Collection<ChangeLogDoc>;
  readonly #options: MongoChangeLogOptions;
  readonly #tails = new Set<MongoChangeLogTail>();
  /** The newest cursor this instance recorded; the stored head is at least this. */
  #recorded: number | undefined;

  constructor(db: Db, options: MongoChangeLogOptions) {
    this.#entries = db.collection<ChangeLogDoc>(ProjectorCollection.ChangeLog, {
      readPreference: ReadPreference.primary,
    });
    this.#options = options;
  }

  /**
   * Creates `changelog` if it does not exist. A change stream can be opened on a
   * collection that does not exist yet only if its database does (DOCS-11098: otherwise
   * NamespaceNotFound on a sharded cluster), so the collection is made before any tail.
   */
  static async ensureCollection(db: Db): Promise<void> {
    try {
      await db.createCollection(ProjectorCollection.ChangeLog);
    } catch (error) {
      if (!isNamespaceExists(error)) throw error;
    }
    // A no-op when it exists with this specification.
    await db.collection(ProjectorCollection.ChangeLog).createIndexes([SCOPE_INDEX]);
  }

  async record(entry: ChangeLogEntry): Promise<void> {
    await translateDriverError('change log record', () => this.#record(entry));
  }

  async #record(entry: ChangeLogEntry): Promise<void> {
    if (this.#recorded === undefined || entry.cursor !== this.#recorded + 1) {
      const head = await this.head();
      if (entry.cursor <= head) {
        this.#recorded = head;
        return;
      }
      if (entry.cursor !== head + 1) {
        throw new Error(`change log gap: head ${head}, recording ${entry.cursor}`);
      }
    }
    try {
      await this.#entries.insertOne(toChangeLogDoc(entry));
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    this.#recorded = entry.cursor;
    const { retention, trimEvery } = this.#options;
    if (isTrimPoint(entry.cursor, trimEvery) && entry.cursor > retention) {
      await this.#entries.deleteMany({ _id: { $lte: entry.cursor - retention } });
    }
  }

  /**
   * One ordered `insertMany` of the entries not recorded yet. Ordered, so the server inserts
   * them one after the other in cursor order and stops at the first failure (manual,
   * db.collection.insertMany(), "Execution of Operations"): a tail never sees a cursor
   * before the ones below it, and no gap is left behind a failed insert. The driver reports
   * that failure as a `MongoBulkWriteError` carrying the first write error's code: on a
   * duplicate `_id` (a retry of a write that landed, or a deposed projector inserting the
   * same entries), the rest are recorded one at a time, each a no-op when already there.
   * Default write concern, as `record`'s `insertOne`.
   */
  async recordMany(entries: readonly ChangeLogEntry[]): Promise<void> {
    assertConsecutive(entries);
    await translateDriverError('change log record', () => this.#recordMany(entries));
  }

  async #recordMany(entries: readonly ChangeLogEntry[]): Promise<void> {
    const first = entries[0];
    if (!first) return;
    let pending = entries;
    if (this.#recorded === undefined || first.cursor !== this.#recorded + 1) {
      const head = await this.head();
      if (first.cursor > head + 1) {
        throw new Error(`change log gap: head ${head}, recording ${first.cursor}`);
      }
      pending = entries.slice(head + 1 - first.cursor);
      if (pending.length === 0) {
        this.#recorded = head;
        return;
      }
    }
    try {
      await this.#entries.insertMany(pending.map(toChangeLogDoc), { ordered: true });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      this.#recorded = undefined;
      for (const entry of pending) await this.#record(entry);
      return;
    }
    const last = pending.at(-1)!.cursor;
    this.#recorded = last;
    const { retention, trimEvery } = this.#options;
    // The newest trim point among the cursors just recorded, as `record` would have trimmed.
    const trimAt = pending.findLast((e) => isTrimPoint(e.cursor, trimEvery))?.cursor;
    if (trimAt !== undefined && trimAt > retention) {
      await this.#entries.deleteMany({ _id: { $lte: trimAt - retention } });
    }
  }

  async read(
    after: number,
    options: { limit?: number; signal?: AbortSignal; scope?: string } = {},
  ): Promise<ChangeLogRead> {
    return translateDriverError('change log read', () => this.#read(after, options));
  }

  async #read(
    after: number,
    options: { limit?: number; signal?: AbortSignal; scope?: string },
  ): Promise<ChangeLogRead> {
    const { limit = 1_000, signal, scope } = options;
    signal?.throwIfAborted();
    if (limit < 0 || !Number.isInteger(limit)) throw new RangeError(`invalid limit ${limit}`);
    // Both at once: one round trip of latency. Entries newer than the head read are fine.
    const [head, docs] = await Promise.all([
      this.#readHead(signal),
      // `limit: 0` would mean "no limit" to MongoDB; the port means none.
      limit === 0
        ? Promise.resolve([])
        : this.#entries
            .find(
              // A scope's entries through the `scopes_cursor` index (SCOPE_INDEX).
              scope === undefined
                ? { _id: { $gt: after } }
                : { scopes: scope, _id: { $gt: after } },
              { sort: { _id: 1 }, limit, signal },
            )
            .toArray(),
    ]);
    const expired = expiredRead(after, head, this.#options.retention);
    if (expired) return expired;
    // A scope's entries are not consecutive cursors: no hole to look for.
    if (scope !== undefined) return { kind: 'entries', entries: docs.map(fromChangeLogDoc) };
    const first = docs[0];
    if (first && first._id !== after + 1) {
      return { kind: 'expired', oldest: first._id, head: Math.max(head, docs.at(-1)!._id) };
    }
    return { kind: 'entries', entries: docs.map(fromChangeLogDoc) };
  }

  async head(): Promise<number> {
    return translateDriverError('change log head', () => this.#readHead());
  }

  tail(after: number): ChangeLogTail {
    const tail = new MongoChangeLogTail(this.#entries, after, {
      read: (from, signal) => this.read(from, { limit: CATCH_UP_BATCH, signal }),
      pollIntervalMs: this.#options.pollIntervalMs,
      onClose: (closed) => this.#tails.delete(closed),
    });
    this.#tails.add(tail);
    return tail;
  }

  /** Closes every tail still open (their change streams), for `ProjectorStorage.close`. */
  async closeTails(): Promise<void> {
    await Promise.all([...this.#tails].map((tail) => tail.close()));
  }

  async #readHead(signal?: AbortSignal): Promise<number> {
    // The `_id` index answers this with one key: no secondary index is needed.
    const newest = await this.#entries.findOne(
      {},
      { sort: { _id: -1 }, projection: { _id: 1 }, signal },
    );
    return newest?._id ?? 0;
  }
}
