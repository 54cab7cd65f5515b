/**
 * Projection checkpoints on MongoDB: one document per generation.
 */
import type { Collection, Db, Document } from 'mongodb';
import type { FeedPosition } from '../../eventstore/types.js';
import { FencedOut, type CheckpointStore, type Fence } from '../types.js';
import { ProjectorCollection, type CheckpointDoc } from './documents.js';
import { MAJORITY_WRITE, isDuplicateKey, translateDriverError } from './driverErrors.js';

/**
 * `projector_checkpoints`, `_id` the generation, `{ position, token, updatedAt }`. The
 * token is the change stream's resume token (a document such as `{ _data: '8263…' }`),
 * stored as the server gave it so it can be handed back as `startAfter` unchanged.
 */
export class MongoCheckpoints implements CheckpointStore {
  readonly #checkpoints: Collection<CheckpointDoc>;

  constructor(
    db: Db,
    private readonly now: () => number,
  ) {
    this.#checkpoints = db.collection<CheckpointDoc>(ProjectorCollection.Checkpoints);
  }

  async load(generation: string): Promise<FeedPosition | null> {
    const doc = await translateDriverError('checkpoint load', () =>
      this.#checkpoints.findOne({ _id: generation }),
    );
    if (!doc) return null;
    return doc.token == null
      ? { position: doc.position }
      : { position: doc.position, token: doc.token };
  }

  /**
   * Saves the position unless the stored one is newer, or (with `fence`) was saved under a
   * newer epoch of the lease: one conditional upsert by `_id`. When the filter refuses an
   * existing checkpoint the upsert's insert collides on `_id` (E11000); a re-read then
   * tells a newer epoch (`FencedOut`) from a newer position (nothing to do).
   */
  async save(generation: string, position: FeedPosition, fence?: Fence): Promise<void> {
    await translateDriverError('checkpoint save', async () => {
      const conditions: Document[] = [{ $lte: [{ $ifNull: ['$position', 0] }, position.position] }];
      if (fence) conditions.push({ $lte: [{ $ifNull: ['$epoch', 0] }, fence.epoch] });
      try {
        await this.#checkpoints.updateOne(
          { _id: generation, $expr: { $and: conditions } },
          {
            $set: {
              position: position.position,
              token: position.token ?? null,
              updatedAt: new Date(this.now()),
              ...(fence ? { epoch: fence.epoch } : {}),
            },
          },
          { upsert: true, writeConcern: MAJORITY_WRITE },
        );
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        const stored = await this.#checkpoints.findOne({ _id: generation });
        if (fence && (stored?.epoch ?? 0) > fence.epoch) {
          throw new FencedOut(`checkpoint of ${generation} was saved under a newer lease epoch`);
        }
      }
    });
  }
}
