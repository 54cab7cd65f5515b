import { requireMember } from '../board/decide.js';
import type { BoardState } from '../board/state.js';
import type { CardEvent } from '../card/events.js';
import type { CardState } from '../card/state.js';
import type { DecideContext, Decision, StreamChange } from '../decision.js';
import { unreachable } from '../unreachable.js';
import { NotFoundError, WipLimitReachedError } from '../errors.js';
import { assignRank, type Placement } from '../ranks.js';
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
  | { type: 'ArchiveDoneCards'; data: { actorId: string; columnId: string } };

/** What column commands are decided on. */
export interface ColumnDecisionState {
  column: ColumnState;
  /** The column's board (absent when the column is). */
  board: BoardState;
  /**
   * States of the column's live cards by id. Needed by `ArchiveDoneCards` only; it
   * must then hold every live card of the column.
   */
  cards?: ReadonlyMap<string, CardState>;
}

/**
 * The column if it exists and `actorId` is a member of its board; otherwise
 * `NotFoundError` for the column.
 */
export function requireVisibleColumn(
  column: ColumnState,
  board: BoardState,
  actorId: string,
  columnId: string,
): ActiveColumn {
  if (column.status !== 'active') throw new NotFoundError(columnId, 'Column');
  requireMember(board, actorId, { id: columnId, type: 'Column' });
  return column;
}

/** How a card comes to its place: from outside the column, or from within it. */
export type CardArrival = 'enter' | 'reposition';

const cardPlacementFields = {
  afterField: 'input.afterCardId',
  beforeField: 'input.beforeCardId',
  siblingDescription: 'another live card of the target column',
};

/**
 * The column events that put `cardId` at `placement` among the column's other live
 * cards, and the rank it gets. A card entering (`'enter'`) is refused with
 * `WipLimitReachedError` when the column already holds `wipLimit` live cards; a
 * move within the column (`'reposition'`) is always allowed. Prepends a
 * `CardsRebalanced` when the new rank would grow past the threshold.
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
  if (arrival === 'enter' && column.wipLimit !== null && column.cards.length >= column.wipLimit) {
    throw new WipLimitReachedError(column.columnId, column.wipLimit);
  }
  const siblings = column.cards.filter((c) => c.id !== cardId);
  const { rank, rebalanced } = assignRank(siblings, placement, cardPlacementFields);
  const placed: ColumnEvent =
    arrival === 'enter'
      ? { type: 'CardEntered', data: { cardId, rank } }
      : { type: 'CardRepositioned', data: { cardId, rank } };
  const events: ColumnEvent[] = rebalanced
    ? [{ type: 'CardsRebalanced', data: { ranks: rebalanced } }, placed]
    : [placed];
  return { rank, events };
}

/**
 * Decides a column command. Non-members get `NotFoundError` for the column.
 *
 * - `SetWipLimit` -> `[column: WipLimitSet]`. A limit below the current count is
 *   allowed: it only stops further cards from entering.
 * - `AddCard` -> `[card: CardCreated, column: (CardsRebalanced,) CardEntered]` with a
 *   new card id; `WipLimitReachedError` when the column is full.
 * - `ArchiveDoneCards` -> `[column: CardsArchived, card: CardArchived, ...]` for every
 *   done live card, in column order; `[]` when there is none.
 */
export function decideColumn(
  command: ColumnCommand,
  state: ColumnDecisionState,
  context: DecideContext,
): Decision {
  const { actorId, columnId } = command.data;
  const column = requireVisibleColumn(state.column, state.board, actorId, columnId);
  switch (command.type) {
    case 'SetWipLimit':
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
    case 'ArchiveDoneCards': {
      const done = column.cards.filter((c) => {
        const card = state.cards?.get(c.id);
        if (!card) throw new Error(`ArchiveDoneCards: state of card ${c.id} not loaded`);
        return card.status === 'live' && card.done;
      });
      if (done.length === 0) return [];
      const cardIds = done.map((c) => c.id);
      return [
        {
          aggregate: 'column',
          id: columnId,
          events: [{ type: 'CardsArchived', data: { cardIds } }],
        },
        ...cardIds.map((id): StreamChange => ({
          aggregate: 'card',
          id,
          events: [{ type: 'CardArchived', data: {} }],
        })),
      ];
    }
    default:
      return unreachable(command);
  }
}
