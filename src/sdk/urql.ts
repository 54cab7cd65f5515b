/**
 * `@corkboard/client/urql`: keeps an urql Graphcache fresh from a board's
 * `boardChanges` alone.
 *
 * ```ts
 * const urql = new Client({ url, exchanges: [cacheExchange(corkboardGraphcache()), corkboardExchange(corkboard), fetchExchange] });
 * const live = liveBoard(urql, boardId); // corkboard = createCorkboardClient(...)
 * ```
 */
import {
  getOperationName,
  subscriptionExchange,
  type Client,
  type Exchange,
  type Operation,
} from '@urql/core';
import type { Cache, CacheExchangeOpts, KeyingConfig } from '@urql/exchange-graphcache';
import { parse, visit, type DocumentNode } from 'graphql';
import type { BoardChange } from './boardChanges.js';
import { embeddedTypes } from './cacheSchema.js';
import {
  BoardChangesDocument,
  ChangeHeadDocument,
  type BoardChangesSubscription,
  type BoardChangesSubscriptionVariables,
} from './generated/graphql.js';
import graphcacheSchema from './generated/graphcacheSchema.js';
import {
  isReplayLimit,
  isStale,
  replayRetryDelayMs,
  splicePage,
  startLiveBoard,
  uncovered,
  type CachedEdge,
  type Invalidation,
  type LiveBoardOptions,
  type LiveBoardSource,
  type LiveMode,
  type PageArguments,
} from './liveChanges.js';

/** What `corkboardGraphcache` adds to Graphcache's own options. */
export interface CorkboardGraphcacheOptions extends CacheExchangeOpts {
  /** Told, per change, which invalidations found the cache stale (and were applied). */
  onInvalidated?: (change: BoardChange, stale: readonly Invalidation[]) => void;
}

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

/** Applies one change to Graphcache: the updater of `Subscription.boardChanges`. */
function applyChange(
  cache: Cache,
  change: BoardChange,
  onInvalidated: CorkboardGraphcacheOptions['onInvalidated'],
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
  onInvalidated?.(change, invalidateStale(cache, uncovered(change)));
}

/**
 * Drops, before Graphcache writes them, the carried resources the cache holds at a newer
 * version (a refetch or the viewer's own mutation result saw more): Graphcache writes a
 * subscription's data as it comes, so this runs as the updater of a field of
 * `BoardChange` selected before `changed` (`invalidated`, in the SDK's document).
 */
function dropOlderVersions(parent: unknown, cache: Cache): void {
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

/**
 * Graphcache options for Corkboard's schema, merged over `options`:
 * - `schema`: the minified schema (graphql-codegen's urql-introspection), so
 *   `... on Error` matches exactly: without a schema Graphcache matches fragments
 *   by heuristic and writes every fragment's fields into every type;
 * - `keys`: every type but the `Node`s stays embedded (`Invalidation` and
 *   `NotFoundError` carry another resource's `id`);
 * - `updates.Subscription.boardChanges`: per change, for each invalidated resource
 *   whose cached `version` is lower than the invalidation's, invalidates exactly the
 *   named fields (`cache.invalidate`), so Graphcache refetches the active queries
 *   that read them; skips resources already at that version (the viewer's own
 *   mutation); on `resyncRequired`, invalidates the board and its columns and cards.
 */
export function corkboardGraphcache(options: CorkboardGraphcacheOptions = {}): CacheExchangeOpts {
  const { onInvalidated, ...graphcache } = options;
  const embedded: KeyingConfig = Object.fromEntries(
    embeddedTypes.map((type) => [type, () => null]),
  );
  const own = graphcache.updates?.Subscription?.boardChanges;
  const ownInvalidated = graphcache.updates?.BoardChange?.['invalidated'];
  /** The last change applied per board: one sent again (a resubscribe) is skipped. */
  const applied = new Map<string, bigint>();
  return {
    schema: graphcacheSchema,
    ...graphcache,
    keys: { ...embedded, ...graphcache.keys },
    updates: {
      ...graphcache.updates,
      BoardChange: {
        ...graphcache.updates?.BoardChange,
        invalidated(parent, args, cache, info) {
          dropOlderVersions(parent, cache);
          ownInvalidated?.(parent, args, cache, info);
        },
      },
      Subscription: {
        ...graphcache.updates?.Subscription,
        boardChanges(result, args, cache, info) {
          const change = (result as BoardChangesSubscription).boardChanges;
          if (change) {
            const cursor = /^\d+$/.test(change.cursor) ? BigInt(change.cursor) : null;
            const last = applied.get(change.boardId);
            if (change.resyncRequired || cursor === null || last === undefined || cursor > last) {
              if (cursor !== null) applied.set(change.boardId, cursor);
              applyChange(cache, change, onInvalidated);
            }
          }
          own?.(result, args, cache, info);
        },
      },
    },
  };
}

/**
 * A change with the `__typename`s that urql adds to every selection: the SDK's
 * document, which the iterator sends, does not select them, and Graphcache needs
 * them to write the result.
 */
const typed = (change: BoardChange) => ({
  __typename: 'BoardChange' as const,
  ...change,
  actor: change.actor && { __typename: 'User' as const, ...change.actor },
  invalidated: change.invalidated.map((i) => ({ __typename: 'Invalidation' as const, ...i })),
  changed: change.changed.map(withTypenames),
  cardEdges: change.cardEdges.map((edge) => ({
    __typename: 'CardEdge' as const,
    cursor: edge.cursor,
    node: { __typename: 'Card' as const, ...edge.node },
  })),
});

/** The `__typename` of every object below a carried node, from the schema's field types. */
function withTypenames(node: BoardChange['changed'][number]): unknown {
  const nested: Record<string, string> = {
    members: 'User',
    assignee: 'User',
    columns: 'Column',
    column: 'Column',
  };
  const typed: Record<string, unknown> = { ...node };
  for (const [field, typename] of Object.entries(nested)) {
    const value = typed[field];
    if (Array.isArray(value)) {
      typed[field] = value.map((v: object) => ({ __typename: typename, ...v }));
    } else if (value && typeof value === 'object') {
      typed[field] = { __typename: typename, ...value };
    }
  }
  return typed;
}

const isBoardChanges = (operation: Operation) =>
  operation.kind === 'subscription' && getOperationName(operation.query) === 'BoardChanges';

/**
 * An exchange that runs the SDK's `BoardChanges` subscription through `source` (a
 * `CorkboardClient`: resumable, with no gap after a dropped connection) and lets
 * every other operation pass. Place it after Graphcache's `cacheExchange`, so that
 * each change goes through `corkboardGraphcache`'s updater. `options` are those of
 * `LiveBoardOptions` that apply to the transport (`ownChangeGraceMs`, `viewerId`,
 * `onError`).
 */
export function corkboardExchange(
  source: LiveBoardSource,
  options: Omit<LiveBoardOptions, 'after' | 'signal' | 'onApplied'> = {},
): Exchange {
  return subscriptionExchange({
    isSubscriptionOperation: isBoardChanges,
    forwardSubscription: (_request, operation) => ({
      subscribe(observer) {
        const variables = operation.variables as BoardChangesSubscriptionVariables;
        const live = startLiveBoard(
          source,
          variables.boardId,
          { ...options, after: variables.after ?? null },
          async (changes) => {
            for (const change of changes) observer.next({ data: { boardChanges: typed(change) } });
            return { stale: [], refetched: undefined, resynced: false };
          },
        );
        live.done.then(
          () => observer.complete(),
          (error: unknown) => observer.error(error),
        );
        return { unsubscribe: () => void live.stop() };
      },
    }),
  });
}

/** A running urql live binding. */
export interface UrqlLiveBoard {
  /** The cursor of the last change received; keep it to resume with `after`. */
  readonly cursor: string | null;
  /**
   * Resolves once the subscription is started from a known cursor (`after`, or the
   * server's `changeHead`): a query sent after it misses no change.
   */
  readonly ready: Promise<void>;
  /** Stops following the board (ends the subscription). */
  stop(): void;
}

/** `BoardChanges` without the carried data: what `refetch` mode subscribes to. */
const invalidationsOnly: DocumentNode = visit(BoardChangesDocument, {
  Field(node) {
    return node.name.value === 'changed' || node.name.value === 'cardEdges' ? null : undefined;
  },
  FragmentDefinition(node) {
    // Fragments only `changed` used.
    return ['BoardFields', 'ColumnFields', 'CardFields'].includes(node.name.value)
      ? null
      : undefined;
  },
});

/**
 * Keeps `client`'s Graphcache fresh while the board changes, by running the
 * `BoardChanges` subscription through the client's exchanges: the app's own
 * `subscriptionExchange` (over a graphql-ws client: one socket, auth configured
 * once), or `corkboardExchange`. Set up `corkboardGraphcache` on the client first.
 *
 * Without `after`, it first asks the server's `changeHead` (one small query) and
 * subscribes after it: a query sent once `ready` resolves misses no change. Changes a
 * resubscribe sends again are skipped. In `data` mode (the default) Graphcache writes
 * each change's resources and `corkboardGraphcache` splices its cards; in `refetch`
 * mode the subscription selects no data and each change invalidates what it names.
 */
export function liveBoard(
  client: Client,
  boardId: string,
  options: { after?: string | null; mode?: LiveMode } = {},
): UrqlLiveBoard {
  let cursor = options.after ?? null;
  let stopped = false;
  let unsubscribe = () => {};
  const document =
    options.mode === 'refetch'
      ? (invalidationsOnly as typeof BoardChangesDocument)
      : BoardChangesDocument;
  let refused = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const ready = (async () => {
    if (cursor === null) {
      const head = await client
        .query(ChangeHeadDocument, {}, { requestPolicy: 'network-only' })
        .toPromise();
      if (head.error) throw head.error;
      cursor = head.data?.changeHead ?? null;
    }
    subscribe();
  })();
  function subscribe() {
    if (stopped) return;
    let ended = false;
    const subscription = client
      .subscription(document, { boardId, after: cursor })
      .subscribe((result) => {
        if (ended) return;
        if (result.error && isReplayLimit(result.error)) {
          // Too many replays run at once on the server: again shortly, from the cursor.
          ended = true;
          queueMicrotask(() => subscription.unsubscribe());
          retry = setTimeout(subscribe, replayRetryDelayMs(++refused));
          return;
        }
        if (result.data?.boardChanges) refused = 0;
        cursor = result.data?.boardChanges.cursor ?? cursor;
      });
    unsubscribe = () => {
      clearTimeout(retry);
      subscription.unsubscribe();
    };
  }
  return {
    get cursor() {
      return cursor;
    },
    ready,
    stop: () => {
      stopped = true;
      unsubscribe();
    },
  };
}
