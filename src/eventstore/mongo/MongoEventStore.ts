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
  type MongoClientOptions,
  type TransactionOptions,
} from 'mongodb';
import { Mutex, MutexQueueFull } from '../../mutex.js';
import {
  CommitOutcomeUnknown,
  EventStoreBusy,
  EventStoreUnavailable,
  EventStoreValidationError,
  IdempotencyKeyReused,
  VersionConflict,
} from '../errors.js';
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
  toAppendResult,
  type CommitDoc,
  type CommitEventDoc,
  type CounterDoc,
  type IdempotencyDoc,
  type StreamHeadDoc,
} from './documents.js';
import { MongoCommitFeed, type CommitFeedOptions } from './feed.js';
import { AppendErrorAction, translateError } from './translateError.js';

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
   * `EventStoreUnavailable`. Every commit writes the one position counter, so commits of
   * different instances conflict even on distinct streams (one instance's appends run one
   * at a time and do not conflict with each other, see `#appends`).
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
  /** Appends allowed to wait behind the running one; beyond, `EventStoreBusy`. @default 1_000 */
  maxQueuedAppends?: number;
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
 * one multi-document transaction.
 *
 * One append writes, all in one transaction: every stream's head in `streams`
 * (version-checked), the position counter in `counters`, one document in `commits` holding
 * the events (their only copy; what the feed watches), and the idempotency key in
 * `idempotency`.
 *
 * The position counter serialises commits: every transaction increments the same
 * document, so two concurrent commits always write-conflict and one retries (between
 * instances; one instance queues its own appends, see `#appends`). That is the
 * price of a gapless global position in commit order, which the feed relies on to deliver
 * every commit exactly once and in order without trusting resume tokens. At the write
 * rates of collaborative boards (people editing, not machines streaming) one counter
 * document is not the bottleneck; `scripts/bench/append.ts` measures what it costs.
 */
export class MongoEventStore implements EventStore {
  readonly #client: MongoClient;
  readonly #db: Db;
  readonly #streams: Collection<StreamHeadDoc>;
  readonly #commits: Collection<CommitDoc>;
  readonly #counters: Collection<CounterDoc>;
  readonly #idempotency: Collection<IdempotencyDoc>;
  readonly #upcasters: UpcasterRegistry;
  readonly #now: () => Date;
  readonly #ownsClient: boolean;
  readonly #maxAttempts: number;
  readonly #maxCommitAttempts: number;
  readonly #commitWaitMs: number;
  readonly #appendTimeoutMs: number;
  readonly #feedOptions: CommitFeedOptions;
  readonly #idempotencyTtlMs: number;
  readonly #feeds = new Set<MongoCommitFeed>();
  /**
   * This instance's append transactions, one at a time in arrival order. Every commit
   * writes the one counter document, and a transaction that writes a document another
   * transaction has modified since its snapshot or not yet committed fails at once with
   * WriteConflict instead of waiting (manual, "In-progress Transactions and Write
   * Conflicts"; see `#writeCommit`). Run concurrently, the appends of one process would
   * only conflict with each other, and the retries are unfair: a writer that just
   * committed starts its next append at once while the losers sleep the driver's growing
   * backoff (`ClientSession.withTransaction`, step 2.1), so under a steady load a loser can
   * exhaust `maxAttempts` while others keep committing. Queued, they commit at the same
   * rate (the counter serialised them anyway) and spend attempts only on conflicts with
   * other instances.
   */
  readonly #appends: Mutex;
  #closed = false;

  constructor(options: MongoEventStoreOptions) {
    this.#client = options.client;
    this.#db = options.client.db(options.dbName);
    this.#streams = this.#db.collection(CollectionName.Streams);
    this.#commits = this.#db.collection(CollectionName.Commits);
    this.#counters = this.#db.collection(CollectionName.Counters);
    this.#idempotency = this.#db.collection(CollectionName.Idempotency);
    this.#upcasters = options.upcasters ?? new UpcasterRegistry();
    this.#now = options.now ?? (() => new Date());
    this.#ownsClient = options.ownsClient ?? false;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 20);
    this.#maxCommitAttempts = Math.max(1, options.maxCommitAttempts ?? 3);
    this.#commitWaitMs = Math.max(1, options.commitWaitMs ?? 5_000);
    this.#appendTimeoutMs = Math.max(1, options.appendTimeoutMs ?? 15_000);
    this.#appends = new Mutex({ maxQueued: Math.max(0, options.maxQueuedAppends ?? 1_000) });
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
    signal?.throwIfAborted();
    const key = request.idempotencyKey;
    if (key !== undefined) {
      // A replay usually finds its result here, without a transaction.
      const first = await this.#firstResult(key, fingerprintOf(request));
      if (first) return first;
    }
    // The transaction re-checks the key and the signal, so waiting in the queue is safe.
    return this.#appends.run(() => this.#transact(request, signal, deadline));
  }

  /**
   * Drives the transaction itself rather than through `withTransaction`, whose commit
   * retries on `UnknownTransactionCommitResult` run for up to 120 s regardless of any
   * budget of ours (driver `ClientSession.withTransaction`; `timeoutMS` does not bound
   * them either). Per the transactions spec ("Retrying commitTransaction"), a commit whose
   * outcome is unknown may be sent again, and the server answers it with the outcome of
   * the one transaction: it never applies twice. A `TransientTransactionError` (on a
   * write or on the commit) means the transaction was aborted: the whole attempt runs
   * again on a fresh snapshot.
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
        let written: Written;
        try {
          written = await this.#writeCommit(session, request);
        } catch (error) {
          // Abort explicitly so the server frees the transaction now, not at its timeout.
          await session.abortTransaction().catch(() => undefined);
          const action =
            error instanceof HeadMoved
              ? AppendErrorAction.Retry
              : translateError(error, { idempotent: key !== undefined });
          const settled = await this.#settleFailedAttempt(action, error, request);
          if (settled) return settled;
          lastError = error;
          if (attempt >= this.#maxAttempts) throw this.#exhausted(attempt, lastError);
          await pause(backoffMs(attempt), signal);
          continue;
        }
        const committed = await this.#commit(session, written, signal, deadline);
        if (committed.kind === 'committed') return written.result;
        // Transient on commit: the server aborted the transaction; nothing applied.
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
   * in all and within the deadline. When the outcome stays unknown, one majority read of
   * the commit document settles it if the commit applied; otherwise `CommitOutcomeUnknown`.
   */
  async #commit(
    session: ClientSession,
    written: Written,
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
          if (error.hasErrorLabel(MongoErrorLabel.TransientTransactionError)) {
            return { kind: 'aborted', error };
          }
          throw new EventStoreUnavailable(`append commit failed: ${error.message}`, {
            cause: error,
          });
        }
        const outOfTime = performance.now() >= deadline;
        if (call >= this.#maxCommitAttempts || outOfTime || signal?.aborted) {
          if (written.wrote && (await this.#isCommitted(written.result.commitId)))
            return { kind: 'committed' };
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

  /** Whether the commit with this id is in the log, read at majority (it cannot roll back). */
  async #isCommitted(commitId: string): Promise<boolean> {
    try {
      const doc = await this.#commits.findOne(
        { _id: commitId },
        { projection: { _id: 1 }, readConcern: MAJORITY },
      );
      return doc !== null;
    } catch {
      return false;
    }
  }

  /**
   * The body of the transaction, ordered to keep conflicts cheap:
   *
   * 1. Reads (idempotency key, heads) and the expectation checks come first and write
   *    nothing, so a stale writer fails with VersionConflict without touching the counter.
   * 2. The counter is the first write. Transactions fail fast with WriteConflict (112,
   *    TransientTransactionError) on a document another transaction has modified since
   *    their snapshot or not yet committed (manual, "In-progress Transactions and Write
   *    Conflicts"), so taking it first makes concurrent commits collide here, early,
   *    instead of after they have done all their writes.
   * 3. Then the heads, version-conditional. A head changed after our snapshot fails the
   *    same way instead of succeeding on stale data, and the retry re-reads it: that is
   *    why every stream of the commit has its head written, never only read.
   * 4. Events, the commit document (what the feed sees), the idempotency key.
   *
   * A key found already committed returns its first result and writes nothing; the
   * caller still commits, so that what the snapshot read is majority-committed (a
   * snapshot read is only guaranteed majority-committed when the transaction commits
   * with w: "majority": manual, "Read Concern "snapshot"").
   */
  async #writeCommit(session: ClientSession, request: AppendRequest): Promise<Written> {
    const key = request.idempotencyKey;
    if (key !== undefined) {
      // A racing append with the same key may have committed since the check in #append.
      const first = await this.#idempotency.findOne({ _id: key }, { session });
      if (first && first.expiresAt > this.#now()) {
        if (first.fingerprint !== fingerprintOf(request)) throw new IdempotencyKeyReused(key);
        return { result: first.result, wrote: false };
      }
    }

    const { actual, conflict } = await this.#readHeads(request, { session });
    if (conflict) throw conflict;

    const counter = await this.#counters.findOneAndUpdate(
      { _id: POSITION_COUNTER_ID },
      { $inc: { value: 1 } },
      // v6+ resolves with the document itself (includeResultMetadata defaults to false).
      { session, upsert: true, returnDocument: 'after' },
    );
    if (!counter) throw new Error('position counter missing after upsert');

    const headWrites: AnyBulkWriteOperation<StreamHeadDoc>[] = request.streams.map((s) => {
      const from = actual.get(s.stream) ?? 0;
      const version = from + s.events.length;
      return from === 0
        ? { insertOne: { document: { _id: s.stream, version } } }
        : {
            updateOne: { filter: { _id: s.stream, version: from }, update: { $set: { version } } },
          };
    });
    const expectedUpdates = headWrites.filter((w) => 'updateOne' in w).length;
    const written = await this.#streams.bulkWrite(headWrites, { session, ordered: true });
    if (written.matchedCount !== expectedUpdates) throw new HeadMoved();

    const commit = this.#newCommit(request, counter.value, actual);
    const write = { session, ...WRITE_BSON_OPTIONS };
    await this.#commits.insertOne(commit, write);
    const result = toAppendResult(commit, headsAfter(request, actual));
    if (key !== undefined) {
      const record: IdempotencyDoc = {
        _id: key,
        result,
        fingerprint: fingerprintOf(request),
        expiresAt: new Date(commit.occurredAt.getTime() + this.#idempotencyTtlMs),
      };
      // Replaces an expired record the TTL monitor has not removed yet; two live appends
      // with one key still collide here (write conflict or duplicate key) and one retries.
      await this.#idempotency.replaceOne({ _id: key }, record, { ...write, upsert: true });
    }
    return { result, wrote: true };
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
   * satisfy. Inside the transaction (`session`) for the checks before writing; outside it
   * after a duplicate key on a head, when the racing commit is committed (an uncommitted
   * one would have raised WriteConflict), to name the stream that conflicts.
   */
  async #readHeads(
    request: AppendRequest,
    options: { session?: ClientSession } = {},
  ): Promise<{ actual: Map<string, number>; conflict: VersionConflict | undefined }> {
    const names = request.streams.map((s) => s.stream);
    const heads = await this.#streams.find({ _id: { $in: names } }, options).toArray();
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

  async readAll(options: ReadAllOptions = {}): Promise<Commit[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const limit = options.limit ?? 1_000;
    // limit(0) means "no limit" to the server; the port means none.
    if (limit <= 0) return [];
    const docs = await this.#read('readAll', () =>
      this.#commits
        .find({ position: { $gt: options.after ?? 0 } }, { readConcern: MAJORITY })
        .sort({ position: 1 })
        .limit(limit)
        .toArray(),
    );
    signal?.throwIfAborted();
    return docs.map((d) => this.#toCommit(d));
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

/** What one transaction attempt produced: the result, and whether it wrote a new commit. */
interface Written {
  result: AppendResult;
  wrote: boolean;
}

/**
 * A version-conditional head update matched nothing. Snapshot isolation should make that
 * a WriteConflict instead; if it ever happens, the head moved, and a retry re-reads it.
 */
class HeadMoved extends Error {
  override readonly name = 'HeadMoved';
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
