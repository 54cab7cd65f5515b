import type { Fence } from '../types.js';

/** Whether a write fenced with `fence` must be refused over a document last written under `stored`. */
export function fencedOut(stored: Fence | undefined, fence: Fence | undefined): boolean {
  return (
    fence !== undefined &&
    stored !== undefined &&
    stored.lease === fence.lease &&
    stored.epoch > fence.epoch
  );
}
