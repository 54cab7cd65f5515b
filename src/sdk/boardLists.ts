/**
 * Keeping cached `Query.boards` lists in step with a board's `archived` flag, the same
 * way for every cache binding: `boards` (without `includeArchived: true`) leaves archived
 * boards out and lists the others newest first (`createdAt` descending).
 */

/** The arguments a cached `Query.boards` list was read with. */
export interface BoardListArguments {
  includeArchived?: boolean | null;
}

/** One entry of a cached `boards` list, as a binding sees it. */
export interface CachedBoard<R> {
  /** The entry as the cache stores it (a reference), handed back untouched when kept. */
  ref: R;
  id: string;
  /** The board's `createdAt`, as cached; undefined when the cache lacks it. */
  createdAt: string | undefined;
}

/** What to do with one cached list. */
export type BoardListUpdate<R> =
  | { kind: 'unchanged' }
  | { kind: 'updated'; refs: R[] }
  /** The list cannot be brought up to date from the cache alone: read it again. */
  | { kind: 'refetch' };

/**
 * Takes `board` out of a cached `boards` list when it is archived, or puts it back in
 * its place (newest first) when it is not and the list lacks it. A list read with
 * `includeArchived: true` holds archived boards too: unchanged. A list whose entries'
 * `createdAt` is not cached cannot place it: `refetch`.
 */
export function updateBoardList<R>(
  entries: readonly CachedBoard<R>[],
  args: BoardListArguments,
  board: { id: string; archived: boolean; createdAt: string | undefined; make: () => R },
): BoardListUpdate<R> {
  if (args.includeArchived === true) return { kind: 'unchanged' };
  const at = entries.findIndex((entry) => entry.id === board.id);
  if (board.archived) {
    return at < 0
      ? { kind: 'unchanged' }
      : { kind: 'updated', refs: entries.filter((_, i) => i !== at).map((e) => e.ref) };
  }
  if (at >= 0) return { kind: 'unchanged' };
  const createdAt = board.createdAt;
  if (createdAt === undefined || entries.some((entry) => entry.createdAt === undefined)) {
    return { kind: 'refetch' };
  }
  let position = entries.findIndex((entry) => entry.createdAt! < createdAt);
  if (position < 0) position = entries.length;
  const refs = entries.map((entry) => entry.ref);
  refs.splice(position, 0, board.make());
  return { kind: 'updated', refs };
}
