/**
 * Projection checkpoints on MongoDB: one document per generation.
 */
import type { Collection, Db } from 'mongodb';
import type { FeedPosition } from '../../eventstore/types.js';
import type { CheckpointStore } from '../types.js';
import { ProjectorCollection, type CheckpointDoc } from './documents.js';
import { isDuplicateKey } from './driverErrors.js';

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
    const doc = await this.#checkpoints.findOne({ _id: generation });
    if (!doc) return null;
    return doc.token == null
      ? { position: doc.position }
      : { position: doc.position, token: doc.token };
  }

  /**
   * Overwrites the generation's checkpoint, as the memory adapter does. An upsert by `_id`
   * alone: a colliding concurrent upsert is retried by the server as an update (manual,
   * "Upsert with Duplicate Values"); the one retry here covers servers that answer E11000.
   */
  async save(generation: string, position: FeedPosition): Promise<void> {
    const write = () =>
      this.#checkpoints.updateOne(
        { _id: generation },
        {
          $set: {
            position: position.position,
            token: position.token ?? null,
            updatedAt: new Date(this.now()),
          },
        },
        { upsert: true },
      );
    try {
      await write();
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      await write();
    }
  }
}
