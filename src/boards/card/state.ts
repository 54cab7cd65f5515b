import { unreachable } from '../unreachable.js';
import type { CardEvent } from './events.js';

/** What a card holds, live or archived. */
export interface CardData {
  cardId: string;
  boardId: string;
  columnId: string;
  title: string;
  description: string;
  assigneeId: string | null;
  labels: readonly string[];
  done: boolean;
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
    return { status: 'live', ...event.data, assigneeId: null, labels: [], done: false };
  }
  if (state.status === 'absent') return state;
  switch (event.type) {
    case 'CardEdited': {
      const { title, description, assigneeId, labels, done } = event.data.changes;
      return {
        ...state,
        ...(title !== undefined && { title }),
        ...(description !== undefined && { description }),
        ...(assigneeId !== undefined && { assigneeId }),
        ...(labels !== undefined && { labels }),
        ...(done !== undefined && { done }),
      };
    }
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
