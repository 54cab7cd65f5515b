import { authorize, BoardAction, type BoardAccess } from '../board/access.js';
import type { CardEvent } from '../card/events.js';
import type { CardState } from '../card/state.js';
import type { DecideContext, Decision, StreamChange } from '../decision.js';
import { unreachable } from '../unreachable.js';
import {
  ColumnNotEmptyError,
  NotFoundError,
  ValidationError,
  WipLimitReachedError,
} from '../errors.js';
import { assignRank, chunkRanks, type Placement, type Ranked } from '../ranks.js';
import type { ColumnEvent } from './events.js';
import type { ActiveColumn, ColumnState } from './state.js';

/** Commands whose target is a column. Inputs are already validated. */
export type ColumnCommand =
  | { type: 'SetWipLimit'; data: { actorId: string; columnId: string; wipLimit: number | null } }
  | {
      type: 'AddCard';
      data: {
        actorId: string;
        columnId: string;
        title: string;
        description: string;
        afterCardId?: string | undefined;
        beforeCardId?: string | undefined;
      };
    }
  | { type: 'ArchiveDoneCards'; data: { actorId: string; columnId: string } }
  | { type: 'RenameColumn'; data: { actorId: string; columnId: string; name: string } }
  | { type: 'ArchiveColumn'; data: { actorId: string; columnId: string } };

/** What column commands are decided on: the column, its board and the actor's access to it. */
export interface ColumnDecisionState extends BoardAccess {
  column: ColumnState;
  /**
   * States of the column's live cards by id. Needed by `ArchiveDoneCards` only; it
   * must then hold every live card of the column.
   */
  cards?: ReadonlyMap<string, CardState>;
}

/**
 * The column if it exists and the access policy lets `actorId` edit its board; otherwise
 * `NotFoundError` for the column (a non-member), `ForbiddenError` (a viewer),
 * `BoardArchivedError` (an archived board), or `ValidationError` on `field` (an archived
 * column).
 */
export function requireEditableColumn(
  state: ColumnDecisionState,
  actorId: string,
  columnId: string,
  field = 'input.columnId',
): ActiveColumn {
  const { column } = state;
  if (column.status !== 'active') throw new NotFoundError(columnId, 'Column');
  authorize(state, actorId, BoardAction.Edit, { id: columnId, type: 'Column' });
  if (column.archived) throw new ValidationError(field, 'the column is archived');
  return column;
}

/** `WipLimitReachedError` unless one more live card may enter the column. */
export function requireRoomFor(column: ActiveColumn): void {
  if (column.wipLimit !== null && column.cards.size >= column.wipLimit) {
    throw new WipLimitReachedError(column.columnId, column.wipLimit);
  }
}

/**
 * `ValidationError` on `input.wipLimit` when the column already holds more live cards
 * than `wipLimit`: a column never holds more live cards than its limit, so a limit
 * comes down only as far as the cards it holds.
 */
function requireLimitHolds(column: ActiveColumn, wipLimit: number | null): void {
  if (wipLimit !== null && column.cards.size > wipLimit) {
    throw new ValidationError(
      'input.wipLimit',
      `must be at least ${column.cards.size}, the live cards the column holds: archive or move cards first`,
    );
  }
}

/** How a card comes to its place: from outside the column, or from within it. */
export type CardArrival = 'enter' | 'reposition';

export const cardPlacementFields = {
  afterField: 'input.afterCardId',
  beforeField: 'input.beforeCardId',
  siblingDescription: 'another live card of the target column',
};

/**
 * The column events that put `cardId` at `placement` among the column's other live
 * cards, and the rank it gets. A card entering (`'enter'`) is refused with
 * `WipLimitReachedError` when the column already holds `wipLimit` live cards; a
 * move within the column (`'reposition'`) is always allowed. Prepends
 * `CardsRebalanced` events (each under the store's event size limit, see
 * `chunkRanks`) when the new rank would grow past the threshold.
 *
 * @throws ValidationError on `input.afterCardId` / `input.beforeCardId` when they do
 *   not name another live card of this column.
 */
export function placeCardInColumn(
  column: ActiveColumn,
  cardId: string,
  placement: Placement,
  arrival: CardArrival,
): { rank: string; events: ColumnEvent[] } {
  if (arrival === 'enter') requireRoomFor(column);
  const { rank, rebalanced } = assignRank(column.cards, placement, cardPlacementFields, {
    itemId: cardId,
  });
  const placed: ColumnEvent =
    arrival === 'enter'
      ? { type: 'CardEntered', data: { cardId, rank } }
      : { type: 'CardRepositioned', data: { cardId, rank } };
  const rebalances = rebalanced
    ? chunkRanks(rebalanced).map((ranks): ColumnEvent => ({
        type: 'CardsRebalanced',
        data: { ranks },
      }))
    : [];
  return { rank, events: [...rebalances, placed] };
}

/**
 * Most cards one `archiveDoneCards` commit archives: the commit holds one event per
 * card plus the column's `CardsArchived` (the store takes at most 1,000 events per
 * commit), and `CardsArchived` lists their ids (about 40 bytes each, under the
 * store's 64 KiB per event). @default 500
 */
export const ARCHIVE_DONE_CARDS_PER_COMMIT = 500;

/**
 * The commits that archive every done live card of `column`, in column order, at most
 * {@link ARCHIVE_DONE_CARDS_PER_COMMIT} cards each: `[column: CardsArchived, card:
 * CardArchived, ...]` per commit; `[]` when no card is done. Each commit is atomic on
 * its own; they are meant to be appended in order, the column's expected version
 * advancing by one per commit, each card at the version read.
 *
 * @param cards states of the column's live cards by id; must hold every one of them.
 */
export function archiveDoneCardsCommits(
  column: ActiveColumn,
  cards: ReadonlyMap<string, CardState> | undefined,
  perCommit: number = ARCHIVE_DONE_CARDS_PER_COMMIT,
): Decision[] {
  const done: Ranked[] = [];
  for (const item of column.cards) {
    const card = cards?.get(item.id);
    if (!card) throw new Error(`ArchiveDoneCards: state of card ${item.id} not loaded`);
    if (card.status === 'live' && card.done) done.push(item);
  }
  const commits: Decision[] = [];
  for (let start = 0; start < done.length; start += perCommit) {
    const archived = done.slice(start, start + perCommit);
    commits.push([
      {
        aggregate: 'column',
        id: column.columnId,
        events: [{ type: 'CardsArchived', data: { cardIds: archived.map((c) => c.id) } }],
      },
      ...archived.map(({ id, rank }): StreamChange => ({
        aggregate: 'card',
        id,
        events: [{ type: 'CardArchived', data: { rank } }],
      })),
    ]);
  }
  return commits;
}

/**
 * Decides a column command. Non-members get `NotFoundError` for the column.
 *
 * - `SetWipLimit` -> `[column: WipLimitSet]`; `ValidationError` on `input.wipLimit`
 *   when the column holds more live cards than the new limit.
 * - `AddCard` -> `[card: CardCreated, column: (CardsRebalanced,) CardEntered]` with a
 *   new card id; `WipLimitReachedError` when the column is full.
 * - `ArchiveDoneCards` -> `[column: CardsArchived, card: CardArchived, ...]` for every
 *   done live card, in column order; `[]` when there is none. Past
 *   {@link ARCHIVE_DONE_CARDS_PER_COMMIT} cards, the column is named again where each
 *   next commit starts (see `splitIntoCommits`).
 * - `RenameColumn` -> `[column: ColumnRenamed]`.
 * - `ArchiveColumn` -> `[column: ColumnArchived, board: ColumnRemoved]`, refused with
 *   `ColumnNotEmptyError` while the column holds live cards.
 *
 * An archived column takes no command: `ValidationError` on `input.columnId`.
 */
export function decideColumn(
  command: ColumnCommand,
  state: ColumnDecisionState,
  context: DecideContext,
): Decision {
  const { actorId, columnId } = command.data;
  const column = requireEditableColumn(state, actorId, columnId);
  switch (command.type) {
    case 'SetWipLimit':
      requireLimitHolds(column, command.data.wipLimit);
      return [
        {
          aggregate: 'column',
          id: columnId,
          events: [{ type: 'WipLimitSet', data: { wipLimit: command.data.wipLimit } }],
        },
      ];
    case 'AddCard': {
      const { title, description, afterCardId, beforeCardId } = command.data;
      const cardId = context.newId();
      const placed = placeCardInColumn(
        column,
        cardId,
        { afterId: afterCardId, beforeId: beforeCardId },
        'enter',
      );
      const created: CardEvent = {
        type: 'CardCreated',
        data: { cardId, boardId: column.boardId, columnId, title, description, rank: placed.rank },
      };
      return [
        { aggregate: 'card', id: cardId, events: [created] },
        { aggregate: 'column', id: columnId, events: placed.events },
      ];
    }
    case 'ArchiveDoneCards':
      return archiveDoneCardsCommits(column, state.cards).flat();
    case 'RenameColumn':
      return [
        {
          aggregate: 'column',
          id: columnId,
          events: [{ type: 'ColumnRenamed', data: { name: command.data.name } }],
        },
      ];
    case 'ArchiveColumn':
      if (column.cards.size > 0) throw new ColumnNotEmptyError(columnId, column.cards.size);
      return [
        {
          aggregate: 'column',
          id: columnId,
          events: [{ type: 'ColumnArchived', data: { columnId } }],
        },
        {
          aggregate: 'board',
          id: column.boardId,
          events: [{ type: 'ColumnRemoved', data: { columnId } }],
        },
      ];
    default:
      return unreachable(command);
  }
}
