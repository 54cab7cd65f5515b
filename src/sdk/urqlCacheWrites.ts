/**
 * Writing a board change into urql's Graphcache: stale fields invalidated, carried cards
 * spliced into the cached pages of their columns, never older data over newer.
 */
import type { Cache } from '@urql/exchange-graphcache';
import { parse } from 'graphql';
import type { BoardChange } from './boardChanges.js';
import { updateBoardList, type BoardListArguments, type CachedBoard } from './boardLists.js';
import {
  archivedListsNamed,
  carriesArchivedCards,
  updateArchivedList,
  type CarriedCard,
} from './archivedLists.js';
import { splicePage, uncovered, type CachedEdge, type PageArguments } from './cardPages.js';
import { isStale, type Invalidation } from './liveChanges.js';
import { viewerRoleOf } from './viewerRole.js';

/** The types whose entities belong to one board; a resync invalidates them. */
const BOARD_RESOURCE_TYPES: ReadonlySet<string> = new Set(['Board', 'Column', 'Card']);
/** Fields that link a board to its columns and cards (connections included). */
const BOARD_LINK_FIELDS: ReadonlySet<string> = new Set(['columns', 'cards', 'edges', 'node']);

/** Keys of the board and every Column and Card reachable from it. */
function boardEntities(cache: Cache, boardId: string): string[] {
  const root = cache.keyOfEntity({ __typename: 'Board', id: boardId });
  if (!root) return [];
  const seen = new Set<string>([root]);
  const pending = [root];
  const visit = (link: unknown): void => {
    if (Array.isArray(link)) return link.forEach(visit);
    if (typeof link !== 'string' || seen.has(link)) return;
    seen.add(link);
    pending.push(link);
  };
  while (pending.length > 0) {
    const key = pending.pop()!;
    for (const field of cache.inspectFields(key)) {
      if (BOARD_LINK_FIELDS.has(field.fieldName)) {
        visit(cache.resolve(key, field.fieldName, field.arguments ?? undefined));
      }
    }
  }
  return [...seen].filter((key) => {
    const typename = cache.resolve(key, '__typename');
    return typeof typename === 'string' && BOARD_RESOURCE_TYPES.has(typename);
  });
}

/** Invalidates exactly the named fields of each resource the cache holds at an older version. */
function invalidateStale(cache: Cache, invalidations: readonly Invalidation[]): Invalidation[] {
  const stale: Invalidation[] = [];
  for (const invalidation of invalidations) {
    const entity = { __typename: invalidation.typename, id: invalidation.id };
    if (!isStale(cache.resolve(entity, 'version'), invalidation)) continue;
    stale.push(invalidation);
    const fields = new Set(invalidation.fields);
    // `invalidate(entity, name)` erases only the field without arguments: every
    // cached variant (e.g. `cards({"first":100})`) is listed and erased by its own key.
    for (const field of cache.inspectFields(entity)) {
      if (fields.has(field.fieldName)) {
        cache.invalidate(entity, field.fieldName, field.arguments ?? undefined);
      }
    }
  }
  return stale;
}

/** Writes one cached page of a column's cards: its edges and what pageInfo says of them. */
const PAGE_FRAGMENT = parse(`
  fragment CorkboardCardPage on Column {
    id
    cards(first: $first, after: $after) {
      edges { cursor node { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

interface GraphcacheEdge {
  __typename: 'CardEdge';
  cursor: string;
  node: { __typename: 'Card'; id: string };
}

/**
 * Splices the change's cards into and out of every cached page of the columns whose
 * cards it names (Graphcache has written the cards themselves by now); invalidates a
 * page it cannot bring up to date, so Graphcache reads that page again.
 */
function spliceCards(cache: Cache, change: BoardChange): void {
  const cards = change.changed.filter((node) => node.__typename === 'Card');
  if (cards.length === 0) return;
  for (const column of change.invalidated) {
    if (column.typename !== 'Column' || !column.fields.includes('cards')) continue;
    const entity = { __typename: 'Column', id: column.id };
    for (const field of cache.inspectFields(entity)) {
      if (field.fieldName !== 'cards') continue;
      const args = (field.arguments ?? {}) as PageArguments;
      const connection = cache.resolve(entity, 'cards', field.arguments ?? undefined);
      if (typeof connection !== 'string') continue;
      const pageInfo = cache.resolve(connection, 'pageInfo');
      const edgeKeys = cache.resolve(connection, 'edges');
      if (!Array.isArray(edgeKeys) || typeof pageInfo !== 'string') continue;
      let edges: CachedEdge<GraphcacheEdge>[] = (edgeKeys as string[]).map((key) => {
        const node = cache.resolve(key, 'node') as string;
        const id = cache.resolve(node, 'id') as string;
        const rank = cache.resolve(node, 'rank');
        return {
          id,
          rank: typeof rank === 'string' ? rank : undefined,
          edge: {
            __typename: 'CardEdge',
            cursor: cache.resolve(key, 'cursor') as string,
            node: { __typename: 'Card', id },
          },
        };
      });
      let hasNextPage = cache.resolve(pageInfo, 'hasNextPage') === true;
      let changed = false;
      let refetch = false;
      for (const card of cards) {
        const key = { __typename: 'Card', id: card.id };
        const rank = cache.resolve(key, 'rank');
        const columnKey = cache.resolve(key, 'column');
        const here =
          cache.resolve(key, 'archived') === false &&
          typeof rank === 'string' &&
          typeof columnKey === 'string' &&
          cache.resolve(columnKey, 'id') === column.id;
        const cursor = change.cardEdges.find((e) => e.node.id === card.id)?.cursor;
        const splice = splicePage<GraphcacheEdge>(edges, hasNextPage, args, {
          id: card.id,
          edge:
            here && cursor !== undefined
              ? {
                  rank: rank,
                  make: (): GraphcacheEdge => ({
                    __typename: 'CardEdge',
                    cursor,
                    node: { __typename: 'Card', id: card.id },
                  }),
                }
              : null,
        });
        if (splice.kind === 'refetch') {
          refetch = true;
          break;
        }
        if (splice.kind === 'spliced') {
          changed = true;
          hasNextPage = splice.hasNextPage;
          edges = splice.edges.map((edge) => ({
            edge,
            id: edge.node.id,
            rank: cache.resolve({ __typename: 'Card', id: edge.node.id }, 'rank') as string,
          }));
        }
      }
      if (refetch) {
        cache.invalidate(entity, 'cards', field.arguments ?? undefined);
      } else if (changed) {
        cache.writeFragment(
          PAGE_FRAGMENT,
          {
            __typename: 'Column',
            id: column.id,
            cards: {
              __typename: 'CardConnection',
              edges: edges.map((e) => e.edge),
              pageInfo: {
                __typename: 'PageInfo',
                hasNextPage,
                endCursor: edges.at(-1)?.edge.cursor ?? null,
              },
            },
          },
          { first: args.first ?? null, after: args.after ?? null },
        );
      }
    }
  }
}

/**
 * Brings every cached `Column.archivedCards` list of the columns whose `archivedCards`
 * the change names in step with the change's cards (as Graphcache now holds them): see
 * `updateArchivedList`. A list it cannot update is invalidated, so Graphcache reads it
 * again.
 */
function updateArchivedLists(cache: Cache, change: BoardChange): void {
  const columns = archivedListsNamed(change);
  if (columns.length === 0) return;
  const complete = carriesArchivedCards(change);
  const carried = change.changed
    .filter((node) => node.__typename === 'Card')
    .map((node): CarriedCard<string> => {
      const key = cache.keyOfEntity({ __typename: 'Card', id: node.id }) ?? '';
      const archived = cache.resolve(key, 'archived');
      const column = cache.resolve(key, 'column');
      const columnId = typeof column === 'string' ? cache.resolve(column, 'id') : undefined;
      return {
        id: node.id,
        archived: typeof archived === 'boolean' ? archived : undefined,
        columnId: typeof columnId === 'string' ? columnId : undefined,
        make: () => key,
      };
    });
  for (const columnId of columns) {
    const entity = { __typename: 'Column', id: columnId };
    for (const field of cache.inspectFields(entity)) {
      if (field.fieldName !== 'archivedCards') continue;
      // Without arguments, the field is keyed by its bare name: no `({})`.
      const args = field.arguments ?? undefined;
      const links = cache.resolve(entity, 'archivedCards', args);
      if (!Array.isArray(links)) continue;
      const entries = (links as string[]).map((ref) => ({
        ref,
        id: cache.resolve(ref, 'id') as string,
      }));
      const update = complete
        ? updateArchivedList(entries, args ?? {}, columnId, carried)
        : { kind: 'refetch' as const };
      if (update.kind === 'refetch') cache.invalidate(entity, 'archivedCards', args);
      else if (update.kind === 'updated' && args) {
        cache.link(entity, 'archivedCards', args, update.refs);
      } else if (update.kind === 'updated') cache.link(entity, 'archivedCards', update.refs);
    }
  }
}

/**
 * Brings every cached `Query.boards` list in step with the boards the change carries
 * (as Graphcache now holds them): an archived board leaves the lists that leave archived
 * boards out, a restored one comes back in its place. A list that cannot place it is
 * invalidated, so Graphcache reads it again.
 */
function updateBoardLists(cache: Cache, change: BoardChange): void {
  for (const node of change.changed) {
    if (node.__typename !== 'Board') continue;
    const key = cache.keyOfEntity({ __typename: 'Board', id: node.id });
    const archived = key ? cache.resolve(key, 'archived') : undefined;
    if (!key || typeof archived !== 'boolean') continue;
    const createdAtOf = (entity: string) => {
      const createdAt = cache.resolve(entity, 'createdAt');
      return typeof createdAt === 'string' ? createdAt : undefined;
    };
    for (const field of cache.inspectFields('Query')) {
      if (field.fieldName !== 'boards') continue;
      const links = cache.resolve('Query', 'boards', field.arguments ?? undefined);
      if (!Array.isArray(links)) continue;
      const entries: CachedBoard<string>[] = (links as string[]).map((link) => ({
        ref: link,
        id: cache.resolve(link, 'id') as string,
        createdAt: createdAtOf(link),
      }));
      const update = updateBoardList(entries, (field.arguments ?? {}) as BoardListArguments, {
        id: node.id,
        archived,
        createdAt: createdAtOf(key),
        make: () => key,
      });
      if (update.kind === 'refetch') {
        cache.invalidate('Query', 'boards', field.arguments ?? undefined);
      } else if (update.kind === 'updated') {
        cache.link('Query', 'boards', field.arguments ?? {}, update.refs);
      }
    }
  }
}

/**
 * Clears a board the viewer can no longer see from Graphcache: every root field that
 * points at the board, its columns or its cards (`board(id:)`, `node(id:)`) now reads
 * null, the board leaves every cached `boards` list, and the board and every column and
 * card reachable from it are invalidated whole. Queries that read them are run again over
 * the cleared cache (a `board(id:)` reads null from it, with no request). Run by the
 * updaters of `Query.board` and `Query.node` when the server answers null for the board.
 */
export function forgetBoard(cache: Cache, boardId: string): void {
  const key = cache.keyOfEntity({ __typename: 'Board', id: boardId });
  if (!key) return;
  const entities = boardEntities(cache, boardId);
  // Not cached (or forgotten already): nothing to clear.
  if (entities.length === 0) return;
  const ids = new Set<unknown>([boardId, ...entities.map((entity) => cache.resolve(entity, 'id'))]);
  for (const field of cache.inspectFields('Query')) {
    const args = field.arguments ?? {};
    if (field.fieldName === 'boards') {
      const links = cache.resolve('Query', 'boards', args);
      if (Array.isArray(links) && (links as unknown[]).includes(key)) {
        cache.link(
          'Query',
          'boards',
          args,
          (links as string[]).filter((link) => link !== key),
        );
      }
    } else if (
      (field.fieldName === 'board' || field.fieldName === 'node') &&
      ids.has(args['id']) &&
      cache.resolve('Query', field.fieldName, args) !== null
    ) {
      cache.link('Query', field.fieldName, args, null);
    }
  }
  for (const entity of entities) cache.invalidate(entity);
}

const VIEWER_ROLE = parse('fragment CorkboardViewerRole on Board { id viewerRole }');

/**
 * A carried board's `viewerRole` (the push leaves it out): derived from its `memberships`
 * and the cached `Query.me` (liveBoard asks `Me` first); without a cached viewer, the
 * cached field is invalidated, so the queries that read it are reexecuted.
 */
function writeViewerRoles(cache: Cache, change: BoardChange): void {
  const me = cache.resolve('Query', 'me');
  const viewerId = typeof me === 'string' ? cache.resolve(me, 'id') : null;
  for (const node of change.changed) {
    if (node.__typename !== 'Board') continue;
    if (typeof viewerId !== 'string') {
      const key = cache.keyOfEntity(node);
      if (key && cache.resolve(key, 'viewerRole') !== undefined)
        cache.invalidate(key, 'viewerRole');
      continue;
    }
    const viewerRole = viewerRoleOf(node, viewerId);
    if (viewerRole !== undefined) {
      cache.writeFragment(VIEWER_ROLE, { __typename: 'Board', id: node.id, viewerRole });
    }
  }
}

/** Applies one change to Graphcache: the updater of `Subscription.boardChanges`. */
export function applyChange(
  cache: Cache,
  change: BoardChange,
  onInvalidated: ((change: BoardChange, stale: readonly Invalidation[]) => void) | undefined,
): void {
  if (change.resyncRequired) {
    // Each entity whole: every query that read any of it is reexecuted.
    for (const key of boardEntities(cache, change.boardId)) cache.invalidate(key);
    onInvalidated?.(change, []);
    return;
  }
  if (!Array.isArray(change.changed)) {
    // A document without the data: invalidate what the change names.
    onInvalidated?.(change, invalidateStale(cache, change.invalidated));
    return;
  }
  spliceCards(cache, change);
  updateArchivedLists(cache, change);
  updateBoardLists(cache, change);
  writeViewerRoles(cache, change);
  onInvalidated?.(change, invalidateStale(cache, uncovered(change)));
}

/**
 * Drops, before Graphcache writes them, the carried resources the cache holds at a newer
 * version (a refetch or the viewer's own mutation result saw more): Graphcache writes a
 * subscription's data as it comes, so this runs as the updater of a field of
 * `BoardChange` selected before `changed` (`invalidated`, in the SDK's document).
 */
export function dropOlderVersions(parent: unknown, cache: Cache): void {
  const change = parent as Partial<BoardChange>;
  if (!Array.isArray(change.changed)) return;
  const newer = new Set<string>();
  for (const node of change.changed) {
    const version = (node as { version?: unknown }).version;
    const cached = cache.resolve({ __typename: node.__typename, id: node.id }, 'version');
    if (typeof cached === 'number' && typeof version === 'number' && cached > version) {
      newer.add(node.id);
    }
  }
  if (newer.size === 0) return;
  change.changed = change.changed.filter((node) => !newer.has(node.id));
  change.cardEdges = change.cardEdges?.filter((edge) => !newer.has(edge.node.id));
}
