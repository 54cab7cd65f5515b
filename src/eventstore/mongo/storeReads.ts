/**
 * The event store's reads on MongoDB: streams (forward and backward pages), stream heads,
 * the log in position order and its head, each over `commits` and the archive.
 */
import type { Collection } from 'mongodb';
import { EventStoreUnavailable } from '../errors.js';
import type {
  Commit,
  ReadAllOptions,
  ReadStreamBackwardOptions,
  ReadStreamOptions,
  RecordedEvent,
} from '../types.js';
import type { UpcasterRegistry } from '../upcasters.js';
import { commitSource, readJoined, readStreamJoined, readVersionsJoined } from './archive.js';
import { MAJORITY, fromCommitDoc, type CommitDoc, type StreamHeadDoc } from './documents.js';
import { streamRangePipeline } from './streamPages.js';
import { unavailableIfDriverError } from './translateError.js';

/** The collections the reads go to, and the upcasters every read path applies. */
export interface StoreReadsDeps {
  streams: Collection<StreamHeadDoc>;
  commits: Collection<CommitDoc>;
  /** Commits moved off the hot store (see `./archive.ts`). */
  archive: Collection<CommitDoc>;
  upcasters: UpcasterRegistry;
}

/*
 * Reads check `signal` before and after the round trip rather than passing it to the
 * driver: the driver's `signal` option is experimental and closes the connection when
 * it fires mid-I/O (driver `Abortable` docs), too costly for routine cancellations of
 * reads that take milliseconds.
 */

/** `MongoEventStore`'s read methods; the store delegates to one of these. */
export class MongoStoreReads {
  readonly #deps: StoreReadsDeps;

  constructor(deps: StoreReadsDeps) {
    this.#deps = deps;
  }

  /**
   * Events live once, in their commit document. A stream's events are read from the
   * commits that hold one of them at `fromVersion` or later (found by the
   * `events.stream`/`events.version` index), keeping only that stream's events, in
   * `commits` and, when the stream's head says some are missing there, in the archive
   * (`readStreamJoined`).
   */
  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const fromVersion = options.fromVersion ?? 1;
    const docs = await driverRead('readStream', () =>
      readStreamJoined(
        this.#deps.commits,
        this.#deps.archive,
        async () =>
          (await this.#deps.streams.findOne({ _id: stream }, { readConcern: MAJORITY }))?.version ??
          0,
        stream,
        fromVersion,
      ),
    );
    if (docs === undefined) throw movingStream('readStream', stream);
    signal?.throwIfAborted();
    return docs.flatMap((d) => fromCommitDoc(d).events.map((e) => this.#deps.upcasters.upcast(e)));
  }

  /**
   * Without `before`, reads the stream's head first (one document by `_id`); then one
   * aggregation over exactly the page's versions (see `streamRangePipeline`).
   */
  async readStreamBackward(
    stream: string,
    options: ReadStreamBackwardOptions,
  ): Promise<RecordedEvent[]> {
    const { signal } = options;
    const before = options.before ?? (await this.streamVersion(stream, { signal })) + 1;
    const to = before - 1;
    const from = Math.max(1, before - options.limit);
    if (to < from) return [];
    signal?.throwIfAborted();
    const docs = await driverRead('readStreamBackward', () =>
      readVersionsJoined(
        this.#deps.commits,
        this.#deps.archive,
        streamRangePipeline(stream, from, to),
        () => this.streamVersion(stream),
        from,
        to,
      ),
    );
    if (docs === undefined) throw movingStream('readStreamBackward', stream);
    signal?.throwIfAborted();
    return docs
      .flatMap((d) => fromCommitDoc(d).events)
      .sort((a, b) => b.version - a.version)
      .map((e) => this.#deps.upcasters.upcast(e));
  }

  async streamVersion(stream: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted();
    const head = await driverRead('streamVersion', () =>
      this.#deps.streams.findOne({ _id: stream }, { readConcern: MAJORITY }),
    );
    options.signal?.throwIfAborted();
    return head?.version ?? 0;
  }

  /**
   * Reads `commits` and the archive (tombstones too) from `after` on, stopping at the
   * first position in neither: a reserved position whose transaction is still in flight
   * may still commit, and nothing after it is returned before it settles (a rebuild
   * replaying this must not pass a commit that appears later). Tombstones are skipped.
   */
  async readAll(options: ReadAllOptions = {}): Promise<Commit[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const limit = options.limit ?? 1_000;
    if (limit <= 0) return [];
    const after = options.after ?? 0;
    const commits = await driverRead('readAll', async () => {
      const found: Commit[] = [];
      const hot = commitSource(this.#deps.commits);
      const { docs } = await readJoined(hot, commitSource(this.#deps.archive), after, limit);
      let next = after + 1;
      for (const doc of docs) {
        if (doc.position !== next || found.length >= limit) break;
        next += 1;
        if (!doc.gap) found.push(this.toCommit(doc));
      }
      return found;
    });
    signal?.throwIfAborted();
    return commits;
  }

  /**
   * The highest position in `commits` or the archive: `commits`, the archive, then
   * `commits` again, so a commit moving either way during the call is seen once.
   */
  async headPosition(): Promise<number> {
    const newest = (collection: Collection<CommitDoc>) =>
      collection
        .findOne({}, { sort: { position: -1 }, projection: { position: 1 }, readConcern: MAJORITY })
        .then((d) => d?.position ?? 0);
    return driverRead('headPosition', async () => {
      const hot = await newest(this.#deps.commits);
      const archived = await newest(this.#deps.archive);
      return archived > hot ? Math.max(archived, await newest(this.#deps.commits)) : hot;
    });
  }

  /** A stored commit as the port's `Commit`, its events upcast. */
  toCommit(doc: CommitDoc): Commit {
    const commit = fromCommitDoc(doc);
    return { ...commit, events: commit.events.map((e) => this.#deps.upcasters.upcast(e)) };
  }
}

/** Runs a read, its driver errors becoming `EventStoreUnavailable` (see `unavailableIfDriverError`). */
export async function driverRead<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw unavailableIfDriverError(error, what);
  }
}

/** A stream read whose versions never came together (see `./archive.ts`). */
function movingStream(what: string, stream: string): EventStoreUnavailable {
  return new EventStoreUnavailable(
    `${what} failed: the events of '${stream}' kept moving between the hot store and the archive`,
  );
}
