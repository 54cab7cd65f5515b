import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FeedPosition } from '../../eventstore/types.js';
import { FencedOut, type CheckpointStore, type Fence } from '../types.js';
import { fencedOut } from './fencing.js';

/** Checkpoints in one process: the memory adapter of `CheckpointStore`. */
export class MemoryCheckpoints implements CheckpointStore {
  readonly #saved = new Map<string, { position: FeedPosition; fence: Fence | undefined }>();
  async load(generation: string) {
    await nextTurn();
    const saved = this.#saved.get(generation);
    return saved ? { ...saved.position } : null;
  }
  async save(generation: string, position: FeedPosition, fence?: Fence) {
    await nextTurn();
    const saved = this.#saved.get(generation);
    if (fencedOut(saved?.fence, fence)) {
      throw new FencedOut(`checkpoint of ${generation} was saved under a newer lease epoch`);
    }
    if (saved && saved.position.position > position.position) return;
    this.#saved.set(generation, { position: { ...position }, fence: fence ?? saved?.fence });
  }
}
