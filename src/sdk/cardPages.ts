/**
 * Bringing cached pages of a column's cards up to date from a change, the same way for
 * every cache binding: where a card goes by rank, and what a change does not cover.
 */
import type { BoardChange } from './boardChanges.js';
import type { Invalidation } from './liveChanges.js';

/** The server's page size of `Column.cards` when `first` is not given. */
export const DEFAULT_CARD_PAGE = 100;

/** One edge of a cached `Column.cards` page, as a binding sees it. */
export interface CachedEdge<E> {
  /** The edge as the cache stores it, handed back untouched when kept. */
  edge: E;
  /** The card's global ID. */
  id: string;
  /** The card's rank, as cached; undefined when the cache lacks it. */
  rank: string | undefined;
}

/** The arguments a cached `Column.cards` page was read with. */
export interface PageArguments {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

/** Where a card now is, for the pages of one column. */
export interface CardPlacement<E> {
  id: string;
  /** Its edge in this column's pages, or null when it is not in this column (moved out, archived). */
  edge: { make: () => E; rank: string } | null;
}

/** What to do with one cached page. */
export type PageSplice<E> =
  | { kind: 'unchanged' }
  | { kind: 'spliced'; edges: E[]; hasNextPage: boolean }
  /** The page cannot be brought up to date from the change alone: read it again. */
  | { kind: 'refetch' };

/**
 * Splices one card into or out of one cached page of a column's cards, by rank:
 *
 * - out: its edge is dropped; a page with a next page is then one card short, a card
 *   the cache does not hold: `refetch`;
 * - in: placed by rank among the page's edges. A page with a next page takes it only
 *   when it sorts before its last edge (otherwise it belongs to a later page), and a
 *   page of `first: n` that grows past `n` gives up its last edge (and has a next page).
 *   A page read `after` a cursor, whose card sorts before its first edge, may or may not
 *   hold it (it could belong to an earlier page): `refetch`; so does any page read with
 *   `last`/`before`, or whose edges' ranks are not cached.
 *
 * Idempotent: splicing a card where it already is leaves the page `unchanged`.
 */
export function splicePage<E>(
  edges: readonly CachedEdge<E>[],
  hasNextPage: boolean,
  args: PageArguments,
  card: CardPlacement<E>,
): PageSplice<E> {
  if (args.last != null || args.before != null) {
    return edges.some((e) => e.id === card.id) || card.edge
      ? { kind: 'refetch' }
      : { kind: 'unchanged' };
  }
  const at = edges.findIndex((e) => e.id === card.id);
  if (card.edge === null) {
    if (at < 0) return { kind: 'unchanged' };
    if (hasNextPage) return { kind: 'refetch' };
    return {
      kind: 'spliced',
      edges: edges.filter((_, i) => i !== at).map((e) => e.edge),
      hasNextPage,
    };
  }
  const others = edges.filter((_, i) => i !== at);
  if (others.some((e) => e.rank === undefined)) return { kind: 'refetch' };
  const rank = card.edge.rank;
  let position = others.findIndex((e) => e.rank! > rank || (e.rank === rank && e.id > card.id));
  if (position < 0) position = others.length;
  if (at === position && edges[at]!.rank === rank) return { kind: 'unchanged' };
  if (args.after != null && position === 0 && others.length > 0) return { kind: 'refetch' };
  if (position === others.length && hasNextPage) {
    // It sorts after this page's last card: it belongs to a later page.
    return at < 0 ? { kind: 'unchanged' } : { kind: 'refetch' };
  }
  const spliced = others.map((e) => e.edge);
  spliced.splice(position, 0, card.edge.make());
  let next = hasNextPage;
  const size = args.first ?? DEFAULT_CARD_PAGE;
  if (spliced.length > size) {
    spliced.length = size;
    next = true;
  }
  return { kind: 'spliced', edges: spliced, hasNextPage: next };
}

/**
 * The invalidations a change's data does not cover: resources it names but does not
 * carry (left out past the server's size bound, or not selected by the document).
 */
export function uncovered(change: BoardChange): Invalidation[] {
  const carried = new Map<string, number>();
  for (const node of change.changed ?? []) {
    const version = (node as { version?: unknown }).version;
    carried.set(node.id, typeof version === 'number' ? version : -1);
  }
  return change.invalidated.filter((i) => (carried.get(i.id) ?? -1) < i.version);
}
