import { LRUCache } from 'lru-cache';
import type { SnapshotStore } from './snapshots/SnapshotStore.js';
import type { EventStore, RecordedEvent } from './types.js';

/**
 * How a fold's state is written to and read from a snapshot. `name` names the encoding
 * AND the fold it came from: change it whenever the state's shape or the way events
 * fold into it changes, and every older snapshot is ignored (folded from the start).
 */
export interface StateCodec<S> {
  name: string;
  encode: (state: S) => string;
  decode: (encoded: string) => S;
}

/** How a stream's events fold into a state. */
export interface StreamFold<S> {
  initial: S;
  evolve: (state: S, event: RecordedEvent) => S;
  /** When given, and the cache has a snapshot store, the state is snapshotted with it. */
  snapshot?: StateCodec<S>;
}

/** A stream's state as of one version. */
export interface FoldedStream<S> {
  state: S;
  /** Head version the state includes; 0 for a stream without events. */
  version: number;
  /**
   * The events this load folded (after the cached state, or after the snapshot it
   * started from), in order.
   */
  read: readonly RecordedEvent[];
}

/** `StreamStateCacheOptions.maxEvents` when not given. */
export const DEFAULT_MAX_CACHED_EVENTS = 2_000_000;

export interface StreamStateCacheOptions {
  /**
   * Most events, summed over the cached streams, whose folded states are kept (a
   * stream counts as many as its version: a proxy for its state's size). The least
   * recently used streams are dropped beyond it. @default 2_000_000
   */
  maxEvents?: number;
  /**
   * Where states are snapshotted for cold loads (a new process, a dropped stream).
   * Only folds with a `snapshot` codec use it. @default none: cold loads fold from the
   * first event
   */
  snapshots?: SnapshotStore;
  /**
   * A stream is snapshotted once this many events were folded since its last snapshot
   * (or since its first event). @default 1_000
   */
  snapshotEvery?: number;
  /**
   * Told when loading or saving a snapshot failed. Never fails a load: without a
   * snapshot, the stream is folded from its first event. @default ignore
   */
  onSnapshotError?: (error: unknown, stream: string) => void;
}

interface Entry {
  fold: StreamFold<unknown>;
  state: unknown;
  version: number;
  /** `eventId` of the event at `version`. */
  eventId: string;
  /** Version of the newest snapshot known to be saved (or being saved); 0 for none. */
  snapshotVersion: number;
}

/** Where a load starts folding from. */
interface Base<S> {
  state: S;
  version: number;
  eventId: string;
  snapshotVersion: number;
  /** Events already read from the store after `version` (a snapshot's catch-up). */
  read?: readonly RecordedEvent[];
}

/**
 * Folded state per stream, kept between commands so that a command reads only the
 * events appended since (`readStream(stream, { fromVersion: version + 1 })`) instead of
 * the stream's whole history. Bounded (least recently used out first).
 *
 * With a snapshot store, a stream not cached starts from its snapshot: the stream is
 * read from the snapshot's version on (`fromVersion: snapshot.version`, one event more
 * than the catch-up needs), and the snapshot is used only when the stream still holds,
 * at that version, the very event it was folded up to. So a snapshot of another store,
 * of a stream since wiped, or newer than the stream, is never used. Snapshots are
 * saved in the background, every `snapshotEvery` events folded.
 *
 * Never a source of truth: every load asks the store for what follows the cached
 * version, so the state returned is the stream's head as of that read, never older
 * and never newer (a state is only cached after it was read back from the store). A
 * write still appends with the version loaded as its expected version: another
 * process appending in between fails that append, and the retry's load catches up.
 *
 * @example
 * const cache = new StreamStateCache(store, { snapshots: new MemorySnapshotStore() });
 * const { state, version } = await cache.load('column-c1', { initial, evolve });
 */
export class StreamStateCache {
  readonly #store: EventStore;
  readonly #entries: LRUCache<string, Entry>;
  readonly #snapshots: SnapshotStore | undefined;
  readonly #snapshotEvery: number;
  readonly #onSnapshotError: (error: unknown, stream: string) => void;
  readonly #saving = new Set<Promise<void>>();

  constructor(store: EventStore, options: StreamStateCacheOptions = {}) {
    this.#store = store;
    this.#entries = new LRUCache<string, Entry>({
      maxSize: options.maxEvents ?? DEFAULT_MAX_CACHED_EVENTS,
      sizeCalculation: (entry) => Math.max(1, entry.version),
    });
    this.#snapshots = options.snapshots;
    this.#snapshotEvery = Math.max(1, options.snapshotEvery ?? 1_000);
    this.#onSnapshotError = options.onSnapshotError ?? (() => undefined);
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
   * after it; else its snapshot caught up the same way; else a fold from the first
   * event. Keeps the result when it is newer than what is cached.
   */
  async load<S>(
    stream: string,
    fold: StreamFold<S>,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<FoldedStream<S>> {
    const { signal } = options;
    const cached = this.#entries.get(stream);
    const base: Base<S> =
      cached && cached.fold === fold
        ? {
            state: cached.state as S,
            version: cached.version,
            eventId: cached.eventId,
            snapshotVersion: cached.snapshotVersion,
          }
        : ((await this.#fromSnapshot(stream, fold, signal)) ?? {
            state: fold.initial,
            version: 0,
            eventId: '',
            snapshotVersion: 0,
          });
    const read =
      base.read ??
      (await this.#store.readStream(stream, { fromVersion: base.version + 1, signal }));
    let { state, version, eventId } = base;
    for (const event of read) {
      if (event.version !== version + 1) {
        throw new Error(`${stream}: read version ${event.version} after ${version}`);
      }
      state = fold.evolve(state, event);
      version = event.version;
      eventId = event.eventId;
    }
    let { snapshotVersion } = base;
    if (fold.snapshot && this.#snapshots && version - snapshotVersion >= this.#snapshotEvery) {
      this.#saveInBackground(stream, fold.snapshot, state, version, eventId);
      snapshotVersion = version;
    }
    // A concurrent load may have cached a newer state meanwhile: never go back.
    const current = this.#entries.peek(stream);
    if (version > 0 && (!current || current.fold !== fold || current.version < version)) {
      const entry = { fold: fold as StreamFold<unknown>, state, version, eventId, snapshotVersion };
      this.#entries.set(stream, entry);
    }
    return { state, version, read };
  }

  /** Forgets `stream` (its next load starts from its snapshot or its first event). */
  forget(stream: string): void {
    this.#entries.delete(stream);
  }

  /** Forgets every stream. */
  clear(): void {
    this.#entries.clear();
  }

  /** Resolves once every snapshot save started so far has ended (however it ended). */
  async snapshotsSaved(): Promise<void> {
    while (this.#saving.size > 0) await Promise.all(this.#saving);
  }

  /**
   * The stream's snapshot with the events after it, when it has a usable one: same
   * codec, and the stream still holds the snapshot's last event at its version.
   */
  async #fromSnapshot<S>(
    stream: string,
    fold: StreamFold<S>,
    signal: AbortSignal | undefined,
  ): Promise<Base<S> | undefined> {
    const codec = fold.snapshot;
    if (!codec || !this.#snapshots) return undefined;
    let state: S;
    let snapshot;
    try {
      snapshot = await this.#snapshots.load(stream, { signal });
      if (!snapshot || snapshot.codec !== codec.name || snapshot.version < 1) return undefined;
      state = codec.decode(snapshot.state);
    } catch (error) {
      signal?.throwIfAborted();
      this.#onSnapshotError(error, stream);
      return undefined;
    }
    const [last, ...after] = await this.#store.readStream(stream, {
      fromVersion: snapshot.version,
      signal,
    });
    if (last?.version !== snapshot.version || last.eventId !== snapshot.eventId) {
      // Not this stream's history (wiped, another store): fold from the first event.
      return undefined;
    }
    const { version, eventId } = snapshot;
    return { state, version, eventId, snapshotVersion: version, read: after };
  }

  #saveInBackground<S>(
    stream: string,
    codec: StateCodec<S>,
    state: S,
    version: number,
    eventId: string,
  ): void {
    const snapshots = this.#snapshots!;
    // States are immutable: encoding after this turn sees the same state, and keeps
    // the encoding's cost out of the command that happened to cross the threshold.
    const saving = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() =>
        snapshots.save({ stream, version, eventId, codec: codec.name, state: codec.encode(state) }),
      )
      .catch((error: unknown) => this.#onSnapshotError(error, stream))
      .finally(() => this.#saving.delete(saving));
    this.#saving.add(saving);
  }
}
