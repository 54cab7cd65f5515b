/**
 * Ports of the read side. Domain-agnostic: projections bring the meaning, the
 * runtime brings delivery, idempotency, checkpoints, the change log and the lease.
 */
import type { Commit, FeedPosition, RecordedEvent, TraceContext } from '../eventstore/types.js';

/**
 * A read document. `_id` is its key; `_applied` maps each stream that shaped the
 * document to the last stream version applied to it, which makes re-applying a
 * commit harmless (see `ProjectionContext.update`).
 */
export interface ReadDoc {
  _id: string;
  _applied?: Record<string, number>;
}

/** Equality per field (an array field matches when it contains the value), or `{ gt }`. */
export type ReadFilter = Record<string, string | number | boolean | null | { gt: string | number }>;

export interface FindOptions {
  /** Field to sort by and direction. */
  sort?: readonly [field: string, direction: 1 | -1];
  limit?: number;
  signal?: AbortSignal;
}

/** A secondary index of a read collection: its keys in order, each ascending (1) or descending (-1). */
export interface ReadIndex {
  key: Readonly<Record<string, 1 | -1>>;
}

/** Secondary indexes per read collection name. */
export type ReadIndexes = Readonly<Record<string, readonly ReadIndex[]>>;

/**
 * Proof that a writer holds a lease: the epoch the lease store handed out when `owner`
 * took `lease`. Epochs of one lease only grow, so storage can refuse a write carrying an
 * older epoch than one it has already seen (a fencing token).
 */
export interface Fence {
  lease: string;
  owner: string;
  epoch: number;
}

/** One collection of read documents in one generation. */
export interface ReadCollection<T extends ReadDoc> {
  get(id: string, options?: { signal?: AbortSignal }): Promise<T | null>;
  /** Documents for `ids`, in the same order, null where absent. */
  getMany(ids: readonly string[], options?: { signal?: AbortSignal }): Promise<(T | null)[]>;
  find(filter: ReadFilter, options?: FindOptions): Promise<T[]>;
  count(filter: ReadFilter, options?: { signal?: AbortSignal }): Promise<number>;
  /**
   * Inserts or replaces the whole document, unless that would regress it: when the stored
   * document has applied a stream version that `doc._applied` has not (a higher version,
   * or a stream `doc` does not list), nothing is written and `StaleWrite` is thrown. In a
   * fenced view (see `ReadModelStore.view`), a document last written under a newer epoch
   * of the fence's lease is not written either: `FencedOut`.
   */
  put(doc: T): Promise<void>;
  /**
   * `put` of each document, in one round trip where the adapter can (the last one given
   * per `_id`). Not atomic: every document `put` would write is written; when some are
   * refused, it then throws `FencedOut` if any was fenced out, else `StaleWrite`.
   */
  putEach(docs: readonly T[]): Promise<void>;
  /**
   * Unconditional `put` of many documents in one round trip where the adapter can; not
   * atomic. Only for a generation nobody else writes (a rebuild's fresh one).
   */
  putMany(docs: readonly T[]): Promise<void>;
  delete(id: string): Promise<void>;
}

/**
 * The last document given for each `_id` (in the order of their first appearance): `docs`
 * itself when no id repeats, as in a write-behind view's flush.
 */
export function lastPerId<T extends ReadDoc>(docs: readonly T[]): readonly T[] {
  const ids = new Set<string>();
  for (const doc of docs) {
    if (ids.has(doc._id)) return [...new Map(docs.map((d) => [d._id, d])).values()];
    ids.add(doc._id);
  }
  return docs;
}

/** The read documents of one generation. */
export interface ReadView {
  readonly generation: string;
  collection<T extends ReadDoc>(name: string): ReadCollection<T>;
}

/**
 * Read documents in generations: queries read the active one; a rebuild fills a
 * fresh one and then makes it active in one atomic switch.
 */
export interface ReadModelStore {
  /**
   * The generation queries are served from. An adapter may answer from a copy a little
   * older than now (see `MongoProjectorStorageOptions.pointerCacheMs`); `fresh` asks for the
   * pointer as stored, as read-your-writes needs after waiting for a commit's projection.
   *
   * With `fence` (a projector starting its tenure of the lease), the pointer is read as
   * stored and marked with the fence in the same atomic step, so that from then on no
   * `activate` under an older epoch of that lease succeeds: either a deposed holder's
   * switch happened first and this returns its generation, or it is refused. Throws
   * `FencedOut` when the pointer already carries a newer epoch.
   */
  active(options?: { signal?: AbortSignal; fresh?: boolean; fence?: Fence }): Promise<ReadView>;
  /**
   * The documents of `generation`. With `fence`, every `put` carries it: documents record
   * the newest epoch that wrote them and refuse older ones (`FencedOut`).
   */
  view(generation: string, options?: { fence?: Fence }): ReadView;
  /** A new, empty generation (not active). */
  createGeneration(): Promise<string>;
  /**
   * Makes `generation` active if `expectedActive` still is; returns whether it did.
   * Readers see either the old generation or the new one, never a mix. With `fence`, also
   * refused when the pointer was marked (see `active`) or switched under a newer epoch of
   * the fence's lease; a switch marks it with the fence.
   */
  activate(generation: string, expectedActive: string, fence?: Fence): Promise<boolean>;
  /**
   * Drops an inactive generation. An adapter may drop it later (in the background), so
   * that queries still running on it finish first.
   */
  dropGeneration(generation: string): Promise<void>;
}

/** Progress of one generation's projection: the feed position it has fully applied. */
export interface CheckpointStore {
  load(generation: string): Promise<FeedPosition | null>;
  /**
   * Saves the position, never moving it back (an older position is ignored). With
   * `fence`, refused with `FencedOut` when the checkpoint was saved under a newer epoch.
   */
  save(generation: string, position: FeedPosition, fence?: Fence): Promise<void>;
}

/** What taking or renewing a lease gave: the fencing epoch of this tenure. */
export interface LeaseGrant {
  /** Grows by one each time the lease passes to another owner; kept on renewals. */
  epoch: number;
}

/**
 * A write carried a fence whose epoch is older than one the storage has already seen:
 * the writer lost its lease. Nothing was written.
 */
export class FencedOut extends Error {
  override readonly name = 'FencedOut';
}

/**
 * A `put` would have regressed a document (it has applied a stream version the new
 * document has not). Nothing was written; re-read and apply again.
 */
export class StaleWrite extends Error {
  override readonly name = 'StaleWrite';
}

/**
 * The projector's storage could not be reached or refused the operation (a server
 * selection timeout, a failover, a network error); the driver error is the cause.
 * Retrying later may succeed.
 */
export class ProjectorStorageUnavailable extends Error {
  override readonly name = 'ProjectorStorageUnavailable';
}

/** A time-bounded claim that one owner is the active projector. */
export interface LeaseStore {
  /**
   * Takes or renews the lease for `ttlMs` if it is free, expired or already ours, and no
   * other owner asked for a handover. Returns the grant when `owner` holds it now, else
   * null. Expiry is measured on the store's clock (the server's, for MongoDB): a holder
   * must count its lease as lasting `ttlMs` from when it SENT the request, never longer.
   */
  acquire(name: string, owner: string, ttlMs: number): Promise<LeaseGrant | null>;
  /** Gives the lease up at once if `owner` holds it. */
  release(name: string, owner: string): Promise<void>;
  /** Asks the current holder to release at its next renewal, so that `owner` can take over. */
  requestHandover(name: string, owner: string): Promise<void>;
  /** Who holds the lease now (null when free or expired). */
  holder(name: string): Promise<string | null>;
}

/** One resource whose cached copy a commit made stale. */
export interface Invalidation {
  typename: string;
  id: string;
  fields: string[];
  /** The resource's version after the commit. */
  version: number;
}

/**
 * A read document as one commit left it, carried in that commit's change log entry so
 * that subscribers get the commit's data without reading the read model (which may have
 * moved on by the time they are served, and never holds the past). `_applied` is left out.
 */
export interface CarriedDoc {
  collection: string;
  doc: ReadDoc;
}

/**
 * The most a change log entry carries of documents (their JSON, summed). Documents past it
 * are left out, in the order the projections wrote them: subscribers still get their
 * invalidations and read them afresh. A big rebalance or `archiveDoneCards` of cards with
 * long descriptions can pass it; most commits carry a few hundred bytes.
 */
export const CARRIED_DOCS_MAX_BYTES = 1024 * 1024;

/** What one commit changed, as subscribers see it. */
export interface ChangeLogEntry {
  /** The commit's position in the event store; a gap's entry (no scopes, nothing invalidated) keeps cursors dense: one per position, no cursor skipped. */
  cursor: number;
  commitId: string;
  /** Scopes (e.g. board ids) the commit touched; empty for commits outside any scope. */
  scopes: string[];
  operation: string | null;
  actor: string | null;
  at: Date;
  invalidated: Invalidation[];
  /**
   * The documents of carrying projections (`Projection.carriesDocuments`) as this commit
   * left them, up to `CARRIED_DOCS_MAX_BYTES`; absent on gaps and on entries recorded
   * before documents were carried.
   */
  changed?: CarriedDoc[];
  /** The commit's `metadata.traceContext`, for the spans of its live push to link to. */
  traceContext?: TraceContext;
}

export type ChangeLogRead =
  | { kind: 'entries'; entries: ChangeLogEntry[] }
  /** `after` is older than the retained window; `oldest` is the first entry still kept. */
  | { kind: 'expired'; oldest: number; head: number };

export interface ChangeLog {
  /**
   * Records the entry of one commit. Writing the same cursor again is a no-op, so a
   * replayed commit cannot duplicate it. Trims entries beyond the retention.
   *
   * Unfenced on purpose: entries are only ever inserted, never overwritten, and an entry
   * is a function of its commit alone (`applyCommit`), so a deposed projector can at
   * worst insert the very entry the new one would.
   */
  record(entry: ChangeLogEntry): Promise<void>;
  /**
   * Records the entries of consecutive cursors, oldest first, with the outcome of `record`
   * called on each in turn (those already recorded are no-ops; a first cursor past the
   * head + 1 is a gap and throws), in as few writes as the adapter can. Entries become
   * visible in cursor order. Throws on entries whose cursors are not consecutive.
   */
  recordMany(entries: readonly ChangeLogEntry[]): Promise<void>;
  /**
   * Entries with cursor > after, oldest first, at most `limit`. With `scope`, only the
   * entries whose `scopes` include it, found through an index: a read costs what that
   * scope (a board) recorded since `after`, not the whole log since then. `expired` as
   * without it: `after` is older than the retained window.
   */
  read(
    after: number,
    options?: { limit?: number; signal?: AbortSignal; scope?: string },
  ): Promise<ChangeLogRead>;
  /** Cursor of the newest entry, 0 when empty. */
  head(): Promise<number>;
  /** Entries with cursor > after, then new ones as they are recorded, until closed. */
  tail(after: number): ChangeLogTail;
}

/** Throws unless the cursors of `entries` follow each other (see `ChangeLog.recordMany`). */
export function assertConsecutive(entries: readonly ChangeLogEntry[]): void {
  entries.forEach((entry, i) => {
    if (i > 0 && entry.cursor !== entries[i - 1]!.cursor + 1) {
      throw new Error(
        `change log entries not consecutive: ${entries[i - 1]!.cursor} then ${entry.cursor}`,
      );
    }
  });
}

export interface ChangeLogTail extends AsyncIterable<ChangeLogEntry> {
  close(): Promise<void>;
}

/** Everything the projector runtime persists besides the events. */
export interface ProjectorStorage {
  readModels: ReadModelStore;
  checkpoints: CheckpointStore;
  leases: LeaseStore;
  changeLog: ChangeLog;
  close(): Promise<void>;
}

/** What a projection gets for applying one commit. */
export interface ProjectionContext {
  /** The generation being written (the active one, or a rebuild's fresh one). */
  readonly view: ReadView;
  readonly commit: Commit;
  /**
   * Read-modify-write of one document, applied at most once per (stream, version):
   * when the document already reflects `event.stream` at `event.version` or later,
   * `change` is not called. `change` returns the new document. There is no delete:
   * a deleted document would forget what it had applied, so removal is a field
   * (a tombstone such as `archived: true`). Resolves with the document as it now stands
   * (`change`'s, or the one that had applied the event already), so a projection needs no
   * read of its own to learn what it wrote.
   */
  update: <T extends ReadDoc>(
    collection: string,
    id: string,
    event: { stream: string; version: number },
    change: (current: T | null) => T,
  ) => Promise<T>;
  /**
   * `update` for a document that many streams shape (e.g. one per board fed by every card
   * of it): applied at most once per commit, keyed by the commit's position under
   * {@link COMMIT_APPLIED_KEY} in `_applied`, so the key stays one entry however many streams
   * write the document. Commits are applied in position order, so a document that has
   * applied a later commit has applied this one.
   */
  updateForCommit: <T extends ReadDoc>(
    collection: string,
    id: string,
    change: (current: T | null) => T,
  ) => Promise<T>;
  /** Reports a resource the commit made stale, for the change log. */
  invalidate: (scope: string | null, invalidation: Invalidation) => void;
  /**
   * The scopes (e.g. the board) that the projections applied before this one reported for
   * this commit, sorted. A projection that needs its events' scope declares those
   * projections in `Projection.after`.
   */
  readonly scopes: readonly string[];
}

/** The `_applied` key of `ProjectionContext.updateForCommit` (never a stream name: streams are `<kind>-<id>`). */
export const COMMIT_APPLIED_KEY = '#commit';

/** Turns commits into read documents. */
export interface Projection {
  readonly name: string;
  /** Event types it handles; commits with none of them are not given to it. */
  readonly handles: readonly string[];
  /**
   * Whether the documents it writes ride along in the commit's change log entry
   * (`ChangeLogEntry.changed`), for subscribers. Only for documents any subscriber of the
   * entry's scopes may see in whole (no secrets such as token hashes). @default false
   */
  readonly carriesDocuments?: boolean;
  /**
   * Projections this one reads the documents or scopes of, for the same commit: they are
   * applied before it (checked where the list is made, `projectionsOf`). @default none
   */
  readonly after?: readonly string[];
  /**
   * The documents of `collection` that `apply` updates for an event, when it can tell from
   * the event alone. A catch-up or a rebuild reads those of a whole batch of commits in one
   * read per collection before applying it, rather than one read per document it has not
   * seen yet (a round trip each on MongoDB). A hint: a document left out is read when it is
   * updated. @default none
   */
  readonly documentIds?: {
    readonly collection: string;
    of(event: RecordedEvent): readonly string[];
  };
  apply(context: ProjectionContext): Promise<void>;
}
