import type { StreamStateCache } from '../../eventstore/StreamStateCache.js';
import type { EventStore, RecordedEvent } from '../../eventstore/types.js';
import type { AcquireOptions, KeyedQueue } from '../../keyedQueue.js';
import { foldEvents, streamFold, type AggregateStates } from '../aggregates.js';
import { isWellFormedId, toStreamName, type StreamKind } from '../streams.js';

/** One stream as a command read it. */
export interface LoadedStream<K extends StreamKind = StreamKind> {
  kind: K;
  /** The aggregate's id (the normalized username for `username`). */
  id: string;
  stream: string;
  state: AggregateStates[K];
  /** Head version when read; 0 when the stream does not exist. */
  version: number;
  /** Its events after `version` up to the version read, in order (read from the store). */
  eventsAfter(version: number): Promise<readonly RecordedEvent[]>;
}

/** What the streams of every command share within one process. */
export interface LoadInfrastructure {
  /** Folded state per stream, caught up on each load. */
  cache?: StreamStateCache;
  /** One writer per stream: the first stream an attempt loads is held until it ends. */
  writers?: KeyedQueue;
}

/**
 * The streams one attempt of a command reads, each at most once, remembering the
 * version it saw: that is the version the attempt appends at, so anything that
 * changed in between fails the append and the attempt is redone on fresh state.
 *
 * With a cache, a load reads only the events after the cached state. With a writers
 * queue, the attempt's first stream (the resource the command targets) is held from
 * before it is read until {@link release}: commands of one process on one stream run
 * one after the other instead of racing and retrying; other processes are still
 * caught by the append's expected version.
 *
 * This is the one place a command reads a stream.
 */
export class LoadSession {
  /** The store every load of this session reads. */
  readonly store: EventStore;
  readonly #signal: AbortSignal | undefined;
  readonly #infrastructure: LoadInfrastructure;
  /** How this session takes its place in the writers' lines. */
  readonly #acquire: AcquireOptions;
  readonly #loads = new Map<string, Promise<LoadedStream>>();
  readonly #versions = new Map<string, number>();
  readonly #asserted = new Set<string>();
  /** Streams held besides the first: the asserted ones. */
  readonly #holds: Promise<() => void>[] = [];
  #held: Promise<() => void> | null = null;
  #heldStream: string | null = null;

  constructor(
    store: EventStore,
    signal: AbortSignal | undefined,
    infrastructure: LoadInfrastructure = {},
    acquire: AcquireOptions = {},
  ) {
    this.store = store;
    this.#signal = signal;
    this.#infrastructure = infrastructure;
    this.#acquire = acquire;
  }

  /**
   * Reads one aggregate's stream and folds it into its state. An id that could not
   * exist ({@link isWellFormedId}) reads as an empty stream without a store call.
   */
  load<K extends StreamKind>(kind: K, id: string): Promise<LoadedStream<K>> {
    const stream = toStreamName(kind, id);
    let load = this.#loads.get(stream);
    if (!load) {
      const { writers } = this.#infrastructure;
      if (writers && !this.#held) {
        this.#held = writers.acquire([stream], this.#acquire);
        this.#heldStream = stream;
      }
      const held = this.#held;
      load = held ? held.then(() => this.#read(kind, id, stream)) : this.#read(kind, id, stream);
      this.#loads.set(stream, load);
    }
    return load as Promise<LoadedStream<K>>;
  }

  /**
   * Makes every commit of this attempt assert that `stream` (loaded already, and existing)
   * is still at the version read, even when the decision writes nothing to it: a commit that
   * changed it meanwhile fails the append (see `toAppendRequest`). For facts a decision
   * rests on that live in a stream it does not write, e.g. the actor's membership.
   */
  async assertUnchanged(stream: string): Promise<void> {
    if (this.#asserted.has(stream)) return;
    this.#asserted.add(stream);
    // Held like the first stream: commands of this process asserting one stream (one
    // member's writes) take turns instead of conflicting on it in the store, where an
    // assertion is a write (see `StreamAppend`). Always the last stream a session takes,
    // and nothing waits while holding it, so no two sessions wait on each other.
    const { writers } = this.#infrastructure;
    if (writers && stream !== this.#heldStream) {
      const hold = writers.acquire([stream], this.#acquire);
      this.#holds.push(hold);
      await hold;
    }
  }

  /** Streams to assert unchanged (see {@link assertUnchanged}) with the version read. */
  assertedStreams(): { stream: string; version: number }[] {
    return [...this.#asserted].flatMap((stream) => {
      const version = this.#versions.get(stream);
      return version === undefined ? [] : [{ stream, version }];
    });
  }

  /** The version this attempt read of `stream`, or undefined if it did not read it. */
  versionRead(stream: string): number | undefined {
    return this.#versions.get(stream);
  }

  /** Records heads this attempt appended: later commits of it go at these versions. */
  advance(heads: readonly { stream: string; version: number }[]): void {
    for (const head of heads) this.#versions.set(head.stream, head.version);
  }

  /** Lets the next command on the held stream go; call once the attempt has ended. */
  async release(): Promise<void> {
    const held = this.#held;
    this.#held = null;
    const holds = this.#holds.splice(0);
    for (const hold of holds) (await hold.catch(() => null))?.();
    if (held) (await held)();
  }

  async #read<K extends StreamKind>(kind: K, id: string, stream: string): Promise<LoadedStream<K>> {
    const { cache } = this.#infrastructure;
    let state: AggregateStates[K];
    let version: number;
    if (!isWellFormedId(id)) {
      state = foldEvents(kind, []);
      version = 0;
    } else if (cache) {
      ({ state, version } = await cache.load(stream, streamFold(kind), { signal: this.#signal }));
    } else {
      const events = await this.store.readStream(stream, { signal: this.#signal });
      state = foldEvents(kind, events);
      version = events.at(-1)?.version ?? 0;
    }
    this.#versions.set(stream, version);
    const store = this.store;
    const signal = this.#signal;
    return {
      kind,
      id,
      stream,
      state,
      version,
      async eventsAfter(after) {
        if (after >= version) return [];
        const events = await store.readStream(stream, { fromVersion: after + 1, signal });
        return events.filter((e) => e.version <= version);
      },
    };
  }
}
