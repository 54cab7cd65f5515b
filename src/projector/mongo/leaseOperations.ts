/**
 * The lease rules of the memory adapter (`MemoryLeases`), as single-document MongoDB
 * filters and pipeline updates on the server's clock. Pure: `MongoLeases` sends them; the
 * unit tests check them against the memory adapter's decisions.
 *
 * Time is the server's: every comparison and every new expiry uses `$$NOW` (the server's
 * clock when the write runs, MongoDB 4.2+), so the instances' clocks play no part, and an
 * expiry is never computed from a clock read before a round trip that a failover delayed.
 * `expiresAt` and `handoverAt` are dates. A pipeline update's `$set` stage sees the
 * document as it was before the stage, which is how `epoch` compares the old owner.
 * Values that come from callers are wrapped in `$literal`, so none is read as a field path.
 */
import type { Document, Filter } from 'mongodb';
import type { LeaseDoc } from './documents.js';

/** One single-document write: which document, if it is in which state, and what to set. */
export interface LeaseWrite {
  filter: Filter<LeaseDoc>;
  /** An update pipeline (one `$set` stage). */
  update: Document[];
}

const NOW = '$$NOW';
const literal = (value: unknown) => ({ $literal: value });
/** A field that may be missing or null, as null (a missing field is not null in expressions). */
const orNull = (field: string) => ({ $ifNull: [field, null] });

/**
 * A handover request reserves the lease for its requester for one ttl: the lease is NOT
 * reserved for someone other than `owner` when nobody asked, when `owner` asked, or when
 * the request is at least a ttl old.
 */
function notReservedForOther(owner: string, ttlMs: number): Document {
  return {
    $or: [
      { $eq: [orNull('$handoverTo'), null] },
      { $eq: ['$handoverTo', literal(owner)] },
      { $lte: ['$handoverAt', { $subtract: [NOW, ttlMs] }] },
    ],
  };
}

/** The single-document writes `MongoLeases` is made of. */
export const leaseOperations = {
  /**
   * Takes or renews the lease: matches when it is expired or already `owner`'s, and not
   * reserved for another owner; sets `owner`, an expiry `ttlMs` after the server's now,
   * the epoch, and clears the handover request. The epoch grows by one when the lease
   * changes owner (a new document starts at 1) and is kept on a renewal or when the same
   * owner takes its lapsed lease back: it is the fencing token of the tenure.
   *
   * Sent with `upsert: true`, so a lease that does not exist yet is created. When the
   * document exists but the filter does not match, the upsert's insert collides on `_id`
   * and the server answers E11000, which means "not acquired" (the server retries such a
   * duplicate key itself only for filters of equality predicates alone: manual, "Upsert
   * with Duplicate Values"; this one has `$expr`).
   */
  acquire(name: string, owner: string, ttlMs: number): LeaseWrite {
    return {
      filter: {
        _id: name,
        $expr: {
          $and: [
            { $or: [{ $lte: ['$expiresAt', NOW] }, { $eq: ['$owner', literal(owner)] }] },
            notReservedForOther(owner, ttlMs),
          ],
        },
      },
      update: [
        {
          $set: {
            epoch: {
              $cond: [
                { $eq: ['$owner', literal(owner)] },
                { $ifNull: ['$epoch', 1] },
                { $add: [{ $ifNull: ['$epoch', 0] }, 1] },
              ],
            },
            owner: literal(owner),
            expiresAt: { $add: [NOW, ttlMs] },
            handoverTo: null,
            handoverAt: null,
          },
        },
      ],
    };
  },

  /**
   * The holder's answer to a handover request, on a renewal that `acquire` refused: when
   * the lease is live, `owner`'s, and reserved for another owner, it expires now so the
   * requester can take it. Matches nothing in every other case.
   */
  yieldToHandover(name: string, owner: string, ttlMs: number): LeaseWrite {
    return {
      filter: {
        _id: name,
        owner,
        $expr: {
          $and: [
            { $gt: ['$expiresAt', NOW] },
            { $ne: [orNull('$handoverTo'), null] },
            { $ne: ['$handoverTo', literal(owner)] },
            { $gt: ['$handoverAt', { $subtract: [NOW, ttlMs] }] },
          ],
        },
      },
      update: [{ $set: { expiresAt: NOW } }],
    };
  },

  /** Gives the lease up at once if `owner` holds it. */
  release(name: string, owner: string): LeaseWrite {
    return {
      filter: { _id: name, owner, $expr: { $gt: ['$expiresAt', NOW] } },
      update: [{ $set: { expiresAt: NOW } }],
    };
  },

  /**
   * Records that `owner` wants the lease, if it exists and someone else holds (or last
   * held) it. Like the memory adapter, it never creates the lease.
   */
  requestHandover(name: string, owner: string): LeaseWrite {
    return {
      filter: { _id: name, owner: { $ne: owner } },
      update: [{ $set: { handoverTo: literal(owner), handoverAt: NOW } }],
    };
  },

  /** Finds the lease while it has not expired, on the server's clock. */
  live(name: string): Filter<LeaseDoc> {
    return { _id: name, $expr: { $gt: ['$expiresAt', NOW] } };
  },
} as const;
