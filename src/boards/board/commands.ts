import { z } from 'zod';
import { defineCommand, written } from '../commandHandling/defineCommand.js';
import {
  BoardArchivedError,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
  ValidationError,
  VersionConflictError,
} from '../errors.js';
import { normalizeUsername } from '../streams.js';
import {
  expectedVersion,
  idempotencyKey,
  inputLimits,
  optionalResourceId,
  resourceId,
  text,
  username,
  wipLimit,
} from '../validation.js';
import { decideBoard } from './decide.js';
import type { BoardField } from './events.js';
import { initialBoardState } from './state.js';

/**
 * The expected failures of a member's versioned edit of a board, column or card
 * (`BoardArchivedError`: the board is archived, so read-only).
 */
export const memberEditErrors = [
  VersionConflictError,
  BoardArchivedError,
  NotFoundError,
  ForbiddenError,
  ValidationError,
  UnauthenticatedError,
] as const;

/** Creates a board owned by the caller, who is its first member. */
export const createBoard = defineCommand({
  name: 'createBoard',
  input: z.object({ name: text(inputLimits.boardNameMax), idempotencyKey }),
  errors: [ValidationError, UnauthenticatedError],
  load: async (session, { actorId }) => ({ user: await session.load('user', actorId) }),
  decide: ({ input, actorId }, { user }, context) => {
    if (user.state.status !== 'registered') {
      throw new UnauthenticatedError('The signed-in user does not exist');
    }
    const command = { type: 'CreateBoard', data: { actorId, name: input.name } } as const;
    return decideBoard(command, initialBoardState, context);
  },
  succeed: written({ board: 'board' }),
});

/** Renames a board. Owner only (`ForbiddenError` for other members). Sets `name`. */
export const renameBoard = defineCommand({
  name: 'renameBoard',
  input: z.object({
    boardId: resourceId('Board'),
    name: text(inputLimits.boardNameMax),
    expectedVersion,
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: async (session, { input }) => ({ board: await session.load('board', input.boardId) }),
  decide: ({ input: { boardId, name }, actorId }, { board }, context) =>
    decideBoard({ type: 'RenameBoard', data: { actorId, boardId, name } }, board.state, context),
  expectedVersion: { of: ({ board }) => board, sets: ['name'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/**
 * Adds the user holding `username` to the board. Owner only. `ValidationError` on
 * `input.username` when nobody has it or they are a member already. Sets `members`.
 */
export const addMember = defineCommand({
  name: 'addMember',
  input: z.object({ boardId: resourceId('Board'), username, expectedVersion, idempotencyKey }),
  errors: memberEditErrors,
  load: async (session, { input }) => {
    const [board, claim] = await Promise.all([
      session.load('board', input.boardId),
      session.load('username', normalizeUsername(input.username)),
    ]);
    return { board, claim };
  },
  decide: ({ input: { boardId, username }, actorId }, { board, claim }, context) => {
    const userId = claim.state.status === 'claimed' ? claim.state.userId : null;
    const data = { actorId, boardId, username, userId };
    return decideBoard({ type: 'AddMember', data }, board.state, context);
  },
  expectedVersion: { of: ({ board }) => board, sets: ['members'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/**
 * Adds a column to the board, after `afterColumnId` / before `beforeColumnId`
 * (both omitted: at the end). `expectedVersion` is the board's. Sets `columns`.
 */
export const addColumn = defineCommand({
  name: 'addColumn',
  input: z.object({
    boardId: resourceId('Board'),
    name: text(inputLimits.columnNameMax),
    wipLimit: wipLimit.describe('null or omitted = no limit.'),
    afterColumnId: optionalResourceId('Column').describe(
      'Insert after this column; omitted = at the end.',
    ),
    beforeColumnId: optionalResourceId('Column').describe('Insert before this column.'),
    expectedVersion: expectedVersion.describe("The board's version."),
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: async (session, { input }) => ({ board: await session.load('board', input.boardId) }),
  decide: ({ input, actorId }, { board }, context) => {
    const { boardId, name, afterColumnId, beforeColumnId } = input;
    const data = {
      actorId,
      boardId,
      name,
      wipLimit: input.wipLimit,
      afterColumnId,
      beforeColumnId,
    };
    return decideBoard({ type: 'AddColumn', data }, board.state, context);
  },
  expectedVersion: { of: ({ board }) => board, sets: ['columns'] satisfies BoardField[] },
  succeed: written({ column: 'column', board: 'board' }),
});

/**
 * Moves a column after `afterColumnId` / before `beforeColumnId` (both omitted: to
 * the end). `expectedVersion` is the BOARD's: the board owns the column order, and
 * only the board is written. Sets the board's `columns`.
 */
export const moveColumn = defineCommand({
  name: 'moveColumn',
  input: z.object({
    columnId: resourceId('Column'),
    afterColumnId: optionalResourceId('Column').describe(
      'Place after this column; omitted (and no beforeColumnId) = at the end.',
    ),
    beforeColumnId: optionalResourceId('Column'),
    expectedVersion: expectedVersion.describe(
      "The board's version: the board owns the column order.",
    ),
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: async (session, { input }) => {
    const column = await session.load('column', input.columnId);
    const board =
      column.state.status === 'active' ? await session.load('board', column.state.boardId) : null;
    return { board };
  },
  decide: ({ input, actorId }, { board }, context) => {
    const { columnId, afterColumnId, beforeColumnId } = input;
    const data = { actorId, columnId, afterColumnId, beforeColumnId };
    return decideBoard({ type: 'MoveColumn', data }, board?.state ?? initialBoardState, context);
  },
  expectedVersion: { of: ({ board }) => board, sets: ['columns'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/**
 * Archives a board. Owner only. The board becomes read-only (every write on it, its
 * columns and its cards answers `BoardArchivedError`) and leaves `boards` unless
 * `includeArchived: true`; its members can still read it and follow its changes.
 * `BoardArchivedError` when it is archived already. Sets `archived`.
 */
export const archiveBoard = defineCommand({
  name: 'archiveBoard',
  input: z.object({ boardId: resourceId('Board'), expectedVersion, idempotencyKey }),
  errors: memberEditErrors,
  load: async (session, { input }) => ({ board: await session.load('board', input.boardId) }),
  decide: ({ input: { boardId }, actorId }, { board }, context) =>
    decideBoard({ type: 'ArchiveBoard', data: { actorId, boardId } }, board.state, context),
  expectedVersion: { of: ({ board }) => board, sets: ['archived'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/**
 * Restores an archived board: writable again and back in `boards`. Owner only.
 * `ValidationError` on `input.boardId` when the board is not archived. Sets `archived`.
 */
export const restoreBoard = defineCommand({
  name: 'restoreBoard',
  input: z.object({ boardId: resourceId('Board'), expectedVersion, idempotencyKey }),
  errors: [
    VersionConflictError,
    NotFoundError,
    ForbiddenError,
    ValidationError,
    UnauthenticatedError,
  ],
  load: async (session, { input }) => ({ board: await session.load('board', input.boardId) }),
  decide: ({ input: { boardId }, actorId }, { board }, context) =>
    decideBoard({ type: 'RestoreBoard', data: { actorId, boardId } }, board.state, context),
  expectedVersion: { of: ({ board }) => board, sets: ['archived'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});
