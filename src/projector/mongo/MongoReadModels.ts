/**
 * Read documents in generations, on MongoDB: generation `g` keeps collection `name` in
 * `rm_<g>_<name>`, and one pointer document names the active generation.
 */
import type { AnyBulkWriteOperation, Collection, Db, Document, IndexDescription } from 'mongodb';
import {
  FencedOut,
  StaleWrite,
  type Fence,
  type FindOptions,
  type ReadCollection,
  type ReadDoc,
  type ReadFilter,
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
import { translateReadFilter, translateSort, type StoredReadDoc } from './translateReadFilter.js';

/** Storage fields readers never see: the fence of the last fenced write. */
const HIDDEN_FIELDS = { _fence: 0 } as const;

/**
 * An aggregation expression, true unless the stored document's `field` (a `{ lease, epoch }`
 * fence) names `fence.lease` with a newer epoch than `fence.epoch`.
 */
function notFencedOutBy(field: string, fence: Fence): Document {
  return {
    $or: [
      { $ne: [{ $ifNull: [`$${field}.lease`, null] }, { $literal: fence.lease }] },
      { $lte: [`$${field}.epoch`, fence.epoch] },
    ],
  };
}

/**
 * An aggregation expression, true when writing a document whose `_applied` is `applied`
 * over the stored one loses nothing: every stream version the stored document has applied
 * is at most the new one's (a stream the new document lacks counts as 0). The stored
 * `_applied` is walked with `$objectToArray` and each key looked up in the new one's keys,
 * so stream names are compared as values and never read as field paths.
 */
export function notRegressedBy(applied: Readonly<Record<string, number>>): Document {
  const streams = Object.keys(applied);
  return {
    $allElementsTrue: [
      {
        $map: {
          input: { $objectToArray: { $ifNull: ['$_applied', {}] } },
          as: 'a',
          in: {
            $let: {
              vars: { i: { $indexOfArray: [{ $literal: streams }, '$$a.k'] } },
              in: {
                $lte: [
                  '$$a.v',
                  {
                    $cond: [
                      { $eq: ['$$i', -1] },
                      0,
                      { $arrayElemAt: [{ $literal: streams.map((s) => applied[s]) }, '$$i'] },
                    ],
                  },
                ],
              },
            },
          },
        },
      },
    ],
  };
}

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
 * One read collection of one generation.
 *
 * Reads pass `signal` to the driver, which supports it on `find`, `findOne` and
 * `countDocuments` (`Abortable`, experimental since driver 6.13; the driver closes the
 * cursor, or the connection if the signal fires mid-read, and throws `signal.reason`).
 * Writes take no signal in the port.
 */
class MongoReadCollection<T extends ReadDoc> implements ReadCollection<T> {
  // Loosely typed on the MongoDB side: fields are the projections' business, filters are
  // built from the port's `ReadFilter`, and documents come back as `T`.
  constructor(
    private readonly docs: Collection<StoredReadDoc>,
    private readonly fence: Fence | undefined,
  ) {}

  async get(id: string, options: { signal?: AbortSignal } = {}): Promise<T | null> {
    options.signal?.throwIfAborted();
    return translateDriverError('read document get', async () => {
      const found = await this.docs.findOne(
        { _id: id },
        { projection: HIDDEN_FIELDS, signal: options.signal },
      );
      return found as T | null;
    });
  }

  async getMany(ids: readonly string[], options: { signal?: AbortSignal } = {}) {
    options.signal?.throwIfAborted();
    if (ids.length === 0) return [];
    // One query, then back into the caller's order (the server returns no particular order).
    const found = await translateDriverError('read documents get', () =>
      this.docs
        .find(
          { _id: { $in: [...new Set(ids)] } },
          { projection: HIDDEN_FIELDS, signal: options.signal },
        )
        .toArray(),
    );
    const byId = new Map(found.map((doc) => [doc._id, doc as unknown as T]));
    const handedOut = new Set<string>();
    return ids.map((id) => {
      const doc = byId.get(id);
      if (!doc) return null;
      // An id asked for twice gets two copies, as from the memory adapter.
      if (handedOut.has(id)) return structuredClone(doc);
      handedOut.add(id);
      return doc;
    });
  }

  async find(filter: ReadFilter, options: FindOptions = {}): Promise<T[]> {
    options.signal?.throwIfAborted();
    const { limit } = options;
    if (limit !== undefined) {
      if (limit < 0 || !Number.isInteger(limit)) throw new RangeError(`invalid limit ${limit}`);
      // MongoDB reads `limit: 0` as "no limit"; the port (like the memory adapter) means none.
      if (limit === 0) return [];
    }
    const found = await translateDriverError('read documents find', () =>
      this.docs
        .find(translateReadFilter(filter), {
          ...(options.sort ? { sort: translateSort(options.sort) } : {}),
          ...(limit !== undefined ? { limit } : {}),
          projection: HIDDEN_FIELDS,
          signal: options.signal,
        })
        .toArray(),
    );
    return found as unknown as T[];
  }

  async count(filter: ReadFilter, options: { signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted();
    // countDocuments is exact (an aggregation), unlike the metadata-based estimate.
    return translateDriverError('read documents count', () =>
      this.docs.countDocuments(translateReadFilter(filter), { signal: options.signal }),
    );
  }

  /**
   * A conditional replacement with upsert, by `_id`: the filter lets it replace only a
   * document it does not regress (see `notRegressedBy`) and, in a fenced view, one not
   * written under a newer epoch of the lease (`_fence`). When the filter refuses an
   * existing document, the upsert's insert collides on `_id` (E11000; the server retries
   * such a duplicate itself only for equality-only filters, manual "Upsert with Duplicate
   * Values"), and a re-read of `_fence` tells `FencedOut` from `StaleWrite`. A concurrent
   * first insert of the same `_id` ends the same way, as `StaleWrite`, and the caller's
   * re-read sees the winner.
   *
   * `ignoreUndefined` drops undefined fields instead of storing null, so the document reads
   * back as the memory adapter's clone does. Stream names as `_applied` keys are stored as
   * is by a replacement even with a `.` (manual, "Field Names with Periods"), and are only
   * ever compared as values (`$objectToArray`), never used as paths.
   */
  async put(doc: T): Promise<void> {
    const fence = this.fence;
    const replacement = fence
      ? { ...doc, _fence: { lease: fence.lease, epoch: fence.epoch } }
      : { ...doc };
    const conditions: Document[] = [notRegressedBy(doc._applied ?? {})];
    if (fence) conditions.push(notFencedOutBy('_fence', fence));
    await translateDriverError('read document write', async () => {
      try {
        await this.docs.replaceOne({ _id: doc._id, $expr: { $and: conditions } }, replacement, {
          upsert: true,
          ignoreUndefined: true,
          writeConcern: MAJORITY_WRITE,
        });
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        const stored = await this.docs.findOne({ _id: doc._id }, { projection: { _fence: 1 } });
        const storedFence = stored?._fence as { lease: string; epoch: number } | undefined;
        if (fence && storedFence?.lease === fence.lease && storedFence.epoch > fence.epoch) {
          throw new FencedOut(`read document ${doc._id} was written under a newer lease epoch`);
        }
        throw new StaleWrite(`read document ${doc._id} has applied newer versions`);
      }
    });
  }

  async putMany(docs: readonly T[]): Promise<void> {
    // Only the last document per `_id`, as `put` in a loop would leave: the bulk write is
    // unordered, and MongoDB may apply an unordered list in any order (manual,
    // db.collection.initializeUnorderedBulkOp(), "Order of Operation": "applications should
    // not depend on the ordering"), so two writes of one `_id` could land either way.
    const latest = [...new Map(docs.map((doc) => [doc._id, doc])).values()];
    if (latest.length === 0) return;
    // One bulkWrite of replaceOne upserts: the same write as `put` per document, in one
    // round trip. Unordered, so the server may apply them in parallel; `ignoreUndefined`
    // is honoured by the bulk's serializer as by `put`'s.
    await translateDriverError('read documents write', () =>
      this.docs.bulkWrite(
        latest.map((doc): AnyBulkWriteOperation<StoredReadDoc> => ({
          replaceOne: {
            filter: { _id: doc._id },
            replacement: doc,
            upsert: true,
          },
        })),
        { ordered: false, ignoreUndefined: true, writeConcern: MAJORITY_WRITE },
      ),
    );
  }

  async delete(id: string): Promise<void> {
    await translateDriverError('read document delete', () =>
      this.docs.deleteOne({ _id: id }, { writeConcern: MAJORITY_WRITE }),
    );
  }
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
