import type { Commit } from '../eventstore/types.js';
import {
  CARRIED_DOCS_MAX_BYTES,
  COMMIT_APPLIED_KEY,
  StaleWrite,
  type CarriedDoc,
  type Invalidation,
  type Projection,
  type ProjectionContext,
  type ReadCollection,
  type ReadDoc,
  type ReadView,
} from './types.js';
import { frozenDoc, frozenRecord, frozenWithout } from './frozen.js';
import { isBuffered, type BufferedCollection } from './WriteBehindView.js';
import { mergeInvalidation } from '../sdk/invalidations.js';

/** What applying one commit reported, for its change log entry. */
export interface AppliedCommit {
  scopes: string[];
  invalidated: Invalidation[];
  /** Documents of carrying projections as this commit left them (see `ChangeLogEntry.changed`). */
  changed: CarriedDoc[];
}

/** How {@link applyCommit} runs. */
export interface ApplyCommitOptions {
  /** Called with the projection that threw, before the error is rethrown. */
  onProjectionError?: (projection: Projection, error: unknown) => void;
  /**
   * Whether to work out what the commit changed for its change log entry (invalidations
   * merged, carried documents and their size). A rebuild records no entries and passes
   * false: it gets empty lists back. Scopes are collected either way (projections read
   * them). @default true
   */
  report?: boolean;
}

/**
 * Applies one commit to every projection that handles one of its event types,
 * writing into `view`. Safe to call again for the same commit: `update` skips
 * documents that already reflect the event, and the invalidations are computed
 * from the events alone, so a replay reports the same entry.
 */
export async function applyCommit(
  commit: Commit,
  view: ReadView,
  projections: readonly Projection[],
  options: ApplyCommitOptions = {},
): Promise<AppliedCommit> {
  return new CommitApplier(view, projections, options).apply(commit);
}

/**
 * `applyCommit` for a run of commits on one view (a batch, a rebuild): one projection
 * context serves them all, one commit after the other, rather than a new context and its
 * functions for each commit.
 */
export class CommitApplier {
  readonly #projections: readonly Projection[];
  readonly #view: ReadView;
  readonly #onProjectionError: ApplyCommitOptions['onProjectionError'];
  readonly #report: boolean;
  readonly #scopes = new Set<string>();
  readonly #invalidations = new Map<string, Invalidation>();
  /** The last state the commit gave each document of a carrying projection, as written. */
  readonly #carried = new Map<string, CarriedDoc>();
  #carrying = false;
  /** The context every projection is given; `commit` is the one being applied. */
  readonly #context: { -readonly [K in keyof ProjectionContext]: ProjectionContext[K] };

  constructor(
    view: ReadView,
    projections: readonly Projection[],
    options: ApplyCommitOptions = {},
  ) {
    this.#projections = projections;
    this.#view = view;
    this.#onProjectionError = options.onProjectionError;
    this.#report = options.report ?? true;
    const scopes = this.#scopes;
    const invalidations = this.#invalidations;
    const report = this.#report;
    this.#context = {
      view,
      commit: undefined as unknown as Commit,
      update: (collection, id, event, change) => this.#update(collection, id, event, change),
      updateForCommit: (collection, id, change) => {
        const key = { stream: COMMIT_APPLIED_KEY, version: this.#context.commit.position };
        return this.#update(collection, id, key, change);
      },
      get scopes() {
        return [...scopes].sort();
      },
      invalidate: (scope, invalidation) => {
        if (scope !== null) scopes.add(scope);
        if (report) mergeInvalidation(invalidations, invalidation);
      },
    };
  }

  /**
   * Reads, on a write-behind view, the documents the projections tell they will update for
   * `commits` (`Projection.documentIds`) in one read per collection, before they are
   * applied: a batch then costs a read per collection, not one per document it had not
   * seen. Does nothing on any other view.
   */
  async prefetch(commits: readonly Commit[]): Promise<void> {
    const ids = new Map<string, Set<string>>();
    for (const projection of this.#projections) {
      const { documentIds } = projection;
      if (!documentIds) continue;
      let wanted = ids.get(documentIds.collection);
      if (!wanted) ids.set(documentIds.collection, (wanted = new Set()));
      for (const commit of commits) {
        if (!handlesAny(projection, commit)) continue;
        for (const event of commit.events) for (const id of documentIds.of(event)) wanted.add(id);
      }
    }
    for (const [collection, wanted] of ids) {
      const documents = this.#view.collection(collection);
      if (wanted.size > 0 && isBuffered(documents)) await documents.preload([...wanted]);
    }
  }

  /** Applies `commit` (after the commits applied before it, never beside one). */
  async apply(commit: Commit): Promise<AppliedCommit> {
    this.#scopes.clear();
    this.#invalidations.clear();
    this.#carried.clear();
    this.#context.commit = commit;
    // Indexed loops: a `for of` around an `await` allocates its iterator and every step's
    // result (a few hundred thousand objects in a catch-up of 100,000 events).
    const projections = this.#projections;
    for (let i = 0; i < projections.length; i += 1) {
      const projection = projections[i]!;
      if (!handlesAny(projection, commit)) continue;
      this.#carrying = projection.carriesDocuments === true;
      try {
        await projection.apply(this.#context);
      } catch (error) {
        this.#onProjectionError?.(projection, error);
        throw error;
      }
    }
    // Frozen, as every part of it is made here: a change log entry made of them is kept as
    // it is (as a memory store hands out what it keeps: frozen, though typed as the port's).
    const changed: CarriedDoc[] = [];
    for (const { collection, doc } of this.#carried.values()) {
      // Frozen as the document is: the change log keeps it without copying it again.
      changed.push(frozenRecord({ collection, doc: frozenWithout(doc, '_applied') }));
    }
    return {
      scopes: frozen([...this.#scopes].sort()),
      // Made by `mergeInvalidation` for this commit alone: frozen as they are.
      invalidated: frozen([...this.#invalidations.values()].map(frozenInvalidation)),
      changed: frozen(withinBudget(changed)),
    };
  }

  /**
   * `updateOnce`, then `#carry`. A document a write-behind view holds (most of a catch-up's
   * or a rebuild's writes) is updated at once, without an async call of its own.
   */
  #update<T extends ReadDoc>(
    collection: string,
    id: string,
    event: { stream: string; version: number },
    change: (current: T | null) => T,
  ): Promise<T> {
    const documents = this.#view.collection<T>(collection);
    if (isBuffered(documents)) {
      const cached = documents.cached(id);
      if (cached !== undefined) {
        return Promise.resolve(
          this.#carry(collection, id, updated(cached, id, event, change, documents)),
        );
      }
    }
    return updateOnce(documents, id, event, change).then((doc) => this.#carry(collection, id, doc));
  }

  /** Notes `doc` as the commit's last write of it, to be carried (without `_applied`); returns it. */
  #carry<T extends ReadDoc>(collection: string, id: string, doc: T): T {
    if (!this.#carrying || !this.#report) return doc;
    const key = `${collection}:${id}`;
    // Re-inserted: a document's place is that of its last write.
    this.#carried.delete(key);
    this.#carried.set(key, { collection, doc });
    return doc;
  }
}

/** `items`, frozen. */
const frozen = <T>(items: T[]): T[] => Object.freeze(items) as T[];

/** `invalidation` and its field list, frozen in place. */
function frozenInvalidation(invalidation: Invalidation): Invalidation {
  Object.freeze(invalidation.fields);
  return Object.freeze(invalidation);
}

/** The event types each projection handles, as a set. */
const handledTypes = new WeakMap<Projection, ReadonlySet<string>>();

/** Whether `projection` handles one of `commit`'s event types. */
function handlesAny(projection: Projection, commit: Commit): boolean {
  let types = handledTypes.get(projection);
  if (!types) handledTypes.set(projection, (types = new Set(projection.handles)));
  for (const event of commit.events) if (types.has(event.type)) return true;
  return false;
}

/** The first documents whose JSON fits in `CARRIED_DOCS_MAX_BYTES`; the rest are left out. */
export function withinBudget(docs: CarriedDoc[]): CarriedDoc[] {
  // Most commits carry a few small documents: a bound on their JSON's size, found without
  // serialising them, shows that all fit, and only larger sets are measured exactly.
  let bound = 0;
  for (const carried of docs) {
    bound += jsonBytesAtMost(carried.doc);
    if (bound > CARRIED_DOCS_MAX_BYTES) break;
  }
  if (bound <= CARRIED_DOCS_MAX_BYTES) return docs;
  let bytes = 0;
  const kept: CarriedDoc[] = [];
  for (const carried of docs) {
    bytes += Buffer.byteLength(JSON.stringify(carried.doc));
    if (bytes > CARRIED_DOCS_MAX_BYTES) continue;
    kept.push(carried);
  }
  return kept;
}

/**
 * At least the UTF-8 size of `JSON.stringify(value)`, without serialising it: a string's
 * UTF-16 unit takes at most 6 bytes in JSON (a `\\u` escape), a number at most 24
 * characters, a `Date` its ISO string; anything else with a `toJSON` counts as too big.
 */
export function jsonBytesAtMost(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 6 * value.length + 2;
    case 'number':
      return 24;
    case 'boolean':
      return 5;
    case 'undefined':
    case 'function':
    case 'symbol':
      return 4;
    case 'bigint':
      return Infinity;
    case 'object': {
      if (value === null) return 4;
      if (value instanceof Date) return 32;
      if (Array.isArray(value)) {
        let bytes = 2;
        for (const item of value) bytes += jsonBytesAtMost(item) + 1;
        return bytes;
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return Infinity;
      let bytes = 2;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        bytes += 6 * key.length + 4 + jsonBytesAtMost((value as Record<string, unknown>)[key]);
      }
      return bytes;
    }
    default:
      return Infinity;
  }
}

/** Re-reads after a `StaleWrite` at most this many times per update. */
const MAX_STALE_RETRIES = 10;

/**
 * Read, skip if already applied, change, write; returns the document as it now stands. The write is conditional (`put` never
 * regresses a document): when another writer applied something in between, it is refused
 * with `StaleWrite` and the update starts again from a fresh read, which then either finds
 * the event applied or applies it on top of the newer document. On a `WriteBehindView`
 * (a replay, a catch-up batch), whose writes are conditional only when written back, the
 * document read is kept at once.
 */
async function updateOnce<T extends ReadDoc>(
  documents: ReadCollection<T>,
  id: string,
  event: { stream: string; version: number },
  change: (current: T | null) => T,
): Promise<T> {
  const buffered = isBuffered(documents) ? documents : undefined;
  for (let attempt = 1; ; attempt += 1) {
    const current = await documents.get(id);
    if (buffered) return updated(current, id, event, change, buffered);
    const written = updated(current, id, event, change, undefined);
    if (written === current) return current;
    try {
      await documents.put(written);
      return written;
    } catch (error) {
      if (!(error instanceof StaleWrite) || attempt >= MAX_STALE_RETRIES) throw error;
    }
  }
}

/**
 * `current` after `event`: as it is when it has applied `event` already (a replay after a
 * crash: commits are applied in order, so it then stands as of this commit), else `change`'s
 * document with its id and applied versions, deeply frozen and sharing what it keeps of
 * `current` (a memory store and a write-behind cache keep it as it is, and the change log
 * shares what it carries). A `buffered` collection keeps it at once.
 */
function updated<T extends ReadDoc>(
  current: T | null,
  id: string,
  event: { stream: string; version: number },
  change: (current: T | null) => T,
  buffered: BufferedCollection<T> | undefined,
): T {
  if (current && (current._applied?.[event.stream] ?? 0) >= event.version) return current;
  const next = change(current);
  const applied = appliedAfter(current?._applied, next._applied, event);
  const written: T = frozenDoc(next, id, applied);
  buffered?.keep(written);
  return written;
}

/**
 * The stream versions a document has applied once `event` is: those it had, those its
 * projection gave it, and the event's. A null-prototype object, which V8 keeps as a hash
 * table: its keys are stream names, different in nearly every document, and a plain object
 * would get a hidden class of its own per document, about 1 µs more per write.
 */
function appliedAfter(
  before: Readonly<Record<string, number>> | undefined,
  given: Readonly<Record<string, number>> | undefined,
  event: { stream: string; version: number },
): Readonly<Record<string, number>> {
  const applied = Object.create(null) as Record<string, number>;
  for (const stream in before) applied[stream] = before[stream]!;
  if (given !== before) for (const stream in given) applied[stream] = given[stream]!;
  applied[event.stream] = event.version;
  return Object.freeze(applied);
}
