import { generateKeyBetween, generateNKeysBetween } from 'fractional-indexing';
import { ValidationError } from './errors.js';
import { RankedList, type Ranked } from './rankedList.js';

export type { Ranked } from './rankedList.js';

/**
 * Sibling order as fractional-indexing keys ("ranks"). Ranks compare as plain
 * strings by code unit (`<`, never `localeCompare`), the same order MongoDB's
 * default binary collation gives.
 */

/**
 * Rank length past which the server gives the placed item and its neighbours fresh,
 * evenly spaced ranks instead of appending a longer key. Repeated inserts into the
 * same gap grow a key by about one character per six inserts. @default 50
 */
export const RANK_REBALANCE_THRESHOLD = 50;

/**
 * Most siblings a rebalance gives new ranks on each side of the insert point. The
 * neighbourhood starts at 16 on each side and doubles until the new ranks are at most
 * half the threshold long, the whole list is covered, or it reaches this bound.
 * @default 1_024
 */
export const RANK_REBALANCE_MAX_RADIUS = 1_024;

/**
 * Most bytes of one event's new-ranks map (`{"<id>":"<rank>",...}` as JSON) when a
 * rebalance is split into several events; far below the store's 64 KiB per event.
 * @default 32 KiB
 */
export const RANK_REBALANCE_EVENT_BYTES = 32 * 1024;

/** Where to put an item among its siblings. Both omitted: at the end. */
export interface Placement {
  /** Put the item right after this sibling. */
  afterId?: string | undefined;
  /** Put the item right before this sibling (with `afterId`: it must come after that one). */
  beforeId?: string | undefined;
}

/** How the placement is reported when a sibling id is not usable. */
export interface PlacementFields {
  /** Input path of `afterId`, e.g. `input.afterCardId`. */
  afterField: string;
  /** Input path of `beforeId`, e.g. `input.beforeCardId`. */
  beforeField: string;
  /** What a valid sibling is, for messages, e.g. `a live card of the target column`. */
  siblingDescription: string;
}

/** The rank given to the placed item and, when keys grew too long, new ranks for its neighbours. */
export interface RankAssignment {
  rank: string;
  /**
   * New rank of every sibling in the rebalanced neighbourhood of the insert point (the
   * order does not change); null when no rebalance was needed.
   */
  rebalanced: Record<string, string> | null;
}

/** Compares two ranks as plain strings. */
export function compareRanks(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `items` sorted by rank (ties, which never happen, by id) in a new array. */
export function sortByRank<T extends Ranked>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => compareRanks(a.rank, b.rank) || compareRanks(a.id, b.id));
}

/** What {@link assignRank} may change besides the defaults. */
export interface RankOptions {
  /** The item being placed when it is in `siblings` already (a move): it is not a sibling. */
  itemId?: string;
  threshold?: number;
  maxRadius?: number;
}

/**
 * The rank for an item placed among `siblings`, using `generateKeyBetween` from
 * `fractional-indexing`. Costs O(log n) on a {@link RankedList}, plus the rebalanced
 * neighbourhood when there is one.
 *
 * - `afterId` only: between that sibling and its successor.
 * - `beforeId` only: between that sibling and its predecessor.
 * - both: right after `afterId`; `beforeId` must come after `afterId`.
 * - neither: after the last sibling.
 *
 * When the new key would be longer than `threshold`, a bounded neighbourhood of the
 * insert point (up to `maxRadius` siblings on each side, see
 * {@link RANK_REBALANCE_MAX_RADIUS}) gets fresh, evenly spaced keys between the ranks
 * just outside it (`generateNKeysBetween`), and the item gets the one in its slot.
 *
 * @throws ValidationError when `afterId` or `beforeId` is not one of `siblings` (or is
 *   the item itself), or `beforeId` does not come after `afterId`.
 */
export function assignRank(
  siblings: readonly Ranked[] | RankedList,
  placement: Placement,
  fields: PlacementFields,
  options: RankOptions = {},
): RankAssignment {
  const list = siblings instanceof RankedList ? siblings : RankedList.from(siblings);
  const threshold = options.threshold ?? RANK_REBALANCE_THRESHOLD;
  const maxRadius = options.maxRadius ?? RANK_REBALANCE_MAX_RADIUS;
  const { low, high, next, previous } = placementGap(list, placement, fields, options.itemId);
  const rank = generateKeyBetween(low?.rank ?? null, high?.rank ?? null);
  if (rank.length <= threshold) return { rank, rebalanced: null };
  return rebalanceAround(low, high, { next, previous, threshold, maxRadius });
}

/**
 * Whether placing `itemId`, one of `list`, as `placement` says would leave it where it
 * is: it already sits in the gap the placement names (right after `afterId`, right
 * before `beforeId`, or last). Such a move changes nothing. Refuses a placement as
 * {@link assignRank} does.
 */
export function keepsPlace(
  list: RankedList,
  placement: Placement,
  fields: PlacementFields,
  itemId: string,
): boolean {
  const rank = list.rankOf(itemId);
  if (rank === undefined) return false;
  const { low, high } = placementGap(list, placement, fields, itemId);
  return (
    (low === undefined || compareRanks(low.rank, rank) < 0) &&
    (high === undefined || compareRanks(rank, high.rank) < 0)
  );
}

/**
 * The siblings the placed item goes between (`undefined`: the list's start or end), the
 * item itself not counted as a sibling, and the walks that skip it.
 */
function placementGap(
  list: RankedList,
  placement: Placement,
  fields: PlacementFields,
  itemId: string | undefined,
) {
  const require = (id: string, field: string): Ranked => {
    const rank = id === itemId ? undefined : list.rankOf(id);
    if (rank === undefined)
      throw new ValidationError(field, `must be ${fields.siblingDescription}`);
    return { id, rank };
  };
  // Neighbours of the item itself are skipped: it is not a sibling.
  const next = (id: string | undefined) => {
    const found = list.after(id);
    return found?.id === itemId && found ? list.after(found.id) : found;
  };
  const previous = (id: string | undefined) => {
    const found = list.before(id);
    return found?.id === itemId && found ? list.before(found.id) : found;
  };
  let low: Ranked | undefined;
  let high: Ranked | undefined;
  if (placement.afterId !== undefined) {
    low = require(placement.afterId, fields.afterField);
    if (placement.beforeId !== undefined) {
      const before = require(placement.beforeId, fields.beforeField);
      if (compareRanks(before.rank, low.rank) <= 0) {
        throw new ValidationError(fields.beforeField, `must come after ${fields.afterField}`);
      }
    }
    high = next(low.id);
  } else if (placement.beforeId !== undefined) {
    high = require(placement.beforeId, fields.beforeField);
    low = previous(high.id);
  } else {
    low = previous(undefined);
  }
  return { low, high, next, previous };
}

/**
 * New ranks for the neighbourhood of the gap between `low` and `high` (both included)
 * and the placed item's rank in that gap.
 */
function rebalanceAround(
  low: Ranked | undefined,
  high: Ranked | undefined,
  walk: {
    next: (id: string | undefined) => Ranked | undefined;
    previous: (id: string | undefined) => Ranked | undefined;
    threshold: number;
    maxRadius: number;
  },
): RankAssignment {
  const left: Ranked[] = low ? [low] : [];
  const right: Ranked[] = high ? [high] : [];
  // Grows `side` to `radius` items away from the gap; returns the bound just outside.
  const grow = (side: Ranked[], radius: number, step: typeof walk.next) => {
    let outside = side.length ? step(side.at(-1)!.id) : undefined;
    while (outside && side.length < radius) {
      side.push(outside);
      outside = step(outside.id);
    }
    return outside;
  };
  for (let radius = 16; ; radius *= 2) {
    const lowBound = grow(left, radius, walk.previous);
    const highBound = grow(right, radius, walk.next);
    const keys = generateNKeysBetween(
      lowBound?.rank ?? null,
      highBound?.rank ?? null,
      left.length + 1 + right.length,
    );
    const covered = !lowBound && !highBound;
    const short = keys.every((key) => key.length <= walk.threshold / 2);
    if (short || covered || radius >= walk.maxRadius) {
      const rebalanced: Record<string, string> = {};
      // `left` runs away from the gap: its first item gets the key right below the item's.
      left.forEach((item, index) => {
        rebalanced[item.id] = keys[left.length - 1 - index]!;
      });
      right.forEach((item, index) => {
        rebalanced[item.id] = keys[left.length + 1 + index]!;
      });
      return { rank: keys[left.length]!, rebalanced };
    }
  }
}

/**
 * A rebalance's new ranks split into maps of at most `maxBytes` each (as JSON), in
 * the order given, so that no event carrying one reaches the store's per-event limit.
 */
export function chunkRanks(
  ranks: Readonly<Record<string, string>>,
  maxBytes: number = RANK_REBALANCE_EVENT_BYTES,
): Record<string, string>[] {
  const chunks: Record<string, string>[] = [];
  let chunk: Record<string, string> = {};
  let bytes = 2;
  for (const [id, rank] of Object.entries(ranks)) {
    const entry = Buffer.byteLength(JSON.stringify(id) + JSON.stringify(rank)) + 2;
    if (bytes + entry > maxBytes && bytes > 2) {
      chunks.push(chunk);
      chunk = {};
      bytes = 2;
    }
    chunk[id] = rank;
    bytes += entry;
  }
  if (bytes > 2) chunks.push(chunk);
  return chunks;
}
