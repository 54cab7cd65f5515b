/**
 * Commit positions: reserving one (outside any transaction), recording which session
 * reserved it, and closing one its transaction did not commit with a tombstone that races
 * the commit on the unique `position` index. The append protocol and the feed both close
 * positions through this.
 */
import type { ClientSession, Collection, Document, MongoClient } from 'mongodb';
import {
  MAJORITY,
  POSITION_COUNTER_ID,
  RESERVATION_TTL_MS,
  gapDoc,
  type CommitDoc,
  type CounterDoc,
  type ReservationDoc,
} from './documents.js';
import { isDuplicateKey } from './translateError.js';

/** How closing a position ended: our commit holds it, it is closed for good, or not known. */
export type PositionOutcome = 'committed' | 'closed' | 'unknown';

export interface MongoPositionsOptions {
  client: MongoClient;
  commits: Collection<CommitDoc>;
  counters: Collection<CounterDoc>;
  reservations: Collection<ReservationDoc>;
  now: () => Date;
  /** How long closing a position may wait for the transaction holding it to end. */
  closeTimeoutMs: number;
}

/** Reserves and closes commit positions (see the class doc of `MongoEventStore`). */
export class MongoPositions {
  readonly #options: MongoPositionsOptions;

  constructor(options: MongoPositionsOptions) {
    this.#options = options;
  }

  /**
   * Reserves the next position: one atomic `$inc` on the counter, outside the transaction
   * and acknowledged by the primary alone (a commit that uses it is majority-committed
   * only after the increment, which precedes it in the oplog, is too).
   */
  async reserve(): Promise<number> {
    const counter = await this.#options.counters.findOneAndUpdate(
      { _id: POSITION_COUNTER_ID },
      { $inc: { value: 1 } },
      // No session: the increment is not part of the transaction, and never held by it.
      // v6+ resolves with the document itself (includeResultMetadata defaults to false).
      { upsert: true, returnDocument: 'after', writeConcern: { w: 1 } },
    );
    if (!counter) throw new Error('position counter missing after upsert');
    return counter.value;
  }

  /**
   * Closes a reserved position that its transaction did not commit, by inserting a
   * tombstone (`{ position, gap: true }`) into `commits`, so the feed need not wait for
   * it. The unique index on `position` decides between the tombstone and the commit:
   *
   * - if the transaction has inserted its commit document and is still open, the insert
   *   (outside any transaction) waits until it ends: writes outside a transaction that
   *   conflict with one in progress retry until it commits or aborts (SERVER-34650,
   *   SERVER-40105), bounded here by `maxTimeMS`;
   * - then it fails with a duplicate key if something took the position: 'committed' when
   *   a majority read finds `commitId` there, 'closed' when it finds another document (a
   *   tombstone, or another commit), 'unknown' when it finds nothing (the majority read
   *   trails the write that refused ours); or the tombstone goes in, after which that
   *   transaction can never commit: its own insert would be the duplicate ('closed').
   *
   * Written at majority, so a failover cannot take the tombstone back. Best effort:
   * anything else leaves the position open ('unknown'), and the feed closes it the same
   * way after its grace period.
   */
  async close(position: number, commitId?: string): Promise<PositionOutcome> {
    try {
      await this.#options.commits.insertOne(gapDoc(position, this.#options.now()), {
        writeConcern: { w: 'majority', wtimeoutMS: this.#options.closeTimeoutMs },
        maxTimeMS: this.#options.closeTimeoutMs,
      });
      return 'closed';
    } catch (error) {
      if (!isDuplicateKey(error)) return 'unknown';
      try {
        const holder = await this.#options.commits.findOne(
          { position },
          { projection: { _id: 1 }, readConcern: MAJORITY },
        );
        // Nothing visible yet (a majority read can trail the write that refused ours): the
        // position may hold our commit or a tombstone, so the outcome stays unknown.
        if (holder === null) return 'unknown';
        return holder._id === commitId ? 'committed' : 'closed';
      } catch {
        return 'unknown';
      }
    }
  }

  /**
   * Records which session reserved `position`: one insert outside the transaction,
   * acknowledged by the primary (a failover that loses it also aborted the transaction).
   * It precedes the commit document, so whenever a transaction holds the position's key
   * in `commits`, its session can be found here.
   */
  async recordReservation(session: ClientSession, position: number): Promise<void> {
    const lsid = session.id;
    if (!lsid) return;
    await this.#options.reservations.insertOne(
      {
        _id: position,
        lsid,
        expiresAt: new Date(this.#options.now().getTime() + RESERVATION_TTL_MS),
      },
      { writeConcern: { w: 1 } },
    );
  }

  /**
   * Closes positions whose appenders seem dead (the feed's grace period passed): first
   * ends the sessions that reserved them (`killSessions` aborts a session's unprepared
   * transaction at once: server `killSessionsLocal`), so the tombstones do not wait behind
   * the uncommitted commit documents until the server expires those transactions
   * (`transactionLifetimeLimitSeconds`, 60 s by default); then writes the tombstones.
   */
  async closeAbandoned(positions: number[]): Promise<void> {
    try {
      const reserved = await this.#options.reservations
        .find({ _id: { $in: positions } }, { projection: { lsid: 1 } })
        .toArray();
      await this.killSessions(reserved.map((r) => r.lsid));
    } catch {
      // Best effort: without it the tombstone still goes in once the transaction ends.
    }
    await Promise.all(positions.map((p) => this.close(p)));
  }

  /**
   * Ends the given server sessions and their open transactions (`killSessions`, which
   * kills only sessions of the authenticated user: every instance must connect as the same
   * user). A session whose transaction already committed is unaffected. Best effort.
   */
  async killSessions(lsids: Document[]): Promise<void> {
    if (lsids.length === 0) return;
    await this.#options.client
      .db('admin')
      .command({ killSessions: lsids })
      .catch(() => undefined);
  }
}
