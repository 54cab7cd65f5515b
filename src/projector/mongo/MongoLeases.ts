/**
 * Leases on MongoDB: one document per lease, changed only by single-document atomic
 * writes whose filters state the conditions (see `leaseOperations`).
 */
import type { Collection, Db } from 'mongodb';
import type { LeaseGrant, LeaseStore } from '../types.js';
import { ProjectorCollection, type LeaseDoc } from './documents.js';
import { MAJORITY_WRITE, isDuplicateKey, translateDriverError } from './driverErrors.js';
import { leaseOperations } from './leaseOperations.js';

/**
 * The memory adapter's lease rules, made atomic by MongoDB: a write to one document is
 * atomic, so two owners racing for a lease are serialised by the server and at most one
 * filter still matches when its write applies. Expiry is on the server's clock (`$$NOW`);
 * the instances' clocks are not used.
 */
export class MongoLeases implements LeaseStore {
  readonly #leases: Collection<LeaseDoc>;

  constructor(db: Db) {
    this.#leases = db.collection<LeaseDoc>(ProjectorCollection.Leases);
  }

  async acquire(name: string, owner: string, ttlMs: number): Promise<LeaseGrant | null> {
    return translateDriverError('lease acquire', async () => {
      const take = leaseOperations.acquire(name, owner, ttlMs);
      try {
        // Without `includeResultMetadata` (false by default, spelled out here) driver 6+
        // resolves to the document itself or null. With `upsert` and `returnDocument:
        // 'after'` a successful write returns the written document, so anything but our
        // own name means not acquired.
        const lease = await this.#leases.findOneAndUpdate(take.filter, take.update, {
          upsert: true,
          returnDocument: 'after',
          includeResultMetadata: false,
          writeConcern: MAJORITY_WRITE,
        });
        if (lease?.owner === owner) return { epoch: lease.epoch };
      } catch (error) {
        // The lease exists and the filter refused it (or another owner's upsert won the
        // race to create it): either way, not acquired.
        if (!isDuplicateKey(error)) throw error;
      }
      // Refused. If that is because another owner asked for a handover, the holder gives
      // the lease up now, as the memory adapter does on the same call.
      const step = leaseOperations.yieldToHandover(name, owner, ttlMs);
      await this.#leases.updateOne(step.filter, step.update, { writeConcern: MAJORITY_WRITE });
      return null;
    });
  }

  async release(name: string, owner: string): Promise<void> {
    await translateDriverError('lease release', async () => {
      const step = leaseOperations.release(name, owner);
      await this.#leases.updateOne(step.filter, step.update, { writeConcern: MAJORITY_WRITE });
    });
  }

  async requestHandover(name: string, owner: string): Promise<void> {
    await translateDriverError('lease handover request', async () => {
      const step = leaseOperations.requestHandover(name, owner);
      await this.#leases.updateOne(step.filter, step.update, { writeConcern: MAJORITY_WRITE });
    });
  }

  async holder(name: string): Promise<string | null> {
    return translateDriverError('lease holder', async () => {
      const lease = await this.#leases.findOne(leaseOperations.live(name), {
        projection: { owner: 1 },
      });
      return lease?.owner ?? null;
    });
  }
}
