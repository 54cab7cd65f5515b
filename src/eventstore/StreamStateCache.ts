import { LRUCache } from 'lru-cache';
import type { EventStore, RecordedEvent } from './types.js';

/** How a stream's events fold into a state. */
export interface StreamFold<S> {
  initial: S;
  evolve: (state: S, event: RecordedEvent) => S;
}

/** A stream's state as of one version. */
export interface FoldedStream<S> {
  state: S;
  /** Head version the state includes; 0 for a stream without events. */
  version: number;
  /** The events this load read from the store (after the cached version), in order. */
  read: readonly RecordedEvent[];
}

export interface StreamStateCacheOptions {
  /**
   * Most events, summed over the cached streams, whose folded states are kept (a
   * stream counts as many as its version: a proxy for its state's size). The least
   * recently used streams are dropped beyond it. @default 2_000_000
   */
  maxEvents?: number;
}

interface Entry {
  fold: StreamFold<unknown>;
  state: unknown;
  version: number;
}

/**
 * Folded state per stream, kept between commands so that a command reads only the
 * events appended since (`readStream(stream, { fromVersion: version + 1 })`) instead of
 * the stream's whole history. Bounded (least recently used out first).
 *
 * Never a source of truth: every load asks the store for what follows the cached
 * version, so the state returned is the stream's head as of that read, never older
 * and never newer (a state is only cached after it was read back from the store). A
 * write still appends with the version loaded as its expected version: another
 * process appending in between fails that append, and the retry's load catches up.
 *
 * @example
 * const cache = new StreamStateCache(store);
 * const { state, version } = await cache.load('column-c1', { initial, evolve });
 */
export class StreamStateCache {
  readonly #store: EventStore;
  readonly #entries: LRUCache<string, Entry>;

  constructor(store: EventStore, options: StreamStateCacheOptions = {}) {
    this.#store = store;
    this.#entries = new LRUCache<string, Entry>({
      maxSize: options.maxEvents ?? 2_000_000,
      sizeCalculation: (entry) => Math.max(1, entry.version),
    });
  }

  /** Streams cached now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached version of `stream`, undefined when it is not cached. */
  cachedVersion(stream: string): number | undefined {
    return this.#entries.peek(stream)?.version;
  }

  /**
   * `stream` folded up to its current head: the cached state caught up with the events
   * after it, or a fold from the first event when nothing (or a state of another
   * `fold`) is cached. Keeps the result when it is newer than what is cached.
   */
  async load<S>(
    stream: string,
    fold: StreamFold<S>,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<FoldedStream<S>> {
    const cached = this.#entries.get(stream);
    const base =
      cached && cached.fold === fold
        ? { state: cached.state as S, version: cached.version }
        : { state: fold.initial, version: 0 };
    const read = await this.#store.readStream(stream, {
      fromVersion: base.version + 1,
      signal: options.signal,
    });
    let { state, version } = base;
    for (const event of read) {
      if (event.version !== version + 1) {
        throw new Error(`${stream}: read version ${event.version} after ${version}`);
      }
      state = fold.evolve(state, event);
      version = event.version;
    }
    // A concurrent load may have cached a newer state meanwhile: never go back.
    const current = this.#entries.peek(stream);
    if (version > 0 && (!current || current.fold !== fold || current.version < version)) {
      this.#entries.set(stream, { fold: fold as StreamFold<unknown>, state, version });
    }
    return { state, version, read };
  }

  /** Forgets `stream` (its next load folds from the first event). */
  forget(stream: string): void {
    this.#entries.delete(stream);
  }

  /** Forgets every stream. */
  clear(): void {
    this.#entries.clear();
  }
}
