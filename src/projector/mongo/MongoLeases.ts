/**
 * Leases on MongoDB: one document per lease, changed only by single-document atomic
 * writes whose filters state the conditions (see `leaseOperations`).
 */
import type { Collection, Db } from 'mongodb';
import type { LeaseStore } from '../types.js';
import { ProjectorCollection, type LeaseDoc } from './documents.js';
import { isDuplicateKey } from './driverErrors.js';
import { leaseHolder, leaseOperations } from './leaseOperations.js';

/**
 * The memory adapter's lease rules, made atomic by MongoDB: a write to one document is
 * atomic, so two owners racing for a lease are serialised by the server and at most one
 * filter still matches when its write applies.
 *
 * Time: expiries are the callers' `now()` in ms, not the server's clock. Instances must
 * keep their clocks within a small fraction of the ttl of each other (NTP does); a clock
 * ahead by `d` ms sees a lease expire `d` ms early and may take it while its holder still
 * thinks it is valid for up to `d` ms.
 */
export class MongoLeases implements LeaseStore {
  readonly #leases: Collection<LeaseDoc>;

  constructor(
    db: Db,
    private readonly now: () => number,
  ) {
    this.#leases = db.collection<LeaseDoc>(ProjectorCollection.Leases);
  }

  async acquire(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const take = leaseOperations.acquire(name, owner, ttlMs, now);
    try {
      // Driver 6+: without `includeResultMetadata` (false by default, spelled out here)
      // findOneAndUpdate resolves to the document itself or null, not `{ value, ok }`.
      // With `upsert` and `returnDocument: 'after'` a successful write always returns the
      // written document, so anything but our own name means not acquired.
      const lease = await this.#leases.findOneAndUpdate(take.filter, take.update, {
        upsert: true,
        returnDocument: 'after',
        includeResultMetadata: false,
      });
      if (lease?.owner === owner) return true;
    } catch (error) {
      // The lease exists and the filter refused it (or another owner's upsert won the race
      // to create it): either way, not acquired.
      if (!isDuplicateKey(error)) throw error;
    }
    // Refused. If that is because another owner asked for a handover, the holder gives
    // the lease up now, as the memory adapter does on the same call.
    const step = leaseOperations.yieldToHandover(name, owner, ttlMs, now);
    await this.#leases.updateOne(step.filter, step.update);
    return false;
  }

  async release(name: string, owner: string): Promise<void> {
    const step = leaseOperations.release(name, owner, this.now());
    await this.#leases.updateOne(step.filter, step.update);
  }

  async requestHandover(name: string, owner: string): Promise<void> {
    const step = leaseOperations.requestHandover(name, owner, this.now());
    await this.#leases.updateOne(step.filter, step.update);
  }

  async holder(name: string): Promise<string | null> {
    const lease = await this.#leases.findOne({ _id: name });
    return leaseHolder(lease, this.now());
  }
}
