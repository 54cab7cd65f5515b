import type { BoardDoc, CardDoc, ColumnDoc, UserDoc } from '../boards/readModel.js';
import { committedDoc, committedDocPosition } from '../boards/committedDocs.js';
import { andThen, type MaybePromise } from '../boards/reads.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { VersionedInterface } from './versioned.js';

/**
 * References to the node types, declared apart from their implementations (in
 * src/boards/<aggregate>/graphql.ts) so that types can point at each other
 * without import cycles.
 */
export const UserRef = builder.objectRef<UserDoc>('User');
export const BoardRef = builder.objectRef<BoardDoc>('Board');
export const ColumnRef = builder.objectRef<ColumnDoc>('Column');
export const CardRef = builder.objectRef<CardDoc>('Card');

/**
 * What a node type's `loadMany` hands Pothos: a shallow copy of each read document,
 * because Pothos brands what `node(id:)` loads with its type (a property it adds) and
 * the memory store hands out frozen documents.
 */
export async function brandable<T extends object>(docs: Promise<(T | null)[]>) {
  return (await docs).map((doc) => (doc ? { ...doc } : null));
}

/** The caller's user id; null when anonymous. */
export const viewerIdOf = (ctx: GraphQLContext): string | null => ctx.viewer?._id ?? null;

/** The read document of each node type by raw id, as the caller may see it (else null). */
export const readNode: {
  readonly [T in keyof NodeDocs]: (
    ctx: GraphQLContext,
    id: string,
  ) => MaybePromise<NodeDocs[T] | null>;
} = {
  User: (ctx, id) => ctx.reads.users.load(id),
  Board: (ctx, id) => ctx.reads.board(id, viewerIdOf(ctx)),
  Column: (ctx, id) => ctx.reads.column(id, viewerIdOf(ctx)),
  Card: (ctx, id) => ctx.reads.card(id, viewerIdOf(ctx)),
};

/** The read document behind each node type. */
interface NodeDocs {
  User: UserDoc;
  Board: BoardDoc;
  Column: ColumnDoc;
  Card: CardDoc;
}

/**
 * What the node types of a board's resources (Board, Column, Card) share: `Versioned`,
 * the global ID from the document's `_id`, and `node(id:)` loading as the caller may see.
 */
export function boardResourceNode<T extends 'Board' | 'Column' | 'Card'>(type: T) {
  return {
    interfaces: [VersionedInterface],
    id: { resolve: (doc: NodeDocs[T]) => doc._id },
    loadMany: (ids: readonly string[], ctx: GraphQLContext) =>
      brandable(Promise.all(ids.map(async (id) => readNode[type](ctx, id)))),
  };
}

const holderRefs = { Board: BoardRef, Column: ColumnRef } as const;

/**
 * A Column's or Card's field that names the board or column holding it (`idOf` reads its
 * raw id from the document): read as the caller may see it, at once (no promise) when
 * the request has read it already, as a board query has for everything it shows. Never
 * null: whoever could read the document can read its holder. The one document a caller
 * may hold without reading its holder is a mutation's payload built from its committed
 * events after its author lost access to the board (`committedDoc`): its holder is then
 * built from the events too, as of the same commit (nothing newer reaches them). Any
 * other absent holder is a bug.
 */
export function holderField<T extends keyof typeof holderRefs, D extends { _id: string }>(
  type: T,
  idOf: (doc: D) => string,
) {
  return {
    type: holderRefs[type],
    resolve: (doc: D, _args: object, ctx: GraphQLContext) =>
      andThen(
        readNode[type](ctx, idOf(doc)),
        (holder) => holder ?? committedHolder(ctx, type, idOf(doc), doc),
      ),
  };
}

async function committedHolder<T extends keyof typeof holderRefs>(
  ctx: GraphQLContext,
  type: T,
  id: string,
  held: { _id: string },
): Promise<NodeDocs[T]> {
  const position = committedDocPosition(held);
  const holder =
    position === undefined
      ? null
      : await committedDoc(ctx.services.store, type, id, ctx.signal, { position });
  if (!holder) throw new Error(`${type} ${id} holding ${held._id} not readable`);
  return holder;
}

/**
 * Whether `doc` was built from committed events (`committedDoc`) for a caller who cannot
 * read its board now: a mutation's payload, or its replay, after its author lost access.
 * What hangs off it (a column's cards, a board's columns, history) then shows nothing of
 * the board as it is now, so nothing after their access ended reaches them. At once
 * (false) for every document read from the read model.
 */
export function detachedFromBoard(
  ctx: GraphQLContext,
  doc: object,
  boardId: string,
): MaybePromise<boolean> {
  if (committedDocPosition(doc) === undefined) return false;
  return andThen(ctx.reads.board(boardId, viewerIdOf(ctx)), (board) => board === null);
}
