import { MongoClient, type Collection, type Db, type MongoClientOptions } from 'mongodb';
import { DEFAULT_IDEMPOTENCY_TTL_MS } from '../idempotency.js';
import { UpcasterRegistry } from '../upcasters.js';
import type {
  AppendRequest,
  AppendResult,
  ArchiveMoveOptions,
  ArchiveMoveResult,
  Commit,
  CommitFeed,
  EventStore,
  ReadAllOptions,
  ReadStreamBackwardOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeOptions,
} from '../types.js';
import { MongoAppender } from './appendProtocol.js';
import { CommitWriter } from './commitWrite.js';
import { CollectionName, type CommitDoc, type StreamHeadDoc } from './documents.js';
import { MongoCommitFeed, type CommitFeedOptions } from './feed.js';
import { ensureArchiveIndexes, moveCommits } from './archive.js';
import { ensureSchema } from './schema.js';
import { MongoPositions } from './positions.js';
import { MongoStoreReads, driverRead } from './storeReads.js';

export interface MongoEventStoreOptions {
  /** A client for a replica set: transactions and change streams need one. */
  client: MongoClient;
  /** The database holding this store's collections. */
  dbName: string;
  /** Lifts old event shapes on every read path (stream reads, readAll, the feed). */
  upcasters?: UpcasterRegistry;
  /** The clock stamping `occurredAt`. @default () => new Date() */
  now?: () => Date;
  /**
   * Whether `close()` closes `client`. Leave false for a client you were handed and
   * close yourself; `MongoEventStore.connect` sets it for the client it creates.
   * @default false
   */
  ownsClient?: boolean;
  /**
   * Transaction attempts per append (each a fresh snapshot; the commit's own retries are
   * counted by `maxCommitAttempts`). When they run out, append raises
   * `EventStoreUnavailable`. Only appends that share a stream conflict.
   * @default 20
   */
  maxAttempts?: number;
  /**
   * `commitTransaction` calls per transaction attempt while the outcome is unknown (each
   * call may itself be retried once by the driver on a retryable error). @default 3
   */
  maxCommitAttempts?: number;
  /** How long one commit may wait for the majority before its outcome counts as unknown. @default 5_000 */
  commitWaitMs?: number;
  /**
   * The whole append, waiting in this instance's queue included: no new attempt or commit
   * retry starts after it. @default 15_000
   */
  appendTimeoutMs?: number;
  /**
   * Appends this instance runs at once (each holds a pooled connection for its
   * transaction; keep it below the client's `maxPoolSize`, 100 by default). @default 64
   */
  maxConcurrentAppends?: number;
  /** Appends allowed to wait for one of those; beyond, `EventStoreBusy`. @default 1_000 */
  maxQueuedAppends?: number;
  /**
   * How long closing a position (a gap tombstone, see `MongoPositions.close`) may wait for the
   * transaction that holds it to end. @default 5_000
   */
  closePositionTimeoutMs?: number;
  /** Tuning of the feeds `subscribe` returns. */
  feed?: CommitFeedOptions;
  /**
   * How long an idempotency key is remembered after its commit (a TTL index on
   * `idempotency.expiresAt` removes it later). @default DEFAULT_IDEMPOTENCY_TTL_MS (24 h)
   */
  idempotencyTtlMs?: number;
}

/**
 * The event store on MongoDB: the same contract as `MemoryEventStore`, with each append
 * one multi-document transaction. The design and its alternatives: `docs/write-path.md`.
 *
 * One append writes, in one transaction: every stream's head in `streams` (an insert for
 * a new stream, an update conditional on the expected version otherwise), one document in
 * `commits` holding the events (their only copy; what the feed watches) at a position
 * reserved from `counters`, and the idempotency key in `idempotency`. The position is
 * reserved by one atomic increment OUTSIDE the transaction, after the heads are written,
 * so no transaction holds any document but its own streams' heads: appends that share no
 * stream never conflict, within or across instances, and nothing queues them beyond a
 * bound on how many run at once (`maxConcurrentAppends`).
 *
 * Reserving after the head writes keeps per-stream order: a competing append to the same
 * stream cannot write the head until this transaction ends (it gets WriteConflict and
 * retries), so it reserves a higher position. A reserved position whose transaction does
 * not commit is closed with a tombstone (`MongoPositions.close`), which races the commit on the
 * unique `position` index: exactly one of the two takes the position, and the feed
 * yields a `gap` item for a tombstone.
 */
export class MongoEventStore implements EventStore {
  readonly #client: MongoClient;
  readonly #db: Db;
  readonly #commits: Collection<CommitDoc>;
  /** Commits moved off the hot store (see `./archive.ts`). */
  readonly #archive: Collection<CommitDoc>;
  readonly #reads: MongoStoreReads;
  readonly #ownsClient: boolean;
  readonly #feedOptions: CommitFeedOptions;
  readonly #feeds = new Set<MongoCommitFeed>();
  readonly #positions: MongoPositions;
  readonly #writer: CommitWriter;
  readonly #appender: MongoAppender;
  #closed = false;

  constructor(options: MongoEventStoreOptions) {
    this.#client = options.client;
    this.#db = options.client.db(options.dbName);
    const streams = this.#db.collection<StreamHeadDoc>(CollectionName.Streams);
    this.#commits = this.#db.collection(CollectionName.Commits);
    this.#archive = this.#db.collection(CollectionName.ArchiveCommits);
    this.#reads = new MongoStoreReads({
      streams,
      commits: this.#commits,
      archive: this.#archive,
      upcasters: options.upcasters ?? new UpcasterRegistry(),
    });
    this.#ownsClient = options.ownsClient ?? false;
    this.#feedOptions = options.feed ?? {};
    const now = options.now ?? (() => new Date());
    this.#positions = new MongoPositions({
      client: this.#client,
      commits: this.#commits,
      counters: this.#db.collection(CollectionName.Counters),
      reservations: this.#db.collection(CollectionName.Reservations),
      now,
      closeTimeoutMs: Math.max(1, options.closePositionTimeoutMs ?? 5_000),
    });
    this.#writer = new CommitWriter({
      streams,
      commits: this.#commits,
      idempotency: this.#db.collection(CollectionName.Idempotency),
      positions: this.#positions,
      now,
      idempotencyTtlMs: options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
    });
    this.#appender = new MongoAppender(this.#client, this.#writer, this.#positions, {
      maxAttempts: Math.max(1, options.maxAttempts ?? 20),
      maxCommitAttempts: Math.max(1, options.maxCommitAttempts ?? 3),
      commitWaitMs: Math.max(1, options.commitWaitMs ?? 5_000),
      appendTimeoutMs: Math.max(1, options.appendTimeoutMs ?? 15_000),
      maxConcurrentAppends: options.maxConcurrentAppends ?? 64,
      maxQueuedAppends: Math.max(0, options.maxQueuedAppends ?? 1_000),
    });
  }

  /**
   * A store on `options.client`, with its collections, indexes and counter ensured.
   * Use this rather than the constructor at startup.
   */
  static async create(options: MongoEventStoreOptions): Promise<MongoEventStore> {
    const store = new MongoEventStore(options);
    await store.ensureIndexes();
    return store;
  }

  /**
   * Connects a client of its own to `uri` and creates the store on it; `close()` closes
   * that client.
   */
  static async connect(
    uri: string,
    options: Omit<MongoEventStoreOptions, 'client' | 'ownsClient'> & {
      clientOptions?: MongoClientOptions;
    },
  ): Promise<MongoEventStore> {
    const { clientOptions, ...storeOptions } = options;
    const client = new MongoClient(uri, clientOptions);
    try {
      await client.connect();
      return await MongoEventStore.create({ ...storeOptions, client, ownsClient: true });
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  /**
   * Creates the collections, unique indexes and the position counter if missing.
   * Idempotent, so every instance may run it at startup.
   */
  async ensureIndexes(): Promise<void> {
    await ensureSchema(this.#db);
    await ensureArchiveIndexes(this.#db);
  }

  /** See `MongoAppender.append`: one transaction, bounded retries and deadline. */
  append(request: AppendRequest, options: { signal?: AbortSignal } = {}): Promise<AppendResult> {
    return this.#appender.append(request, options);
  }

  async idempotentResult(
    idempotencyKey: string,
    requestFingerprint: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<AppendResult | undefined> {
    options.signal?.throwIfAborted();
    return driverRead('idempotentResult', () =>
      this.#writer.firstResult(idempotencyKey, requestFingerprint),
    );
  }

  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    return this.#reads.readStream(stream, options);
  }

  readStreamBackward(stream: string, options: ReadStreamBackwardOptions): Promise<RecordedEvent[]> {
    return this.#reads.readStreamBackward(stream, options);
  }

  streamVersion(stream: string, options?: { signal?: AbortSignal }): Promise<number> {
    return this.#reads.streamVersion(stream, options);
  }

  readAll(options?: ReadAllOptions): Promise<Commit[]> {
    return this.#reads.readAll(options);
  }

  headPosition(): Promise<number> {
    return this.#reads.headPosition();
  }

  /**
   * Moves the commits of `streams` to `archive_commits` in transactions of a few dozen
   * commits each (see `./archive.ts`). Throws `EventStoreUnavailable` when the server
   * fails it; what was moved stays moved, and calling again moves the rest.
   */
  archiveStreams(
    streams: readonly string[],
    options: ArchiveMoveOptions = {},
  ): Promise<ArchiveMoveResult> {
    return this.#move('archiveStreams', this.#commits, this.#archive, streams, options);
  }

  /** The reverse of `archiveStreams`, the same way. */
  restoreStreams(
    streams: readonly string[],
    options: ArchiveMoveOptions = {},
  ): Promise<ArchiveMoveResult> {
    return this.#move('restoreStreams', this.#archive, this.#commits, streams, options);
  }

  async #move(
    what: string,
    from: Collection<CommitDoc>,
    to: Collection<CommitDoc>,
    streams: readonly string[],
    options: ArchiveMoveOptions,
  ): Promise<ArchiveMoveResult> {
    options.signal?.throwIfAborted();
    return driverRead(what, () => moveCommits(this.#client, from, to, streams, options.signal));
  }

  subscribe(options: SubscribeOptions = {}): CommitFeed {
    const feed = new MongoCommitFeed(
      {
        commits: this.#commits,
        archive: this.#archive,
        toCommit: (doc) => this.#reads.toCommit(doc),
        onClose: (f) => this.#feeds.delete(f),
        closePositions: (positions) => this.#positions.closeAbandoned(positions),
      },
      options.from ?? { position: 0 },
      this.#feedOptions,
    );
    this.#feeds.add(feed);
    // A feed of a closed store ends at once, as the memory adapter's does.
    if (this.#closed) void feed.close();
    return feed;
  }

  /** Closes every open feed, then the client if this store owns it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#feeds].map((f) => f.close()));
    if (this.#ownsClient) await this.#client.close();
  }
}
