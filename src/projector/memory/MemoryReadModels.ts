import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  FencedOut,
  lastPerId,
  StaleWrite,
  type Fence,
  type FindOptions,
  type ReadCollection,
  type ReadDoc,
  type ReadFilter,
  type ReadIndex,
  type ReadIndexes,
  type ReadModelStore,
  type ReadView,
} from '../types.js';
import { frozenCopy } from '../frozen.js';
import { fencedOut } from './fencing.js';

/** Whether `doc` passes `filter`; an array field matches when it contains the value. */
export function matchesFilter(doc: Record<string, unknown>, filter: ReadFilter): boolean {
  return matcherOf(filter)(doc);
}

/** `matchesFilter` for one filter, its fields listed once for every document it is asked about. */
function matcherOf(filter: ReadFilter): (doc: Record<string, unknown>) => boolean {
  const conditions = Object.entries(filter);
  return (doc) => {
    for (const [field, wanted] of conditions) {
      const value = doc[field];
      if (wanted !== null && typeof wanted === 'object') {
        if (!((typeof value === 'string' || typeof value === 'number') && value > wanted.gt))
          return false;
      } else if (!(Array.isArray(value) ? value.includes(wanted) : (value ?? null) === wanted)) {
        return false;
      }
    }
    return true;
  };
}

/** Order of two field values (dates by their time: two equal dates are a tie). */
function compare(a: unknown, b: unknown): number {
  const x = a instanceof Date ? a.getTime() : (a as string | number);
  const y = b instanceof Date ? b.getTime() : (b as string | number);
  return x === y ? 0 : x < y ? -1 : 1;
}

/**
 * Documents of one collection by id, with a hash index on each field named by `indexed`
 * (an array field is indexed under each element, as MongoDB's multikey indexes are): a
 * `find` with an equality on an indexed field reads only the documents holding that value.
 * An index bucket holds the documents themselves, so a query never looks its matches up
 * in the collection's map: the cost of reading a board's cards does not grow with the
 * number of documents of other boards.
 */
class IndexedDocs<T extends ReadDoc> {
  readonly #docs = new Map<string, T>();
  readonly #indexes: Map<string, Map<unknown, Map<string, T>>>;
  /** `#indexes` as a list, walked by index on every write (no iterator per write). */
  readonly #indexList: { field: string; index: Map<unknown, Map<string, T>> }[];

  constructor(indexed: readonly string[]) {
    this.#indexes = new Map(indexed.map((field) => [field, new Map<unknown, Map<string, T>>()]));
    this.#indexList = [...this.#indexes].map(([field, index]) => ({ field, index }));
  }

  get(id: string): T | undefined {
    return this.#docs.get(id);
  }

  /** Stores `doc` over `old`, the document of its id as stored (`get`), if any. */
  set(doc: T, old: T | undefined = this.#docs.get(doc._id)): void {
    for (let i = 0; i < this.#indexList.length; i += 1) {
      const { field, index } = this.#indexList[i]!;
      const value = (doc as unknown as Record<string, unknown>)[field];
      const was = old && (old as unknown as Record<string, unknown>)[field];
      if (!Array.isArray(value) && !Array.isArray(was)) {
        // One key before and after (the common case): move the document only if it changed.
        const key = value ?? null;
        if (old && (was ?? null) !== key) this.#unindex(index, was ?? null, doc._id);
        let docs = index.get(key);
        if (!docs) index.set(key, (docs = new Map<string, T>()));
        docs.set(doc._id, doc);
        continue;
      }
      const before = old ? keysOf(old, field) : [];
      const after = keysOf(doc, field);
      for (const key of before) {
        if (!after.includes(key)) this.#unindex(index, key, doc._id);
      }
      for (const key of after) {
        let docs = index.get(key);
        if (!docs) index.set(key, (docs = new Map<string, T>()));
        docs.set(doc._id, doc);
      }
    }
    this.#docs.set(doc._id, doc);
  }

  delete(id: string): void {
    const old = this.#docs.get(id);
    if (!old) return;
    for (const [field, index] of this.#indexes) {
      for (const key of keysOf(old, field)) this.#unindex(index, key, id);
    }
    this.#docs.delete(id);
  }

  /** Takes document `id` out of `index`'s bucket for `key`, dropping the bucket once empty. */
  #unindex(index: Map<unknown, Map<string, T>>, key: unknown, id: string): void {
    const docs = index.get(key);
    docs?.delete(id);
    if (docs?.size === 0) index.delete(key);
  }

  /** Documents that may match `filter`: the smallest index bucket it selects, else all. */
  candidates(filter: ReadFilter): Iterable<T> {
    let best: ReadonlyMap<string, T> | undefined;
    for (const [field, wanted] of Object.entries(filter)) {
      const index = this.#indexes.get(field);
      if (!index || (wanted !== null && typeof wanted === 'object')) continue;
      const docs: ReadonlyMap<string, T> = index.get(wanted) ?? NO_DOCS;
      if (!best || docs.size < best.size) best = docs;
    }
    return (best ?? this.#docs).values();
  }
}

const NO_DOCS: ReadonlyMap<string, never> = new Map<string, never>();

/** The index keys of `doc` for `field`: each element of an array, else the value (absent: null). */
function keysOf(doc: ReadDoc, field: string): unknown[] {
  const value = (doc as unknown as Record<string, unknown>)[field];
  return Array.isArray(value) ? [...new Set(value)] : [value ?? null];
}

/**
 * Whether writing `next` over `stored` would lose an applied stream version: `stored` has
 * applied a stream version that `next` has not. Shared with the mongo adapter's tests.
 */
export function regresses(stored: ReadDoc | undefined, next: ReadDoc): boolean {
  const before = stored?._applied;
  if (!before) return false;
  const after = next._applied ?? {};
  // `for in`, not `Object.keys`: no array per write (`_applied` has no prototype fields).
  for (const stream in before) {
    if ((after[stream] ?? 0) < before[stream]!) return true;
  }
  return false;
}

/**
 * One collection. Documents are stored as deeply frozen copies (`frozenCopy`) and handed
 * out as they are stored, without a copy per read: a reader cannot change what the store
 * holds, and a write replaces the stored document instead of changing it.
 */
class MemoryCollection<T extends ReadDoc> implements ReadCollection<T> {
  readonly #docs: IndexedDocs<T>;
  /** The fence of the last fenced write of each document. */
  readonly #fences = new Map<string, Fence>();
  /** The fence kept last (see `#shared`). */
  #lastFence: Fence | undefined;
  #examined = 0;

  /**
   * Documents the queries of this collection have looked at so far, matching or not (as
   * MongoDB's `totalDocsExamined`): shows which documents a query's index let it skip.
   */
  get examined(): number {
    return this.#examined;
  }

  constructor(indexes: readonly ReadIndex[]) {
    // The first key of each declared index: the equality every query of it starts with.
    this.#docs = new IndexedDocs(
      [...new Set(indexes.map((i) => Object.keys(i.key)[0]))].filter(
        (field): field is string => field !== undefined && field !== '_id',
      ),
    );
  }

  async get(id: string, options: { signal?: AbortSignal } = {}): Promise<T | null> {
    await nextTurn();
    options.signal?.throwIfAborted();
    return this.#docs.get(id) ?? null;
  }

  async getMany(ids: readonly string[], options: { signal?: AbortSignal } = {}) {
    await nextTurn();
    options.signal?.throwIfAborted();
    return ids.map((id) => this.#docs.get(id) ?? null);
  }

  async find(filter: ReadFilter, options: FindOptions = {}): Promise<T[]> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const found: T[] = [];
    const matches = matcherOf(filter);
    for (const doc of this.#docs.candidates(filter)) {
      this.#examined += 1;
      if (matches(doc as unknown as Record<string, unknown>)) found.push(doc);
    }
    if (options.sort) {
      // As MongoDB is asked to (`translateSort`): the field, then `_id` to break ties.
      const [field, direction] = options.sort;
      found.sort(
        (a, b) =>
          direction *
            compare((a as Record<string, unknown>)[field], (b as Record<string, unknown>)[field]) ||
          compare(a._id, b._id),
      );
    }
    return options.limit !== undefined ? found.slice(0, options.limit) : found;
  }

  async count(filter: ReadFilter, options: { signal?: AbortSignal } = {}): Promise<number> {
    return (await this.find(filter, options)).length;
  }

  async put(doc: T, fence?: Fence): Promise<void> {
    await nextTurn();
    this.#write(doc, fence && { ...fence });
  }

  async putEach(docs: readonly T[], fence?: Fence): Promise<void> {
    await nextTurn();
    const refusals: Error[] = [];
    // One copy of the fence, shared by the documents it writes.
    const kept = fence && { ...fence };
    for (const doc of lastPerId(docs)) {
      try {
        this.#write(doc, kept);
      } catch (error) {
        refusals.push(error as Error);
      }
    }
    const refusal = refusals.find((e) => e instanceof FencedOut) ?? refusals[0];
    if (refusal) throw refusal;
  }

  /** `put`'s conditional write, at once; `fence` is kept as it is (the caller's copy). */
  #write(doc: T, fence: Fence | undefined): void {
    if (fencedOut(this.#fences.get(doc._id), fence)) {
      throw new FencedOut(`read document ${doc._id} was written under a newer lease epoch`);
    }
    const stored = this.#docs.get(doc._id);
    if (regresses(stored, doc)) {
      throw new StaleWrite(`read document ${doc._id} has applied newer versions`);
    }
    this.#docs.set(frozenCopy(doc), stored);
    if (fence) this.#fences.set(doc._id, this.#shared(fence));
  }

  /**
   * The fence kept for a document: the one kept last when equal (a projector writes every
   * document of its tenure under the same fence), so documents share one copy, not one each.
   */
  #shared(fence: Fence): Fence {
    const last = this.#lastFence;
    if (
      last &&
      last.lease === fence.lease &&
      last.owner === fence.owner &&
      last.epoch === fence.epoch
    ) {
      return last;
    }
    return (this.#lastFence = fence);
  }

  async putMany(docs: readonly T[]): Promise<void> {
    await nextTurn();
    for (const doc of docs) this.#docs.set(frozenCopy(doc));
  }

  async delete(id: string): Promise<void> {
    await nextTurn();
    this.#docs.delete(id);
  }
}

/** Read documents in generations, in one process: the memory adapter of `ReadModelStore`. */
export class MemoryReadModels implements ReadModelStore {
  readonly #generations = new Map<string, Map<string, MemoryCollection<ReadDoc>>>();
  #active: string;
  /** The newest fence that marked or switched the pointer. */
  #fence: Fence | undefined;
  #next = 1;

  constructor(private readonly indexes: ReadIndexes) {
    this.#active = this.#create();
  }

  #create(): string {
    const generation = `g${this.#next++}`;
    this.#generations.set(generation, new Map());
    return generation;
  }

  async active(options: { signal?: AbortSignal; fence?: Fence } = {}): Promise<ReadView> {
    options.signal?.throwIfAborted();
    const { fence } = options;
    if (fence) {
      await nextTurn();
      if (fencedOut(this.#fence, fence)) {
        throw new FencedOut('the read model pointer was claimed under a newer lease epoch');
      }
      this.#fence = { ...fence };
    }
    return this.view(this.#active);
  }

  view(generation: string, options: { fence?: Fence } = {}): ReadView {
    const collections = this.#generations.get(generation);
    if (!collections) throw new Error(`unknown read model generation ${generation}`);
    const { fence } = options;
    return {
      generation,
      collection: <T extends ReadDoc>(name: string) => {
        let c = collections.get(name);
        if (!c) collections.set(name, (c = new MemoryCollection(this.indexes[name] ?? [])));
        const collection = c as unknown as MemoryCollection<T>;
        if (!fence) return collection;
        // The same collection, with every put carrying the fence.
        const fenced: ReadCollection<T> = {
          get: (id, o) => collection.get(id, o),
          getMany: (ids, o) => collection.getMany(ids, o),
          find: (filter, o) => collection.find(filter, o),
          count: (filter, o) => collection.count(filter, o),
          put: (doc) => collection.put(doc, fence),
          putEach: (docs) => collection.putEach(docs, fence),
          putMany: (docs) => collection.putMany(docs),
          delete: (id) => collection.delete(id),
        };
        return fenced;
      },
    };
  }

  async createGeneration(): Promise<string> {
    await nextTurn();
    return this.#create();
  }

  async activate(generation: string, expectedActive: string, fence?: Fence): Promise<boolean> {
    await nextTurn();
    if (this.#active !== expectedActive || !this.#generations.has(generation)) return false;
    if (fencedOut(this.#fence, fence)) return false;
    this.#active = generation;
    if (fence) this.#fence = { ...fence };
    return true;
  }

  async dropGeneration(generation: string): Promise<void> {
    await nextTurn();
    if (generation === this.#active) throw new Error('cannot drop the active generation');
    this.#generations.delete(generation);
  }
}
