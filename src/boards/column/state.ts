import { unreachable } from '../unreachable.js';
import { RankedList } from '../rankedList.js';
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
   * Live (not archived) cards (`id` = card id) in rank order. This is the authority
   * on card ranks: a rebalance changes them here only. Every event changes it in
   * O(log n) (per card it names), so a column of any size folds in O(n log n).
   */
  cards: RankedList;
}

export const initialColumnState: ColumnState = { status: 'absent' };

/** The column after one more event of its stream. */
export function evolveColumn(state: ColumnState, event: ColumnEvent): ColumnState {
  if (event.type === 'ColumnCreated') {
    const { columnId, boardId, name, wipLimit } = event.data;
    return { status: 'active', columnId, boardId, name, wipLimit, cards: RankedList.empty };
  }
  if (state.status === 'absent') return state;
  switch (event.type) {
    case 'WipLimitSet':
      return { ...state, wipLimit: event.data.wipLimit };
    case 'CardEntered':
    case 'CardRepositioned': {
      const { cardId, rank } = event.data;
      return { ...state, cards: state.cards.with(cardId, rank) };
    }
    case 'CardLeft':
      return { ...state, cards: state.cards.without([event.data.cardId]) };
    case 'CardsArchived':
      return { ...state, cards: state.cards.without(event.data.cardIds) };
    case 'CardsRebalanced':
      return { ...state, cards: state.cards.withRanks(event.data.ranks) };
    default:
      return unreachable(event);
  }
}
