/**
 * One read collection of one generation on MongoDB: reads that hide storage fields, and
 * writes conditional on the document's applied stream versions and the writer's fence.
 */
import {
  MongoBulkWriteError,
  type AnyBulkWriteOperation,
  type Collection,
  type Document,
} from 'mongodb';
import {
  FencedOut,
  lastPerId,
  StaleWrite,
  type Fence,
  type FindOptions,
  type ReadCollection,
  type ReadDoc,
  type ReadFilter,
} from '../types.js';
import {
  MAJORITY_WRITE,
  ServerErrorCode,
  isDuplicateKey,
  translateDriverError,
} from './driverErrors.js';
import { translateReadFilter, translateSort, type StoredReadDoc } from './translateReadFilter.js';

/** Storage fields readers never see: the fence of the last fenced write. */
const HIDDEN_FIELDS = { _fence: 0 } as const;

/**
 * An aggregation expression, true unless the stored document's `field` (a `{ lease, epoch }`
 * fence) names `fence.lease` with a newer epoch than `fence.epoch`.
 */
export function notFencedOutBy(field: string, fence: Fence): Document {
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

/**
 * One read collection of one generation.
 *
 * Reads pass `signal` to the driver, which supports it on `find`, `findOne` and
 * `countDocuments` (`Abortable`, experimental since driver 6.13; the driver closes the
 * cursor, or the connection if the signal fires mid-read, and throws `signal.reason`).
 * Writes take no signal in the port.
 */
export class MongoReadCollection<T extends ReadDoc> implements ReadCollection<T> {
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
    const { filter, replacement } = this.#conditionalWrite(doc);
    await translateDriverError('read document write', async () => {
      try {
        await this.docs.replaceOne(filter, replacement, {
          upsert: true,
          ignoreUndefined: true,
          writeConcern: MAJORITY_WRITE,
        });
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        await this.#refused([doc._id]);
      }
    });
  }

  /**
   * `put` of each document (the last one per `_id`) as one unordered bulk write of the
   * same conditional upserts: MongoDB goes on past a failed write of an unordered list and
   * reports each failure in `writeErrors`, by its index in the list (manual, "Ordered vs
   * Unordered Operations"); the driver throws them as one `MongoBulkWriteError`
   * (bulk/common.js `handleWriteError`). Refusals (E11000, as for `put`) are told apart
   * by one re-read of their `_fence`; any other write error, or a write concern error, is
   * the storage failing.
   */
  async putEach(docs: readonly T[]): Promise<void> {
    const latest = lastPerId(docs);
    if (latest.length === 0) return;
    await translateDriverError('read documents write', async () => {
      try {
        await this.docs.bulkWrite(
          latest.map((doc): AnyBulkWriteOperation<StoredReadDoc> => {
            const { filter, replacement } = this.#conditionalWrite(doc);
            return { replaceOne: { filter, replacement, upsert: true } };
          }),
          { ordered: false, ignoreUndefined: true, writeConcern: MAJORITY_WRITE },
        );
      } catch (error) {
        if (!(error instanceof MongoBulkWriteError)) throw error;
        const failed = [error.writeErrors].flat();
        if (
          failed.length === 0 ||
          !failed.every((e) => e.code === ServerErrorCode.DuplicateKey) ||
          error.result.getWriteConcernError() !== undefined
        ) {
          throw error;
        }
        await this.#refused(failed.map((e) => latest[e.index]!._id));
      }
    });
  }

  /** The filter and replacement of `put`'s conditional upsert of `doc`. */
  #conditionalWrite(doc: T): { filter: Document; replacement: StoredReadDoc } {
    const fence = this.fence;
    const replacement = fence
      ? { ...doc, _fence: { lease: fence.lease, epoch: fence.epoch } }
      : { ...doc };
    const conditions: Document[] = [notRegressedBy(doc._applied ?? {})];
    if (fence) conditions.push(notFencedOutBy('_fence', fence));
    return { filter: { _id: doc._id, $expr: { $and: conditions } }, replacement };
  }

  /**
   * Throws for the documents whose conditional upsert the filter refused: `FencedOut` when
   * one was written under a newer epoch of this view's lease (its `_fence`), else `StaleWrite`.
   */
  async #refused(ids: readonly string[]): Promise<never> {
    const fence = this.fence;
    if (fence) {
      const stored = await this.docs
        .find({ _id: { $in: [...ids] } }, { projection: { _fence: 1 } })
        .toArray();
      const newer = stored.find((doc) => {
        const storedFence = doc._fence as { lease: string; epoch: number } | undefined;
        return storedFence?.lease === fence.lease && storedFence.epoch > fence.epoch;
      });
      if (newer) {
        throw new FencedOut(`read document ${newer._id} was written under a newer lease epoch`);
      }
    }
    throw new StaleWrite(`read document ${ids.join(', ')} has applied newer versions`);
  }

  async putMany(docs: readonly T[]): Promise<void> {
    // Only the last document per `_id`, as `put` in a loop would leave: the bulk write is
    // unordered, and MongoDB may apply an unordered list in any order (manual,
    // db.collection.initializeUnorderedBulkOp(), "Order of Operation": "applications should
    // not depend on the ordering"), so two writes of one `_id` could land either way.
    const latest = lastPerId(docs);
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
