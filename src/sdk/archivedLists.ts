/**
 * Keeping cached `Column.archivedCards` lists in step with a change, the same way for
 * every cache binding: the server lists a column's archived cards the last archived
 * first, `first` of them (by default {@link ARCHIVED_CARDS_PAGE}`.default`, at most
 * `.max`), and names the column's `archivedCards` in every change that alters them.
 */
import type { BoardChange } from './boardChanges.js';

/** The server's `Column.archivedCards` sizes: without `first`, and at most. */
export const ARCHIVED_CARDS_PAGE = { default: 50, max: 200 } as const;

/** One entry of a cached `archivedCards` list, as a binding sees it. */
export interface CachedArchivedCard<R> {
  /** The entry as the cache stores it (a reference), handed back untouched when kept. */
  ref: R;
  id: string;
}

/** A card the change carries, as the cache holds it now. */
export interface CarriedCard<R> {
  id: string;
  /** Undefined when the cache lacks it. */
  archived: boolean | undefined;
  /** The ID of its column; undefined when the cache lacks it. */
  columnId: string | undefined;
  make: () => R;
}

/** What to do with one cached list. */
export type ArchivedListUpdate<R> =
  | { kind: 'unchanged' }
  | { kind: 'updated'; refs: R[] }
  /** The list cannot be brought up to date from the change alone: read it again. */
  | { kind: 'refetch' };

/** The columns whose `archivedCards` the change names. */
export const archivedListsNamed = (change: BoardChange): string[] =>
  change.invalidated
    .filter((i) => i.typename === 'Column' && i.fields.includes('archivedCards'))
    .map((i) => i.id);

/**
 * Whether the change carries every card it archives or restores (a card named with
 * `archived`); without them, its lists cannot be updated from the change alone.
 */
export function carriesArchivedCards(change: BoardChange): boolean {
  const carried = new Set((change.changed ?? []).map((node) => node.id));
  return change.invalidated.every(
    (i) => i.typename !== 'Card' || !i.fields.includes('archived') || carried.has(i.id),
  );
}

/**
 * The cached `archivedCards(first:)` list of `columnId` after the change's cards: a
 * card no longer archived there (restored, here or elsewhere) leaves it, a card newly
 * archived there comes first. A list that was full (it may lack older archived cards)
 * cannot fill the place a card leaves, and two cards archived at once have no order the
 * cache knows: `refetch`; so does a card whose `archived` or column is not cached.
 */
export function updateArchivedList<R>(
  entries: readonly CachedArchivedCard<R>[],
  args: { first?: number | null },
  columnId: string,
  cards: readonly CarriedCard<R>[],
): ArchivedListUpdate<R> {
  const size = Math.min(args.first ?? ARCHIVED_CARDS_PAGE.default, ARCHIVED_CARDS_PAGE.max);
  const listed = new Set(entries.map((entry) => entry.id));
  if (cards.some((card) => card.archived === undefined || card.columnId === undefined)) {
    return { kind: 'refetch' };
  }
  const archivedHere = (card: CarriedCard<R>) =>
    card.archived === true && card.columnId === columnId;
  const leaving = new Set(
    cards.filter((c) => listed.has(c.id) && !archivedHere(c)).map((c) => c.id),
  );
  const joining = cards.filter((c) => !listed.has(c.id) && archivedHere(c));
  if (leaving.size === 0 && joining.length === 0) return { kind: 'unchanged' };
  if (joining.length > 1 || (leaving.size > 0 && entries.length >= size)) {
    return { kind: 'refetch' };
  }
  const refs = entries.filter((entry) => !leaving.has(entry.id)).map((entry) => entry.ref);
  if (joining.length === 1) refs.unshift(joining[0]!.make());
  return { kind: 'updated', refs: refs.slice(0, Math.max(0, size)) };
}
