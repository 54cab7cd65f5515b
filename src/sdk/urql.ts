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
import type { BoardChange } from './boardChanges.js';
import { embeddedTypes } from './cacheSchema.js';
import {
  BoardChangesDocument,
  type BoardChangesSubscription,
  type BoardChangesSubscriptionVariables,
} from './generated/graphql.js';
import graphcacheSchema from './generated/graphcacheSchema.js';
import {
  isStale,
  startLiveBoard,
  type Invalidation,
  type LiveBoardOptions,
  type LiveBoardSource,
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
  const stale: Invalidation[] = [];
  for (const invalidation of change.invalidated) {
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
  onInvalidated?.(change, stale);
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
  return {
    schema: graphcacheSchema,
    ...graphcache,
    keys: { ...embedded, ...graphcache.keys },
    updates: {
      ...graphcache.updates,
      Subscription: {
        ...graphcache.updates?.Subscription,
        boardChanges(result, args, cache, info) {
          const change = (result as BoardChangesSubscription).boardChanges;
          if (change) applyChange(cache, change, onInvalidated);
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
});

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
  /** Stops following the board (closes the subscription's socket). */
  stop(): void;
}

/**
 * Keeps `client`'s Graphcache fresh while the board changes, by running the
 * `BoardChanges` subscription (set up `corkboardGraphcache` and `corkboardExchange`
 * on the client first).
 */
export function liveBoard(
  client: Client,
  boardId: string,
  options: { after?: string | null } = {},
): UrqlLiveBoard {
  let cursor = options.after ?? null;
  const subscription = client
    .subscription(BoardChangesDocument, { boardId, after: cursor })
    .subscribe((result) => {
      cursor = result.data?.boardChanges.cursor ?? cursor;
    });
  return {
    get cursor() {
      return cursor;
    },
    stop: () => subscription.unsubscribe(),
  };
}
