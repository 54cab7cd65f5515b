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
import type { DocumentNode } from 'graphql';
import type { BoardChange } from './boardChanges.js';
import { embeddedTypes, nodeTypes, possibleTypes } from './cacheSchema.js';
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

export { possibleTypes };

/**
 * Type policies for Corkboard's schema:
 * - every `Node` (Board, Column, Card, User) is normalized by its global `id`;
 * - every other object type stays embedded in its parent (`keyFields: false`). That
 *   matters for `Invalidation` and `NotFoundError`, whose `id` names *another*
 *   resource: Apollo would otherwise normalize them as `Invalidation:<id>`.
 */
export const corkboardTypePolicies: TypePolicies = Object.fromEntries<TypePolicy>([
  ...nodeTypes.map((type): [string, TypePolicy] => [type, { keyFields: ['id'] }]),
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

/** `fragment _ on <Type> { version }`, built once per type, for reading cached versions. */
const versionFragments = new Map<string, DocumentNode>();
function versionFragment(typename: string): DocumentNode {
  let fragment = versionFragments.get(typename);
  if (!fragment) {
    const name = (value: string) => ({ kind: 'Name', value }) as const;
    fragment = {
      kind: 'Document',
      definitions: [
        {
          kind: 'FragmentDefinition',
          name: name('CorkboardCachedVersion'),
          typeCondition: { kind: 'NamedType', name: name(typename) },
          selectionSet: {
            kind: 'SelectionSet',
            selections: [{ kind: 'Field', name: name('version') }],
          },
        },
      ],
    } as DocumentNode;
    versionFragments.set(typename, fragment);
  }
  return fragment;
}

/** Whether the binding may refetch a query: not one that must never touch the network. */
const refetchable = (query: ObservableQuery<unknown>) =>
  query.options.fetchPolicy !== 'cache-only' && query.options.fetchPolicy !== 'standby';

/** The types whose entities belong to one board; a resync refetches what reads them. */
const BOARD_RESOURCE_TYPES: ReadonlySet<string> = new Set(['Board', 'Column', 'Card']);

/** Cache IDs of the board and every Column and Card reachable from it through references. */
function boardEntities(client: ApolloClient, boardId: string): string[] {
  const { cache } = client;
  const root = cache.identify({ __typename: 'Board', id: boardId });
  const store = cache.extract() as Record<string, Record<string, unknown> | undefined>;
  if (!root || !store[root]) return [];
  const seen = new Set<string>([root]);
  const pending = [root];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (typeof value !== 'object' || value === null) return;
    const ref = (value as { __ref?: unknown }).__ref;
    if (typeof ref === 'string') {
      const typename = store[ref]?.['__typename'];
      if (!seen.has(ref) && typeof typename === 'string' && BOARD_RESOURCE_TYPES.has(typename)) {
        seen.add(ref);
        pending.push(ref);
      }
      return;
    }
    Object.values(value).forEach(visit);
  };
  while (pending.length > 0) visit(store[pending.pop()!]);
  return [...seen];
}

/**
 * Keeps `client`'s cache fresh while the board changes: subscribes to the board's
 * changes through `source` (a `CorkboardClient`; resumed from its cursor after a
 * dropped connection, with no gap) and, per change:
 *
 * - for each invalidated resource whose cached `version` is lower than the
 *   invalidation's, invalidates exactly the fields it names (`cache.modify` with
 *   `INVALIDATE`), and refetches the active queries that read one of them, each
 *   once (`client.refetchQueries` with `updateCache`);
 * - skips resources the cache already holds at that version: the result of the
 *   viewer's own mutation, or of a refetch that already saw the change;
 * - on `resyncRequired`, refetches every active query that reads the board or one
 *   of its columns or cards.
 *
 * Changes that arrive while refetches are in flight are applied together once they
 * settle: a burst costs one refetch per affected query. `cache-only` and `standby`
 * queries are never refetched. A mutation whose result writes a resource at a new
 * version must select every field the change touched, or the cache keeps the old
 * value of the others (the SDK's mutations select the columns' first card page,
 * as the `Board` query does).
 */
export function liveBoard(
  client: ApolloClient,
  source: LiveBoardSource,
  boardId: string,
  options: LiveBoardOptions = {},
): LiveBoard {
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
    const stale = mergeInvalidations(changes).filter((invalidation) =>
      isStale(cachedVersion(invalidation), invalidation),
    );
    if (stale.length === 0) return { stale, refetched: 0, resynced: false };
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
    return { stale, refetched, resynced: false };
  }

  return startLiveBoard(source, boardId, options, apply);
}
