import type { FindOptions, ReadCollection, ReadDoc, ReadFilter, ReadView } from './types.js';

/**
 * A read view that keeps what projections read and write in memory and writes the
 * changed documents back with one `putMany` per collection on `flush()`.
 *
 * Only for a generation nobody else writes or reads (a rebuild's fresh one): it
 * trusts its cache. Documents are handed out by reference, so projections must
 * return new documents rather than modify what they were given (as `update` expects).
 */
export class WriteBehindView implements ReadView {
  readonly #cache = new Map<string, Map<string, ReadDoc | null>>();
  readonly #dirty = new Map<string, Set<string>>();
  readonly #collections = new Map<string, ReadCollection<ReadDoc>>();

  constructor(private readonly inner: ReadView) {}

  get generation(): string {
    return this.inner.generation;
  }

  collection<T extends ReadDoc>(name: string): ReadCollection<T> {
    let collection = this.#collections.get(name);
    if (!collection) this.#collections.set(name, (collection = this.#createCollection(name)));
    return collection as unknown as ReadCollection<T>;
  }

  #createCollection<T extends ReadDoc>(name: string): ReadCollection<T> {
    const inner = this.inner.collection<T>(name);
    const cache = this.#cacheOf(name) as Map<string, T | null>;
    const dirty = this.#dirtyOf(name);
    const load = async (ids: readonly string[]) => {
      const missing = ids.filter((id) => !cache.has(id));
      if (missing.length > 0) {
        const loaded = await inner.getMany(missing);
        missing.forEach((id, i) => cache.set(id, loaded[i] ?? null));
      }
      return ids.map((id) => cache.get(id) ?? null);
    };
    const put = (doc: T) => {
      cache.set(doc._id, doc);
      dirty.add(doc._id);
    };
    return {
      get: async (id) => (await load([id]))[0] ?? null,
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
      putMany: async (docs) => docs.forEach(put),
      delete: async (id) => {
        await this.flush();
        cache.set(id, null);
        await inner.delete(id);
      },
    };
  }

  /** Writes every changed document back, then forgets the cache (it stays correct either way). */
  async flush(): Promise<void> {
    for (const [name, ids] of this.#dirty) {
      if (ids.size === 0) continue;
      const cache = this.#cacheOf(name);
      const docs = [...ids].map((id) => cache.get(id)).filter((d): d is ReadDoc => d != null);
      ids.clear();
      await this.inner.collection(name).putMany(docs);
    }
    // Empty the maps rather than drop them: the collections hold them.
    for (const cache of this.#cache.values()) cache.clear();
  }

  #cacheOf(name: string): Map<string, ReadDoc | null> {
    let cache = this.#cache.get(name);
    if (!cache) this.#cache.set(name, (cache = new Map<string, ReadDoc | null>()));
    return cache;
  }

  #dirtyOf(name: string): Set<string> {
    let dirty = this.#dirty.get(name);
    if (!dirty) this.#dirty.set(name, (dirty = new Set<string>()));
    return dirty;
  }
}
