import { unreachable } from '../unreachable.js';
import { sortByRank, type Ranked } from '../ranks.js';
import type { ColumnEvent } from './events.js';

/** A column as its stream tells it. */
export type ColumnState = { status: 'absent' } | ActiveColumn;

export interface ActiveColumn {
  status: 'active';
  columnId: string;
  boardId: string;
  name: string;
  /** null = no limit. */
  wipLimit: number | null;
  /**
   * Live (not archived) cards (`id` = card id), sorted by rank. This is the
   * authority on card ranks: a rebalance changes them here only.
   */
  cards: readonly Ranked[];
}

export const initialColumnState: ColumnState = { status: 'absent' };

/** The column after one more event of its stream. */
export function evolveColumn(state: ColumnState, event: ColumnEvent): ColumnState {
  if (event.type === 'ColumnCreated') {
    const { columnId, boardId, name, wipLimit } = event.data;
    return { status: 'active', columnId, boardId, name, wipLimit, cards: [] };
  }
  if (state.status === 'absent') return state;
  switch (event.type) {
    case 'WipLimitSet':
      return { ...state, wipLimit: event.data.wipLimit };
    case 'CardEntered':
    case 'CardRepositioned': {
      const { cardId, rank } = event.data;
      const others = state.cards.filter((c) => c.id !== cardId);
      return { ...state, cards: sortByRank([...others, { id: cardId, rank }]) };
    }
    case 'CardLeft':
      return { ...state, cards: state.cards.filter((c) => c.id !== event.data.cardId) };
    case 'CardsArchived': {
      const archived = new Set(event.data.cardIds);
      return { ...state, cards: state.cards.filter((c) => !archived.has(c.id)) };
    }
    case 'CardsRebalanced': {
      const { ranks } = event.data;
      const cards = state.cards.map((c) => ({ id: c.id, rank: ranks[c.id] ?? c.rank }));
      return { ...state, cards: sortByRank(cards) };
    }
    default:
      return unreachable(event);
  }
}
