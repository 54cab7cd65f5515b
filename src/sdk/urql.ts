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
import type { CacheExchangeOpts, KeyingConfig, UpdatesConfig } from '@urql/exchange-graphcache';
import { visit, type DocumentNode } from 'graphql';
import type { BoardChange } from './boardChanges.js';
import { embeddedTypes } from './cacheSchema.js';
import {
  BoardChangesDocument,
  ChangeHeadDocument,
  MeDocument,
  NodeDocument,
  type BoardChangesSubscription,
  type BoardChangesSubscriptionVariables,
} from './generated/graphql.js';
import graphcacheSchema from './generated/graphcacheSchema.js';
import {
  isReplayLimit,
  replayRetryDelayMs,
  startLiveBoard,
  type Invalidation,
  type LiveBoardOptions,
  type LiveBoardSource,
  type LiveMode,
} from './liveChanges.js';
import { applyChange, dropOlderVersions, forgetBoard } from './urqlCacheWrites.js';
import { PushedVersions } from './urqlPushedVersions.js';
import { accessEndedOf, type BoardAccessEndedError } from './accessEnded.js';

/** The fields of the schema's `Mutation` type. */
const MUTATION_FIELDS: readonly string[] = (() => {
  const root = graphcacheSchema.__schema.types.find((t) => t.name === 'Mutation');
  return root && 'fields' in root ? root.fields.map((f) => f.name) : [];
})();

/** What `corkboardGraphcache` adds to Graphcache's own options. */
export interface CorkboardGraphcacheOptions extends CacheExchangeOpts {
  /** Told, per change, which invalidations found the cache stale (and were applied). */
  onInvalidated?: (change: BoardChange, stale: readonly Invalidation[]) => void;
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
 *   mutation); on `resyncRequired`, invalidates the board and its columns and cards;
 * - an updater on every field of `Mutation` that invalidates what its result, written
 *   after a newer push, set back (`PushedVersions`: the viewer's own mutation answer,
 *   landing after another member's newer change to its column was pushed).
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
  const pushed = new PushedVersions();
  /** The app's mutation updaters, each field's preceded by the repair of what its result set back. */
  const mutationUpdaters: NonNullable<UpdatesConfig[string]> = { ...graphcache.updates?.Mutation };
  for (const field of MUTATION_FIELDS) {
    const own = graphcache.updates?.Mutation?.[field];
    mutationUpdaters[field] = (result, args, cache, info) => {
      pushed.repair(cache, result[info.fieldName]);
      own?.(result, args, cache, info);
    };
  }
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
      Mutation: mutationUpdaters,
      Query: {
        ...graphcache.updates?.Query,
        // The server answers null for a board the viewer cannot see (any more): forget it.
        board(result, args, cache, info) {
          if ((result as { board?: unknown }).board === null && typeof args['id'] === 'string') {
            forgetBoard(cache, args['id']);
          }
          graphcache.updates?.Query?.['board']?.(result, args, cache, info);
        },
        node(result, args, cache, info) {
          const node = (result as Record<string, unknown>)[info.fieldName];
          if (node === null && typeof args['id'] === 'string') forgetBoard(cache, args['id']);
          graphcache.updates?.Query?.['node']?.(result, args, cache, info);
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
              pushed.note(cache, change);
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

/** The type of each object field below a carried node, by field name (the schema's). */
const NESTED_TYPES: Readonly<Record<string, string>> = {
  members: 'User',
  memberships: 'BoardMembership',
  user: 'User',
  assignee: 'User',
  columns: 'Column',
  column: 'Column',
};

/** The `__typename` of every object below a carried node, from the schema's field types. */
function withTypenames(node: object): Record<string, unknown> {
  const typed: Record<string, unknown> = { ...node };
  for (const [field, typename] of Object.entries(NESTED_TYPES)) {
    const value = typed[field];
    if (Array.isArray(value)) {
      typed[field] = value.map((v: object) => ({ __typename: typename, ...withTypenames(v) }));
    } else if (value && typeof value === 'object') {
      typed[field] = { __typename: typename, ...withTypenames(value) };
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
  /**
   * Settles when the binding ends: resolves after `stop()`; rejects with a
   * `BoardAccessEndedError` (its `reason` says why) when the viewer lost access to the
   * board, once the board, its columns and cards are cleared from the cache (the binding
   * asks the server's `node(id)` of the board once: its null answer goes through
   * `corkboardGraphcache`'s updater, which clears them). Other errors of the subscription
   * reach the app through its exchanges, as before; `done` does not settle on them.
   */
  readonly done: Promise<void>;
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
  let finish!: () => void;
  let fail!: (error: BoardAccessEndedError) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  /**
   * The viewer lost access: ask the server for the board once more. Its null answer goes
   * through Graphcache, whose `Query.node` updater (corkboardGraphcache) forgets the board;
   * Graphcache takes no updater from a subscription's error, which carries no data.
   */
  async function accessEnded(error: BoardAccessEndedError) {
    stopped = true;
    unsubscribe();
    await client
      .query(NodeDocument, { id: boardId }, { requestPolicy: 'network-only' })
      .toPromise();
    fail(error);
  }
  // Observed through the returned object; unobserved, an ended binding is no crash.
  done.catch(() => {});
  const ready = (async () => {
    // The viewer, for the `viewerRole` of the boards the changes carry (Graphcache's
    // `Query.me`; from the cache when the app asked already).
    const me = client.query(MeDocument, {}).toPromise();
    if (cursor === null) {
      const head = await client
        .query(ChangeHeadDocument, {}, { requestPolicy: 'network-only' })
        .toPromise();
      if (head.error) throw head.error;
      cursor = head.data?.changeHead ?? null;
    }
    await me;
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
        const accessEndedError = result.error ? accessEndedOf(result.error, boardId) : null;
        if (accessEndedError) {
          ended = true;
          queueMicrotask(() => void accessEnded(accessEndedError));
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
      finish();
    },
    done,
  };
}
