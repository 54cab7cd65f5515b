/**
 * A read model declared in one place: its documents' collection, the indexes its queries
 * need, the queries themselves and the projection that writes it. Storage indexes, the
 * runtime's projection list and the index test are derived from these declarations.
 */
import type { RecordedEvent } from '../eventstore/types.js';
import type {
  FindOptions,
  Projection,
  ReadCollection,
  ReadDoc,
  ReadFilter,
  ReadIndex,
  ReadIndexes,
  ReadView,
} from './types.js';

/** One query shape of a read model: the filter it sends for its argument, its sort and limit. */
export interface ReadQuery<A> {
  filter: (arg: A) => ReadFilter;
  sort?: FindOptions['sort'];
  limit?: number;
}

/** A read model: see {@link defineReadModel}. */
export interface ReadModel<
  D extends ReadDoc = ReadDoc,
  C extends string = string,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  Q extends Record<string, ReadQuery<any>> = Record<string, ReadQuery<any>>,
> {
  /** Its projection's name (status, errors, lag). */
  readonly name: string;
  /** The collection of its documents, in every generation. */
  readonly collection: C;
  /** Secondary indexes: one per sorted query shape (see `test/unit/readModelIndexes`). */
  readonly indexes: readonly ReadIndex[];
  readonly queries: Q;
  readonly projection: Projection;
  /** Its documents in `view`. */
  documents(view: ReadView): ReadCollection<D>;
}

/** What {@link defineReadModel} takes. */
export interface ReadModelDefinition<D extends ReadDoc, C extends string, Q> {
  name: string;
  collection: C;
  /** @default none */
  indexes?: readonly ReadIndex[];
  /** @default none */
  queries?: Q;
  /** The projection, without its name (the read model's) and its `documentIds`. */
  projection: Omit<Projection, 'name' | 'documentIds'>;
  /**
   * The ids of its documents that the projection updates for an event, when the event
   * tells them (see `Projection.documentIds`). @default none
   */
  documentIds?: (event: RecordedEvent) => readonly string[];
  /** Only here to fix `D`: pass `docType<CardDoc>()`. */
  doc: DocType<D>;
}

/** A type witness: `doc: docType<CardDoc>()` tells `defineReadModel` what its documents are. */
export type DocType<D> = { readonly type?: D };
export const docType = <D extends ReadDoc>(): DocType<D> => ({});

/**
 * Declares a read model.
 *
 * @example
 * export const cardReadModel = defineReadModel({
 *   name: 'cards', collection: 'cards', doc: docType<CardDoc>(),
 *   indexes: [{ key: { boardId: 1, archived: 1, rank: 1, _id: 1 } }],
 *   queries: { liveOfBoard: { filter: (boardId: string) => ({ boardId, archived: false }), sort: ['rank', 1] } },
 *   projection: { handles: [...], apply: async (context) => { ... } },
 * });
 */
export function defineReadModel<
  D extends ReadDoc,
  const C extends string,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  Q extends Record<string, ReadQuery<any>> = Record<never, never>,
>(definition: ReadModelDefinition<D, C, Q>): ReadModel<D, C, Q> {
  const { name, collection } = definition;
  return {
    name,
    collection,
    indexes: definition.indexes ?? [],
    queries: definition.queries ?? ({} as Q),
    projection: {
      name,
      ...definition.projection,
      ...(definition.documentIds && {
        documentIds: { collection, of: definition.documentIds },
      }),
    },
    documents: (view) => view.collection<D>(collection),
  };
}

/** Runs one of `model`'s queries on `view`. */
export function runQuery<D extends ReadDoc, A>(
  view: ReadView,
  model: ReadModel<D>,
  query: ReadQuery<A>,
  arg: A,
  signal?: AbortSignal,
): Promise<D[]> {
  return view.collection<D>(model.collection).find(query.filter(arg), {
    ...(query.sort && { sort: query.sort }),
    ...(query.limit !== undefined && { limit: query.limit }),
    ...(signal && { signal }),
  });
}

/** The secondary indexes of these read models, by collection. */
export function readModelIndexesOf(models: readonly ReadModel[]): ReadIndexes {
  return Object.fromEntries(
    models.filter((m) => m.indexes.length > 0).map((m) => [m.collection, m.indexes]),
  );
}

/**
 * The projections of these read models, in the order given, after checking that every
 * projection comes after those it declares it reads (`Projection.after`) and that names and
 * collections are unique. Throws naming the first misplaced one.
 */
export function projectionsOf(models: readonly ReadModel[]): Projection[] {
  const seen = new Set<string>();
  const collections = new Set<string>();
  for (const { projection, collection } of models) {
    if (seen.has(projection.name)) throw new Error(`read model ${projection.name} declared twice`);
    if (collections.has(collection))
      throw new Error(`collection ${collection} has two read models`);
    for (const before of projection.after ?? []) {
      if (!seen.has(before)) {
        throw new Error(
          `projection ${projection.name} reads ${before}, which must be applied before it`,
        );
      }
    }
    seen.add(projection.name);
    collections.add(collection);
  }
  return models.map((m) => m.projection);
}
