import { builder } from '../graphql/builder.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId } from '../graphql/globalIds.js';
import { BoardRef, CardRef, ColumnRef, UserRef } from '../graphql/refs.js';
import type { CommandResult } from './commandHandling/results.js';
import {
  type DomainError,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
  UsernameTakenError,
  ValidationError,
  VersionConflictError,
  WipLimitReachedError,
} from './errors.js';
import type { BoardDoc, CardDoc, ColumnDoc, UserDoc } from './readModel.js';

/**
 * The contract's mutations. Each validates and decodes its input, runs the
 * command, waits (bounded) until the commit is projected, and answers from the
 * read documents, so the payload and the caller's next query reflect the write.
 * Expected failures are returned as members of the result union.
 */

const memberErrors = [
  VersionConflictError,
  NotFoundError,
  ForbiddenError,
  ValidationError,
  UnauthenticatedError,
];

/** Unwraps a command result: errors are thrown for the errors plugin to turn into data. */
async function committed<S extends { position: number | null }, E extends DomainError>(
  ctx: GraphQLContext,
  result: Promise<CommandResult<S, E>>,
): Promise<S> {
  const outcome = await result;
  if (!outcome.ok) throw outcome.error;
  if (outcome.value.position !== null) await ctx.settle(outcome.value.position);
  return outcome.value;
}

const viewerId = (ctx: GraphQLContext) => ctx.viewer?._id ?? null;
const options = (ctx: GraphQLContext) => ({ signal: ctx.signal });

async function mustRead<T>(read: Promise<T | null>, what: string): Promise<T> {
  const doc = await read;
  // The command succeeded and its commit is projected, so this is a bug or a timeout.
  if (!doc) throw new Error(`${what} not readable after its write`);
  return doc;
}
const readBoard = (ctx: GraphQLContext, id: string) =>
  mustRead<BoardDoc>(ctx.reads.board(id, viewerId(ctx)), `board ${id}`);
const readColumn = (ctx: GraphQLContext, id: string) =>
  mustRead<ColumnDoc>(ctx.reads.column(id, viewerId(ctx)), `column ${id}`);
const readCard = (ctx: GraphQLContext, id: string) =>
  mustRead<CardDoc>(ctx.reads.card(id, viewerId(ctx)), `card ${id}`);

/** Decodes an optional global ID argument; null and undefined pass through. */
const optionalId = (id: string | null | undefined, type: 'Column' | 'Card', field: string) =>
  id == null ? id : fromGlobalId(id, type, field);

// ------------------------------------------------------------------ registerUser

const RegisterUserInput = builder.inputType('RegisterUserInput', {
  fields: (t) => ({
    username: t.string({
      required: true,
      description: '3-32 of letters, digits, `_`, `.`, `-`; unique ignoring case.',
    }),
    displayName: t.string({ required: true }),
    idempotencyKey: t.string({
      description: 'Retrying with the same key returns the first result and writes nothing.',
    }),
  }),
});
const RegisterUserSuccess = builder
  .objectRef<{ user: UserDoc; token: string }>('RegisterUserSuccess')
  .implement({
    fields: (t) => ({
      user: t.field({ type: UserRef, resolve: (p) => p.user }),
      token: t.exposeString('token', {
        description: 'Send as `Authorization: Bearer <token>`. Shown once.',
      }),
    }),
  });

// ------------------------------------------------------------------ boards

const CreateBoardInput = builder.inputType('CreateBoardInput', {
  fields: (t) => ({ name: t.string({ required: true }), idempotencyKey: t.string() }),
});
const RenameBoardInput = builder.inputType('RenameBoardInput', {
  fields: (t) => ({
    boardId: t.id({ required: true }),
    name: t.string({ required: true }),
    expectedVersion: t.int({ required: true }),
    idempotencyKey: t.string(),
  }),
});
const AddMemberInput = builder.inputType('AddMemberInput', {
  fields: (t) => ({
    boardId: t.id({ required: true }),
    username: t.string({ required: true }),
    expectedVersion: t.int({ required: true }),
    idempotencyKey: t.string(),
  }),
});
const boardPayload = (name: string) =>
  builder.objectRef<{ board: BoardDoc }>(name).implement({
    fields: (t) => ({ board: t.field({ type: BoardRef, resolve: (p) => p.board }) }),
  });
const CreateBoardSuccess = boardPayload('CreateBoardSuccess');
const RenameBoardSuccess = boardPayload('RenameBoardSuccess');
const AddMemberSuccess = boardPayload('AddMemberSuccess');
const MoveColumnSuccess = boardPayload('MoveColumnSuccess');

// ------------------------------------------------------------------ columns

const AddColumnInput = builder.inputType('AddColumnInput', {
  fields: (t) => ({
    boardId: t.id({ required: true }),
    name: t.string({ required: true }),
    wipLimit: t.int({ description: 'null or omitted = no limit.' }),
    afterColumnId: t.id({ description: 'Insert after this column; omitted = at the end.' }),
    beforeColumnId: t.id({ description: 'Insert before this column.' }),
    expectedVersion: t.int({ required: true, description: "The board's version." }),
    idempotencyKey: t.string(),
  }),
});
const AddColumnSuccess = builder
  .objectRef<{ column: ColumnDoc; board: BoardDoc }>('AddColumnSuccess')
  .implement({
    fields: (t) => ({
      column: t.field({ type: ColumnRef, resolve: (p) => p.column }),
      board: t.field({ type: BoardRef, resolve: (p) => p.board }),
    }),
  });
const MoveColumnInput = builder.inputType('MoveColumnInput', {
  fields: (t) => ({
    columnId: t.id({ required: true }),
    afterColumnId: t.id({
      description: 'Place after this column; omitted (and no beforeColumnId) = at the end.',
    }),
    beforeColumnId: t.id(),
    expectedVersion: t.int({
      required: true,
      description: "The board's version: the board owns the column order.",
    }),
    idempotencyKey: t.string(),
  }),
});
const SetWipLimitInput = builder.inputType('SetWipLimitInput', {
  fields: (t) => ({
    columnId: t.id({ required: true }),
    wipLimit: t.int({ description: 'null = no limit.' }),
    expectedVersion: t.int({ required: true }),
    idempotencyKey: t.string(),
  }),
});
const SetWipLimitSuccess = builder
  .objectRef<{ column: ColumnDoc; merged: boolean }>('SetWipLimitSuccess')
  .implement({
    fields: (t) => ({
      column: t.field({ type: ColumnRef, resolve: (p) => p.column }),
      merged: t.exposeBoolean('merged', {
        description: 'true when merged over changes the client had not seen',
      }),
    }),
  });

// ------------------------------------------------------------------ cards

const AddCardInput = builder.inputType('AddCardInput', {
  fields: (t) => ({
    columnId: t.id({ required: true }),
    title: t.string({ required: true }),
    description: t.string(),
    afterCardId: t.id({
      description: 'Place right after this sibling; both omitted = at the end.',
    }),
    beforeCardId: t.id({ description: 'Place right before this sibling.' }),
    idempotencyKey: t.string(),
  }),
});
const AddCardSuccess = builder
  .objectRef<{ card: CardDoc; column: ColumnDoc }>('AddCardSuccess')
  .implement({
    fields: (t) => ({
      card: t.field({ type: CardRef, resolve: (p) => p.card }),
      column: t.field({ type: ColumnRef, resolve: (p) => p.column }),
    }),
  });
const EditCardInput = builder.inputType('EditCardInput', {
  description:
    'Only the fields given are changed. A stale expectedVersion still succeeds when no change since then touched any of the given fields (the edits merge); otherwise VersionConflictError.',
  fields: (t) => ({
    cardId: t.id({ required: true }),
    expectedVersion: t.int({ required: true }),
    title: t.string(),
    description: t.string(),
    assigneeId: t.id({ description: 'A member of the board; explicit null unassigns.' }),
    labels: t.stringList(),
    done: t.boolean(),
    idempotencyKey: t.string(),
  }),
});
const EditCardSuccess = builder
  .objectRef<{ card: CardDoc; merged: boolean }>('EditCardSuccess')
  .implement({
    fields: (t) => ({
      card: t.field({ type: CardRef, resolve: (p) => p.card }),
      merged: t.exposeBoolean('merged', {
        description: 'true when the edit was merged over changes the client had not seen',
      }),
    }),
  });
const MoveCardInput = builder.inputType('MoveCardInput', {
  fields: (t) => ({
    cardId: t.id({ required: true }),
    toColumnId: t.id({ required: true }),
    afterCardId: t.id(),
    beforeCardId: t.id(),
    expectedVersion: t.int({
      required: true,
      description: "The card's version as the client saw it.",
    }),
    idempotencyKey: t.string(),
  }),
});
const MoveCardSuccess = builder
  .objectRef<{ card: CardDoc; from: ColumnDoc; to: ColumnDoc }>('MoveCardSuccess')
  .implement({
    fields: (t) => ({
      card: t.field({ type: CardRef, resolve: (p) => p.card }),
      from: t.field({ type: ColumnRef, resolve: (p) => p.from }),
      to: t.field({ type: ColumnRef, resolve: (p) => p.to }),
    }),
  });
const ArchiveCardInput = builder.inputType('ArchiveCardInput', {
  fields: (t) => ({
    cardId: t.id({ required: true }),
    expectedVersion: t.int({ required: true }),
    idempotencyKey: t.string(),
  }),
});
const ArchiveCardSuccess = builder
  .objectRef<{ card: CardDoc; column: ColumnDoc }>('ArchiveCardSuccess')
  .implement({
    fields: (t) => ({
      card: t.field({ type: CardRef, resolve: (p) => p.card }),
      column: t.field({ type: ColumnRef, resolve: (p) => p.column }),
    }),
  });
const ArchiveDoneCardsInput = builder.inputType('ArchiveDoneCardsInput', {
  description: 'Archive every done card of a column, atomically.',
  fields: (t) => ({ columnId: t.id({ required: true }), idempotencyKey: t.string() }),
});
const ArchiveDoneCardsSuccess = builder
  .objectRef<{ column: ColumnDoc; archivedCount: number }>('ArchiveDoneCardsSuccess')
  .implement({
    fields: (t) => ({
      column: t.field({ type: ColumnRef, resolve: (p) => p.column }),
      archivedCount: t.exposeInt('archivedCount'),
    }),
  });

const union = (name: string) => ({ directResult: true as const, union: { name } });

builder.mutationType({
  description:
    'Every input may carry an idempotencyKey: retrying with the same key returns the first result and appends nothing new.',
  fields: (t) => ({
    registerUser: t.field({
      type: RegisterUserSuccess,
      errors: { types: [UsernameTakenError, ValidationError], ...union('RegisterUserResult') },
      args: { input: t.arg({ type: RegisterUserInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const done = await committed(
          ctx,
          ctx.services.commands.registerUser(null, input, options(ctx)),
        );
        const user = await mustRead(ctx.reads.users.load(done.user.id), `user ${done.user.id}`);
        return { user, token: done.token };
      },
    }),
    createBoard: t.field({
      type: CreateBoardSuccess,
      errors: { types: [ValidationError, UnauthenticatedError], ...union('CreateBoardResult') },
      args: { input: t.arg({ type: CreateBoardInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const done = await committed(
          ctx,
          ctx.services.commands.createBoard(viewerId(ctx), input, options(ctx)),
        );
        return { board: await readBoard(ctx, done.board.id) };
      },
    }),
    renameBoard: t.field({
      type: RenameBoardSuccess,
      errors: { types: memberErrors, ...union('RenameBoardResult') },
      args: { input: t.arg({ type: RenameBoardInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const boardId = fromGlobalId(input.boardId, 'Board', 'input.boardId');
        const done = await committed(
          ctx,
          ctx.services.commands.renameBoard(viewerId(ctx), { ...input, boardId }, options(ctx)),
        );
        return { board: await readBoard(ctx, done.board.id) };
      },
    }),
    addMember: t.field({
      type: AddMemberSuccess,
      errors: { types: memberErrors, ...union('AddMemberResult') },
      args: { input: t.arg({ type: AddMemberInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const boardId = fromGlobalId(input.boardId, 'Board', 'input.boardId');
        const done = await committed(
          ctx,
          ctx.services.commands.addMember(viewerId(ctx), { ...input, boardId }, options(ctx)),
        );
        return { board: await readBoard(ctx, done.board.id) };
      },
    }),
    addColumn: t.field({
      type: AddColumnSuccess,
      errors: { types: memberErrors, ...union('AddColumnResult') },
      args: { input: t.arg({ type: AddColumnInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const command = {
          ...input,
          boardId: fromGlobalId(input.boardId, 'Board', 'input.boardId'),
          afterColumnId: optionalId(input.afterColumnId, 'Column', 'input.afterColumnId'),
          beforeColumnId: optionalId(input.beforeColumnId, 'Column', 'input.beforeColumnId'),
        };
        const done = await committed(
          ctx,
          ctx.services.commands.addColumn(viewerId(ctx), command, options(ctx)),
        );
        return {
          column: await readColumn(ctx, done.column.id),
          board: await readBoard(ctx, done.board.id),
        };
      },
    }),
    moveColumn: t.field({
      type: MoveColumnSuccess,
      errors: { types: memberErrors, ...union('MoveColumnResult') },
      args: { input: t.arg({ type: MoveColumnInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const command = {
          ...input,
          columnId: fromGlobalId(input.columnId, 'Column', 'input.columnId'),
          afterColumnId: optionalId(input.afterColumnId, 'Column', 'input.afterColumnId'),
          beforeColumnId: optionalId(input.beforeColumnId, 'Column', 'input.beforeColumnId'),
        };
        const done = await committed(
          ctx,
          ctx.services.commands.moveColumn(viewerId(ctx), command, options(ctx)),
        );
        return { board: await readBoard(ctx, done.board.id) };
      },
    }),
    setWipLimit: t.field({
      type: SetWipLimitSuccess,
      errors: { types: memberErrors, ...union('SetWipLimitResult') },
      args: { input: t.arg({ type: SetWipLimitInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const columnId = fromGlobalId(input.columnId, 'Column', 'input.columnId');
        const done = await committed(
          ctx,
          ctx.services.commands.setWipLimit(viewerId(ctx), { ...input, columnId }, options(ctx)),
        );
        return { column: await readColumn(ctx, done.column.id), merged: done.merged };
      },
    }),
    addCard: t.field({
      type: AddCardSuccess,
      errors: {
        types: [
          WipLimitReachedError,
          NotFoundError,
          ForbiddenError,
          ValidationError,
          UnauthenticatedError,
        ],
        ...union('AddCardResult'),
      },
      args: { input: t.arg({ type: AddCardInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const command = {
          ...input,
          columnId: fromGlobalId(input.columnId, 'Column', 'input.columnId'),
          afterCardId: optionalId(input.afterCardId, 'Card', 'input.afterCardId'),
          beforeCardId: optionalId(input.beforeCardId, 'Card', 'input.beforeCardId'),
        };
        const done = await committed(
          ctx,
          ctx.services.commands.addCard(viewerId(ctx), command, options(ctx)),
        );
        return {
          card: await readCard(ctx, done.card.id),
          column: await readColumn(ctx, done.column.id),
        };
      },
    }),
    editCard: t.field({
      type: EditCardSuccess,
      errors: { types: memberErrors, ...union('EditCardResult') },
      args: { input: t.arg({ type: EditCardInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const command = {
          ...input,
          cardId: fromGlobalId(input.cardId, 'Card', 'input.cardId'),
          ...(input.assigneeId !== undefined
            ? {
                assigneeId:
                  input.assigneeId === null
                    ? null
                    : fromGlobalId(input.assigneeId, 'User', 'input.assigneeId'),
              }
            : {}),
        };
        const done = await committed(
          ctx,
          ctx.services.commands.editCard(viewerId(ctx), command, options(ctx)),
        );
        return { card: await readCard(ctx, done.card.id), merged: done.merged };
      },
    }),
    moveCard: t.field({
      type: MoveCardSuccess,
      errors: {
        types: [
          VersionConflictError,
          WipLimitReachedError,
          NotFoundError,
          ForbiddenError,
          ValidationError,
          UnauthenticatedError,
        ],
        ...union('MoveCardResult'),
      },
      args: { input: t.arg({ type: MoveCardInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const command = {
          ...input,
          cardId: fromGlobalId(input.cardId, 'Card', 'input.cardId'),
          toColumnId: fromGlobalId(input.toColumnId, 'Column', 'input.toColumnId'),
          afterCardId: optionalId(input.afterCardId, 'Card', 'input.afterCardId'),
          beforeCardId: optionalId(input.beforeCardId, 'Card', 'input.beforeCardId'),
        };
        const done = await committed(
          ctx,
          ctx.services.commands.moveCard(viewerId(ctx), command, options(ctx)),
        );
        return {
          card: await readCard(ctx, done.card.id),
          from: await readColumn(ctx, done.from.id),
          to: await readColumn(ctx, done.to.id),
        };
      },
    }),
    archiveCard: t.field({
      type: ArchiveCardSuccess,
      errors: { types: memberErrors, ...union('ArchiveCardResult') },
      args: { input: t.arg({ type: ArchiveCardInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const cardId = fromGlobalId(input.cardId, 'Card', 'input.cardId');
        const done = await committed(
          ctx,
          ctx.services.commands.archiveCard(viewerId(ctx), { ...input, cardId }, options(ctx)),
        );
        return {
          card: await readCard(ctx, done.card.id),
          column: await readColumn(ctx, done.column.id),
        };
      },
    }),
    archiveDoneCards: t.field({
      type: ArchiveDoneCardsSuccess,
      errors: {
        types: [NotFoundError, ForbiddenError, UnauthenticatedError, ValidationError],
        ...union('ArchiveDoneCardsResult'),
      },
      args: { input: t.arg({ type: ArchiveDoneCardsInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const columnId = fromGlobalId(input.columnId, 'Column', 'input.columnId');
        const done = await committed(
          ctx,
          ctx.services.commands.archiveDoneCards(
            viewerId(ctx),
            { ...input, columnId },
            options(ctx),
          ),
        );
        return { column: await readColumn(ctx, done.column.id), archivedCount: done.archivedCount };
      },
    }),
  }),
});
