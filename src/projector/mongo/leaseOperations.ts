/**
 * The lease rules of the memory adapter (`MemoryLeases`), as single-document MongoDB
 * filters and updates. Pure: `MongoLeases` sends them; the unit tests check them against
 * the memory adapter's decisions.
 */
import type { Filter, UpdateFilter } from 'mongodb';
import type { LeaseDoc } from './documents.js';

/** One single-document write: which document, if it is in which state, and what to set. */
export interface LeaseWrite {
  filter: Filter<LeaseDoc>;
  update: UpdateFilter<LeaseDoc>;
}

/**
 * A handover request reserves the lease for its requester for one ttl: the lease is NOT
 * reserved for someone other than `owner` when nobody asked (`handoverTo` null or missing:
 * `{ field: null }` matches both), when `owner` asked, or when the request is older than a ttl.
 */
function notReservedForOther(owner: string, ttlMs: number, now: number): Filter<LeaseDoc> {
  return {
    $or: [{ handoverTo: null }, { handoverTo: owner }, { handoverAt: { $lte: now - ttlMs } }],
  };
}

/** The single-document writes `MongoLeases` is made of. */
export const leaseOperations = {
  /**
   * Takes or renews the lease: matches when it is expired or already `owner`'s, and not
   * reserved for another owner; sets `owner`, a fresh expiry, and clears the handover
   * request (after a take it has been served; on a renewal it can only be one that no
   * longer reserves anything, so clearing it changes no later decision).
   *
   * Sent with `upsert: true`, so a lease that does not exist yet is created. When the
   * document exists but the filter does not match, the upsert's insert collides on `_id`
   * and the server answers E11000, which means "not acquired". The server does not
   * retry that duplicate key itself: it only does so when the filter is equality
   * predicates alone (manual, "Upsert with Duplicate Values"), and this one has `$or`
   * and `$lte`. Every field of the new document is in `$set`, and none is a path prefix of
   * another, so whatever the server copies from the filter's equalities into an upserted
   * document, `$set` overwrites it without a path conflict.
   */
  acquire(name: string, owner: string, ttlMs: number, now: number): LeaseWrite {
    return {
      filter: {
        _id: name,
        $and: [
          { $or: [{ expiresAt: { $lte: now } }, { owner }] },
          notReservedForOther(owner, ttlMs, now),
        ],
      },
      update: { $set: { owner, expiresAt: now + ttlMs, handoverTo: null, handoverAt: null } },
    };
  },

  /**
   * The holder's answer to a handover request, on a renewal that `acquire` refused: when
   * the lease is live, `owner`'s, and reserved for another owner, it expires now so the
   * requester can take it. Matches nothing in every other case.
   */
  yieldToHandover(name: string, owner: string, ttlMs: number, now: number): LeaseWrite {
    return {
      filter: {
        _id: name,
        owner,
        expiresAt: { $gt: now },
        $and: [{ handoverTo: { $ne: null } }, { handoverTo: { $ne: owner } }],
        handoverAt: { $gt: now - ttlMs },
      },
      update: { $set: { expiresAt: now } },
    };
  },

  /** Gives the lease up at once if `owner` holds it. */
  release(name: string, owner: string, now: number): LeaseWrite {
    return {
      filter: { _id: name, owner, expiresAt: { $gt: now } },
      update: { $set: { expiresAt: now } },
    };
  },

  /**
   * Records that `owner` wants the lease, if it exists and someone else holds (or last
   * held) it. Like the memory adapter, it never creates the lease.
   */
  requestHandover(name: string, owner: string, now: number): LeaseWrite {
    return {
      filter: { _id: name, owner: { $ne: owner } },
      update: { $set: { handoverTo: owner, handoverAt: now } },
    };
  },
} as const;

/** Who holds a lease document at `now`: its owner while it has not expired. */
export function leaseHolder(doc: LeaseDoc | null, now: number): string | null {
  return doc && doc.expiresAt > now ? doc.owner : null;
}
