import type { EventStore, RecordedEvent } from '../../eventstore/types.js';
import { foldEvents, type AggregateStates } from '../aggregates.js';
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
  /** All of its events, in version order. */
  events: readonly RecordedEvent[];
}

/**
 * The streams one attempt of a command reads, each at most once, remembering the
 * version it saw: that is the version the attempt appends at, so anything that
 * changed in between fails the append and the attempt is redone on fresh state.
 *
 * This is the one place a command reads a stream.
 */
export class LoadSession {
  readonly #store: EventStore;
  readonly #signal: AbortSignal | undefined;
  readonly #idempotencyKey: string | undefined;
  readonly #loads = new Map<string, Promise<LoadedStream>>();
  readonly #versions = new Map<string, number>();
  #replayedAt: number | null = null;

  constructor(
    store: EventStore,
    signal: AbortSignal | undefined,
    idempotencyKey: string | undefined,
  ) {
    this.#store = store;
    this.#signal = signal;
    this.#idempotencyKey = idempotencyKey;
  }

  /**
   * Reads one aggregate's stream and folds it into its state. An id that could not
   * exist ({@link isWellFormedId}) reads as an empty stream without a store call.
   * A stream holding an event written with the command's own idempotency key is
   * noted in {@link replayedAt}.
   */
  load<K extends StreamKind>(kind: K, id: string): Promise<LoadedStream<K>> {
    const stream = toStreamName(kind, id);
    let load = this.#loads.get(stream);
    if (!load) {
      load = this.#read(kind, id, stream);
      this.#loads.set(stream, load);
    }
    return load as Promise<LoadedStream<K>>;
  }

  /** The version this attempt read of `stream`, or undefined if it did not read it. */
  versionRead(stream: string): number | undefined {
    return this.#versions.get(stream);
  }

  /**
   * Position of the commit that carried the command's own idempotency key, when a
   * stream read so far holds one: the command already committed, and that first
   * result is returned instead of deciding again. Null otherwise.
   */
  get replayedAt(): number | null {
    return this.#replayedAt;
  }

  async #read<K extends StreamKind>(kind: K, id: string, stream: string): Promise<LoadedStream<K>> {
    const events = isWellFormedId(id)
      ? await this.#store.readStream(stream, { signal: this.#signal })
      : [];
    const key = this.#idempotencyKey;
    const replayed = key === undefined ? undefined : events.find((e) => e.idempotencyKey === key);
    if (replayed) this.#replayedAt ??= replayed.position;
    const version = events.at(-1)?.version ?? 0;
    this.#versions.set(stream, version);
    return { kind, id, stream, state: foldEvents(kind, events), version, events };
  }
}
