/**
 * `@corkboard/client/apollo`: keeps an Apollo Client cache fresh from a board's
 * `boardChanges` alone.
 *
 * ```ts
 * const apollo = new ApolloClient({ link, cache: new InMemoryCache(corkboardCacheConfig) });
 * const live = liveBoard(apollo, corkboard, boardId); // corkboard = createCorkboardClient(...)
 * ```
 */
import type {
  ApolloClient,
  InMemoryCacheConfig,
  ObservableQuery,
  TypePolicies,
  TypePolicy,
} from '@apollo/client';
import type { DocumentNode, GraphQLFormattedError } from 'graphql';
import { CorkboardRequestError } from './CorkboardRequestError.js';
import type { BoardChange, BoardChangesOptions } from './boardChanges.js';
import { embeddedTypes, nodeTypes, possibleTypes } from './cacheSchema.js';
import {
  BoardChangesDocument,
  ChangeHeadDocument,
  MeDocument,
  type BoardChangesSubscription,
  type BoardChangesSubscriptionVariables,
} from './generated/graphql.js';
import {
  isStale,
  mergeInvalidations,
  startLiveBoard,
  type AppliedChanges,
  type Invalidation,
  type LiveBoard,
  type LiveBoardOptions,
  type LiveBoardSource,
} from './liveChanges.js';
import { changedFragmentOf, versionFragment, writeChange } from './apolloCacheWrites.js';
import { boardEntities, forgetBoard } from './apolloForget.js';
import { uncovered } from './cardPages.js';

export { forgetBoard, possibleTypes };

/**
 * Fields of a `Node` that hold a list of embedded objects, which every write carries
 * whole: a write replaces the cached list (`merge: false`), as Apollo would anyway,
 * without its warning that data may be lost.
 */
const wholeLists: Readonly<Record<string, TypePolicy['fields']>> = {
  Board: { memberships: { merge: false } },
};

/**
 * Type policies for Corkboard's schema:
 * - every `Node` (Board, Column, Card, User) is normalized by its global `id`;
 * - every other object type stays embedded in its parent (`keyFields: false`). That
 *   matters for `Invalidation` and `NotFoundError`, whose `id` names *another*
 *   resource: Apollo would otherwise normalize them as `Invalidation:<id>`;
 * - `Board.memberships`, a list of embedded objects, is replaced whole by each write.
 */
export const corkboardTypePolicies: TypePolicies = Object.fromEntries<TypePolicy>([
  ...nodeTypes.map((type): [string, TypePolicy] => [
    type,
    { keyFields: ['id'], ...(wholeLists[type] ? { fields: wholeLists[type] } : {}) },
  ]),
  ...embeddedTypes.map((type): [string, TypePolicy] => [type, { keyFields: false }]),
]);

/**
 * `new InMemoryCache(corkboardCacheConfig)`: `possibleTypes` (without them, Apollo
 * cannot match `... on Error` to a `VersionConflictError` and drops the error's
 * fields) and `corkboardTypePolicies`. Spread it to add your own options.
 */
export const corkboardCacheConfig: InMemoryCacheConfig = {
  possibleTypes: { ...possibleTypes },
  typePolicies: corkboardTypePolicies,
};

/** Whether a refetch reaches the server for this query (not cache-only, not on standby). */
const refetchable = (query: ObservableQuery<unknown>) =>
  query.options.fetchPolicy !== 'cache-only' && query.options.fetchPolicy !== 'standby';

/** Options of the Apollo binding. */
export interface ApolloLiveBoardOptions extends LiveBoardOptions {
  /**
   * The subscription to run through the client's link when no `source` is given: the
   * SDK's `BoardChanges` by default. A document of your own must select, under
   * `changed`, `__typename`, `id` and `version` of each type and every field your
   * queries read of boards, columns and cards (see the README's SDK section), and
   * `cardEdges { cursor node { id } }`.
   */
  document?: DocumentNode;
}

/** A `LiveBoardSource` over the client's own link (e.g. a `GraphQLWsLink` in a split). */
function linkSource(client: ApolloClient, document: DocumentNode): LiveBoardSource {
  return {
    boardChanges(boardId: string, options: BoardChangesOptions = {}) {
      return {
        [Symbol.asyncIterator]: () => {
          const pending: BoardChange[] = [];
          let wake: (() => void) | null = null;
          let ended = false;
          let failure: unknown = null;
          const variables: BoardChangesSubscriptionVariables = {
            boardId,
            ...(options.after != null ? { after: options.after } : {}),
          };
          const subscription = client
            .subscribe<BoardChangesSubscription>({
              query: document,
              variables,
              // The binding writes what it receives itself, version by version.
              fetchPolicy: 'no-cache',
            })
            .subscribe({
              next: (result) => {
                if (result.error) {
                  failure = result.error;
                  ended = true;
                } else if (result.data) pending.push(result.data.boardChanges);
                wake?.();
              },
              error: (error: unknown) => {
                failure = error;
                ended = true;
                wake?.();
              },
              complete: () => {
                ended = true;
                wake?.();
              },
            });
          const stop = () => {
            ended = true;
            subscription.unsubscribe();
            wake?.();
          };
          options.signal?.addEventListener('abort', stop, { once: true });
          return {
            async next(): Promise<IteratorResult<BoardChange, void>> {
              for (;;) {
                const change = pending.shift();
                if (change) return { done: false, value: change };
                if (failure !== null) {
                  const error = failure;
                  failure = null;
                  if (error instanceof Error) throw error;
                  // graphql-ws hands a subscription's GraphQL errors over as a plain list.
                  throw new CorkboardRequestError(JSON.stringify(error), {
                    operationName: 'BoardChanges',
                    errors: Array.isArray(error) ? (error as GraphQLFormattedError[]) : [],
                  });
                }
                if (ended || options.signal?.aborted) return { done: true, value: undefined };
                await new Promise<void>((resolve) => (wake = resolve));
                wake = null;
              }
            },
            async return(): Promise<IteratorResult<BoardChange, void>> {
              stop();
              options.signal?.removeEventListener('abort', stop);
              return { done: true, value: undefined };
            },
          };
        },
      };
    },
  };
}

/**
 * Keeps `client`'s cache fresh while the board changes.
 *
 * `liveBoard(client, boardId, options)` runs the `BoardChanges` subscription through
 * the client's own link (a `GraphQLWsLink`, e.g. in a `split` with the HTTP link: one
 * socket, auth configured once), starting from the server's `changeHead` (one small
 * query when it starts) so that queries sent after `ready` miss nothing, and skipping
 * changes it already applied when graphql-ws resubscribes after a drop.
 * `liveBoard(client, source, boardId, options)` reads the changes from `source`
 * instead (a `CorkboardClient`: its own socket, resumed from the last cursor).
 *
 * In `data` mode (the default), per change:
 * - each resource of `changed` is written with `cache.writeFragment`, unless the cache
 *   holds it at a newer version; a card is spliced by rank into the cached `cards`
 *   pages of its column and out of the others the change names (`cache.modify`), and
 *   into or out of the cached `archivedCards` of the columns whose archived cards the
 *   change names (see `updateArchivedList`), all in one broadcast;
 * - what it cannot update that way is refetched: a page the card leaves while it has a
 *   next page, a resource the change names but does not carry; on `resyncRequired`,
 *   every active query that reads the board, its columns or its cards.
 *
 * In `refetch` mode, per change: for each invalidated resource whose cached `version`
 * is lower, the named fields are invalidated and the active queries that read them
 * refetched, once per batch of changes (`client.refetchQueries` with `updateCache`).
 * `cache-only` and `standby` queries are never refetched.
 *
 * When the viewer loses access to the board (an owner removed them, they left), the
 * subscription ends: the binding clears the board, its columns and cards from the cache
 * (`forgetBoard`: `board(id:)` then reads null, and `boards` lists lose it) and `done`
 * rejects with a `BoardAccessEndedError` whose `reason` says why.
 */
export function liveBoard(
  client: ApolloClient,
  boardId: string,
  options?: ApolloLiveBoardOptions,
): LiveBoard;
export function liveBoard(
  client: ApolloClient,
  source: LiveBoardSource,
  boardId: string,
  options?: ApolloLiveBoardOptions,
): LiveBoard;
export function liveBoard(
  client: ApolloClient,
  sourceOrBoardId: LiveBoardSource | string,
  boardIdOrOptions?: string | ApolloLiveBoardOptions,
  maybeOptions?: ApolloLiveBoardOptions,
): LiveBoard {
  const viaLink = typeof sourceOrBoardId === 'string';
  const boardId = viaLink ? sourceOrBoardId : (boardIdOrOptions as string);
  const options =
    (viaLink ? (boardIdOrOptions as ApolloLiveBoardOptions | undefined) : maybeOptions) ?? {};
  const document = options.document ?? BoardChangesDocument;
  const source = viaLink ? linkSource(client, document) : sourceOrBoardId;
  const fragment = changedFragmentOf(viaLink ? document : BoardChangesDocument);

  /** The viewer's id, asked once (from the cache when a `Me` query is there). */
  let viewer: Promise<string | null> | undefined;
  const viewerId = () =>
    (viewer ??= client.query({ query: MeDocument }).then(
      ({ data }) => data?.me?.id ?? null,
      (error: unknown) => {
        viewer = undefined;
        options.onError?.(error);
        return null;
      },
    ));
  // Asked from the start, beside the change head, so the first change does not wait.
  if (options.mode !== 'refetch' && fragment) void viewerId();

  const cachedVersion = (invalidation: Invalidation): unknown => {
    const id = client.cache.identify({ __typename: invalidation.typename, id: invalidation.id });
    if (!id) return undefined;
    return client.cache.readFragment<{ version?: unknown }>({
      id,
      fragment: versionFragment(invalidation.typename),
    })?.version;
  };

  async function refetch(invalidate: (cache: ApolloClient['cache']) => void): Promise<number> {
    const refetched = client.refetchQueries({
      updateCache: invalidate,
      onQueryUpdated: (query) => refetchable(query),
    });
    await Promise.all(refetched.results);
    return refetched.queries.length;
  }

  const invalidateStale = async (invalidations: Invalidation[]) => {
    const stale = invalidations.filter((invalidation) =>
      isStale(cachedVersion(invalidation), invalidation),
    );
    if (stale.length === 0) return { stale, refetched: 0 };
    const refetched = await refetch((cache) => {
      for (const invalidation of stale) {
        const id = cache.identify({ __typename: invalidation.typename, id: invalidation.id });
        if (!id) continue;
        cache.modify({
          id,
          fields: Object.fromEntries(
            invalidation.fields.map((field) => [
              field,
              (_value: unknown, { INVALIDATE }: { INVALIDATE: unknown }) => INVALIDATE,
            ]),
          ),
        });
      }
    });
    return { stale, refetched };
  };

  /**
   * The newest version of each column the pushes wrote, watched in the cache. The
   * viewer's own mutation answer travels on another connection and carries its columns
   * (first cards, count, version) as read when it answered: landing after a newer push
   * of another member's change, it writes that older column over it. Seen (the cached
   * version falls below the pushed one), the column is refetched.
   */
  const pushedColumns = new Map<string, { version: number; stop: () => void }>();
  function watchColumns(changes: BoardChange[]) {
    for (const node of changes.flatMap((change) => change.changed ?? [])) {
      const version = (node as { version?: unknown }).version;
      if (node.__typename !== 'Column' || typeof version !== 'number') continue;
      const id = client.cache.identify({ __typename: 'Column', id: node.id });
      if (!id) continue;
      const known = pushedColumns.get(id);
      if (known) {
        known.version = Math.max(known.version, version);
        continue;
      }
      const entry = { version, stop: () => {}, repairing: false };
      const behind = () => {
        const cached = client.cache.readFragment<{ version?: unknown }>({
          id,
          fragment: versionFragment('Column'),
        })?.version;
        return typeof cached === 'number' && cached < entry.version;
      };
      const repair = async () => {
        // A refetch already in flight (read before the newer push) may answer the same
        // older column: read again until the cache holds what was pushed, a few times.
        for (let attempt = 0; attempt < 3 && behind(); attempt++) {
          await refetch((cache) => {
            cache.modify({ id, fields: (_value, { INVALIDATE }) => INVALIDATE });
          });
        }
      };
      const watch = client
        .watchFragment({ fragment: versionFragment('Column'), from: id })
        .subscribe(() => {
          if (entry.repairing || !behind()) return;
          entry.repairing = true;
          repair()
            .catch((error: unknown) => options.onError?.(error))
            .finally(() => (entry.repairing = false));
        });
      entry.stop = () => watch.unsubscribe();
    }
  }

  async function apply(changes: BoardChange[]): Promise<Omit<AppliedChanges, 'changes'>> {
    if (changes.some((change) => change.resyncRequired)) {
      const entities = boardEntities(client, boardId);
      const refetched = await refetch((cache) => {
        for (const id of entities) {
          cache.modify({ id, fields: (_value, { INVALIDATE }) => INVALIDATE });
        }
      });
      return { stale: [], refetched, resynced: true };
    }
    if (options.mode === 'refetch' || !fragment) {
      const { stale, refetched } = await invalidateStale(mergeInvalidations(changes));
      return { stale, refetched, resynced: false };
    }
    const pages = new Map<string, Set<string>>();
    const me = await viewerId();
    for (const change of changes) {
      for (const [id, fields] of writeChange(client.cache, change, fragment, me)) {
        const all = pages.get(id) ?? new Set<string>();
        fields.forEach((field) => all.add(field));
        pages.set(id, all);
      }
    }
    // Once written: the cache holds the pushed versions from here on.
    watchColumns(changes);
    const { stale, refetched } = await invalidateStale(
      mergeInvalidations(changes.map((change) => ({ ...change, invalidated: uncovered(change) }))),
    );
    let pageRefetches = 0;
    if (pages.size > 0) {
      pageRefetches = await refetch((cache) => {
        for (const [id, fields] of pages) {
          cache.modify({
            id,
            fields: (value: unknown, { storeFieldName, INVALIDATE }): unknown =>
              fields.has(storeFieldName) ? INVALIDATE : value,
          });
        }
      });
    }
    return { stale, refetched: refetched + pageRefetches, resynced: false };
  }

  const live = startLiveBoard(
    source,
    boardId,
    options,
    apply,
    viaLink
      ? async () => {
          const { data } = await client.query({
            query: ChangeHeadDocument,
            fetchPolicy: 'network-only',
          });
          return data?.changeHead ?? null;
        }
      : undefined,
    () => forgetBoard(client, boardId),
  );
  void live.done.catch(() => {}).finally(() => pushedColumns.forEach((column) => column.stop()));
  return live;
}
