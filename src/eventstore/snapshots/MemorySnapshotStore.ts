import { checkSnapshotSize, type Snapshot, type SnapshotStore } from './SnapshotStore.js';

/**
 * Snapshots in this process's memory, lost with it. Useful beside the memory event
 * store (state caches of several app instances on one store, a stream the cache
 * dropped) and as the reference for the contract tests.
 */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #snapshots = new Map<string, Snapshot>();

  async load(stream: string, options: { signal?: AbortSignal } = {}) {
    await Promise.resolve();
    options.signal?.throwIfAborted();
    const kept = this.#snapshots.get(stream);
    return kept && { ...kept };
  }

  async save(snapshot: Snapshot, options: { signal?: AbortSignal } = {}): Promise<void> {
    await Promise.resolve();
    options.signal?.throwIfAborted();
    checkSnapshotSize(snapshot);
    const kept = this.#snapshots.get(snapshot.stream);
    if (kept && kept.codec === snapshot.codec && kept.version >= snapshot.version) return;
    const { stream, version, eventId, codec, state } = snapshot;
    this.#snapshots.set(stream, { stream, version, eventId, codec, state });
  }
}
