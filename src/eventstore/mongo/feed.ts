/**
 * The mongo adapter's commit feed: a change stream on `commits`, with catch-up and gap
 * filling from the collection itself so that every commit is delivered once, in
 * position order, whatever the resume token.
 */
import type { ChangeStream, ChangeStreamInsertDocument, Collection } from 'mongodb';
import { EventStoreError, EventStoreUnavailable } from '../errors.js';
import type { Commit, CommitFeed, FeedItem, FeedPosition } from '../types.js';
import type { CommitDoc } from './documents.js';
import { readJoined, type CommitSource } from './archive.js';
import { isResumeTokenRefused } from './translateError.js';

/** An insert into `commits` as the feed's pipeline leaves it: the position only. */
type CommitChange = ChangeStreamInsertDocument<Pick<CommitDoc, '_id' | 'position'>>;

export interface CommitFeedOptions {
  /**
   * How long the server holds an empty `getMore` open before answering. Also the pace of
   * heartbeats and of the gap probe on a quiet feed.
   * @default 1_000
   */
  maxAwaitTimeMS?: number;
  /** Commits per batch when catching up from the collection. @default 500 */
  catchUpBatchSize?: number;
  /**
   * How long a missing position may hold back the ones after it before the feed closes
   * it with a tombstone (its appender died between reserving it and committing). Closing
   * is always safe: a tombstone and a commit cannot both take a position, so a late
   * appender at worst retries with a new one. Above the appenders' own time from
   * reserving to committing, so a live appender is normally not overtaken. Closing first
   * ends the reserving session (see `MongoEventStore`), so this is also about the longest
   * a dead appender holds every consumer back; where `killSessions` is refused, the
   * tombstone waits until the server expires the transaction
   * (`transactionLifetimeLimitSeconds`, 60 s by default).
   * @default 15_000
   */
  gapGraceMs?: number;
  /** The clock for `gapGraceMs`. @default performance.now */
  now?: () => number;
}

export interface MongoCommitFeedDeps {
  commits: Collection<CommitDoc>;
  /**
   * Commits moved off `commits` (see `./archive.ts`): read with it, so that a position
   * whose commit is archived is delivered rather than taken for a hole and closed.
   */
  archive: Collection<CommitDoc>;
  /** Maps a stored commit to the port's shape, upcasting its events. */
  toCommit: (doc: CommitDoc) => Commit;
  /** Called once when the feed closes, so the store can forget it. */
  onClose: (feed: MongoCommitFeed) => void;
  /**
   * Closes the given positions with tombstones, each unless something already holds it
   * (see `MongoEventStore`); failures are left for the next try.
   */
  closePositions: (positions: number[]) => Promise<void>;
}

/**
 * A feed of commits (and gaps) after `from`.
 *
 * How nothing is missed or repeated: every position ends up holding a commit or a
 * tombstone, so the feed always knows the next position it owes, and delivers in
 * position order. The change stream only says that something happened and how far
 * positions reach; what is delivered is read from the `commits` collection (with majority
 * read concern), from the next owed position on, stopping at the first one not there
 * yet: on every change, before the first change (catch-up) and on every quiet `getMore`
 * (probe). Positions are reserved before their transactions commit, so position 7 can
 * become visible before 6: the feed then holds 7 back until 6 commits or is closed. If a
 * missing position holds others back for `gapGraceMs` (its appender died), the feed
 * closes it with a tombstone itself, and yields a `gap` item for it. The resume token only
 * saves the server work; correctness rests on positions.
 *
 * Documented behaviour relied on:
 * - change streams return only majority-committed changes, in oplog order, and one insert
 *   into `commits` is one change event whose `fullDocument` is the inserted document
 *   (MongoDB manual, "Change Events": insert event);
 * - `startAfter: token` resumes after the change the token names (Change Streams spec,
 *   `ChangeStreamOptions.startAfter`); the driver resumes once by itself on resumable errors
 *   (spec, "Resume Process");
 * - `tryNext()` returns null on an empty batch, after which `changeStream.resumeToken` is the
 *   batch's `postBatchResumeToken` (spec, "Updating the Cached Resume Token"; driver
 *   `ChangeStreamCursor._processBatch`), which is how heartbeats get a fresher token;
 * - a token older than the oplog fails with `ChangeStreamHistoryLost` (code 286, labelled
 *   `NonResumableChangeStreamError`), one the server cannot find (after a restore) with
 *   `ChangeStreamFatalError` (280), a malformed one with `InvalidResumeToken` (260); the feed
 *   then drops the token and catches up by position.
 */
export class MongoCommitFeed implements CommitFeed {
  readonly #deps: MongoCommitFeedDeps;
  readonly #maxAwaitTimeMS: number;
  readonly #catchUpBatchSize: number;
  /** Last delivered position. */
  #position: number;
  /** The highest position known to exist (seen in a change or a read). */
  #known: number;
  /** Since when (feed clock) positions up to `bound` have been held back by a missing one. */
  #hole: { since: number; bound: number } | undefined;
  readonly #gapGraceMs: number;
  readonly #clock: () => number;
  /** Where to open the next change stream; dropped when history is lost. */
  #token: unknown;
  /** Token of the last item yielded, so a heartbeat is only sent when it moves. */
  #lastCheckpointToken: unknown;
  #stream: ChangeStream<CommitDoc, CommitChange> | undefined;
  #closed = false;

  constructor(deps: MongoCommitFeedDeps, from: FeedPosition, options: CommitFeedOptions = {}) {
    this.#deps = deps;
    this.#position = from.position;
    this.#known = from.position;
    this.#gapGraceMs = options.gapGraceMs ?? 15_000;
    this.#clock = options.now ?? (() => performance.now());
    this.#token = from.token ?? undefined;
    this.#lastCheckpointToken = this.#token;
    this.#maxAwaitTimeMS = options.maxAwaitTimeMS ?? 1_000;
    this.#catchUpBatchSize = options.catchUpBatchSize ?? 500;
  }

  /**
   * Stops the feed. A pending `next()` resolves as done once the server answers the
   * in-flight `getMore`, within about `maxAwaitTimeMS`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#deps.onClose(this);
    await this.#closeStream();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<FeedItem> {
    try {
      while (!this.#closed) {
        const stream = this.#openStream();
        let first: CommitChange | null;
        try {
          // Forces the initial aggregate now, so the stream's starting point precedes the
          // catch-up read below and nothing committed in between can fall through.
          first = await stream.tryNext();
        } catch (error) {
          if (this.#closed) return;
          if (this.#token !== undefined && isResumeTokenRefused(error)) {
            await this.#dropTokenAndReopen();
            continue;
          }
          throw error;
        }
        if (this.#token === undefined) yield* this.#catchUp();
        const reopen = yield* this.#follow(stream, first);
        if (!reopen) return;
      }
    } catch (error) {
      if (this.#closed) return;
      if (error instanceof EventStoreError) throw error;
      throw new EventStoreUnavailable('the commit feed failed', { cause: error });
    } finally {
      await this.close();
    }
  }

  /** Follows one change stream. Returns true when the feed must reopen without a token. */
  async *#follow(
    stream: ChangeStream<CommitDoc, CommitChange>,
    first: CommitChange | null,
  ): AsyncGenerator<FeedItem, boolean> {
    let change = first;
    for (;;) {
      if (this.#closed) return false;
      if (change) {
        yield* this.#deliverChange(change);
      } else {
        if (stream.closed) {
          // Not by our close(): an invalidate event (commits dropped or renamed) closed it.
          throw new EventStoreUnavailable('the change stream on commits was closed by the server');
        }
        // A quiet batch: fetch anything the stream has not shown (see class comment), then
        // pass on the post-batch resume token if it moved.
        yield* this.#catchUp();
        const token = stream.resumeToken;
        if (token != null && !sameToken(token, this.#lastCheckpointToken)) {
          this.#lastCheckpointToken = token;
          yield { kind: 'heartbeat', checkpoint: { position: this.#position, token } };
        }
      }
      try {
        change = await stream.tryNext();
      } catch (error) {
        if (this.#closed) return false;
        if (isResumeTokenRefused(error)) {
          await this.#dropTokenAndReopen();
          return true;
        }
        throw error;
      }
    }
  }

  async *#deliverChange(change: CommitChange): AsyncGenerator<FeedItem> {
    // The pipeline keeps inserts only. Should an invalidate event (commits dropped or renamed,
    // which closes the cursor: manual, "invalidate Event") come through anyway, it carries
    // no document; if it is filtered out, the closed stream is caught in #follow instead.
    const operationType: string = change.operationType;
    if (operationType !== 'insert') {
      throw new EventStoreUnavailable(`the change stream on commits ended with '${operationType}'`);
    }
    // The change event carries only the position (see #openStream): the commit itself, and
    // any before it not delivered yet, come from the collection. The change is
    // majority-committed, so a majority read sees it.
    const { position } = change.fullDocument;
    this.#token = change._id;
    if (position <= this.#position) return;
    this.#known = Math.max(this.#known, position);
    yield* this.#catchUp({ position, token: change._id });
    this.#lastCheckpointToken = change._id;
  }

  /**
   * Delivers what the collection holds after the last delivered position, in order, up to
   * the first position missing; then, if a missing position has held others back for
   * the grace period, closes the missing ones and delivers again.
   */
  async *#catchUp(tokenAt?: { position: number; token: unknown }): AsyncGenerator<FeedItem> {
    yield* this.#readFromCollection(tokenAt);
    if (this.#closed) return;
    const now = this.#clock();
    if (this.#known <= this.#position) {
      this.#hole = undefined;
      return;
    }
    if (this.#hole === undefined || this.#position >= this.#hole.bound) {
      // Every position up to `known` was reserved before now (a later one is visible).
      this.#hole = { since: now, bound: this.#known };
      return;
    }
    if (now - this.#hole.since < this.#gapGraceMs) return;
    const missing = await this.#missingUpTo(this.#hole.bound);
    if (missing.length > 0) await this.#deps.closePositions(missing);
    this.#hole = undefined;
    yield* this.#readFromCollection(tokenAt);
  }

  /**
   * Positions after the last delivered one, up to `bound`, that hold no document in
   * `commits` nor in the archive, read in that order: a commit being archived is found in
   * one or the other. One being restored may be missed by both reads; closing its position
   * then fails on the unique index of `commits`, where it now is.
   */
  async #missingUpTo(bound: number): Promise<number[]> {
    const range = { position: { $gt: this.#position, $lte: bound } };
    const options = {
      projection: { _id: 0, position: 1 },
      readConcern: { level: 'majority' },
    } as const;
    const present = await this.#deps.commits.find(range, options).toArray();
    const archived = await this.#deps.archive.find(range, options).toArray();
    const held = new Set([...present, ...archived].map((d) => d.position));
    const missing: number[] = [];
    for (let p = this.#position + 1; p <= bound; p += 1) if (!held.has(p)) missing.push(p);
    return missing;
  }

  /**
   * Delivers commits and gaps after the last delivered position from `commits` and the
   * archive, in order, stopping at the first position missing from both (and noting how
   * far positions reach). Their checkpoints carry no token (resuming from a position alone
   * is always possible), except the one of the change event being delivered (`tokenAt`).
   */
  async *#readFromCollection(tokenAt?: {
    position: number;
    token: unknown;
  }): AsyncGenerator<FeedItem> {
    const majority = { readConcern: { level: 'majority' } } as const;
    if (this.#known > this.#position + 1) {
      // Something beyond the next owed position exists, so that one may be missing: check
      // it alone first, rather than reading a batch of later commits only to stop before
      // the first, on every change while a hole lasts.
      const next = { position: this.#position + 1 };
      const projection = { projection: { _id: 1 }, ...majority };
      const there =
        (await this.#deps.commits.findOne(next, projection)) ??
        (await this.#deps.archive.findOne(next, projection)) ??
        (await this.#deps.commits.findOne(next, projection));
      if (there === null) return;
    }
    const hot = majoritySource(this.#deps.commits);
    const archive = majoritySource(this.#deps.archive);
    for (;;) {
      if (this.#closed) return;
      const { docs, highest } = await readJoined(
        hot,
        archive,
        this.#position,
        this.#catchUpBatchSize,
      );
      this.#known = Math.max(this.#known, highest);
      for (const doc of docs) {
        if (this.#closed) return;
        if (doc.position !== this.#position + 1) return;
        this.#position = doc.position;
        const checkpoint =
          tokenAt?.position === doc.position
            ? { position: doc.position, token: tokenAt.token }
            : { position: doc.position };
        yield doc.gap
          ? { kind: 'gap', position: doc.position, checkpoint }
          : { kind: 'commit', commit: this.#deps.toCommit(doc), checkpoint };
      }
      if (docs.length < this.#catchUpBatchSize) return;
    }
  }

  #openStream(): ChangeStream<CommitDoc, CommitChange> {
    // The events are projected out of the change event: a commit document close to the
    // 16 MiB limit would otherwise make a change event over it, which fails with
    // BSONObjectTooLarge on every resume and wedges the feed. `_id` (the resume token) stays.
    const stream = this.#deps.commits.watch<CommitDoc, CommitChange>(
      [
        { $match: { operationType: 'insert' } },
        { $project: { operationType: 1, ns: 1, documentKey: 1, 'fullDocument.position': 1 } },
      ],
      {
        maxAwaitTimeMS: this.#maxAwaitTimeMS,
        ...(this.#token === undefined ? {} : { startAfter: this.#token }),
      },
    );
    this.#stream = stream;
    return stream;
  }

  async #dropTokenAndReopen(): Promise<void> {
    this.#token = undefined;
    await this.#closeStream();
  }

  async #closeStream(): Promise<void> {
    const stream = this.#stream;
    this.#stream = undefined;
    // Closing is best effort: the cursor may already be dead on the server.
    await stream?.close().catch(() => undefined);
  }
}

/** A commit collection as the feed reads it, at majority (see the class comment). */
function majoritySource(collection: Collection<CommitDoc>): CommitSource {
  return {
    range: (after, limit) =>
      collection
        .find({ position: { $gt: after } }, { readConcern: { level: 'majority' } })
        .sort({ position: 1 })
        .limit(limit)
        .toArray(),
    at: (positions) =>
      collection
        .find({ position: { $in: positions } }, { readConcern: { level: 'majority' } })
        .toArray(),
  };
}

/** Resume tokens are small documents (`{ _data: '82...' }`); equal when their JSON is. */
function sameToken(a: unknown, b: unknown): boolean {
  return a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b);
}
