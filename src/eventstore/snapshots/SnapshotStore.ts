/**
 * Snapshots of folded stream state, so that a process that has never folded a stream
 * (a cold start, or a stream its state cache dropped) reads only the events after the
 * snapshot instead of the stream's whole history. Domain-agnostic: a snapshot's state
 * is an opaque string its codec wrote.
 *
 * Never a source of truth. The event store stays the book of record: a snapshot is
 * only used once the stream is read from the snapshot's own version on and still holds
 * the very event the snapshot was folded up to (see `StreamStateCache`).
 */

/** A stream's state folded up to one of its events. */
export interface Snapshot {
  stream: string;
  /** Version of the last event folded into `state` (>= 1). */
  version: number;
  /** `eventId` of that event: the stream must still hold it at `version`. */
  eventId: string;
  /** Names the encoding of `state` (and its version); snapshots of another are ignored. */
  codec: string;
  /** The encoded state. */
  state: string;
}

/**
 * Largest `state` (in UTF-8 bytes) a snapshot store keeps: a MongoDB document holds at
 * most 16 MiB. About 300,000 cards of one column.
 */
export const MAX_SNAPSHOT_STATE_BYTES = 15 * 1024 * 1024;

/** A snapshot's state is over {@link MAX_SNAPSHOT_STATE_BYTES}; nothing was saved. */
export class SnapshotTooLarge extends Error {
  override readonly name = 'SnapshotTooLarge';
  constructor(
    readonly stream: string,
    readonly bytes: number,
  ) {
    super(`snapshot of ${stream} is ${bytes} bytes, over ${MAX_SNAPSHOT_STATE_BYTES}`);
  }
}

/** Where snapshots are kept: one per stream, the newest saved. */
export interface SnapshotStore {
  /** The snapshot kept for `stream`, undefined when there is none. */
  load(stream: string, options?: { signal?: AbortSignal }): Promise<Snapshot | undefined>;
  /**
   * Keeps `snapshot` as its stream's snapshot, unless the one kept has the same codec
   * and a version at least as high (then nothing changes). Concurrent saves of one
   * stream keep the highest version.
   *
   * @throws SnapshotTooLarge when `state` is over {@link MAX_SNAPSHOT_STATE_BYTES}.
   */
  save(snapshot: Snapshot, options?: { signal?: AbortSignal }): Promise<void>;
}

/** Throws {@link SnapshotTooLarge} when `snapshot`'s state is over the limit. */
export function checkSnapshotSize(snapshot: Snapshot): void {
  // A UTF-16 string is never more than 3 bytes per code unit in UTF-8: skip the count when small.
  if (snapshot.state.length * 3 <= MAX_SNAPSHOT_STATE_BYTES) return;
  const bytes = Buffer.byteLength(snapshot.state, 'utf8');
  if (bytes > MAX_SNAPSHOT_STATE_BYTES) throw new SnapshotTooLarge(snapshot.stream, bytes);
}
