import { generateKeyBetween, generateNKeysBetween } from 'fractional-indexing';
import { ValidationError } from './errors.js';

/**
 * Sibling order as fractional-indexing keys ("ranks"). Ranks compare as plain
 * strings by code unit (`<`, never `localeCompare`), the same order MongoDB's
 * default binary collation gives.
 */

/**
 * Rank length past which the server rewrites all sibling ranks evenly instead of
 * appending a longer key. Repeated inserts into the same gap grow a key by about
 * one character per six inserts. @default 50
 */
export const RANK_REBALANCE_THRESHOLD = 50;

/** One ordered sibling: a card in a column or a column on a board. */
export interface Ranked {
  id: string;
  rank: string;
}

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

/** The rank given to the placed item and, when keys grew too long, new ranks for its siblings. */
export interface RankAssignment {
  rank: string;
  /** New rank of every sibling when the order was rebalanced; null otherwise. */
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

/**
 * The rank for an item placed among `siblings` (sorted by rank, not containing the
 * item itself), using `generateKeyBetween` from `fractional-indexing`.
 *
 * - `afterId` only: between that sibling and its successor.
 * - `beforeId` only: between that sibling and its predecessor.
 * - both: right after `afterId`; `beforeId` must come after `afterId`.
 * - neither: after the last sibling.
 *
 * When the new key would be longer than `threshold`, every sibling gets a fresh,
 * evenly spaced key (`generateNKeysBetween`) and the item gets the one in its slot.
 *
 * @throws ValidationError when `afterId` or `beforeId` is not one of `siblings`, or
 *   `beforeId` does not come after `afterId`.
 */
export function assignRank(
  siblings: readonly Ranked[],
  placement: Placement,
  fields: PlacementFields,
  threshold: number = RANK_REBALANCE_THRESHOLD,
): RankAssignment {
  const indexOf = (id: string, field: string): number => {
    const index = siblings.findIndex((s) => s.id === id);
    if (index < 0) throw new ValidationError(field, `must be ${fields.siblingDescription}`);
    return index;
  };
  let slot = siblings.length;
  if (placement.afterId !== undefined) {
    const after = indexOf(placement.afterId, fields.afterField);
    if (placement.beforeId !== undefined) {
      const before = indexOf(placement.beforeId, fields.beforeField);
      if (before <= after) {
        throw new ValidationError(fields.beforeField, `must come after ${fields.afterField}`);
      }
    }
    slot = after + 1;
  } else if (placement.beforeId !== undefined) {
    slot = indexOf(placement.beforeId, fields.beforeField);
  }
  const rank = generateKeyBetween(siblings[slot - 1]?.rank ?? null, siblings[slot]?.rank ?? null);
  if (rank.length <= threshold) return { rank, rebalanced: null };

  const keys = generateNKeysBetween(null, null, siblings.length + 1);
  const rebalanced: Record<string, string> = {};
  siblings.forEach((sibling, index) => {
    rebalanced[sibling.id] = keys[index < slot ? index : index + 1]!;
  });
  return { rank: keys[slot]!, rebalanced };
}
