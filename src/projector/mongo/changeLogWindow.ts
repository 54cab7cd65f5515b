/**
 * The change log's retained window, computed from the head alone so that it is the same
 * whenever trimming actually runs. Pure.
 */
import type { ChangeLogRead } from '../types.js';

/**
 * The last cursor outside the window of the newest `retention` entries (0 when nothing is
 * out). Entries up to it may still be stored, because trimming runs every few records, but
 * `read` treats them as gone; so the window is exactly the memory adapter's.
 */
export function expiredThrough(head: number, retention: number): number {
  return Math.max(0, head - retention);
}

/**
 * What `read(after)` answers before looking at entries: `expired` when `after` is older
 * than the window (`oldest` is the first cursor in it), else null (read the entries).
 */
export function expiredRead(
  after: number,
  head: number,
  retention: number,
): Extract<ChangeLogRead, { kind: 'expired' }> | null {
  const through = expiredThrough(head, retention);
  return after < through ? { kind: 'expired', oldest: through + 1, head } : null;
}

/**
 * Whether recording `cursor` should trim the log. A fixed stride of cursors rather than a
 * per-process counter, so any instance that records the entry does it, and a projector that
 * restarts often still trims.
 */
export function isTrimPoint(cursor: number, trimEvery: number): boolean {
  return cursor % trimEvery === 0;
}
