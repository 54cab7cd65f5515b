import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { IdempotencyKeyReused, VersionConflict } from '../errors.js';
import { DEFAULT_IDEMPOTENCY_TTL_MS, fingerprintOf } from '../idempotency.js';
import { UpcasterRegistry } from '../upcasters.js';
import { satisfies, validateAppendRequest } from '../validation.js';
import type {
  AppendRequest,
  AppendResult,
  ArchiveMoveOptions,
  ArchiveMoveResult,
  Commit,
  CommitFeed,
  EventStore,
  FeedItem,
  ReadAllOptions,
  ReadStreamBackwardOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeOptions,
} from '../types.js';

export interface MemoryEventStoreOptions {
  /**
   * The data this store reads and writes. Stores given the same log behave as several
   * instances of a service over one database: each has its own feeds and can be closed
   * on its own. @default a new, empty log
   */
  log?: MemoryEventLog;
  upcasters?: UpcasterRegistry;
  /** @default () => new Date() */
  now?: () => Date;
  /**
   * How long an idempotency key is remembered after its commit; a later append with the
   * key is a new request. @default DEFAULT_IDEMPOTENCY_TTL_MS (24 h)
   */
  idempotencyTtlMs?: number;
}

/** What an idempotency key recorded: the request it stands for and its commit's result. */
interface IdempotencyRecord {
  fingerprint: string;
  attempt: Promise<AppendResult>;
  /** Set once the commit is made; until then the record does not expire. */
  expiresAt: number;
}

/** A position whose append did not commit (see `MemoryEventStore.skipPosition`). */
interface Gap {
  gap: true;
  position: number;
}

/**
 * What a memory event store holds: the streams, the log of commits and gaps, and the
 * idempotency records. Shared by every `MemoryEventStore` given it.
 */
export class MemoryEventLog {
  readonly streams = new Map<string, RecordedEvent[]>();
  /** Entry i holds position i + 1. */
  readonly entries: (Commit | Gap)[] = [];
  readonly idempotency = new Map<string, IdempotencyRecord>();
  /**
   * Positions of the commits `archiveStreams` moved to the archive. One copy of each commit
   * stays in `entries`: here the archive is where a commit is recorded to sit, which is
   * what the port lets a caller observe (`hotPositions`); reads cover both places alike.
   */
  readonly archived = new Set<number>();
  nextSweep = 0;
  /** Wakes every waiting feed, of every store on this log. */
  readonly waiters = new Set<() => void>();

  wake(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }
}

/**
 * Feed items delivered in one turn at most, as a change stream hands out a batch of
 * changes per `getMore`: one turn per item made a long catch-up mostly wait for turns.
 */
const FEED_BATCH = 500;

const isGap = (entry: Commit | Gap): entry is Gap => 'gap' in entry;

/**
 * A random UUID held as one flat string. Node builds `randomUUID()`'s result by joining
 * its pieces, and a joined string stays a tree of 14 strings until something reads it
 * whole: kept as it is, each of the ids the log holds (a commit's and each of its
 * events') costs ~450 bytes, and every major GC walks the 14 strings. `trim` reads the
 * string whole, which flattens it (and returns it, having nothing to trim): ~80 bytes.
 */
const newId = (): string => randomUUID().trim();

/**
 * The event store in one process: the same contract as the mongo adapter (atomic
 * multi-stream appends, version checks, idempotency, an asynchronous ordered feed),
 * nothing persisted. Every operation yields to the event loop first, so callers
 * race exactly as they would against a server.
 *
 * Positions are assigned at commit, inside one synchronous section, so they have no
 * gaps of their own and nothing queues appends beyond that section: appends to any
 * streams run concurrently, and several stores over one `MemoryEventLog` behave as the
 * instances of a service over one database.
 */
export class MemoryEventStore implements EventStore {
  readonly #data: MemoryEventLog;
  readonly #idempotencyTtlMs: number;
  readonly #upcasters: UpcasterRegistry;
  readonly #now: () => Date;
  #closed = false;

  constructor(options: MemoryEventStoreOptions = {}) {
    this.#data = options.log ?? new MemoryEventLog();
    this.#upcasters = options.upcasters ?? new UpcasterRegistry();
    this.#now = options.now ?? (() => new Date());
    this.#idempotencyTtlMs = options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
  }

  async append(
    request: AppendRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<AppendResult> {
    validateAppendRequest(request);
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const fingerprint = fingerprintOf(request);
      this.#sweepExpired();
      // Wait for any earlier attempt with this key; if it failed, the next caller in line
      // takes its place. No await between the empty check and `set`, so only one does.
      for (let first = this.#live(key); first; first = this.#live(key)) {
        if (first.fingerprint !== fingerprint) throw new IdempotencyKeyReused(key);
        const result = await first.attempt.catch(() => undefined);
        if (result) return result;
      }
      const attempt = this.#appendOnce(request, options.signal);
      const record: IdempotencyRecord = { fingerprint, attempt, expiresAt: Infinity };
      this.#data.idempotency.set(key, record);
      attempt.then(
        () => (record.expiresAt = this.#now().getTime() + this.#idempotencyTtlMs),
        () => {
          if (this.#data.idempotency.get(key) === record) this.#data.idempotency.delete(key);
        },
      );
      return attempt;
    }
    return this.#appendOnce(request, options.signal);
  }

  async idempotentResult(
    idempotencyKey: string,
    requestFingerprint: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<AppendResult | undefined> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const record = this.#live(idempotencyKey);
    if (!record) return undefined;
    if (record.fingerprint !== requestFingerprint) throw new IdempotencyKeyReused(idempotencyKey);
    return record.attempt.catch(() => undefined);
  }

  /** The record of `key` unless it has expired (an expired one is forgotten). */
  #live(key: string): IdempotencyRecord | undefined {
    const record = this.#data.idempotency.get(key);
    if (record && record.expiresAt <= this.#now().getTime()) {
      this.#data.idempotency.delete(key);
      return undefined;
    }
    return record;
  }

  /** Forgets expired keys, at most once a minute, so the records stay bounded. */
  #sweepExpired(): void {
    const now = this.#now().getTime();
    if (now < this.#data.nextSweep) return;
    this.#data.nextSweep = now + 60_000;
    for (const [key, record] of this.#data.idempotency) {
      if (record.expiresAt <= now) this.#data.idempotency.delete(key);
    }
  }

  async #appendOnce(request: AppendRequest, signal?: AbortSignal): Promise<AppendResult> {
    await nextTurn();
    signal?.throwIfAborted();
    // From here to the end of the function nothing awaits: the check and the write are atomic.
    for (const s of request.streams) {
      const actual = this.#data.streams.get(s.stream)?.length ?? 0;
      if (!satisfies(s.expected, actual)) throw new VersionConflict(s.stream, s.expected, actual);
    }
    const commitId = newId();
    const position = this.#data.entries.length + 1;
    const occurredAt = this.#now();
    const actor = request.metadata?.actor ?? null;
    const events: RecordedEvent[] = [];
    const heads = request.streams.map((s) => {
      const stream = this.#data.streams.get(s.stream) ?? [];
      for (const e of s.events) {
        const recorded: RecordedEvent = {
          type: e.type,
          data: structuredClone(e.data),
          schemaVersion: e.schemaVersion ?? 1,
          stream: s.stream,
          version: stream.length + 1,
          eventId: newId(),
          commitId,
          position,
          actor,
          idempotencyKey: request.idempotencyKey ?? null,
          occurredAt,
        };
        stream.push(recorded);
        events.push(recorded);
      }
      this.#data.streams.set(s.stream, stream);
      return { stream: s.stream, version: stream.length };
    });
    this.#data.entries.push({
      commitId,
      position,
      occurredAt,
      actor,
      operation: request.metadata?.operation ?? null,
      metadata: structuredClone(request.metadata ?? {}),
      idempotencyKey: request.idempotencyKey ?? null,
      events,
    });
    this.#data.wake();
    return { commitId, position, streams: heads, occurredAt };
  }

  /**
   * Takes the next position as a gap, as an append on the mongo adapter leaves one when
   * it reserved a position and did not commit. For tests of what consumes the log (the
   * projector, the change log, subscriptions); appends never leave gaps here.
   */
  async skipPosition(): Promise<number> {
    await nextTurn();
    const position = this.#data.entries.length + 1;
    this.#data.entries.push({ gap: true, position });
    this.#data.wake();
    return position;
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const from = options.fromVersion ?? 1;
    const events = this.#data.streams.get(stream) ?? [];
    return events.slice(Math.max(0, from - 1)).map((e) => this.#read(e));
  }

  async readStreamBackward(
    stream: string,
    options: ReadStreamBackwardOptions,
  ): Promise<RecordedEvent[]> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const events = this.#data.streams.get(stream) ?? [];
    const before = options.before ?? events.length + 1;
    const from = Math.max(1, before - options.limit);
    return events
      .slice(from - 1, Math.max(0, before - 1))
      .reverse()
      .map((e) => this.#read(e));
  }

  async streamVersion(stream: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    await nextTurn();
    options.signal?.throwIfAborted();
    return this.#data.streams.get(stream)?.length ?? 0;
  }

  async readAll(options: ReadAllOptions = {}): Promise<Commit[]> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const limit = options.limit ?? 1_000;
    const commits: Commit[] = [];
    for (let i = Math.max(0, options.after ?? 0); i < this.#data.entries.length; i += 1) {
      if (commits.length >= limit) break;
      const entry = this.#data.entries[i]!;
      if (!isGap(entry)) commits.push(this.#readCommit(entry));
    }
    return commits;
  }

  async headPosition(): Promise<number> {
    await nextTurn();
    return this.#data.entries.length;
  }

  subscribe(options: SubscribeOptions = {}): CommitFeed {
    let position = options.from?.position ?? 0;
    let closed = false;
    let wake: (() => void) | undefined;
    const log = this.#data.entries;
    const waiters = this.#data.waiters;
    const readCommit = (c: Commit) => this.#readCommit(c);
    const isStoreClosed = () => this.#closed;
    const feed: CommitFeed = {
      async close() {
        closed = true;
        wake?.();
      },
      [Symbol.asyncIterator]: async function* (): AsyncGenerator<FeedItem> {
        while (!closed && !isStoreClosed()) {
          if (log[position]) {
            // Delivery is asynchronous, as a change stream's is, a batch per turn: what the
            // log holds by then, up to FEED_BATCH items.
            await nextTurn();
            for (let n = 0; n < FEED_BATCH; n += 1) {
              const entry = log[position];
              if (!entry || closed || isStoreClosed()) break;
              position = entry.position;
              yield isGap(entry)
                ? { kind: 'gap', position, checkpoint: { position } }
                : { kind: 'commit', commit: readCommit(entry), checkpoint: { position } };
            }
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = () => {
              waiters.delete(resolve);
              resolve();
            };
            waiters.add(resolve);
          });
        }
      },
    };
    return feed;
  }

  async archiveStreams(
    streams: readonly string[],
    options: ArchiveMoveOptions = {},
  ): Promise<ArchiveMoveResult> {
    return this.#move(streams, 'archive', options);
  }

  async restoreStreams(
    streams: readonly string[],
    options: ArchiveMoveOptions = {},
  ): Promise<ArchiveMoveResult> {
    return this.#move(streams, 'restore', options);
  }

  /** Moves the commits holding an event of `streams` in one synchronous section. */
  async #move(
    streams: readonly string[],
    to: 'archive' | 'restore',
    options: ArchiveMoveOptions,
  ): Promise<ArchiveMoveResult> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const names = new Set(streams);
    let commits = 0;
    for (const entry of this.#data.entries) {
      if (isGap(entry) || !entry.events.some((e) => names.has(e.stream))) continue;
      const archived = this.#data.archived.has(entry.position);
      if (to === 'archive' && !archived) this.#data.archived.add(entry.position);
      else if (to === 'restore' && archived) this.#data.archived.delete(entry.position);
      else continue;
      commits += 1;
    }
    return { commits };
  }

  /** Positions of the commits in the hot store (not archived), in order. For tests. */
  hotPositions(): number[] {
    return this.#data.entries
      .filter((e) => !isGap(e) && !this.#data.archived.has(e.position))
      .map((e) => e.position);
  }

  /** Ends this store's feeds; other stores on the same log go on. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#data.wake();
  }

  #read(event: RecordedEvent): RecordedEvent {
    return this.#upcasters.upcast({ ...event, data: structuredClone(event.data) });
  }

  #readCommit(commit: Commit): Commit {
    return { ...commit, events: commit.events.map((e) => this.#read(e)) };
  }
}
