/**
 * Taking a board out of an Apollo Client cache: the board and every column and card
 * reachable from it, and the root fields that point at them.
 */
import type { ApolloClient, Reference } from '@apollo/client';

/** The types whose entities belong to one board; a resync refetches what reads them. */
const BOARD_RESOURCE_TYPES: ReadonlySet<string> = new Set(['Board', 'Column', 'Card']);

/** Cache IDs of the board and every Column and Card reachable from it through references. */
export function boardEntities(client: ApolloClient, boardId: string): string[] {
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

/** The argument `id` of a cached root field from its store name, e.g. `board({"id":"…"})`. */
function idArgumentOf(storeFieldName: string): unknown {
  const open = storeFieldName.indexOf('(');
  if (open < 0) return undefined;
  try {
    return (JSON.parse(storeFieldName.slice(open + 1, -1)) as { id?: unknown }).id;
  } catch {
    return undefined;
  }
}

/**
 * Clears a board the viewer can no longer see from `client`'s cache, in one broadcast:
 * evicts the board and every column and card reachable from it, sets the root fields
 * that point at them (`board(id:)`, `node(id:)`) to null, so that the queries reading
 * them read null from the cache with no request, and takes the board out of every
 * cached `boards` list. `liveBoard` calls it when its subscription ends with a
 * `BoardAccessEndedError`; an app that follows `boardChanges` itself calls it on that
 * error. Nothing else is collected (`cache.gc()` stays the app's choice).
 */
export function forgetBoard(client: ApolloClient, boardId: string): void {
  const { cache } = client;
  const entities = boardEntities(client, boardId);
  const store = cache.extract() as Record<string, { id?: unknown } | undefined>;
  const ids = new Set<unknown>([boardId, ...entities.map((entity) => store[entity]?.id)]);
  const boardRef = cache.identify({ __typename: 'Board', id: boardId });
  cache.batch({
    update: (cache) => {
      for (const id of entities) cache.evict({ id });
      cache.modify({
        id: 'ROOT_QUERY',
        fields: {
          boards: (value: unknown, { readField }): unknown =>
            Array.isArray(value)
              ? // By reference: the board is evicted already, so its id no longer reads.
                (value as Reference[]).filter(
                  (ref) => ref.__ref !== boardRef && readField<string>('id', ref) !== boardId,
                )
              : value,
          board: (value: unknown, { storeFieldName }): unknown =>
            idArgumentOf(storeFieldName) === boardId ? null : value,
          node: (value: unknown, { storeFieldName }): unknown =>
            ids.has(idArgumentOf(storeFieldName)) ? null : value,
        },
      });
    },
  });
}
