import { z } from 'zod';
import { memberEditErrors } from '../board/commands.js';
import { accessOf, loadBoardAccess, noAccess } from '../board/access.js';
import {
  commitRef,
  defineCommand,
  headOfKind,
  headsOfKind,
  written,
} from '../commandHandling/defineCommand.js';
import type { LoadSession } from '../commandHandling/loadSession.js';
import type { WrittenResource } from '../commandHandling/results.js';
import {
  BoardArchivedError,
  ColumnNotEmptyError,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
  ValidationError,
  VersionConflictError,
  WipLimitReachedError,
  type ErrorCode,
} from '../errors.js';
import {
  description,
  expectedVersion,
  idempotencyKey,
  inputLimits,
  placement,
  resourceId,
  text,
  wipLimit,
} from '../validation.js';
import { decideColumn } from './decide.js';
import type { ColumnField } from './events.js';

/**
 * A column, its board and the actor's access to it (asserted by the commit: see
 * `loadBoardAccess`); no access when the column is absent.
 */
async function loadColumnAndBoard(session: LoadSession, columnId: string, actorId: string) {
  const column = await session.load('column', columnId);
  const access =
    column.state.status === 'active'
      ? accessOf(await loadBoardAccess(session, column.state.boardId, actorId))
      : noAccess;
  return { column, ...access };
}

/**
 * Sets or clears (null) a column's WIP limit. Sets `wipLimit`, so it merges over
 * cards entering or leaving the column since the client's version. A limit below
 * the live cards the column holds now is a `ValidationError` on `input.wipLimit`.
 */
export const setWipLimit = defineCommand({
  name: 'setWipLimit',
  input: z.object({
    columnId: resourceId('Column'),
    wipLimit: wipLimit.describe(
      'null = no limit; otherwise at least the live cards the column holds (cardCount).',
    ),
    expectedVersion,
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: (session, { input, actorId }) => loadColumnAndBoard(session, input.columnId, actorId),
  decide: ({ input: { columnId, wipLimit }, actorId }, { column, board, membership }, context) =>
    decideColumn(
      { type: 'SetWipLimit', data: { actorId, columnId, wipLimit } },
      { column: column.state, board, membership },
      context,
    ),
  expectedVersion: { of: ({ column }) => column, sets: ['wipLimit'] satisfies ColumnField[] },
  succeed: written({ column: 'column' }),
});

/**
 * Adds a card to a column, after `afterCardId` / before `beforeCardId` (both
 * omitted: at the end). `WipLimitReachedError` when the column is full. No
 * expected version: the column is checked at the version read.
 */
export const addCard = defineCommand({
  name: 'addCard',
  input: z.object({
    columnId: resourceId('Column'),
    title: text(inputLimits.cardTitleMax),
    description: description.nullish().transform((v) => v ?? ''),
    afterCardId: placement('Card').after,
    beforeCardId: placement('Card').before,
    idempotencyKey,
  }),
  // VersionConflictError: the column kept changing (other instances) through every retry.
  errors: [
    WipLimitReachedError,
    BoardArchivedError,
    NotFoundError,
    ForbiddenError,
    ValidationError,
    UnauthenticatedError,
    VersionConflictError,
  ],
  load: (session, { input, actorId }) => loadColumnAndBoard(session, input.columnId, actorId),
  decide: ({ input, actorId }, { column, board, membership }, context) => {
    const { columnId, title, afterCardId, beforeCardId } = input;
    const data = {
      actorId,
      columnId,
      title,
      description: input.description,
      afterCardId,
      beforeCardId,
    };
    const state = { column: column.state, board, membership };
    return decideColumn({ type: 'AddCard', data }, state, context);
  },
  succeed: written({ card: 'card', column: 'column' }),
});

/** What archiving a column's done cards did. */
interface DoneCardsArchived {
  /** The column, at its new version (or the version read, when nothing was done). */
  column: WrittenResource;
  archivedCount: number;
  /** The archived cards at their new versions, in column order. */
  archivedCards: WrittenResource[];
  /** Null when no card was done: nothing was written. */
  commitId: string | null;
  /** Null when nothing was written. */
  position: number | null;
  replayed: boolean;
  /**
   * False when the run stopped between two of its commits: the board was archived or the
   * caller lost access meanwhile (`stoppedBy`). The cards listed are archived all the same.
   */
  complete: boolean;
  /** What stopped the run before every done card was archived; null when `complete`. */
  stoppedBy: ErrorCode | null;
}

/**
 * Archives every done live card of a column (the column and each card at the version
 * read): in one commit up to 500 cards, else in consecutive commits of 500, each
 * atomic and each one `BoardChange` (`ARCHIVE_DONE_CARDS_PER_COMMIT`). Writes nothing
 * when no card is done. The answer lists every card archived and the last commit, also
 * when the run stops between two commits (the board archived, the caller's access ended):
 * then `complete` is false and `stoppedBy` says why. A retry with the idempotency key
 * after all commits landed returns the last commit's cards, one after a partial run
 * archives what is still done.
 */
export const archiveDoneCards = defineCommand({
  name: 'archiveDoneCards',
  input: z
    .object({ columnId: resourceId('Column'), idempotencyKey })
    .describe(
      'Archive every done card of a column: atomically up to 500 cards, else in atomic commits of 500.',
    ),
  errors: [
    NotFoundError,
    BoardArchivedError,
    ForbiddenError,
    UnauthenticatedError,
    ValidationError,
    VersionConflictError,
  ],
  load: async (session, { input, actorId }) => {
    const loaded = await loadColumnAndBoard(session, input.columnId, actorId);
    const { column } = loaded;
    const live = column.state.status === 'active' ? column.state.cards.toArray() : [];
    const cards = await Promise.all(live.map((c) => session.load('card', c.id)));
    return { ...loaded, cards: new Map(cards.map((card) => [card.id, card.state])) };
  },
  decide: ({ input: { columnId }, actorId }, { column, board, membership, cards }, context) =>
    decideColumn(
      { type: 'ArchiveDoneCards', data: { actorId, columnId } },
      { column: column.state, board, membership, cards },
      context,
    ),
  nothingToWrite: ({ input }, { column }): DoneCardsArchived => ({
    column: { id: input.columnId, version: column.version },
    archivedCount: 0,
    archivedCards: [],
    commitId: null,
    position: null,
    replayed: false,
    complete: true,
    stoppedBy: null,
  }),
  succeed: (commit): DoneCardsArchived => {
    const archivedCards = headsOfKind(commit.heads, 'card');
    return {
      column: headOfKind(commit.heads, 'column'),
      archivedCount: archivedCards.length,
      archivedCards,
      ...commitRef(commit),
      complete: commit.stoppedBy === undefined,
      stoppedBy: commit.stoppedBy ?? null,
    };
  },
});

/** Renames a column. Sets `name`, so it merges over changes to the column's cards or limit. */
export const renameColumn = defineCommand({
  name: 'renameColumn',
  input: z.object({
    columnId: resourceId('Column'),
    name: text(inputLimits.columnNameMax),
    expectedVersion,
    idempotencyKey,
  }),
  errors: memberEditErrors,
  load: (session, { input, actorId }) => loadColumnAndBoard(session, input.columnId, actorId),
  decide: ({ input: { columnId, name }, actorId }, { column, board, membership }, context) =>
    decideColumn(
      { type: 'RenameColumn', data: { actorId, columnId, name } },
      { column: column.state, board, membership },
      context,
    ),
  expectedVersion: { of: ({ column }) => column, sets: ['name'] satisfies ColumnField[] },
  succeed: written({ column: 'column' }),
});

/**
 * Archives an empty column: it leaves its board's column order, in one commit over the
 * column and the board (the board at the version read). A column that still holds live
 * cards is refused with `ColumnNotEmptyError` and nothing changes: archive or move them
 * first. `expectedVersion` is the column's; sets `archived`, so a stale version merges
 * over a rename or a limit change, and the emptiness check is made on the current state.
 */
export const archiveColumn = defineCommand({
  name: 'archiveColumn',
  input: z.object({ columnId: resourceId('Column'), expectedVersion, idempotencyKey }),
  errors: [...memberEditErrors, ColumnNotEmptyError],
  load: (session, { input, actorId }) => loadColumnAndBoard(session, input.columnId, actorId),
  decide: ({ input: { columnId }, actorId }, { column, board, membership }, context) =>
    decideColumn(
      { type: 'ArchiveColumn', data: { actorId, columnId } },
      { column: column.state, board, membership },
      context,
    ),
  expectedVersion: { of: ({ column }) => column, sets: ['archived'] satisfies ColumnField[] },
  succeed: written({ column: 'column', board: 'board' }),
});

/** The mutations of a column stream, by name: each is a mutation of the public contract (see `commandSpecs`). */
export const columnCommands = {
  setWipLimit,
  addCard,
  archiveDoneCards,
  renameColumn,
  archiveColumn,
} as const;
