import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FeedPosition } from '../../eventstore/types.js';
import {
  FencedOut,
  StaleWrite,
  type ChangeLog,
  type ChangeLogEntry,
  type ChangeLogRead,
  type ChangeLogTail,
  type CheckpointStore,
  type Fence,
  type FindOptions,
  type LeaseGrant,
  type LeaseStore,
  type ProjectorStorage,
  type ReadCollection,
  type ReadDoc,
  type ReadFilter,
  type ReadIndex,
  type ReadIndexes,
  type ReadModelStore,
  type ReadView,
} from '../types.js';

/** Whether `doc` passes `filter`; an array field matches when it contains the value. */
export function matchesFilter(doc: Record<string, unknown>, filter: ReadFilter): boolean {
  return Object.entries(filter).every(([field, wanted]) => {
    const value = doc[field];
    if (wanted !== null && typeof wanted === 'object') {
      return (typeof value === 'string' || typeof value === 'number') && value > wanted.gt;
    }
    return Array.isArray(value) ? value.includes(wanted) : (value ?? null) === wanted;
  });
}

/** Order of two field values (dates by their time: two equal dates are a tie). */
function compare(a: unknown, b: unknown): number {
  const x = a instanceof Date ? a.getTime() : (a as string | number);
  const y = b instanceof Date ? b.getTime() : (b as string | number);
  return x === y ? 0 : x < y ? -1 : 1;
}

/** Thrown by every setter of a stored document's dates. */
function immutableDate(): never {
  throw new TypeError('read documents handed out by the store are immutable: copy before changing');
}

/** A `Date` whose setters throw: the dates inside stored (frozen) read documents. */
class StoredDate extends Date {}
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  if (name.startsWith('set')) {
    Object.defineProperty(StoredDate.prototype, name, { value: immutableDate });
  }
}

/**
 * A deeply frozen copy of a read document's value: what the store keeps and hands out,
 * so readers share one copy and none can change it (writes throw in strict code) or see
 * a later write change it under them (a write stores a new copy).
 */
export function frozenCopy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return Object.freeze(new StoredDate(value.getTime())) as T;
  if (Array.isArray(value)) return Object.freeze(value.map(frozenCopy)) as T;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return Object.freeze(structuredClone(value));
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) copy[key] = frozenCopy(field);
  return Object.freeze(copy) as T;
}

/**
 * Documents of one collection by id, with a hash index on each field named by `indexed`
 * (an array field is indexed under each element, as MongoDB's multikey indexes are): a
 * `find` with an equality on an indexed field reads only the documents holding that value.
 */
class IndexedDocs<T extends ReadDoc> {
  readonly #docs = new Map<string, T>();
  readonly #indexes: Map<string, Map<unknown, Set<string>>>;

  constructor(indexed: readonly string[]) {
    this.#indexes = new Map(indexed.map((field) => [field, new Map<unknown, Set<string>>()]));
  }

  get(id: string): T | undefined {
    return this.#docs.get(id);
  }

  set(doc: T): void {
    const old = this.#docs.get(doc._id);
    for (const [field, index] of this.#indexes) {
      const before = old ? keysOf(old, field) : [];
      const after = keysOf(doc, field);
      for (const key of before) if (!after.includes(key)) index.get(key)?.delete(doc._id);
      for (const key of after) {
        let ids = index.get(key);
        if (!ids) index.set(key, (ids = new Set()));
        ids.add(doc._id);
      }
    }
    this.#docs.set(doc._id, doc);
  }

  delete(id: string): void {
    const old = this.#docs.get(id);
    if (!old) return;
    for (const [field, index] of this.#indexes) {
      for (const key of keysOf(old, field)) {
        const ids = index.get(key);
        ids?.delete(id);
        if (ids?.size === 0) index.delete(key);
      }
    }
    this.#docs.delete(id);
  }

  /** Documents that may match `filter`: the smallest index bucket it selects, else all. */
  candidates(filter: ReadFilter): Iterable<T> {
    let best: Set<string> | undefined;
    for (const [field, wanted] of Object.entries(filter)) {
      const index = this.#indexes.get(field);
      if (!index || (wanted !== null && typeof wanted === 'object')) continue;
      const ids = index.get(wanted) ?? new Set<string>();
      if (!best || ids.size < best.size) best = ids;
    }
    if (!best) return this.#docs.values();
    const docs = this.#docs;
    return [...best].map((id) => docs.get(id)!);
  }
}

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
  const before = stored?._applied ?? {};
  const after = next._applied ?? {};
  return Object.entries(before).some(([stream, version]) => (after[stream] ?? 0) < version);
}

/** Whether a write fenced with `fence` must be refused over a document last written under `stored`. */
export function fencedOut(stored: Fence | undefined, fence: Fence | undefined): boolean {
  return (
    fence !== undefined &&
    stored !== undefined &&
    stored.lease === fence.lease &&
    stored.epoch > fence.epoch
  );
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
    for (const doc of this.#docs.candidates(filter)) {
      if (matchesFilter(doc as unknown as Record<string, unknown>, filter)) found.push(doc);
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
    if (fencedOut(this.#fences.get(doc._id), fence)) {
      throw new FencedOut(`read document ${doc._id} was written under a newer lease epoch`);
    }
    if (regresses(this.#docs.get(doc._id), doc)) {
      throw new StaleWrite(`read document ${doc._id} has applied newer versions`);
    }
    this.#docs.set(frozenCopy(doc));
    if (fence) this.#fences.set(doc._id, { ...fence });
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

class MemoryReadModels implements ReadModelStore {
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

class MemoryCheckpoints implements CheckpointStore {
  readonly #saved = new Map<string, { position: FeedPosition; fence: Fence | undefined }>();
  async load(generation: string) {
    await nextTurn();
    const saved = this.#saved.get(generation);
    return saved ? { ...saved.position } : null;
  }
  async save(generation: string, position: FeedPosition, fence?: Fence) {
    await nextTurn();
    const saved = this.#saved.get(generation);
    if (fencedOut(saved?.fence, fence)) {
      throw new FencedOut(`checkpoint of ${generation} was saved under a newer lease epoch`);
    }
    if (saved && saved.position.position > position.position) return;
    this.#saved.set(generation, { position: { ...position }, fence: fence ?? saved?.fence });
  }
}

interface Lease {
  owner: string;
  epoch: number;
  expiresAt: number;
  /** Another owner asked to take over, and when. */
  handover: { to: string; requestedAt: number } | null;
}

class MemoryLeases implements LeaseStore {
  readonly #leases = new Map<string, Lease>();
  constructor(private readonly now: () => number) {}

  async acquire(name: string, owner: string, ttlMs: number): Promise<LeaseGrant | null> {
    await nextTurn();
    const now = this.now();
    const lease = this.#leases.get(name);
    // A handover request reserves the lease for its requester for one ttl.
    const reservedForOther =
      lease?.handover != null &&
      lease.handover.to !== owner &&
      lease.handover.requestedAt + ttlMs > now;
    if (!lease || lease.expiresAt <= now) {
      if (reservedForOther) return null;
      // A new owner opens a new epoch; the same owner taking its lapsed lease back keeps it.
      const epoch = !lease ? 1 : lease.owner === owner ? lease.epoch : lease.epoch + 1;
      this.#leases.set(name, { owner, epoch, expiresAt: now + ttlMs, handover: null });
      return { epoch };
    }
    if (lease.owner !== owner) return null;
    if (reservedForOther) {
      lease.expiresAt = now;
      return null;
    }
    lease.expiresAt = now + ttlMs;
    return { epoch: lease.epoch };
  }

  async release(name: string, owner: string): Promise<void> {
    await nextTurn();
    const lease = this.#leases.get(name);
    if (lease?.owner === owner) lease.expiresAt = this.now();
  }

  async requestHandover(name: string, owner: string): Promise<void> {
    await nextTurn();
    const lease = this.#leases.get(name);
    if (lease && lease.owner !== owner) lease.handover = { to: owner, requestedAt: this.now() };
  }

  async holder(name: string): Promise<string | null> {
    await nextTurn();
    const lease = this.#leases.get(name);
    return lease && lease.expiresAt > this.now() ? lease.owner : null;
  }
}

/** The cursors of one scope's entries, ascending; those before `start` were trimmed. */
interface ScopeIndex {
  cursors: number[];
  start: number;
}

/** First index in `cursors` from `from` on whose cursor is above `after`. */
function firstAbove(cursors: number[], from: number, after: number): number {
  let low = from;
  let high = cursors.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (cursors[middle]! > after) high = middle;
    else low = middle + 1;
  }
  return low;
}

class MemoryChangeLog implements ChangeLog {
  readonly #entries: ChangeLogEntry[] = [];
  readonly #waiters = new Set<() => void>();
  #trimmedThrough = 0;
  /** Per scope, the cursors of its entries: a scoped read is a binary search. */
  readonly #byScope = new Map<string, ScopeIndex>();

  constructor(private readonly retention: number) {}

  async record(entry: ChangeLogEntry): Promise<void> {
    await nextTurn();
    const head = this.#trimmedThrough + this.#entries.length;
    if (entry.cursor <= head) return;
    if (entry.cursor !== head + 1) {
      throw new Error(`change log gap: head ${head}, recording ${entry.cursor}`);
    }
    this.#entries.push(structuredClone(entry));
    for (const scope of new Set(entry.scopes)) {
      let index = this.#byScope.get(scope);
      if (!index) this.#byScope.set(scope, (index = { cursors: [], start: 0 }));
      index.cursors.push(entry.cursor);
    }
    const excess = this.#entries.length - this.retention;
    if (excess > 0) {
      for (const trimmed of this.#entries.splice(0, excess)) this.#unindex(trimmed);
      this.#trimmedThrough += excess;
    }
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  /** Drops a trimmed entry (the oldest of each of its scopes) from the scope index. */
  #unindex(entry: ChangeLogEntry): void {
    for (const scope of new Set(entry.scopes)) {
      const index = this.#byScope.get(scope);
      if (!index) continue;
      index.start += 1;
      if (index.start === index.cursors.length) this.#byScope.delete(scope);
      else if (index.start > 1_024 && index.start * 2 > index.cursors.length) {
        index.cursors = index.cursors.slice(index.start);
        index.start = 0;
      }
    }
  }

  async read(
    after: number,
    options: { limit?: number; signal?: AbortSignal; scope?: string } = {},
  ): Promise<ChangeLogRead> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const head = this.#trimmedThrough + this.#entries.length;
    if (after < this.#trimmedThrough) {
      return { kind: 'expired', oldest: this.#trimmedThrough + 1, head };
    }
    const limit = options.limit ?? 1_000;
    let entries: ChangeLogEntry[];
    if (options.scope === undefined) {
      const start = after - this.#trimmedThrough;
      entries = this.#entries.slice(start, start + limit);
    } else {
      const index = this.#byScope.get(options.scope);
      const from = index ? firstAbove(index.cursors, index.start, after) : 0;
      entries = (index?.cursors.slice(from, from + limit) ?? []).map(
        (cursor) => this.#entries[cursor - this.#trimmedThrough - 1]!,
      );
    }
    return { kind: 'entries', entries: entries.map((e) => structuredClone(e)) };
  }

  async head(): Promise<number> {
    await nextTurn();
    return this.#trimmedThrough + this.#entries.length;
  }

  tail(after: number): ChangeLogTail {
    let closed = false;
    let wake: (() => void) | undefined;
    let cursor = after;
    const read = (a: number) => this.read(a);
    const waiters = this.#waiters;
    return {
      async close() {
        closed = true;
        wake?.();
      },
      [Symbol.asyncIterator]: async function* () {
        while (!closed) {
          const result = await read(cursor);
          // A tail that fell behind the retained window resumes at the oldest kept entry.
          const batch = result.kind === 'entries' ? result.entries : [];
          if (result.kind === 'expired') cursor = result.oldest - 1;
          for (const entry of batch) {
            if (closed) return;
            cursor = entry.cursor;
            yield entry;
          }
          // close() may have run while `read` was pending: its wake-up went to no one.
          if (closed) return;
          if (batch.length === 0 && result.kind === 'entries') {
            await new Promise<void>((resolve) => {
              wake = resolve;
              waiters.add(resolve);
            });
          }
        }
      },
    };
  }
}

export interface MemoryProjectorStorageOptions {
  /** Change log entries kept. @default 100_000 */
  changeLogRetention?: number;
  /** Clock for lease expiry, in ms. @default Date.now */
  now?: () => number;
  /**
   * Secondary indexes per collection, as declared for MongoDB: the memory store keeps a
   * hash index on each one's first key, so a query filtering on it reads only the matching
   * documents. @default none (queries read every document of the collection)
   */
  readModelIndexes?: ReadIndexes;
}

/** The projector's storage in one process; nothing persisted. */
export function createMemoryProjectorStorage(
  options: MemoryProjectorStorageOptions = {},
): ProjectorStorage {
  return {
    readModels: new MemoryReadModels(options.readModelIndexes ?? {}),
    checkpoints: new MemoryCheckpoints(),
    leases: new MemoryLeases(options.now ?? Date.now),
    changeLog: new MemoryChangeLog(options.changeLogRetention ?? 100_000),
    close: async () => {},
  };
}
