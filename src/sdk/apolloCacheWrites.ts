/**
 * Writing a board change's data into Apollo's cache: the carried nodes (never older over
 * newer) and the carried cards spliced into the cached pages of their columns.
 */
import type { ApolloCache, Reference } from '@apollo/client';
import {
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { BoardChange } from './boardChanges.js';
import { updateBoardList, type BoardListArguments, type CachedBoard } from './boardLists.js';
import {
  archivedListsNamed,
  carriesArchivedCards,
  updateArchivedList,
  type CarriedCard,
} from './archivedLists.js';
import { splicePage, type CachedEdge, type PageArguments } from './cardPages.js';
import { viewerRoleOf } from './viewerRole.js';

const versionFragments = new Map<string, DocumentNode>();
/** A fragment reading a cached `typename`'s `version`. */
export function versionFragment(typename: string): DocumentNode {
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
/** The `changed` selection of a BoardChanges document, as a fragment to write nodes with. */
const changedFragments = new WeakMap<DocumentNode, DocumentNode | null>();
const CHANGED_FRAGMENT = 'CorkboardChanged';
export function changedFragmentOf(document: DocumentNode): DocumentNode | null {
  let fragment = changedFragments.get(document);
  if (fragment !== undefined) return fragment;
  let selectionSet: SelectionSetNode | undefined;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const root = definition.selectionSet.selections.find(
      (s): s is FieldNode => s.kind === Kind.FIELD && s.name.value === 'boardChanges',
    );
    const changed = root?.selectionSet?.selections.find(
      (s): s is FieldNode => s.kind === Kind.FIELD && s.name.value === 'changed' && !s.alias,
    );
    selectionSet = changed?.selectionSet;
  }
  fragment = selectionSet
    ? {
        kind: Kind.DOCUMENT,
        definitions: [
          {
            kind: Kind.FRAGMENT_DEFINITION,
            name: { kind: Kind.NAME, value: CHANGED_FRAGMENT },
            typeCondition: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'Node' } },
            selectionSet,
          } satisfies FragmentDefinitionNode,
          ...document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION),
        ],
      }
    : null;
  changedFragments.set(document, fragment);
  return fragment;
}

/** What the binding reads of a cached card to place it. */
const PLACEMENT = {
  kind: Kind.DOCUMENT,
  definitions: [
    {
      kind: Kind.FRAGMENT_DEFINITION,
      name: { kind: Kind.NAME, value: 'CorkboardPlacement' },
      typeCondition: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'Card' } },
      selectionSet: {
        kind: Kind.SELECTION_SET,
        selections: ['version', 'rank', 'archived'].map((name) => ({
          kind: Kind.FIELD,
          name: { kind: Kind.NAME, value: name },
        })),
      },
    },
  ],
} as DocumentNode;

interface ApolloConnection {
  __typename?: string;
  edges?: { __typename?: string; cursor: string; node: Reference }[];
  pageInfo?: { hasNextPage?: boolean; endCursor?: string | null } & Record<string, unknown>;
}

/** The arguments of a cached field from its store name, e.g. `cards({"first":100})`. */
function argumentsOf<A>(storeFieldName: string, fieldName: string): Partial<A> | null {
  if (storeFieldName === fieldName) return {};
  const json = storeFieldName.slice(fieldName.length + 1, -1);
  try {
    return JSON.parse(json) as Partial<A>;
  } catch {
    return null;
  }
}

/** Adds `field` of the entity `id` to what a change could not bring up to date. */
function refetchLater(refetch: Map<string, Set<string>>, id: string, field: string): void {
  const fields = refetch.get(id) ?? new Set<string>();
  fields.add(field);
  refetch.set(id, fields);
}

/**
 * Brings every cached `Query.boards` list in step with the boards the change carries
 * (as the cache now holds them): an archived board leaves the lists that leave archived
 * boards out, a restored one comes back in its place.
 */
function updateBoardLists(
  cache: ApolloCache,
  change: BoardChange,
  refetch: Map<string, Set<string>>,
): void {
  for (const node of change.changed) {
    if (node.__typename !== 'Board') continue;
    const id = cache.identify(node);
    if (!id) continue;
    cache.modify({
      id: 'ROOT_QUERY',
      fields: {
        boards(value: unknown, { storeFieldName, readField, toReference }): unknown {
          const args = argumentsOf<BoardListArguments>(storeFieldName, 'boards');
          if (!Array.isArray(value) || !args) return value;
          const board = toReference(id)!;
          const archived = readField<boolean>('archived', board);
          if (typeof archived !== 'boolean') return value;
          const entries: CachedBoard<Reference>[] = (value as Reference[]).map((ref) => ({
            ref,
            id: readField<string>('id', ref) ?? '',
            createdAt: readField<string>('createdAt', ref),
          }));
          const update = updateBoardList(entries, args, {
            id: node.id,
            archived,
            createdAt: readField<string>('createdAt', board),
            make: () => board,
          });
          if (update.kind === 'refetch') refetchLater(refetch, 'ROOT_QUERY', storeFieldName);
          return update.kind === 'updated' ? update.refs : value;
        },
      },
    });
  }
}

/**
 * Brings every cached `Column.archivedCards` list of the columns whose `archivedCards`
 * the change names in step with the change's cards (as the cache now holds them): see
 * `updateArchivedList`.
 */
function updateArchivedLists(
  cache: ApolloCache,
  change: BoardChange,
  refetch: Map<string, Set<string>>,
): void {
  const columns = archivedListsNamed(change);
  if (columns.length === 0) return;
  const complete = carriesArchivedCards(change);
  const cards = change.changed.filter((node) => node.__typename === 'Card');
  for (const columnId of columns) {
    const columnRef = cache.identify({ __typename: 'Column', id: columnId });
    if (!columnRef) continue;
    cache.modify({
      id: columnRef,
      fields: {
        archivedCards(value: unknown, { storeFieldName, readField, toReference }): unknown {
          const args = argumentsOf<{ first?: number | null }>(storeFieldName, 'archivedCards');
          if (!Array.isArray(value)) return value;
          const carried = cards.flatMap((node): CarriedCard<Reference>[] => {
            const ref = cache.identify(node);
            const card = ref ? toReference(ref) : undefined;
            if (!card) return [];
            const archived = readField<boolean>('archived', card);
            const column = readField<Reference>('column', card);
            return [
              {
                id: node.id,
                archived: typeof archived === 'boolean' ? archived : undefined,
                columnId: column ? readField<string>('id', column) : undefined,
                make: () => card,
              },
            ];
          });
          const entries = (value as Reference[]).map((ref) => ({
            ref,
            id: readField<string>('id', ref) ?? '',
          }));
          const update =
            complete && args
              ? updateArchivedList(entries, args, columnId, carried)
              : { kind: 'refetch' as const };
          if (update.kind === 'refetch') refetchLater(refetch, columnRef, storeFieldName);
          return update.kind === 'updated' ? update.refs : value;
        },
      },
    });
  }
}

/**
 * Writes one change's data into Apollo's cache, in one broadcast: each carried node
 * (unless the cache holds it at a newer version), then each carried card spliced into
 * and out of the cached pages of the columns whose cards the change names. A carried
 * board's cached `viewerRole` (the push leaves it out) is derived from its `memberships`
 * and `viewerId` (null: unknown, left as cached). Returns the fields it could not bring up
 * to date, by cache ID, for a refetch.
 */
export function writeChange(
  cache: ApolloCache,
  change: BoardChange,
  fragment: DocumentNode,
  viewerId: string | null,
): Map<string, Set<string>> {
  const refetch = new Map<string, Set<string>>();
  const cachedVersion = (id: string, typename: string) =>
    cache.readFragment<{ version?: unknown }>({ id, fragment: versionFragment(typename) })?.version;
  cache.batch({
    update: (cache) => {
      const placed: { id: string; ref: string; edge: { cursor: string } | null }[] = [];
      for (const node of change.changed) {
        const id = cache.identify(node);
        if (!id) continue;
        const version = (node as { version?: number }).version;
        const cached = cachedVersion(id, node.__typename);
        // Never older over newer (a refetch or a mutation result may have seen more).
        const stale = typeof cached === 'number' && typeof version === 'number' && cached > version;
        if (!stale) {
          cache.writeFragment({ id, fragment, fragmentName: CHANGED_FRAGMENT, data: node });
          const role = viewerId === null ? undefined : viewerRoleOf(node, viewerId);
          // Only where a query cached it: modify adds no field.
          if (role !== undefined) cache.modify({ id, fields: { viewerRole: () => role } });
        }
        if (node.__typename !== 'Card' || stale) continue;
        const edge = change.cardEdges.find((e) => e.node.id === node.id) ?? null;
        placed.push({ id: node.id, ref: id, edge: edge && { cursor: edge.cursor } });
      }
      updateBoardLists(cache, change, refetch);
      updateArchivedLists(cache, change, refetch);
      if (placed.length === 0) return;
      const columns = change.invalidated.filter(
        (i) => i.typename === 'Column' && i.fields.includes('cards'),
      );
      for (const column of columns) {
        const columnRef = cache.identify({ __typename: 'Column', id: column.id });
        if (!columnRef) continue;
        cache.modify({
          id: columnRef,
          fields: {
            cards(value: unknown, { storeFieldName, readField, toReference }): unknown {
              let page = value as ApolloConnection;
              const args = argumentsOf<PageArguments>(storeFieldName, 'cards');
              if (!page?.edges || !args) return page;
              for (const card of placed) {
                const data = cache.readFragment<{ rank?: string; archived?: boolean }>({
                  id: card.ref,
                  fragment: PLACEMENT,
                });
                const columnOfCard = readField<Reference>('column', toReference(card.ref));
                const here =
                  card.edge !== null &&
                  data?.archived === false &&
                  typeof data.rank === 'string' &&
                  columnOfCard?.__ref === columnRef;
                const edges: CachedEdge<NonNullable<ApolloConnection['edges']>[number]>[] =
                  page.edges!.map((edge) => ({
                    edge,
                    id: readField<string>('id', edge.node) ?? '',
                    rank: readField<string>('rank', edge.node),
                  }));
                const cursor = card.edge?.cursor;
                const splice = splicePage(edges, page.pageInfo?.hasNextPage === true, args, {
                  id: card.id,
                  edge:
                    here && cursor !== undefined
                      ? {
                          rank: data.rank!,
                          make: () => ({
                            __typename: 'CardEdge',
                            cursor,
                            node: toReference(card.ref)!,
                          }),
                        }
                      : null,
                });
                if (splice.kind === 'refetch') {
                  refetchLater(refetch, columnRef, storeFieldName);
                  return page;
                }
                if (splice.kind === 'spliced') {
                  page = {
                    ...page,
                    edges: splice.edges,
                    pageInfo: page.pageInfo && {
                      ...page.pageInfo,
                      hasNextPage: splice.hasNextPage,
                      endCursor: splice.edges.at(-1)?.cursor ?? null,
                      ...('startCursor' in page.pageInfo
                        ? { startCursor: splice.edges[0]?.cursor ?? null }
                        : {}),
                    },
                  };
                }
              }
              return page;
            },
          },
        });
      }
    },
  });
  return refetch;
}
