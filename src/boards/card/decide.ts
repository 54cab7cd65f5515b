import { authorize, BoardAction, type BoardAccess } from '../board/access.js';
import { memberOf, type ActiveBoard } from '../board/state.js';
import type { ColumnEvent } from '../column/events.js';
import {
  cardPlacementFields,
  placeCardInColumn,
  requireEditableColumn,
  requireRoomFor,
} from '../column/decide.js';
import type { ActiveColumn, ColumnState } from '../column/state.js';
import type { DecideContext, Decision } from '../decision.js';
import { keepsPlace } from '../ranks.js';
import { unreachable } from '../unreachable.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { CardChanges } from './events.js';
import type { CardState, LiveCard } from './state.js';

type ArchivedCard = Extract<CardState, { status: 'archived' }>;

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
  | { type: 'ArchiveCard'; data: { actorId: string; cardId: string } }
  | {
      type: 'RestoreCard';
      data: {
        actorId: string;
        cardId: string;
        /** Restore into this column; undefined: the card's own. */
        toColumnId?: string | undefined;
      };
    };

/** What card commands are decided on: the card, its board and the actor's access to it. */
export interface CardDecisionState extends BoardAccess {
  card: CardState;
  /**
   * Column states by id: the card's column for `MoveCard`, `ArchiveCard` and
   * `RestoreCard`, and the target column for `MoveCard` and `RestoreCard`. A missing
   * target reads as an absent column.
   */
  columns: ReadonlyMap<string, ColumnState>;
}

/**
 * The card with its board, if the access policy lets the actor edit it: `NotFoundError`
 * when absent or the actor is no member, `ForbiddenError` for a viewer,
 * `BoardArchivedError` when the board is archived.
 */
function requireCard(
  state: CardDecisionState,
  actorId: string,
  cardId: string,
): { card: LiveCard | ArchivedCard; board: ActiveBoard } {
  const { card } = state;
  if (card.status === 'absent') throw new NotFoundError(cardId, 'Card');
  const { board } = authorize(state, actorId, BoardAction.Edit, { id: cardId, type: 'Card' });
  return { card, board };
}

/** The card, live, with its board (see {@link requireCard}); `ValidationError` when archived. */
function requireLiveCard(
  state: CardDecisionState,
  actorId: string,
  cardId: string,
): { card: LiveCard; board: ActiveBoard } {
  const { card, board } = requireCard(state, actorId, cardId);
  if (card.status === 'archived') throw new ValidationError('input.cardId', 'the card is archived');
  return { card, board };
}

/**
 * The events putting an archived card back among `column`'s live cards: at `rank` (its
 * rank when archived) when no live card holds it, else at the end. Entering is refused
 * with `WipLimitReachedError` when the column is full.
 */
function restoreInto(
  column: ActiveColumn,
  cardId: string,
  rank: string,
): { rank: string; events: ColumnEvent[] } {
  if (column.cards.hasRank(rank)) return placeCardInColumn(column, cardId, {}, 'enter');
  requireRoomFor(column);
  return { rank, events: [{ type: 'CardEntered', data: { cardId, rank } }] };
}

/** The card's current column; its absence means the streams disagree, a bug. */
function currentColumn(state: CardDecisionState, card: LiveCard): ActiveColumn {
  const column = state.columns.get(card.columnId);
  if (column?.status !== 'active') {
    throw new Error(`card ${card.cardId}: column ${card.columnId} not loaded or absent`);
  }
  return column;
}

/** `changes` without the fields that already hold the value given (labels compared in order). */
function changesTo(card: LiveCard, changes: CardChanges): CardChanges {
  const differ = (key: keyof CardChanges): boolean => {
    const value = changes[key];
    if (value === undefined) return false;
    const current = card[key];
    if (Array.isArray(value) && Array.isArray(current)) {
      return value.length !== current.length || value.some((label, i) => label !== current[i]);
    }
    return value !== current;
  };
  return Object.fromEntries(
    (Object.keys(changes) as (keyof CardChanges)[])
      .filter(differ)
      .map((key) => [key, changes[key]]),
  );
}

/**
 * Decides a card command. The card must exist and the actor be a member of its
 * board (else `NotFoundError` for the card), and the card must be live (else
 * `ValidationError` on `input.cardId`).
 *
 * - `EditCard` -> `[card: CardEdited]` with the given changes that differ from the card,
 *   `[]` (nothing to write) when none does; `ValidationError` on `input` when none is
 *   given, on `input.assigneeId` when the assignee is not a member of the board.
 * - `MoveCard` to another column -> `[card: CardMoved, from: CardLeft,
 *   to: (CardsRebalanced,) CardEntered]`, refused with `WipLimitReachedError` when
 *   the target is full (`ValidationError` on `input.toColumnId` when it is archived);
 *   within its column -> `[card: CardMoved, column:
 *   (CardsRebalanced,) CardRepositioned]`, always allowed; to the place it holds
 *   already (same column, same neighbours) -> `[]`, nothing to write. A target column
 *   that does not exist or is on another board is `NotFoundError` for it.
 * - `ArchiveCard` -> `[card: CardArchived, column: CardsArchived]`.
 */
export function decideCard(
  command: CardCommand,
  state: CardDecisionState,
  _context: DecideContext,
): Decision {
  const { actorId, cardId } = command.data;
  if (command.type === 'RestoreCard') return restoreCard(command.data, state);
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
        !memberOf(board, changes.assigneeId)
      ) {
        throw new ValidationError('input.assigneeId', 'the assignee must be a member of the board');
      }
      // Only what differs from the card is written; an edit that changes nothing writes
      // nothing (no version, no push), as a move to the card's own place.
      const effective = changesTo(card, changes);
      if (Object.keys(effective).length === 0) return [];
      return [
        {
          aggregate: 'card',
          id: cardId,
          events: [{ type: 'CardEdited', data: { changes: effective } }],
        },
      ];
    }
    case 'MoveCard': {
      const { toColumnId, afterCardId, beforeCardId } = command.data;
      const from = currentColumn(state, card);
      const to = state.columns.get(toColumnId);
      if (to?.status !== 'active' || to.boardId !== card.boardId) {
        throw new NotFoundError(toColumnId, 'Column');
      }
      if (to.archived) throw new ValidationError('input.toColumnId', 'the column is archived');
      const placement = { afterId: afterCardId, beforeId: beforeCardId };
      const within = to.columnId === from.columnId;
      // To its own place: nothing changes, so nothing is written (no version, no push).
      if (within && keepsPlace(to.cards, placement, cardPlacementFields, cardId)) return [];
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
      const rank = column.cards.rankOf(cardId) ?? card.rank;
      return [
        { aggregate: 'card', id: cardId, events: [{ type: 'CardArchived', data: { rank } }] },
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

/**
 * `RestoreCard`: the archived card back among the live cards of its column (or of
 * `toColumnId`, another live column of its board), at its rank when archived unless a
 * live card holds that rank now, else at the end -> `[card: CardRestored, column:
 * ArchivedCardRestored, (CardsRebalanced,) CardEntered]`; into another column -> `[card:
 * CardRestored, to: (CardsRebalanced,) CardEntered, from: ArchivedCardRestored]` (the
 * column it was archived from, archived or not, loses it from its archived cards).
 * `ValidationError` on `input.cardId` when the card is
 * live, on `input.toColumnId` when the target column is archived (the card's own
 * included: then name another); `NotFoundError` for a target column that does not exist
 * or is on another board; `WipLimitReachedError` when the target is full.
 */
function restoreCard(
  data: Extract<CardCommand, { type: 'RestoreCard' }>['data'],
  state: CardDecisionState,
): Decision {
  const { actorId, cardId, toColumnId } = data;
  const { card } = requireCard(state, actorId, cardId);
  if (card.status !== 'archived') {
    throw new ValidationError('input.cardId', 'the card is not archived');
  }
  const targetId = toColumnId ?? card.columnId;
  const target = state.columns.get(targetId);
  if (target?.status !== 'active' || target.boardId !== card.boardId) {
    if (toColumnId === undefined) {
      throw new Error(`card ${cardId}: column ${targetId} not loaded or absent`);
    }
    throw new NotFoundError(targetId, 'Column');
  }
  if (target.archived && toColumnId === undefined) {
    throw new ValidationError(
      'input.toColumnId',
      "the card's column is archived: name a live column to restore it into",
    );
  }
  const column = requireEditableColumn(
    { ...state, column: target },
    actorId,
    targetId,
    'input.toColumnId',
  );
  const placed = restoreInto(column, cardId, card.rank);
  const left: ColumnEvent = {
    type: 'ArchivedCardRestored',
    data: { cardId, toColumnId: targetId },
  };
  const restored = {
    aggregate: 'card',
    id: cardId,
    events: [{ type: 'CardRestored', data: { columnId: targetId, rank: placed.rank } }],
  } as const;
  if (targetId === card.columnId) {
    return [restored, { aggregate: 'column', id: targetId, events: [...placed.events, left] }];
  }
  // The target first: the success names the first column of the commit.
  return [
    restored,
    { aggregate: 'column', id: targetId, events: placed.events },
    { aggregate: 'column', id: card.columnId, events: [left] },
  ];
}
