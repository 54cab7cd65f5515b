import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BSON,
  MongoClient,
  MongoError,
  MongoErrorLabel,
  WriteConcern,
  type AnyBulkWriteOperation,
  type ClientSession,
  type Collection,
  type Db,
  type Document,
  type MongoClientOptions,
  type TransactionOptions,
} from 'mongodb';
import { MutexQueueFull, Semaphore } from '../../mutex.js';
import {
  CommitOutcomeUnknown,
  EventStoreBusy,
  EventStoreUnavailable,
  EventStoreValidationError,
  IdempotencyKeyReused,
  VersionConflict,
} from '../errors.js';
import { NO_STREAM, type StreamAppend } from '../types.js';
import { DEFAULT_IDEMPOTENCY_TTL_MS, fingerprintOf } from '../idempotency.js';
import { UpcasterRegistry } from '../upcasters.js';
import { satisfies, validateAppendRequest } from '../validation.js';
import type {
  AppendRequest,
  AppendResult,
  Commit,
  CommitFeed,
  EventStore,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamHead,
  SubscribeOptions,
} from '../types.js';
import {
  CollectionName,
  IndexName,
  POSITION_COUNTER_ID,
  WRITE_BSON_OPTIONS,
  fromCommitDoc,
  gapDoc,
  toAppendResult,
  type CommitDoc,
  type CommitEventDoc,
  type CounterDoc,
  type IdempotencyDoc,
  type ReservationDoc,
  type StreamHeadDoc,
  RESERVATION_TTL_MS,
} from './documents.js';
import { MongoCommitFeed, type CommitFeedOptions } from './feed.js';
import { AppendErrorAction, isDuplicateKey, translateError } from './translateError.js';

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
   * How long closing a position (a gap tombstone, see `#closePosition`) may wait for the
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
 * Every append transaction reads at snapshot isolation and commits with majority write
 * concern: per the manual ("Read Concern "snapshot"", "Transactions and Read Concern"),
 * snapshot reads are only guaranteed to have read majority-committed data when the
 * transaction commits with w: "majority", and transactions must read from the primary.
 * The commit waits at most `commitWaitMs` for the majority (`wtimeout`, and `maxTimeMS` on
 * commitTransaction via `maxCommitTimeMS`); running out labels the error
 * UnknownTransactionCommitResult, which `#commit` answers with a bounded retry.
 */
function transactionOptions(commitWaitMs: number): TransactionOptions {
  return {
    readConcern: { level: 'snapshot' },
    writeConcern: new WriteConcern('majority', commitWaitMs),
    readPreference: 'primary',
    maxCommitTimeMS: commitWaitMs,
  };
}

/**
 * The largest commit document: MongoDB's 16 MiB document limit (`maxBsonObjectSize`), less
 * room for the fields and per-stream heads that vary between this check and the write.
 */
const MAX_COMMIT_BSON_BYTES = 16 * 1024 * 1024 - 16 * 1024;

/**
 * Every read outside a transaction (stream reads and heads, the idempotency record, the
 * commit log, the feed) uses majority read concern, so none shows a commit that a failover
 * could roll back, and a replay reads the first result and its commit at the same level
 * (a local read could see a key whose commit a majority read does not yet show). Appends
 * commit with
 * w: "majority", which waits until a majority read on the primary sees the write
 * (SERVER-22841), so a caller still reads its own commits.
 */
const MAJORITY = { level: 'majority' } as const;

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
 * not commit is closed with a tombstone (`#closePosition`), which races the commit on the
 * unique `position` index: exactly one of the two takes the position, and the feed
 * yields a `gap` item for a tombstone.
 */
export class MongoEventStore implements EventStore {
  readonly #client: MongoClient;
  readonly #db: Db;
  readonly #streams: Collection<StreamHeadDoc>;
  readonly #commits: Collection<CommitDoc>;
  readonly #counters: Collection<CounterDoc>;
  readonly #idempotency: Collection<IdempotencyDoc>;
  readonly #reservations: Collection<ReservationDoc>;
  readonly #upcasters: UpcasterRegistry;
  readonly #now: () => Date;
  readonly #ownsClient: boolean;
  readonly #maxAttempts: number;
  readonly #maxCommitAttempts: number;
  readonly #commitWaitMs: number;
  readonly #appendTimeoutMs: number;
  readonly #closePositionTimeoutMs: number;
  readonly #feedOptions: CommitFeedOptions;
  readonly #idempotencyTtlMs: number;
  readonly #feeds = new Set<MongoCommitFeed>();
  /**
   * Bounds this instance's appends in flight, so a burst waits for pooled connections
   * here, in arrival order and with a bounded queue (`EventStoreBusy` beyond it), rather
   * than in the driver's pool. Not a mutex: appends run concurrently up to the bound.
   */
  readonly #appends: Semaphore;
  #closed = false;

  constructor(options: MongoEventStoreOptions) {
    this.#client = options.client;
    this.#db = options.client.db(options.dbName);
    this.#streams = this.#db.collection(CollectionName.Streams);
    this.#commits = this.#db.collection(CollectionName.Commits);
    this.#counters = this.#db.collection(CollectionName.Counters);
    this.#idempotency = this.#db.collection(CollectionName.Idempotency);
    this.#reservations = this.#db.collection(CollectionName.Reservations);
    this.#upcasters = options.upcasters ?? new UpcasterRegistry();
    this.#now = options.now ?? (() => new Date());
    this.#ownsClient = options.ownsClient ?? false;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 20);
    this.#maxCommitAttempts = Math.max(1, options.maxCommitAttempts ?? 3);
    this.#commitWaitMs = Math.max(1, options.commitWaitMs ?? 5_000);
    this.#appendTimeoutMs = Math.max(1, options.appendTimeoutMs ?? 15_000);
    this.#appends = new Semaphore({
      permits: options.maxConcurrentAppends ?? 64,
      maxQueued: Math.max(0, options.maxQueuedAppends ?? 1_000),
    });
    this.#closePositionTimeoutMs = Math.max(1, options.closePositionTimeoutMs ?? 5_000);
    this.#feedOptions = options.feed ?? {};
    this.#idempotencyTtlMs = options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
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
    // Collections are created up front so no transaction has to create one: implicit
    // creation inside a transaction needs MongoDB 4.4+ and is refused in cross-shard
    // write transactions (manual, "Transactions and Operations").
    const existing = new Set(
      (await this.#db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name),
    );
    for (const name of Object.values(CollectionName)) {
      if (existing.has(name)) continue;
      await this.#db.createCollection(name).catch((error: unknown) => {
        // Another instance created it between our list and create: NamespaceExists (48).
        if (!(error instanceof MongoError && error.code === 48)) throw error;
      });
    }
    // Stream reads find the commits holding a stream's events through this multikey index
    // (an `$elemMatch` on both fields of one array element gets bounds on both). Not unique:
    // a compound multikey index keys the cross product of the array's values, which would
    // make unrelated commits collide; the version-checked heads in `streams` are what
    // guarantee one event per stream version.
    await this.#commits.createIndex(
      { 'events.stream': 1, 'events.version': 1 },
      { name: IndexName.CommitsEventsStreamVersion },
    );
    await this.#commits.createIndex(
      { position: 1 },
      { unique: true, name: IndexName.CommitsPosition },
    );
    // Expired keys are removed by the server's TTL monitor (manual, "TTL Indexes": a
    // background task about every 60 s deletes documents whose date is past; with
    // expireAfterSeconds 0 the field itself is the expiry). Reads check expiresAt too.
    await this.#idempotency.createIndex(
      { expiresAt: 1 },
      { expireAfterSeconds: 0, name: IndexName.IdempotencyExpiry },
    );
    await this.#reservations.createIndex(
      { expiresAt: 1 },
      { expireAfterSeconds: 0, name: IndexName.ReservationsExpiry },
    );
    // Seeded outside any transaction so appends never race to upsert it.
    await this.#counters.updateOne(
      { _id: POSITION_COUNTER_ID },
      { $setOnInsert: { value: 0 } },
      { upsert: true, writeConcern: { w: 'majority' } },
    );
  }

  /**
   * Appends in one transaction. Bounded in three ways: at most `maxAttempts` transaction
   * attempts, at most `maxCommitAttempts` commit calls per attempt, and `appendTimeoutMs`
   * for all of it (queueing included); `signal` is honoured while queued, between
   * attempts and between commit retries. A command already sent is not interrupted:
   * aborting mid-commit would leave the outcome unknown.
   *
   * Throws `VersionConflict`, `EventStoreValidationError`, `EventStoreBusy` (too many appends
   * queued on this instance), `CommitOutcomeUnknown` (the commit was sent and whether it
   * applied could not be learned), `EventStoreUnavailable` (retries or time exhausted, or
   * a driver error retrying cannot fix; the cause is attached), or the signal's reason.
   * Never a raw driver error, and never an error for an append that committed.
   */
  async append(
    request: AppendRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<AppendResult> {
    validateAppendRequest(request);
    this.#checkBsonSize(request);
    const deadline = performance.now() + this.#appendTimeoutMs;
    try {
      return await this.#append(request, options.signal, deadline);
    } catch (error) {
      if (error instanceof MutexQueueFull) {
        throw new EventStoreBusy(`append refused: ${error.message} on this instance`);
      }
      throw unavailableIfDriverError(error, 'append');
    }
  }

  async #append(
    request: AppendRequest,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<AppendResult> {
    // A request aborted while it waits leaves the queue at once, having sent nothing; the
    // transaction checks the signal and the deadline again when it starts.
    return this.#appends.run(() => this.#transact(request, signal, deadline), { signal });
  }

  /**
   * Drives the transaction itself rather than through `withTransaction`, whose commit
   * retries on `UnknownTransactionCommitResult` run for up to 120 s regardless of any
   * budget of ours (driver `ClientSession.withTransaction`; `timeoutMS` does not bound
   * them either). Per the transactions spec ("Retrying commitTransaction"), a commit whose
   * outcome is unknown may be sent again, and the server answers it with the outcome of
   * the one transaction: it never applies twice. A `TransientTransactionError` (on a
   * write or on the commit) means the transaction was aborted: the whole attempt runs
   * again on a fresh snapshot, with a new position. Every position an attempt reserved
   * and did not commit is closed before the next attempt.
   */
  async #transact(
    request: AppendRequest,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<AppendResult> {
    const key = request.idempotencyKey;
    let lastError: unknown;
    const session = this.#client.startSession();
    try {
      for (let attempt = 1; ; attempt += 1) {
        signal?.throwIfAborted();
        this.#checkDeadline(deadline, attempt - 1, lastError);
        const commitWaitMs = Math.max(
          1,
          Math.min(this.#commitWaitMs, deadline - performance.now()),
        );
        session.startTransaction(transactionOptions(commitWaitMs));
        const draft: Draft = {};
        try {
          await this.#writeCommit(session, request, draft);
        } catch (error) {
          // Abort explicitly so the server frees the transaction now, not at its timeout.
          await session.abortTransaction().catch(() => undefined);
          if (draft.commit) await this.#closePosition(draft.commit.position);
          const action =
            error instanceof ExpectationFailed
              ? AppendErrorAction.VersionConflict
              : translateError(error, { idempotent: key !== undefined });
          const settled = await this.#settleFailedAttempt(action, error, request);
          if (settled) return settled;
          lastError = error;
          if (attempt >= this.#maxAttempts) throw this.#exhausted(attempt, lastError);
          await pause(backoffMs(attempt), signal);
          continue;
        }
        const commit = draft.commit!;
        const committed = await this.#commit(session, commit, signal, deadline);
        if (committed.kind === 'committed') return toAppendResult(commit, draft.heads!);
        // The transaction did not apply (aborted, or closed out after an unknown outcome):
        // nothing was written, and the position is closed.
        lastError = committed.error;
        if (attempt >= this.#maxAttempts) throw this.#exhausted(attempt, lastError);
        await pause(backoffMs(attempt), signal);
      }
    } finally {
      // endSession aborts a transaction left open and never throws (it squashes errors).
      await session.endSession();
    }
  }

  /**
   * Commits, retrying a commit whose outcome is unknown at most `maxCommitAttempts` times
   * in all and within the deadline. When the outcome stays unknown, closing the commit's
   * position settles it: the tombstone is refused if the commit holds the position
   * (committed), and once it is in, the transaction can never commit (aborted, safe to run
   * again). Only when even that cannot be learned is the error `CommitOutcomeUnknown`.
   */
  async #commit(
    session: ClientSession,
    commit: CommitDoc,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<{ kind: 'committed' } | { kind: 'aborted'; error: unknown }> {
    for (let call = 1; ; call += 1) {
      try {
        await session.commitTransaction();
        return { kind: 'committed' };
      } catch (error) {
        if (!(error instanceof MongoError)) throw error;
        const unknown = error.hasErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult);
        if (!unknown) {
          // Even without UnknownTransactionCommitResult the commit may have been applied
          // (its reply lost with a closed connection, and the driver's one retry failing
          // otherwise), so the tombstone settles it: a committed write is never reported
          // as failed, and only a position proven closed is safe to run again.
          const outcome = await this.#closePosition(commit.position, commit._id);
          if (outcome === 'committed') return { kind: 'committed' };
          if (outcome === 'unknown') {
            throw new CommitOutcomeUnknown(`append commit outcome unknown: ${error.message}`, {
              cause: error,
            });
          }
          if (error.hasErrorLabel(MongoErrorLabel.TransientTransactionError)) {
            return { kind: 'aborted', error };
          }
          // Neither label: the server refused the commit, and the transaction is over.
          throw new EventStoreUnavailable(`append commit failed: ${error.message}`, {
            cause: error,
          });
        }
        const outOfTime = performance.now() >= deadline;
        if (call >= this.#maxCommitAttempts || outOfTime || signal?.aborted) {
          // Ends the transaction on the server if it is still open (a commit that never
          // arrived), so the tombstone below need not wait for it: it then either finds
          // the commit or proves it can never happen.
          await this.#killSessions(session.id ? [session.id] : []);
          const outcome = await this.#closePosition(commit.position, commit._id);
          if (outcome === 'committed') return { kind: 'committed' };
          if (outcome === 'closed') {
            // It can never commit now: nothing was written.
            signal?.throwIfAborted();
            if (!outOfTime) return { kind: 'aborted', error };
            throw new EventStoreUnavailable(
              `append did not commit within its time: ${error.message}`,
              { cause: error },
            );
          }
          throw new CommitOutcomeUnknown(
            `append commit outcome unknown after ${call} commit attempts: ${error.message}`,
            { cause: error },
          );
        }
        await sleep(backoffMs(call));
      }
    }
  }

  /**
   * What a failed attempt means: a result to return (the key's first result), an error to
   * throw, or undefined to try again.
   */
  async #settleFailedAttempt(
    action: AppendErrorAction,
    error: unknown,
    request: AppendRequest,
  ): Promise<AppendResult | undefined> {
    switch (action) {
      case AppendErrorAction.Rethrow:
        throw error;
      case AppendErrorAction.Unavailable:
        throw new EventStoreUnavailable(`append failed: ${messageOf(error)}`, { cause: error });
      case AppendErrorAction.DuplicateIdempotencyKey: {
        const key = request.idempotencyKey;
        return key === undefined ? undefined : this.#firstResult(key, fingerprintOf(request));
      }
      case AppendErrorAction.VersionConflict: {
        // A replay of a committed append fails its expectations (its first commit moved
        // the heads): the key's first result is the answer, not a conflict.
        const key = request.idempotencyKey;
        const first =
          key === undefined ? undefined : await this.#firstResult(key, fingerprintOf(request));
        if (first) return first;
        const { conflict } = await this.#readHeads(request);
        if (conflict) throw conflict;
        // The racing commit left every expectation satisfied (e.g. ANY): go again.
        return undefined;
      }
      case AppendErrorAction.Retry:
        return undefined;
    }
  }

  /**
   * Refuses a commit whose document would be over MongoDB's 16 MiB BSON limit, before any
   * round trip. The port's limits are on JSON, and BSON can be several times larger (each
   * array element carries its index as a key: a 4 MiB request of number arrays makes a
   * commit of over 20 MB), which the server would refuse mid-transaction. Measured on the
   * commit document this append would write, with the widest position and fixed-size ids;
   * each event document and the idempotency record are smaller.
   */
  #checkBsonSize(request: AppendRequest): void {
    const draft = this.#newCommit(request, Number.MAX_SAFE_INTEGER, new Map());
    const bytes = BSON.calculateObjectSize(draft, WRITE_BSON_OPTIONS);
    if (bytes > MAX_COMMIT_BSON_BYTES) {
      throw new EventStoreValidationError(
        'streams',
        `the commit would be ${bytes} bytes of BSON, over MongoDB's limit of ${MAX_COMMIT_BSON_BYTES}`,
      );
    }
  }

  #checkDeadline(deadline: number, attempts: number, lastError: unknown): void {
    if (performance.now() < deadline) return;
    throw new EventStoreUnavailable(
      `append timed out after ${this.#appendTimeoutMs} ms and ${attempts} transaction attempts` +
        (lastError === undefined ? '' : `: ${messageOf(lastError)}`),
      { cause: lastError },
    );
  }

  /**
   * Closes a reserved position that its transaction did not commit, by inserting a
   * tombstone (`{ position, gap: true }`) into `commits`, so the feed need not wait for
   * it. The unique index on `position` decides between the tombstone and the commit:
   *
   * - if the transaction has inserted its commit document and is still open, the insert
   *   (outside any transaction) waits until it ends: writes outside a transaction that
   *   conflict with one in progress retry until it commits or aborts (SERVER-34650,
   *   SERVER-40105), bounded here by `maxTimeMS`;
   * - then it fails with a duplicate key if something took the position: 'committed' when
   *   a majority read finds `commitId` there, 'closed' when it finds another document (a
   *   tombstone, or another commit), 'unknown' when it finds nothing (the majority read
   *   trails the write that refused ours); or the tombstone goes in, after which that
   *   transaction can never commit: its own insert would be the duplicate ('closed').
   *
   * Written at majority, so a failover cannot take the tombstone back. Best effort:
   * anything else leaves the position open ('unknown'), and the feed closes it the same
   * way after its grace period.
   */
  async #closePosition(
    position: number,
    commitId?: string,
  ): Promise<'committed' | 'closed' | 'unknown'> {
    try {
      await this.#commits.insertOne(gapDoc(position, this.#now()), {
        writeConcern: { w: 'majority', wtimeoutMS: this.#closePositionTimeoutMs },
        maxTimeMS: this.#closePositionTimeoutMs,
      });
      return 'closed';
    } catch (error) {
      if (!isDuplicateKey(error)) return 'unknown';
      try {
        const holder = await this.#commits.findOne(
          { position },
          { projection: { _id: 1 }, readConcern: MAJORITY },
        );
        // Nothing visible yet (a majority read can trail the write that refused ours): the
        // position may hold our commit or a tombstone, so the outcome stays unknown.
        if (holder === null) return 'unknown';
        return holder._id === commitId ? 'committed' : 'closed';
      } catch {
        return 'unknown';
      }
    }
  }

  /**
   * Records which session reserved `position`: one insert outside the transaction,
   * acknowledged by the primary (a failover that loses it also aborted the transaction).
   * It precedes the commit document, so whenever a transaction holds the position's key
   * in `commits`, its session can be found here.
   */
  async #recordReservation(session: ClientSession, position: number): Promise<void> {
    const lsid = session.id;
    if (!lsid) return;
    await this.#reservations.insertOne(
      { _id: position, lsid, expiresAt: new Date(this.#now().getTime() + RESERVATION_TTL_MS) },
      { writeConcern: { w: 1 } },
    );
  }

  /**
   * Closes positions whose appenders seem dead (the feed's grace period passed): first
   * ends the sessions that reserved them (`killSessions` aborts a session's unprepared
   * transaction at once: server `killSessionsLocal`), so the tombstones do not wait behind
   * the uncommitted commit documents until the server expires those transactions
   * (`transactionLifetimeLimitSeconds`, 60 s by default); then writes the tombstones.
   */
  async #closeAbandoned(positions: number[]): Promise<void> {
    try {
      const reserved = await this.#reservations
        .find({ _id: { $in: positions } }, { projection: { lsid: 1 } })
        .toArray();
      await this.#killSessions(reserved.map((r) => r.lsid));
    } catch {
      // Best effort: without it the tombstone still goes in once the transaction ends.
    }
    await Promise.all(positions.map((p) => this.#closePosition(p)));
  }

  /**
   * Ends the given server sessions and their open transactions (`killSessions`, which
   * kills only sessions of the authenticated user: every instance must connect as the same
   * user). A session whose transaction already committed is unaffected. Best effort.
   */
  async #killSessions(lsids: Document[]): Promise<void> {
    if (lsids.length === 0) return;
    await this.#client
      .db('admin')
      .command({ killSessions: lsids })
      .catch(() => undefined);
  }

  /**
   * The body of the transaction, ordered so that a conflict costs little and nothing
   * shared is ever held:
   *
   * 1. Heads: a read only for streams appended with `ANY` or `STREAM_EXISTS`; then one
   *    bulk write: a conditional update (`{ _id, version: expected }`) per existing
   *    stream, an insert per new one. A head changed after our snapshot or held by another
   *    transaction fails with WriteConflict (112, TransientTransactionError: manual,
   *    "In-progress Transactions and Write Conflicts") and the attempt runs again; a head
   *    at another version matches nothing, and a new stream that exists is a duplicate
   *    key: the expectation failed, and only then are the heads read, to say how.
   * 2. The position, reserved outside the transaction (one atomic `$inc` on the counter,
   *    acknowledged by the primary alone: a commit that uses it is majority-committed only
   *    after the increment, which precedes it in the oplog, is too). `draft.commit` is set
   *    from here on, so the caller closes the position if the attempt fails.
   *    Which session reserved it is recorded next (`#recordReservation`), before the commit
   *    document exists, so a dead appender's open transaction can be ended by whoever closes
   *    its position.
   * 3. The commit document at that position; then the idempotency key, inserted unless
   *    a live record holds it (an expired one the TTL monitor has not removed yet is
   *    replaced): a live one is a duplicate key, and the caller returns its first result.
   */
  async #writeCommit(session: ClientSession, request: AppendRequest, draft: Draft): Promise<void> {
    const from = await this.#fromVersions(session, request);
    const updates: AnyBulkWriteOperation<StreamHeadDoc>[] = [];
    const inserts: StreamHeadDoc[] = [];
    for (const s of request.streams) {
      const base = from.get(s.stream)!;
      const version = base + s.events.length;
      if (base === 0) inserts.push({ _id: s.stream, version });
      else
        updates.push({
          updateOne: { filter: { _id: s.stream, version: base }, update: { $set: { version } } },
        });
    }
    // One command for the updates, one for the inserts (as one bulk write would send them),
    // the updates first so that a failed expectation stops the attempt before any insert.
    if (updates.length > 0) {
      const updated = await this.#streams.bulkWrite(updates, { session, ordered: true });
      if (updated.matchedCount !== updates.length) throw new ExpectationFailed();
    }
    if (inserts.length > 0) await this.#streams.insertMany(inserts, { session, ordered: true });

    const counter = await this.#counters.findOneAndUpdate(
      { _id: POSITION_COUNTER_ID },
      { $inc: { value: 1 } },
      // No session: the increment is not part of the transaction, and never held by it.
      // v6+ resolves with the document itself (includeResultMetadata defaults to false).
      { upsert: true, returnDocument: 'after', writeConcern: { w: 1 } },
    );
    if (!counter) throw new Error('position counter missing after upsert');

    const commit = this.#newCommit(request, counter.value, from);
    draft.commit = commit;
    draft.heads = headsAfter(request, from);
    await this.#recordReservation(session, commit.position);
    const write = { session, ...WRITE_BSON_OPTIONS };
    await this.#commits.insertOne(commit, write);
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const record: IdempotencyDoc = {
        _id: key,
        result: toAppendResult(commit, draft.heads),
        fingerprint: fingerprintOf(request),
        expiresAt: new Date(commit.occurredAt.getTime() + this.#idempotencyTtlMs),
      };
      await this.#idempotency.replaceOne({ _id: key, expiresAt: { $lte: this.#now() } }, record, {
        ...write,
        upsert: true,
      });
    }
  }

  /**
   * The version each stream of the request is appended after: the expected one when it
   * is exact (0 for `NO_STREAM`), the head read in the transaction for `ANY` and
   * `STREAM_EXISTS` (whose expectation is checked here).
   */
  async #fromVersions(
    session: ClientSession,
    request: AppendRequest,
  ): Promise<Map<string, number>> {
    const from = new Map<string, number>();
    const unknown: StreamAppend[] = [];
    for (const s of request.streams) {
      if (s.expected === NO_STREAM) from.set(s.stream, 0);
      else if (typeof s.expected === 'number') from.set(s.stream, s.expected);
      else unknown.push(s);
    }
    if (unknown.length > 0) {
      const { actual, conflict } = await this.#readHeads({ streams: unknown }, { session });
      if (conflict) throw conflict;
      for (const s of unknown) from.set(s.stream, actual.get(s.stream) ?? 0);
    }
    return from;
  }

  #newCommit(request: AppendRequest, position: number, actual: Map<string, number>): CommitDoc {
    const events: CommitEventDoc[] = [];
    for (const s of request.streams) {
      let version = actual.get(s.stream) ?? 0;
      for (const e of s.events) {
        version += 1;
        events.push({
          eventId: randomUUID(),
          stream: s.stream,
          version,
          type: e.type,
          data: e.data,
          schemaVersion: e.schemaVersion ?? 1,
        });
      }
    }
    return {
      _id: randomUUID(),
      position,
      occurredAt: this.#now(),
      actor: request.metadata?.actor ?? null,
      operation: request.metadata?.operation ?? null,
      metadata: request.metadata ?? {},
      idempotencyKey: request.idempotencyKey ?? null,
      events,
    };
  }

  async idempotentResult(
    idempotencyKey: string,
    requestFingerprint: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<AppendResult | undefined> {
    options.signal?.throwIfAborted();
    return this.#read('idempotentResult', () =>
      this.#firstResult(idempotencyKey, requestFingerprint),
    );
  }

  /**
   * The unexpired first result of `key`, read at majority: a replay must not return a
   * commit that a failover could still roll back, and it reads at the same level as
   * `readAll`, which a caller uses next to fetch the replayed commit. Throws
   * `IdempotencyKeyReused` when the key was recorded for another request.
   */
  async #firstResult(key: string, fingerprint: string): Promise<AppendResult | undefined> {
    const doc = await this.#idempotency.findOne({ _id: key }, { readConcern: MAJORITY });
    if (!doc || doc.expiresAt <= this.#now()) return undefined;
    if (doc.fingerprint !== fingerprint) throw new IdempotencyKeyReused(key);
    return doc.result;
  }

  /**
   * The heads of the request's streams, and the first stream whose expectation they do not
   * satisfy. Inside the transaction (`session`) for `ANY` and `STREAM_EXISTS`; outside it,
   * at majority, after an expectation failed (a conditional head update matched nothing, or
   * a new stream's insert was a duplicate key), to name the stream that conflicts.
   */
  async #readHeads(
    request: AppendRequest,
    options: { session?: ClientSession } = {},
  ): Promise<{ actual: Map<string, number>; conflict: VersionConflict | undefined }> {
    const names = request.streams.map((s) => s.stream);
    const heads = await this.#streams
      .find(
        { _id: { $in: names } },
        options.session ? { session: options.session } : { readConcern: MAJORITY },
      )
      .toArray();
    const actual = new Map(heads.map((h) => [h._id, h.version]));
    for (const s of request.streams) {
      const version = actual.get(s.stream) ?? 0;
      if (!satisfies(s.expected, version)) {
        return { actual, conflict: new VersionConflict(s.stream, s.expected, version) };
      }
    }
    return { actual, conflict: undefined };
  }

  #exhausted(attempts: number, lastError: unknown): EventStoreUnavailable {
    return new EventStoreUnavailable(
      `append gave up after ${attempts} transaction attempts: ${messageOf(lastError)}`,
      { cause: lastError },
    );
  }

  /*
   * Reads check `signal` before and after the round trip rather than passing it to the
   * driver: the driver's `signal` option is experimental and closes the connection when
   * it fires mid-I/O (driver `Abortable` docs), too costly for routine cancellations of
   * reads that take milliseconds.
   */

  /**
   * Events live once, in their commit document. A stream's events are read from the
   * commits that hold one of them at `fromVersion` or later (found by the
   * `events.stream`/`events.version` index), keeping only that stream's events.
   */
  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const fromVersion = options.fromVersion ?? 1;
    const docs = await this.#read('readStream', () =>
      this.#commits
        .aggregate<CommitDoc>(
          [
            { $match: { events: { $elemMatch: { stream, version: { $gte: fromVersion } } } } },
            {
              $project: {
                position: 1,
                occurredAt: 1,
                actor: 1,
                operation: 1,
                metadata: 1,
                idempotencyKey: 1,
                events: {
                  $filter: {
                    input: '$events',
                    cond: {
                      $and: [
                        { $eq: ['$$this.stream', { $literal: stream }] },
                        { $gte: ['$$this.version', fromVersion] },
                      ],
                    },
                  },
                },
              },
            },
            { $sort: { position: 1 } },
          ],
          { readConcern: MAJORITY },
        )
        .toArray(),
    );
    signal?.throwIfAborted();
    return docs.flatMap((d) => fromCommitDoc(d).events.map((e) => this.#upcasters.upcast(e)));
  }

  async streamVersion(stream: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted();
    const head = await this.#read('streamVersion', () =>
      this.#streams.findOne({ _id: stream }, { readConcern: MAJORITY }),
    );
    options.signal?.throwIfAborted();
    return head?.version ?? 0;
  }

  /**
   * Reads `commits` (tombstones too) from `after` on, stopping at the first position not
   * there yet: a reserved position whose transaction is still in flight may still commit,
   * and nothing after it is returned before it settles (a rebuild replaying this must not
   * pass a commit that appears later). Tombstones are skipped.
   */
  async readAll(options: ReadAllOptions = {}): Promise<Commit[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const limit = options.limit ?? 1_000;
    if (limit <= 0) return [];
    const after = options.after ?? 0;
    const commits = await this.#read('readAll', async () => {
      const found: Commit[] = [];
      const cursor = this.#commits
        .find({ position: { $gt: after } }, { readConcern: MAJORITY })
        .sort({ position: 1 })
        .batchSize(Math.min(limit + 16, 1_000));
      try {
        let next = after + 1;
        for await (const doc of cursor) {
          if (doc.position !== next || found.length >= limit) break;
          next += 1;
          if (!doc.gap) found.push(this.#toCommit(doc));
        }
      } finally {
        await cursor.close();
      }
      return found;
    });
    signal?.throwIfAborted();
    return commits;
  }

  async headPosition(): Promise<number> {
    const newest = await this.#read('headPosition', () =>
      this.#commits.findOne(
        {},
        { sort: { position: -1 }, projection: { position: 1 }, readConcern: MAJORITY },
      ),
    );
    return newest?.position ?? 0;
  }

  subscribe(options: SubscribeOptions = {}): CommitFeed {
    const feed = new MongoCommitFeed(
      {
        commits: this.#commits,
        toCommit: (doc) => this.#toCommit(doc),
        onClose: (f) => this.#feeds.delete(f),
        closePositions: (positions) => this.#closeAbandoned(positions),
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

  #toCommit(doc: CommitDoc): Commit {
    const commit = fromCommitDoc(doc);
    return { ...commit, events: commit.events.map((e) => this.#upcasters.upcast(e)) };
  }

  async #read<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw unavailableIfDriverError(error, what);
    }
  }
}

/** What one transaction attempt has written so far. */
interface Draft {
  /** The commit document, once its position is reserved. */
  commit?: CommitDoc;
  /** The heads it leaves, in request order. */
  heads?: StreamHead[];
}

/**
 * A version-conditional head update matched nothing: the head is not at the expected
 * version (one at it that changed after our snapshot is a WriteConflict instead).
 */
class ExpectationFailed extends Error {
  override readonly name = 'ExpectationFailed';
}

/** Heads after the commit, in request order. */
function headsAfter(request: AppendRequest, actual: Map<string, number>): StreamHead[] {
  return request.streams.map((s) => ({
    stream: s.stream,
    version: (actual.get(s.stream) ?? 0) + s.events.length,
  }));
}

/** Jittered exponential backoff between our own rounds: up to 10, 20, 40... capped at 250 ms. */
function backoffMs(round: number): number {
  return Math.random() * Math.min(250, 5 * 2 ** round);
}

/** Sleeps, rejecting with the signal's reason (as `throwIfAborted` does) when it aborts. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    signal?.throwIfAborted();
    throw error;
  }
}

/** Driver errors become `EventStoreUnavailable`; anything else passes through. */
function unavailableIfDriverError(error: unknown, what: string): unknown {
  return error instanceof MongoError
    ? new EventStoreUnavailable(`${what} failed: ${error.message}`, { cause: error })
    : error;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
