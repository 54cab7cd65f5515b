import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { IdempotencyKeyReused, VersionConflict } from '../errors.js';
import { DEFAULT_IDEMPOTENCY_TTL_MS, fingerprintOf } from '../idempotency.js';
import { UpcasterRegistry } from '../upcasters.js';
import { satisfies, validateAppendRequest } from '../validation.js';
import type {
  AppendRequest,
  AppendResult,
  Commit,
  CommitFeed,
  EventStore,
  FeedItem,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeOptions,
} from '../types.js';

export interface MemoryEventStoreOptions {
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

/**
 * The event store in one process: the same contract as the mongo adapter (atomic
 * multi-stream appends, version checks, idempotency, an asynchronous ordered feed),
 * nothing persisted. Every operation yields to the event loop first, so callers
 * race exactly as they would against a server.
 */
export class MemoryEventStore implements EventStore {
  readonly #streams = new Map<string, RecordedEvent[]>();
  readonly #log: Commit[] = [];
  readonly #idempotency = new Map<string, IdempotencyRecord>();
  readonly #idempotencyTtlMs: number;
  #nextSweep = 0;
  readonly #waiters = new Set<() => void>();
  readonly #upcasters: UpcasterRegistry;
  readonly #now: () => Date;
  #closed = false;

  constructor(options: MemoryEventStoreOptions = {}) {
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
      this.#idempotency.set(key, record);
      attempt.then(
        () => (record.expiresAt = this.#now().getTime() + this.#idempotencyTtlMs),
        () => {
          if (this.#idempotency.get(key) === record) this.#idempotency.delete(key);
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
    const record = this.#idempotency.get(key);
    if (record && record.expiresAt <= this.#now().getTime()) {
      this.#idempotency.delete(key);
      return undefined;
    }
    return record;
  }

  /** Forgets expired keys, at most once a minute, so the records stay bounded. */
  #sweepExpired(): void {
    const now = this.#now().getTime();
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + 60_000;
    for (const [key, record] of this.#idempotency) {
      if (record.expiresAt <= now) this.#idempotency.delete(key);
    }
  }

  async #appendOnce(request: AppendRequest, signal?: AbortSignal): Promise<AppendResult> {
    await nextTurn();
    signal?.throwIfAborted();
    // From here to the end of the function nothing awaits: the check and the write are atomic.
    for (const s of request.streams) {
      const actual = this.#streams.get(s.stream)?.length ?? 0;
      if (!satisfies(s.expected, actual)) throw new VersionConflict(s.stream, s.expected, actual);
    }
    const commitId = randomUUID();
    const position = this.#log.length + 1;
    const occurredAt = this.#now();
    const actor = request.metadata?.actor ?? null;
    const events: RecordedEvent[] = [];
    const heads = request.streams.map((s) => {
      const stream = this.#streams.get(s.stream) ?? [];
      for (const e of s.events) {
        const recorded: RecordedEvent = {
          type: e.type,
          data: structuredClone(e.data),
          schemaVersion: e.schemaVersion ?? 1,
          stream: s.stream,
          version: stream.length + 1,
          eventId: randomUUID(),
          commitId,
          position,
          actor,
          idempotencyKey: request.idempotencyKey ?? null,
          occurredAt,
        };
        stream.push(recorded);
        events.push(recorded);
      }
      this.#streams.set(s.stream, stream);
      return { stream: s.stream, version: stream.length };
    });
    this.#log.push({
      commitId,
      position,
      occurredAt,
      actor,
      operation: request.metadata?.operation ?? null,
      metadata: structuredClone(request.metadata ?? {}),
      idempotencyKey: request.idempotencyKey ?? null,
      events,
    });
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    return { commitId, position, streams: heads, occurredAt };
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const from = options.fromVersion ?? 1;
    const events = this.#streams.get(stream) ?? [];
    return events.slice(Math.max(0, from - 1)).map((e) => this.#read(e));
  }

  async streamVersion(stream: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    await nextTurn();
    options.signal?.throwIfAborted();
    return this.#streams.get(stream)?.length ?? 0;
  }

  async readAll(options: ReadAllOptions = {}): Promise<Commit[]> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const after = options.after ?? 0;
    const limit = options.limit ?? 1_000;
    return this.#log.slice(after, after + limit).map((c) => this.#readCommit(c));
  }

  async headPosition(): Promise<number> {
    await nextTurn();
    return this.#log.length;
  }

  subscribe(options: SubscribeOptions = {}): CommitFeed {
    let position = options.from?.position ?? 0;
    let closed = false;
    let wake: (() => void) | undefined;
    const log = this.#log;
    const waiters = this.#waiters;
    const readCommit = (c: Commit) => this.#readCommit(c);
    const isStoreClosed = () => this.#closed;
    const feed: CommitFeed = {
      async close() {
        closed = true;
        wake?.();
      },
      [Symbol.asyncIterator]: async function* (): AsyncGenerator<FeedItem> {
        while (!closed && !isStoreClosed()) {
          const commit = log[position];
          if (commit) {
            // Delivery is asynchronous, as a change stream's is.
            await nextTurn();
            if (closed) return;
            position = commit.position;
            yield { kind: 'commit', commit: readCommit(commit), checkpoint: { position } };
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

  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  #read(event: RecordedEvent): RecordedEvent {
    return this.#upcasters.upcast({ ...event, data: structuredClone(event.data) });
  }

  #readCommit(commit: Commit): Commit {
    return { ...commit, events: commit.events.map((e) => this.#read(e)) };
  }
}
