/**
 * Read documents in generations, on MongoDB: generation `g` keeps collection `name` in
 * `rm_<g>_<name>`, and one pointer document names the active generation.
 */
import type { Collection, Db, IndexDescription } from 'mongodb';
import {
  FencedOut,
  type Fence,
  type ReadCollection,
  type ReadDoc,
  type ReadModelStore,
  type ReadView,
} from '../types.js';
import {
  ACTIVE_POINTER_ID,
  ProjectorCollection,
  type ActivePointerDoc,
  type GenerationDoc,
} from './documents.js';
import { MAJORITY_WRITE, isDuplicateKey, translateDriverError } from './driverErrors.js';
import {
  assertGenerationId,
  generationCollectionPrefix,
  newGenerationId,
  readModelCollectionName,
} from './generations.js';
import { MongoReadCollection, notFencedOutBy } from './MongoReadCollection.js';
import type { StoredReadDoc } from './translateReadFilter.js';

/** Indexes to keep on read collections, by collection name, in every generation. */
export type ReadModelIndexes = Readonly<Record<string, readonly IndexDescription[]>>;

export interface MongoReadModelsOptions {
  /** How long `active()` may answer from this instance's copy of the pointer. */
  pointerCacheMs: number;
  /** How long after `dropGeneration` the drop happens, so queries on the old generation finish. */
  dropDelayMs: number;
  indexes: ReadModelIndexes;
}

/**
 * The generations of read documents.
 *
 * `active()` reads the pointer at most once per `pointerCacheMs` per instance, so most
 * queries cost no extra round trip. A switch made by another instance therefore becomes
 * visible here within `pointerCacheMs`; this instance sees its own `activate` at once.
 * To keep readers that still hold the old pointer from reading dropped collections,
 * `dropGeneration` waits `dropDelayMs` (several times the cache bound) before dropping.
 */
export class MongoReadModels implements ReadModelStore {
  readonly #db: Db;
  readonly #pointer: Collection<ActivePointerDoc>;
  readonly #generations: Collection<GenerationDoc>;
  readonly #options: MongoReadModelsOptions;
  #cached: { generation: string; readAt: number } | undefined;
  /** Bumped by `activate`, so a pointer read that started before it cannot overwrite it. */
  #epoch = 0;

  constructor(db: Db, options: MongoReadModelsOptions) {
    this.#db = db;
    this.#pointer = db.collection<ActivePointerDoc>(ProjectorCollection.ReadModelMeta);
    this.#generations = db.collection<GenerationDoc>(ProjectorCollection.ReadModelGenerations);
    this.#options = options;
  }

  /**
   * Makes sure an active generation exists: the first instance ever creates one. Two
   * instances starting together both try; the pointer's `_id` is unique, so exactly one
   * insert wins and the other's E11000 means "already there" (its spare generation is
   * unregistered again). Also ensures the configured indexes in the active generation.
   */
  async init(): Promise<void> {
    let pointer = await this.#pointer.findOne({ _id: ACTIVE_POINTER_ID });
    if (!pointer) {
      const generation = newGenerationId();
      await this.#generations.insertOne(
        { _id: generation, createdAt: new Date() },
        { writeConcern: MAJORITY_WRITE },
      );
      try {
        await this.#pointer.insertOne(
          { _id: ACTIVE_POINTER_ID, generation },
          { writeConcern: MAJORITY_WRITE },
        );
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      pointer = await this.#pointer.findOne({ _id: ACTIVE_POINTER_ID });
      if (!pointer) throw new Error('read model pointer vanished while it was being created');
      if (pointer.generation !== generation) await this.#generations.deleteOne({ _id: generation });
    }
    this.#remember(pointer.generation, this.#epoch);
    await this.#ensureIndexes(pointer.generation);
    await this.#dropDue();
  }

  async active(
    options: { signal?: AbortSignal; fresh?: boolean; fence?: Fence } = {},
  ): Promise<ReadView> {
    options.signal?.throwIfAborted();
    const { fence } = options;
    if (fence) {
      return this.view(
        await translateDriverError('read model pointer claim', () => this.#claimPointer(fence)),
      );
    }
    const cached = this.#cached;
    // A monotonic clock: a wall clock step must not extend or shorten the cache.
    if (
      !options.fresh &&
      cached &&
      performance.now() - cached.readAt < this.#options.pointerCacheMs
    ) {
      return this.view(cached.generation);
    }
    return this.view(
      await translateDriverError('read model pointer read', () =>
        this.#readPointer(options.signal),
      ),
    );
  }

  view(generation: string, options: { fence?: Fence } = {}): ReadView {
    assertGenerationId(generation);
    // The port's `view` is synchronous, so unlike the memory adapter it cannot check that
    // the generation exists; reading one that does not simply finds no documents.
    return {
      generation,
      collection: <T extends ReadDoc>(name: string): ReadCollection<T> =>
        new MongoReadCollection<T>(
          this.#db.collection<StoredReadDoc>(readModelCollectionName(generation, name)),
          options.fence,
        ),
    };
  }

  async createGeneration(): Promise<string> {
    const generation = newGenerationId();
    await this.#generations.insertOne(
      { _id: generation, createdAt: new Date() },
      { writeConcern: MAJORITY_WRITE },
    );
    await this.#ensureIndexes(generation);
    return generation;
  }

  /**
   * The pointer's generation, marked with `fence` by one `findOneAndUpdate` whose filter
   * refuses a pointer marked under a newer epoch: single-document atomicity orders it
   * against every fenced `activate`.
   */
  async #claimPointer(fence: Fence): Promise<string> {
    const epoch = this.#epoch;
    const pointer = await this.#pointer.findOneAndUpdate(
      { _id: ACTIVE_POINTER_ID, $expr: notFencedOutBy('fence', fence) },
      { $set: { fence: { lease: fence.lease, epoch: fence.epoch } } },
      { returnDocument: 'after', includeResultMetadata: false, writeConcern: MAJORITY_WRITE },
    );
    if (!pointer) {
      if (await this.#pointer.findOne({ _id: ACTIVE_POINTER_ID })) {
        throw new FencedOut('the read model pointer was claimed under a newer lease epoch');
      }
      throw new Error('the read model pointer is missing (was the database dropped?)');
    }
    this.#remember(pointer.generation, epoch);
    return pointer.generation;
  }

  /**
   * Compare-and-set on the one pointer document: `updateOne` with the expected generation
   * (and, with `fence`, no newer epoch) in the filter is atomic on a single document, so of
   * two racing switches from the same generation exactly one matches, and a switch by a
   * deposed holder fails once the new holder has claimed the pointer. Readers see the old
   * pointer or the new one, never a mix.
   */
  async activate(generation: string, expectedActive: string, fence?: Fence): Promise<boolean> {
    assertGenerationId(generation);
    if (!(await this.#generations.findOne({ _id: generation }))) return false;
    const result = await this.#pointer.updateOne(
      {
        _id: ACTIVE_POINTER_ID,
        generation: expectedActive,
        ...(fence ? { $expr: notFencedOutBy('fence', fence) } : {}),
      },
      {
        $set: {
          generation,
          ...(fence ? { fence: { lease: fence.lease, epoch: fence.epoch } } : {}),
        },
      },
      { writeConcern: MAJORITY_WRITE },
    );
    if (result.matchedCount !== 1) return false;
    this.#remember(generation, ++this.#epoch);
    return true;
  }

  /**
   * Drops `generation` later: it is marked with a drop time `dropDelayMs` from now and
   * dropped then, in the background, so that queries still running on it (readers that
   * fetched the old pointer, here or on an instance whose cached pointer is older) finish
   * first. A drop this instance did not live to make is made by the next `init()` of any
   * instance. Dropping every collection of the generation (found by name prefix) is
   * idempotent: `Collection.drop()` answers false for one already gone (driver 6+).
   *
   * @throws Error when `generation` is active (checked now and again before dropping).
   */
  async dropGeneration(generation: string): Promise<void> {
    assertGenerationId(generation);
    await this.#refuseActive(generation);
    await translateDriverError('generation drop', () =>
      this.#generations.updateOne(
        { _id: generation },
        { $set: { dropAfter: new Date(Date.now() + this.#options.dropDelayMs) } },
        { writeConcern: MAJORITY_WRITE },
      ),
    );
    const timer = setTimeout(() => {
      this.#dropDue().catch(() => {
        // Left for the next init() to finish; the generation stays marked.
      });
    }, this.#options.dropDelayMs);
    timer.unref();
  }

  /** Drops every generation whose drop time has passed and that is not active. */
  async #dropDue(): Promise<void> {
    const due = await this.#generations
      .find({ dropAfter: { $lte: new Date() } }, { projection: { _id: 1 } })
      .toArray();
    if (due.length === 0) return;
    const active = await this.#readPointer();
    // Listing names and filtering here avoids depending on `listCollections` filter support.
    const names = await this.#db.listCollections({}, { nameOnly: true }).toArray();
    for (const { _id: generation } of due) {
      if (generation === active) continue;
      const prefix = generationCollectionPrefix(generation);
      for (const { name } of names) {
        if (name.startsWith(prefix)) await this.#db.collection(name).drop();
      }
      await this.#generations.deleteOne({ _id: generation });
    }
  }

  async #refuseActive(generation: string): Promise<void> {
    if ((await this.#readPointer()) === generation) {
      throw new Error('cannot drop the active generation');
    }
  }

  async #readPointer(signal?: AbortSignal): Promise<string> {
    const epoch = this.#epoch;
    const pointer = await this.#pointer.findOne({ _id: ACTIVE_POINTER_ID }, { signal });
    if (!pointer) throw new Error('the read model pointer is missing (was the database dropped?)');
    this.#remember(pointer.generation, epoch);
    return pointer.generation;
  }

  #remember(generation: string, epoch: number): void {
    if (epoch === this.#epoch) this.#cached = { generation, readAt: performance.now() };
  }

  async #ensureIndexes(generation: string): Promise<void> {
    // createIndexes is a no-op for an index that already exists with the same specification.
    for (const [name, indexes] of Object.entries(this.#options.indexes)) {
      if (indexes.length === 0) continue;
      await this.#db
        .collection(readModelCollectionName(generation, name))
        .createIndexes([...indexes]);
    }
  }
}
