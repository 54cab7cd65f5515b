import { unreachable } from '../unreachable.js';
import {
  definedChanges,
  newCardDefaults,
  type CardChanges,
  type CardCreatedData,
  type CardEvent,
} from './events.js';

/** What a card holds, live or archived: what `CardCreated` gave it and every field an edit sets. */
export interface CardData extends Omit<CardCreatedData, 'rank'>, Required<CardChanges> {
  /**
   * Rank as of the card's last create/move/restore (archived: its rank when archived);
   * while it is live, the column's state is the authority.
   */
  rank: string;
}

/** A card as its stream tells it. An archived card keeps its data and its column. */
export type CardState =
  { status: 'absent' } | ({ status: 'live' } & CardData) | ({ status: 'archived' } & CardData);

export type LiveCard = Extract<CardState, { status: 'live' }>;

export const initialCardState: CardState = { status: 'absent' };

/** The card after one more event of its stream. */
export function evolveCard(state: CardState, event: CardEvent): CardState {
  if (event.type === 'CardCreated') {
    return { status: 'live', ...newCardDefaults, ...event.data };
  }
  if (state.status === 'absent') return state;
  switch (event.type) {
    case 'CardEdited':
      return { ...state, ...definedChanges(event.data.changes) };
    case 'CardMoved':
      return { ...state, columnId: event.data.toColumnId, rank: event.data.rank };
    case 'CardArchived': {
      const { rank } = event.data;
      return { ...state, status: 'archived', ...(rank !== undefined && { rank }) };
    }
    case 'CardRestored':
      return { ...state, status: 'live', columnId: event.data.columnId, rank: event.data.rank };
    default:
      return unreachable(event);
  }
}
