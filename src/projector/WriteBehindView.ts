import type { FindOptions, ReadCollection, ReadDoc, ReadFilter, ReadView } from './types.js';

/** How a {@link WriteBehindView} writes back and what it keeps. */
export interface WriteBehindOptions {
  /**
   * `putMany` (the default): one unconditional bulk write per collection, only for a
   * generation nobody else writes (a rebuild's fresh one). `put`: the changed documents
   * with the view's own conditional `putEach` (as `put` would: never regressing a document;
   * fenced in a fenced view), for the active generation while this process holds the projector lease.
   */
  write?: 'putMany' | 'put';
  /**
   * Documents kept in memory after a flush, so the next batch reads none of them again
   * (the fold stays in memory while it fits); past this many, the cache is emptied.
   * With `putMany`, only sound while nothing but this view writes the generation; with
   * `put`, a document another writer changed meanwhile is refused at the next flush
   * (`StaleWrite`, or `FencedOut`) rather than regressed. @default 0
   */
  keepUpTo?: number;
}

/**
 * A collection of a {@link WriteBehindView}: a `ReadCollection` that also answers from its
 * memory at once, so that a read-modify-write on a cached document costs no turn.
 */
export interface BufferedCollection<T extends ReadDoc> extends ReadCollection<T> {
  /** The document as this view holds it (null: known absent); undefined when not cached. */
  cached(id: string): T | null | undefined;
  /** `put` at once: the view keeps the document, to be written back on `flush()`. */
  keep(doc: T): void;
  /** Reads the documents of `ids` it does not hold, in one `getMany`, and holds them. */
  preload(ids: readonly string[]): Promise<void>;
}

/** Whether `collection` is a {@link WriteBehindView}'s. */
export function isBuffered<T extends ReadDoc>(
  collection: ReadCollection<T>,
): collection is BufferedCollection<T> {
  return typeof (collection as Partial<BufferedCollection<T>>).keep === 'function';
}

/**
 * A read view that keeps what projections read and write in memory and writes the
 * changed documents back on `flush()`: one write per changed document, however many
 * commits changed it.
 *
 * It trusts its cache: only this view may write the generation meanwhile. Documents are
 * handed out by reference, so projections must return new documents rather than modify
 * what they were given (as `update` expects).
 */
export class WriteBehindView implements ReadView {
  readonly #cache = new Map<string, Map<string, ReadDoc | null>>();
  /** Per collection, the documents changed since the last flush, by id. */
  readonly #dirty = new Map<string, Map<string, ReadDoc>>();
  readonly #collections = new Map<string, ReadCollection<ReadDoc>>();
  #pending = 0;

  constructor(
    private readonly inner: ReadView,
    private readonly options: WriteBehindOptions = {},
  ) {}

  get generation(): string {
    return this.inner.generation;
  }

  collection<T extends ReadDoc>(name: string): ReadCollection<T> {
    let collection = this.#collections.get(name);
    if (!collection) this.#collections.set(name, (collection = this.#createCollection(name)));
    return collection as unknown as ReadCollection<T>;
  }

  #createCollection<T extends ReadDoc>(name: string): BufferedCollection<T> {
    const inner = this.inner.collection<T>(name);
    const cache = this.#cacheOf(name) as Map<string, T | null>;
    const dirty = this.#dirtyOf(name);
    /** Loads the ids not cached; one written meanwhile keeps its written document. */
    const load = async (ids: readonly string[]) => {
      const missing = ids.filter((id) => !cache.has(id));
      if (missing.length > 0) {
        const loaded = await inner.getMany(missing);
        missing.forEach((id, i) => {
          if (!cache.has(id)) cache.set(id, loaded[i] ?? null);
        });
      }
      return ids.map((id) => cache.get(id) ?? null);
    };
    const put = (doc: T) => {
      const before = dirty.size;
      cache.set(doc._id, doc);
      if (dirty.set(doc._id, doc).size > before) this.#pending += 1;
    };
    return {
      cached: (id) => cache.get(id),
      keep: put,
      preload: async (ids) => {
        await load(ids);
      },
      // A cached document is answered without a store call (the hot path of a replay).
      get: (id) =>
        cache.has(id)
          ? Promise.resolve(cache.get(id) ?? null)
          : load([id]).then((docs) => docs[0] ?? null),
      getMany: (ids) => load(ids),
      // Queries see the store, so everything written so far goes there first.
      find: async (filter: ReadFilter, options?: FindOptions) => {
        await this.flush();
        return inner.find(filter, options);
      },
      count: async (filter, options) => {
        await this.flush();
        return inner.count(filter, options);
      },
      put: async (doc) => put(doc),
      putEach: async (docs) => docs.forEach(put),
      putMany: async (docs) => docs.forEach(put),
      delete: async (id) => {
        await this.flush();
        cache.set(id, null);
        await inner.delete(id);
      },
    };
  }

  /** Changed documents not written back yet. */
  get pending(): number {
    return this.#pending;
  }

  /** Writes every changed document back; keeps the cache while it fits `keepUpTo`. */
  async flush(): Promise<void> {
    for (const [name, changed] of this.#dirty) {
      if (changed.size === 0) continue;
      const docs = [...changed.values()];
      this.#pending -= changed.size;
      changed.clear();
      const collection = this.inner.collection(name);
      if (this.options.write === 'put') {
        await collection.putEach(docs);
      } else {
        await collection.putMany(docs);
      }
    }
    let kept = 0;
    for (const cache of this.#cache.values()) kept += cache.size;
    // Empty the maps rather than drop them: the collections hold them.
    if (kept > (this.options.keepUpTo ?? 0))
      for (const cache of this.#cache.values()) cache.clear();
  }

  #cacheOf(name: string): Map<string, ReadDoc | null> {
    let cache = this.#cache.get(name);
    if (!cache) this.#cache.set(name, (cache = new Map<string, ReadDoc | null>()));
    return cache;
  }

  #dirtyOf(name: string): Map<string, ReadDoc> {
    let dirty = this.#dirty.get(name);
    if (!dirty) this.#dirty.set(name, (dirty = new Map<string, ReadDoc>()));
    return dirty;
  }
}
