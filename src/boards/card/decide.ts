import { requireMember } from '../board/decide.js';
import type { ActiveBoard, BoardState } from '../board/state.js';
import { placeCardInColumn } from '../column/decide.js';
import type { ActiveColumn, ColumnState } from '../column/state.js';
import type { DecideContext, Decision } from '../decision.js';
import { unreachable } from '../unreachable.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { CardChanges } from './events.js';
import type { CardState, LiveCard } from './state.js';

/** Commands whose target is an existing card. Inputs are already validated. */
export type CardCommand =
  | { type: 'EditCard'; data: { actorId: string; cardId: string; changes: CardChanges } }
  | {
      type: 'MoveCard';
      data: {
        actorId: string;
        cardId: string;
        toColumnId: string;
        afterCardId?: string | undefined;
        beforeCardId?: string | undefined;
      };
    }
  | { type: 'ArchiveCard'; data: { actorId: string; cardId: string } };

/** What card commands are decided on. */
export interface CardDecisionState {
  card: CardState;
  /** The card's board (absent when the card is). */
  board: BoardState;
  /**
   * Column states by id: the card's column for `MoveCard` and `ArchiveCard`, and the
   * target column for `MoveCard`. A missing target reads as an absent column.
   */
  columns: ReadonlyMap<string, ColumnState>;
}

/** The card, live, with its board; `NotFoundError` when absent or the actor is no member. */
function requireLiveCard(
  state: CardDecisionState,
  actorId: string,
  cardId: string,
): { card: LiveCard; board: ActiveBoard } {
  const { card } = state;
  if (card.status === 'absent') throw new NotFoundError(cardId, 'Card');
  const board = requireMember(state.board, actorId, { id: cardId, type: 'Card' });
  if (card.status === 'archived') throw new ValidationError('input.cardId', 'the card is archived');
  return { card, board };
}

/** The card's current column; its absence means the streams disagree, a bug. */
function currentColumn(state: CardDecisionState, card: LiveCard): ActiveColumn {
  const column = state.columns.get(card.columnId);
  if (column?.status !== 'active') {
    throw new Error(`card ${card.cardId}: column ${card.columnId} not loaded or absent`);
  }
  return column;
}

/**
 * Decides a card command. The card must exist and the actor be a member of its
 * board (else `NotFoundError` for the card), and the card must be live (else
 * `ValidationError` on `input.cardId`).
 *
 * - `EditCard` -> `[card: CardEdited]` with exactly the given changes;
 *   `ValidationError` on `input` when there is none, on `input.assigneeId` when the
 *   assignee is not a member of the board.
 * - `MoveCard` to another column -> `[card: CardMoved, from: CardLeft,
 *   to: (CardsRebalanced,) CardEntered]`, refused with `WipLimitReachedError` when
 *   the target is full; within its column -> `[card: CardMoved, column:
 *   (CardsRebalanced,) CardRepositioned]`, always allowed. A target column that does
 *   not exist or is on another board is `NotFoundError` for it.
 * - `ArchiveCard` -> `[card: CardArchived, column: CardsArchived]`.
 */
export function decideCard(
  command: CardCommand,
  state: CardDecisionState,
  _context: DecideContext,
): Decision {
  const { actorId, cardId } = command.data;
  const { card, board } = requireLiveCard(state, actorId, cardId);
  switch (command.type) {
    case 'EditCard': {
      const { changes } = command.data;
      if (Object.values(changes).every((value) => value === undefined)) {
        throw new ValidationError('input', 'give at least one field to change');
      }
      if (
        changes.assigneeId !== undefined &&
        changes.assigneeId !== null &&
        !board.memberIds.includes(changes.assigneeId)
      ) {
        throw new ValidationError('input.assigneeId', 'the assignee must be a member of the board');
      }
      return [
        { aggregate: 'card', id: cardId, events: [{ type: 'CardEdited', data: { changes } }] },
      ];
    }
    case 'MoveCard': {
      const { toColumnId, afterCardId, beforeCardId } = command.data;
      const from = currentColumn(state, card);
      const to = state.columns.get(toColumnId);
      if (to?.status !== 'active' || to.boardId !== card.boardId) {
        throw new NotFoundError(toColumnId, 'Column');
      }
      const placement = { afterId: afterCardId, beforeId: beforeCardId };
      const within = to.columnId === from.columnId;
      const placed = placeCardInColumn(to, cardId, placement, within ? 'reposition' : 'enter');
      const moved = {
        aggregate: 'card',
        id: cardId,
        events: [
          {
            type: 'CardMoved',
            data: { fromColumnId: from.columnId, toColumnId, rank: placed.rank },
          },
        ],
      } as const;
      if (within) return [moved, { aggregate: 'column', id: toColumnId, events: placed.events }];
      return [
        moved,
        {
          aggregate: 'column',
          id: from.columnId,
          events: [{ type: 'CardLeft', data: { cardId } }],
        },
        { aggregate: 'column', id: toColumnId, events: placed.events },
      ];
    }
    case 'ArchiveCard': {
      const column = currentColumn(state, card);
      return [
        { aggregate: 'card', id: cardId, events: [{ type: 'CardArchived', data: {} }] },
        {
          aggregate: 'column',
          id: column.columnId,
          events: [{ type: 'CardsArchived', data: { cardIds: [cardId] } }],
        },
      ];
    }
    default:
      return unreachable(command);
  }
}
