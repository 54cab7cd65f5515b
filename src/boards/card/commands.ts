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
import { WipLimitReachedError } from '../errors.js';
import {
  description,
  expectedVersion,
  idempotencyKey,
  inputLimits,
  labels,
  optionalResourceId,
  placement,
  resourceId,
  text,
} from '../validation.js';
import type { ColumnState } from '../column/state.js';
import { decideCard } from './decide.js';
import { cardFieldsOfChanges, type CardChanges, type CardField } from './events.js';

/**
 * A card, its board and the actor's access to it (asserted by the commit: see
 * `loadBoardAccess`; none when the card is absent) and, with `columnIds`, the columns
 * the command touches: the card's own and those named, when the card is live (with
 * `archived: true`, when it is archived).
 */
async function loadCard(
  session: LoadSession,
  cardId: string,
  actorId: string,
  columnIds?: readonly string[],
  options: { archived?: boolean } = {},
) {
  const card = await session.load('card', cardId);
  if (card.state.status === 'absent') {
    return {
      card,
      ...noAccess,
      columns: new Map<string, ColumnState>(),
      columnVersions: new Map<string, number>(),
    };
  }
  const live = columnIds && card.state.status === (options.archived === true ? 'archived' : 'live');
  const ids = live ? [card.state.columnId, ...columnIds] : [];
  const [access, ...columns] = await Promise.all([
    loadBoardAccess(session, card.state.boardId, actorId),
    ...ids.map((id) => session.load('column', id)),
  ]);
  const columnStates = new Map(columns.map((c) => [c.id, c.state]));
  const columnVersions = new Map(columns.map((c) => [c.id, c.version]));
  return { card, ...accessOf(access), columns: columnStates, columnVersions };
}

/**
 * How an input gives each key of `CardChanges`: `editCard` takes every one, each optional;
 * a command that sets one field takes its entry.
 */
const cardChangeInputs = {
  title: text(inputLimits.cardTitleMax),
  description,
  assigneeId: resourceId('User')
    .nullable()
    .describe('A member of the board; explicit null unassigns.'),
  labels,
  done: z.boolean(),
} satisfies { [K in keyof CardChanges]-?: z.ZodType<CardChanges[K]> };
type CardChangeInputs = typeof cardChangeInputs;

/** Whether null is a value of `key` (it clears the field) rather than "not given". */
const takesNull = (key: string) =>
  cardChangeInputs[key as keyof CardChangeInputs].safeParse(null).success;

/** Every key of `CardChanges` as an optional input field that may be null. */
const optionalChanges = Object.fromEntries(
  Object.entries(cardChangeInputs).map(([key, schema]) => [
    key,
    takesNull(key) ? schema.optional() : schema.nullish(),
  ]),
) as { [K in keyof CardChangeInputs]: z.ZodOptional<z.ZodNullable<CardChangeInputs[K]>> };

/** What a card edit did. */
interface CardEdit {
  card: WrittenResource;
  merged: boolean;
  /** Null when every field given held its value already: nothing was written. */
  commitId: string | null;
  /** Null when nothing was written. */
  position: number | null;
  replayed: boolean;
}

/**
 * Changes the given fields of a card; merges over changes to other fields. Fields given
 * the value they hold are left out of the event; when all are, nothing is written. null
 * means "not given", except for a field that can be empty (`assigneeId`), where null
 * clears it and omitted leaves it as is.
 */
export const editCard = defineCommand({
  name: 'editCard',
  input: z
    .object({ cardId: resourceId('Card'), expectedVersion, ...optionalChanges, idempotencyKey })
    .describe(
      'Only the fields given are changed. A stale expectedVersion still succeeds when no change since then touched any of the given fields (the edits merge); otherwise VersionConflictError.',
    )
    .transform(({ cardId, expectedVersion, idempotencyKey, ...fields }) => {
      const given = Object.entries(fields).filter(
        ([key, value]) => value !== undefined && (value !== null || takesNull(key)),
      );
      const changes = Object.fromEntries(given) as CardChanges;
      return { cardId, expectedVersion, idempotencyKey, changes };
    }),
  errors: memberEditErrors,
  load: (session, { input, actorId }) => loadCard(session, input.cardId, actorId),
  decide: (
    { input: { cardId, changes }, actorId },
    { card, board, membership, columns },
    context,
  ) =>
    decideCard(
      { type: 'EditCard', data: { actorId, cardId, changes } },
      { card: card.state, board, membership, columns },
      context,
    ),
  expectedVersion: { of: ({ card }) => card, sets: ({ changes }) => cardFieldsOfChanges(changes) },
  // An edit giving every field the value it holds: the card as it is.
  nothingToWrite: (_call, { card }): CardEdit => ({
    commitId: null,
    position: null,
    replayed: false,
    merged: false,
    card: { id: card.id, version: card.version },
  }),
  succeed: (commit): CardEdit => ({
    ...commitRef(commit),
    merged: commit.merged,
    card: headOfKind(commit.heads, 'card'),
  }),
});

/** What a card move did. */
interface CardMove {
  card: WrittenResource;
  /** The column the card left; the same as `to` for a move within one column. */
  from: WrittenResource;
  to: WrittenResource;
  merged: boolean;
  /** Null when the card was moved to the place it holds: nothing was written. */
  commitId: string | null;
  /** Null when nothing was written. */
  position: number | null;
  replayed: boolean;
}

/**
 * Moves a card within its column or to another column of its board, in one
 * commit over the card and both columns. Entering a full column is refused
 * (`WipLimitReachedError`); moving within a column never is. Sets the card's
 * `column` and `rank`.
 */
export const moveCard = defineCommand({
  name: 'moveCard',
  input: z.object({
    cardId: resourceId('Card'),
    toColumnId: resourceId('Column'),
    afterCardId: placement('Card').after,
    beforeCardId: placement('Card').before,
    expectedVersion: expectedVersion.describe("The card's version as the client saw it."),
    idempotencyKey,
  }),
  errors: [...memberEditErrors, WipLimitReachedError],
  load: (session, { input, actorId }) =>
    loadCard(session, input.cardId, actorId, [input.toColumnId]),
  decide: ({ input, actorId }, { card, board, membership, columns }, context) => {
    const { cardId, toColumnId, afterCardId, beforeCardId } = input;
    const data = { actorId, cardId, toColumnId, afterCardId, beforeCardId };
    return decideCard(
      { type: 'MoveCard', data },
      { card: card.state, board, membership, columns },
      context,
    );
  },
  expectedVersion: { of: ({ card }) => card, sets: ['column', 'rank'] satisfies CardField[] },
  // A move to the place the card holds: the card and its column as they are.
  nothingToWrite: (_call, { card, columnVersions }): CardMove => {
    if (card.state.status !== 'live') throw new Error('moveCard: only a live card stays put');
    const { columnId } = card.state;
    const column = { id: columnId, version: columnVersions.get(columnId) ?? 0 };
    return {
      commitId: null,
      position: null,
      replayed: false,
      card: { id: card.id, version: card.version },
      from: column,
      to: column,
      merged: false,
    };
  },
  succeed: (commit): CardMove => {
    const [from, to] = headsOfKind(commit.heads, 'column');
    if (!from) throw new Error('moveCard commit has no column stream');
    return {
      ...commitRef(commit),
      card: headOfKind(commit.heads, 'card'),
      from,
      to: to ?? from,
      merged: commit.merged,
    };
  },
});

/** Archives a card: it leaves its column's live cards. Sets `archived`. */
export const archiveCard = defineCommand({
  name: 'archiveCard',
  input: z.object({ cardId: resourceId('Card'), expectedVersion, idempotencyKey }),
  errors: memberEditErrors,
  load: (session, { input, actorId }) => loadCard(session, input.cardId, actorId, []),
  decide: ({ input: { cardId }, actorId }, { card, board, membership, columns }, context) =>
    decideCard(
      { type: 'ArchiveCard', data: { actorId, cardId } },
      { card: card.state, board, membership, columns },
      context,
    ),
  expectedVersion: { of: ({ card }) => card, sets: ['archived'] satisfies CardField[] },
  // `column`: the column the card was archived from.
  succeed: written({ card: 'card', column: 'column' }),
});

/**
 * Restores an archived card to its column (or to `toColumnId`, another live column of
 * its board), at its rank when it was archived, or at the end when a live card holds
 * that rank now; in one commit over the card and the column (the column at the version
 * read), and the column it was archived from, whose archived cards it leaves. Entering a full column is refused (`WipLimitReachedError`). A card whose column
 * is archived needs `toColumnId` (`ValidationError` on it otherwise). Sets `archived`,
 * `column` and `rank`.
 */
export const restoreCard = defineCommand({
  name: 'restoreCard',
  input: z.object({
    cardId: resourceId('Card'),
    toColumnId: optionalResourceId('Column').describe(
      "Restore into this live column of the card's board; omitted = the card's own column.",
    ),
    expectedVersion: expectedVersion.describe("The card's version as the client saw it."),
    idempotencyKey,
  }),
  errors: [...memberEditErrors, WipLimitReachedError],
  load: (session, { input, actorId }) =>
    loadCard(session, input.cardId, actorId, input.toColumnId ? [input.toColumnId] : [], {
      archived: true,
    }),
  decide: (
    { input: { cardId, toColumnId }, actorId },
    { card, board, membership, columns },
    context,
  ) =>
    decideCard(
      { type: 'RestoreCard', data: { actorId, cardId, toColumnId } },
      { card: card.state, board, membership, columns },
      context,
    ),
  expectedVersion: {
    of: ({ card }) => card,
    sets: ['archived', 'column', 'rank'] satisfies CardField[],
  },
  succeed: written({ card: 'card', column: 'column' }),
});

/** The mutations of a card stream, by name: each is a mutation of the public contract (see `commandSpecs`). */
export const cardCommands = { editCard, moveCard, archiveCard, restoreCard } as const;
