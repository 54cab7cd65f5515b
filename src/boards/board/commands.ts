import { z } from 'zod';
import { defineCommand, written } from '../commandHandling/defineCommand.js';
import type { LoadSession } from '../commandHandling/loadSession.js';
import {
  BoardArchivedError,
  ForbiddenError,
  LastOwnerError,
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
  placement,
  resourceId,
  text,
  username,
  wipLimit,
} from '../validation.js';
import {
  accessOf,
  BoardRole,
  boardRoles,
  loadBoardAccess,
  membershipId,
  noAccess,
  type LoadedBoardAccess,
} from './access.js';
import { decideBoard } from './decide.js';
import type { BoardField } from './events.js';

/** A board role as a command input. */
const role = z.enum(boardRoles as [BoardRole, ...BoardRole[]]);

/**
 * The board and the actor's access (see `loadBoardAccess`), and the membership stream of
 * the member a command changes (`userId`), so its new event goes at the version read.
 */
async function loadMemberChange(
  session: LoadSession,
  boardId: string,
  actorId: string,
  userId: string,
): Promise<LoadedBoardAccess> {
  const [access] = await Promise.all([
    loadBoardAccess(session, boardId, actorId),
    session.load('membership', membershipId(boardId, userId)),
  ]);
  return access;
}

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
    return decideBoard(command, noAccess, context);
  },
  succeed: written({ board: 'board' }),
});

/** Renames a board. Owners only (`ForbiddenError` for other members). Sets `name`. */
export const renameBoard = defineCommand({
  name: 'renameBoard',
  input: z.object({
    boardId: resourceId('Board'),
    name: text(inputLimits.boardNameMax),
    expectedVersion,
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: (session, { input, actorId }) => loadBoardAccess(session, input.boardId, actorId),
  decide: ({ input: { boardId, name }, actorId }, loaded, context) =>
    decideBoard(
      { type: 'RenameBoard', data: { actorId, boardId, name } },
      accessOf(loaded),
      context,
    ),
  expectedVersion: { of: ({ board }) => board, sets: ['name'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/**
 * Adds the user holding `username` to the board with `role` (default `EDITOR`). Owners
 * only. `ValidationError` on `input.username` when nobody has it or they are a member
 * already, on `input.boardId` when the board has `MAX_BOARD_MEMBERS` members. Sets
 * `members`, `memberships` (and the new member's `viewerRole`).
 */
export const addMember = defineCommand({
  name: 'addMember',
  input: z.object({
    boardId: resourceId('Board'),
    username,
    role: role.default(BoardRole.Editor).describe('Omitted: EDITOR.'),
    expectedVersion,
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: async (session, { input, actorId }) => {
    const [access, claim] = await Promise.all([
      loadBoardAccess(session, input.boardId, actorId),
      session.load('username', normalizeUsername(input.username)),
    ]);
    const userId = claim.state.status === 'claimed' ? claim.state.userId : null;
    // Read so that its new event goes at the version read.
    if (userId !== null) await session.load('membership', membershipId(input.boardId, userId));
    return { ...access, userId };
  },
  decide: ({ input: { boardId, username, role }, actorId }, loaded, context) => {
    const data = { actorId, boardId, username, userId: loaded.userId, role };
    return decideBoard({ type: 'AddMember', data }, accessOf(loaded), context);
  },
  expectedVersion: { of: ({ board }) => board, sets: ['members'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/**
 * Gives a member another role. Owners only. `LastOwnerError` when it would leave the board
 * without an owner; `ValidationError` on `input.userId` for a non-member, on `input.role`
 * when it is their role already. Sets `memberships` (and that member's `viewerRole`).
 */
export const setMemberRole = defineCommand({
  name: 'setMemberRole',
  input: z.object({
    boardId: resourceId('Board'),
    userId: resourceId('User'),
    role,
    expectedVersion,
    idempotencyKey,
  }),
  errors: [...memberEditErrors, LastOwnerError],
  load: (session, { input, actorId }) =>
    loadMemberChange(session, input.boardId, actorId, input.userId),
  decide: ({ input: { boardId, userId, role }, actorId }, loaded, context) =>
    decideBoard(
      { type: 'SetMemberRole', data: { actorId, boardId, userId, role } },
      accessOf(loaded),
      context,
    ),
  expectedVersion: { of: ({ board }) => board, sets: ['memberships'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/**
 * Removes a member from the board: owners remove anyone, any member removes themselves
 * (leaves). The removed member's access ends with this commit: their writes committed
 * after it fail, their reads and subscriptions of the board end (see the README). A board
 * never loses its last owner (`LastOwnerError`). Sets `members`, `memberships`.
 */
export const removeMember = defineCommand({
  name: 'removeMember',
  input: z.object({
    boardId: resourceId('Board'),
    userId: resourceId('User').describe('The member to remove; your own id to leave the board.'),
    expectedVersion,
    idempotencyKey,
  }),
  errors: [...memberEditErrors, LastOwnerError],
  load: (session, { input, actorId }) =>
    loadMemberChange(session, input.boardId, actorId, input.userId),
  decide: ({ input: { boardId, userId }, actorId }, loaded, context) =>
    decideBoard(
      { type: 'RemoveMember', data: { actorId, boardId, userId } },
      accessOf(loaded),
      context,
    ),
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
    afterColumnId: placement('Column').after,
    beforeColumnId: placement('Column').before,
    expectedVersion: expectedVersion.describe("The board's version."),
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: (session, { input, actorId }) => loadBoardAccess(session, input.boardId, actorId),
  decide: ({ input, actorId }, loaded, context) => {
    const { boardId, name, afterColumnId, beforeColumnId } = input;
    const data = {
      actorId,
      boardId,
      name,
      wipLimit: input.wipLimit,
      afterColumnId,
      beforeColumnId,
    };
    return decideBoard({ type: 'AddColumn', data }, accessOf(loaded), context);
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
    afterColumnId: placement('Column').after,
    beforeColumnId: placement('Column').before,
    expectedVersion: expectedVersion.describe(
      "The board's version: the board owns the column order.",
    ),
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: async (session, { input, actorId }) => {
    const column = await session.load('column', input.columnId);
    return column.state.status === 'active'
      ? loadBoardAccess(session, column.state.boardId, actorId)
      : null;
  },
  decide: ({ input, actorId }, loaded, context) => {
    const { columnId, afterColumnId, beforeColumnId } = input;
    const data = { actorId, columnId, afterColumnId, beforeColumnId };
    const access = loaded ? accessOf(loaded) : noAccess;
    return decideBoard({ type: 'MoveColumn', data }, access, context);
  },
  expectedVersion: {
    of: (loaded) => loaded?.board ?? null,
    sets: ['columns'] satisfies BoardField[],
  },
  succeed: written({ board: 'board' }),
});

/**
 * Archives a board. Owner only. The board becomes read-only (every write on it, its
 * columns and its cards answers `BoardArchivedError`) and leaves `boards` unless
 * `includeArchived: true`; its members can still read it and follow its changes.
 * The same commit writes every member's membership stream, so no write decided on the
 * live board commits after it. `BoardArchivedError` when it is archived already. Sets
 * `archived`.
 */
export const archiveBoard = defineCommand({
  name: 'archiveBoard',
  input: z.object({ boardId: resourceId('Board'), expectedVersion, idempotencyKey }),
  errors: memberEditErrors,
  load: (session, { input, actorId }) => loadBoardAccess(session, input.boardId, actorId),
  decide: ({ input: { boardId }, actorId }, loaded, context) =>
    decideBoard({ type: 'ArchiveBoard', data: { actorId, boardId } }, accessOf(loaded), context),
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
  load: (session, { input, actorId }) => loadBoardAccess(session, input.boardId, actorId),
  decide: ({ input: { boardId }, actorId }, loaded, context) =>
    decideBoard({ type: 'RestoreBoard', data: { actorId, boardId } }, accessOf(loaded), context),
  expectedVersion: { of: ({ board }) => board, sets: ['archived'] satisfies BoardField[] },
  succeed: written({ board: 'board' }),
});

/** The mutations of a board stream, by name: each is a mutation of the public contract (see `commandSpecs`). */
export const boardCommands = {
  createBoard,
  renameBoard,
  addMember,
  setMemberRole,
  removeMember,
  addColumn,
  moveColumn,
  archiveBoard,
  restoreBoard,
} as const;
