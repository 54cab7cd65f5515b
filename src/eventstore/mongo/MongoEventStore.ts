import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MongoClient,
  MongoError,
  WriteConcern,
  type AnyBulkWriteOperation,
  type ClientSession,
  type Collection,
  type Db,
  type MongoClientOptions,
  type TransactionOptions,
} from 'mongodb';
import { Mutex } from '../../mutex.js';
import { EventStoreUnavailable, IdempotencyKeyReused, VersionConflict } from '../errors.js';
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
  fromEventDoc,
  toAppendResult,
  toEventDocs,
  type CommitDoc,
  type CommitEventDoc,
  type CounterDoc,
  type EventDoc,
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
   * Transaction attempts per append, counting the driver's own retries inside
   * `withTransaction` and ours around it. When they run out, append raises
   * `EventStoreUnavailable`. Every commit writes the one position counter, so commits of
   * different instances conflict even on distinct streams (one instance's appends run one
   * at a time and do not conflict with each other, see `#appends`). The driver's backoff
   * (5 ms growing 1.5x per attempt to 500 ms, jittered) keeps 20 attempts within a few
   * seconds, far below its own 120 s limit.
   * @default 20
   */
  maxAttempts?: number;
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
 */
const TRANSACTION_OPTIONS: TransactionOptions = {
  readConcern: { level: 'snapshot' },
  writeConcern: new WriteConcern('majority'),
  readPreference: 'primary',
};

/**
 * Reads of the commit log (readAll, headPosition, the feed) use majority read concern so
 * they never show a commit that a failover could roll back. Appends commit with
 * w: "majority", which waits until a majority read on the primary sees the write
 * (SERVER-22841), so a caller still reads its own commits.
 */
const MAJORITY = { level: 'majority' } as const;

/**
 * The event store on MongoDB: the same contract as `MemoryEventStore`, with each append
 * one multi-document transaction.
 *
 * One append writes, all in one transaction: every stream's head in `streams`
 * (version-checked), its events in `events`, the position counter in `counters`, one
 * document in `commits` (what the feed watches), and the idempotency key in `idempotency`.
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
  readonly #events: Collection<EventDoc>;
  readonly #streams: Collection<StreamHeadDoc>;
  readonly #commits: Collection<CommitDoc>;
  readonly #counters: Collection<CounterDoc>;
  readonly #idempotency: Collection<IdempotencyDoc>;
  readonly #upcasters: UpcasterRegistry;
  readonly #now: () => Date;
  readonly #ownsClient: boolean;
  readonly #maxAttempts: number;
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
  readonly #appends = new Mutex();
  #closed = false;

  constructor(options: MongoEventStoreOptions) {
    this.#client = options.client;
    this.#db = options.client.db(options.dbName);
    this.#events = this.#db.collection(CollectionName.Events);
    this.#streams = this.#db.collection(CollectionName.Streams);
    this.#commits = this.#db.collection(CollectionName.Commits);
    this.#counters = this.#db.collection(CollectionName.Counters);
    this.#idempotency = this.#db.collection(CollectionName.Idempotency);
    this.#upcasters = options.upcasters ?? new UpcasterRegistry();
    this.#now = options.now ?? (() => new Date());
    this.#ownsClient = options.ownsClient ?? false;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 20);
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
    await this.#events.createIndex(
      { stream: 1, version: 1 },
      { unique: true, name: IndexName.EventsStreamVersion },
    );
    await this.#events.createIndex({ position: 1 }, { name: IndexName.EventsPosition });
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
   * Appends in one transaction. Honours `signal` before starting and between attempts
   * (an append queued behind this instance's earlier ones sees an abort when its turn
   * comes); an attempt already sent to the server is not interrupted, since aborting
   * mid-commit would leave its outcome unknown. Throws `VersionConflict`,
   * `EventStoreValidationError`, `EventStoreUnavailable` (retries exhausted, or a driver
   * error retrying cannot fix; the cause is attached), or the signal's reason. Never a raw
   * driver error.
   */
  async append(
    request: AppendRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<AppendResult> {
    validateAppendRequest(request);
    try {
      return await this.#append(request, options.signal);
    } catch (error) {
      throw unavailableIfDriverError(error, 'append');
    }
  }

  async #append(request: AppendRequest, signal: AbortSignal | undefined): Promise<AppendResult> {
    signal?.throwIfAborted();
    const key = request.idempotencyKey;
    if (key !== undefined) {
      // A replay usually finds its result here, without a transaction.
      const first = await this.#firstResult(key, fingerprintOf(request));
      if (first) return first;
    }
    // The transaction re-checks the key and the signal, so waiting in the queue is safe.
    return this.#appends.run(() => this.#transact(request, signal));
  }

  async #transact(request: AppendRequest, signal: AbortSignal | undefined): Promise<AppendResult> {
    const key = request.idempotencyKey;
    const budget: AttemptBudget = { attempts: 0, lastError: undefined };
    const session = this.#client.startSession();
    try {
      for (let round = 1; ; round += 1) {
        signal?.throwIfAborted();
        try {
          // Driver v6+ resolves withTransaction with the callback's return value (NODE-2014,
          // "withTransaction returns the value returned by the provided function"), and
          // retries the callback itself on TransientTransactionError and the commit on
          // UnknownTransactionCommitResult, for up to 120 s; the budget bounds that.
          return await session.withTransaction(
            (s) => this.#attempt(s, request, budget, signal),
            TRANSACTION_OPTIONS,
          );
        } catch (error) {
          if (error instanceof AttemptsExhausted) throw this.#exhausted(budget);
          const action =
            error instanceof HeadMoved
              ? AppendErrorAction.Retry
              : translateError(error, { idempotent: key !== undefined });
          switch (action) {
            case AppendErrorAction.Rethrow:
              throw error;
            case AppendErrorAction.Unavailable:
              throw new EventStoreUnavailable(`append failed: ${messageOf(error)}`, {
                cause: error,
              });
            case AppendErrorAction.DuplicateIdempotencyKey: {
              const first =
                key === undefined
                  ? undefined
                  : await this.#firstResult(key, fingerprintOf(request));
              if (first) return first;
              break;
            }
            case AppendErrorAction.VersionConflict: {
              const conflict = await this.#findConflict(request);
              if (conflict) throw conflict;
              // The racing commit left every expectation satisfied (e.g. ANY): go again.
              break;
            }
            case AppendErrorAction.Retry:
              break;
          }
          budget.lastError = error;
          if (budget.attempts >= this.#maxAttempts || round >= this.#maxAttempts) {
            throw this.#exhausted(budget);
          }
          await pause(backoffMs(round), signal);
        }
      }
    } finally {
      // endSession aborts a transaction left open and never throws (it squashes errors).
      await session.endSession();
    }
  }

  /**
   * One transaction attempt: the `withTransaction` callback. Counting invocations here is
   * what bounds the driver's internal retries, and checking the signal here lets an abort
   * stop them: both throw non-driver errors, which withTransaction answers by aborting
   * the transaction and rethrowing as is (driver `ClientSession.withTransaction`, step 7).
   */
  async #attempt(
    session: ClientSession,
    request: AppendRequest,
    budget: AttemptBudget,
    signal: AbortSignal | undefined,
  ): Promise<AppendResult> {
    budget.attempts += 1;
    signal?.throwIfAborted();
    if (budget.attempts > this.#maxAttempts) throw new AttemptsExhausted();
    try {
      return await this.#writeCommit(session, request);
    } catch (error) {
      budget.lastError = error;
      // Rethrown, never swallowed: the driver must see every error to know whether the
      // transaction is still alive (driver docs on withTransaction).
      throw error;
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
   */
  async #writeCommit(session: ClientSession, request: AppendRequest): Promise<AppendResult> {
    const key = request.idempotencyKey;
    if (key !== undefined) {
      // A racing append with the same key may have committed since the check in #append.
      const first = await this.#idempotency.findOne({ _id: key }, { session });
      if (first && first.expiresAt > this.#now()) {
        if (first.fingerprint !== fingerprintOf(request)) throw new IdempotencyKeyReused(key);
        return first.result;
      }
    }

    const names = request.streams.map((s) => s.stream);
    const heads = await this.#streams.find({ _id: { $in: names } }, { session }).toArray();
    const actual = new Map(heads.map((h) => [h._id, h.version]));
    for (const s of request.streams) {
      const version = actual.get(s.stream) ?? 0;
      if (!satisfies(s.expected, version)) throw new VersionConflict(s.stream, s.expected, version);
    }

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
    await this.#events.insertMany(toEventDocs(commit), { ...write, ordered: true });
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
    return result;
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

  /** The unexpired result of `key`; `IdempotencyKeyReused` when it was another request's. */
  async #firstResult(key: string, fingerprint: string): Promise<AppendResult | undefined> {
    const doc = await this.#idempotency.findOne({ _id: key });
    if (!doc || doc.expiresAt <= this.#now()) return undefined;
    if (doc.fingerprint !== fingerprint) throw new IdempotencyKeyReused(key);
    return doc.result;
  }

  /**
   * After a duplicate key on a head or event version, the racing commit is committed
   * (an uncommitted one would have raised WriteConflict): read the heads it left and
   * name the first stream whose expectation no longer holds.
   */
  async #findConflict(request: AppendRequest): Promise<VersionConflict | undefined> {
    const names = request.streams.map((s) => s.stream);
    const heads = await this.#streams.find({ _id: { $in: names } }).toArray();
    const actual = new Map(heads.map((h) => [h._id, h.version]));
    for (const s of request.streams) {
      const version = actual.get(s.stream) ?? 0;
      if (!satisfies(s.expected, version))
        return new VersionConflict(s.stream, s.expected, version);
    }
    return undefined;
  }

  #exhausted(budget: AttemptBudget): EventStoreUnavailable {
    return new EventStoreUnavailable(
      `append gave up after ${budget.attempts} transaction attempts: ${messageOf(budget.lastError)}`,
      { cause: budget.lastError },
    );
  }

  /*
   * Reads check `signal` before and after the round trip rather than passing it to the
   * driver: the driver's `signal` option is experimental and closes the connection when
   * it fires mid-I/O (driver `Abortable` docs), too costly for routine cancellations of
   * reads that take milliseconds.
   */

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const docs = await this.#read('readStream', () =>
      this.#events
        .find({ stream, version: { $gte: options.fromVersion ?? 1 } })
        .sort({ version: 1 })
        .toArray(),
    );
    signal?.throwIfAborted();
    return docs.map((d) => this.#upcasters.upcast(fromEventDoc(d)));
  }

  async streamVersion(stream: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted();
    const head = await this.#read('streamVersion', () => this.#streams.findOne({ _id: stream }));
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

interface AttemptBudget {
  attempts: number;
  lastError: unknown;
}

/** The attempt budget ran out inside withTransaction; a non-driver error, so it aborts. */
class AttemptsExhausted extends Error {
  override readonly name = 'AttemptsExhausted';
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
