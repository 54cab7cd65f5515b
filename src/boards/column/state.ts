import type { StateCodec } from '../../eventstore/StreamStateCache.js';
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
  /** An archived column is out of its board's order and takes no write. */
  archived: boolean;
}

export const initialColumnState: ColumnState = { status: 'absent' };

/** The column after one more event of its stream. */
export function evolveColumn(state: ColumnState, event: ColumnEvent): ColumnState {
  if (event.type === 'ColumnCreated') {
    const { columnId, boardId, name, wipLimit } = event.data;
    return {
      status: 'active',
      columnId,
      boardId,
      name,
      wipLimit,
      cards: RankedList.empty,
      archived: false,
    };
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
    case 'ArchivedCardRestored':
      // The state keeps no archived card (the card's stream does), so this changes
      // nothing, and snapshots folded before the event existed stay right: the codec
      // keeps its name.
      return state;
    case 'CardsRebalanced':
      return { ...state, cards: state.cards.withRanks(event.data.ranks) };
    case 'ColumnRenamed':
      return { ...state, name: event.data.name };
    case 'ColumnArchived':
      return { ...state, archived: true };
    default:
      return unreachable(event);
  }
}

/** An active column as a snapshot holds it: the cards as one flat `[id, rank, id, rank...]` list. */
interface EncodedColumn extends Omit<ActiveColumn, 'cards'> {
  cards: string[];
}

/**
 * Column states in snapshots, for cold starts on big columns. Change `name` whenever
 * {@link ColumnState}, {@link evolveColumn} or an upcaster of column events changes:
 * older snapshots are then ignored.
 */
export const columnStateCodec: StateCodec<ColumnState> = {
  name: 'column/2',
  encode: (state) => {
    if (state.status === 'absent') return JSON.stringify(state);
    const cards: string[] = [];
    for (const { id, rank } of state.cards) cards.push(id, rank);
    return JSON.stringify({ ...state, cards } satisfies EncodedColumn);
  },
  decode: (encoded) => {
    const parsed = JSON.parse(encoded) as ColumnState | EncodedColumn;
    if (parsed.status === 'absent') return initialColumnState;
    const { columnId, boardId, name, wipLimit, archived } = parsed;
    const flat = parsed.cards as string[];
    const items = Array.from({ length: flat.length / 2 }, (_, i) => ({
      id: flat[2 * i]!,
      rank: flat[2 * i + 1]!,
    }));
    const cards = RankedList.from(items);
    return { status: 'active', columnId, boardId, name, wipLimit, cards, archived };
  },
};
