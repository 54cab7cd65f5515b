import { unreachable } from '../unreachable.js';
import { sortByRank, type Ranked } from '../ranks.js';
import type { BoardEvent } from './events.js';

/** A board as its stream tells it. */
export type BoardState = { status: 'absent' } | ActiveBoard;

export interface ActiveBoard {
  status: 'active';
  boardId: string;
  name: string;
  ownerId: string;
  /** Member user ids in the order they joined; the owner first. */
  memberIds: readonly string[];
  /** The board's live columns (`id` = column id), sorted by rank. */
  columns: readonly Ranked[];
  /** Archived boards are read-only and left out of `boards` (unless asked for). */
  archived: boolean;
}

export const initialBoardState: BoardState = { status: 'absent' };

/** The board after one more event of its stream. */
export function evolveBoard(state: BoardState, event: BoardEvent): BoardState {
  if (event.type === 'BoardCreated') {
    const { boardId, name, ownerId } = event.data;
    return {
      status: 'active',
      boardId,
      name,
      ownerId,
      memberIds: [ownerId],
      columns: [],
      archived: false,
    };
  }
  if (state.status === 'absent') return state;
  switch (event.type) {
    case 'BoardRenamed':
      return { ...state, name: event.data.name };
    case 'MemberAdded':
      return state.memberIds.includes(event.data.userId)
        ? state
        : { ...state, memberIds: [...state.memberIds, event.data.userId] };
    case 'ColumnPlaced': {
      const { columnId, rank } = event.data;
      const others = state.columns.filter((c) => c.id !== columnId);
      return { ...state, columns: sortByRank([...others, { id: columnId, rank }]) };
    }
    case 'ColumnsRebalanced': {
      const { ranks } = event.data;
      const columns = state.columns.map((c) => ({ id: c.id, rank: ranks[c.id] ?? c.rank }));
      return { ...state, columns: sortByRank(columns) };
    }
    case 'ColumnRemoved':
      return { ...state, columns: state.columns.filter((c) => c.id !== event.data.columnId) };
    case 'BoardArchived':
      return { ...state, archived: true };
    case 'BoardRestored':
      return { ...state, archived: false };
    default:
      return unreachable(event);
  }
}

/** Whether `userId` is a member (the owner included) of the board. */
export function isMember(board: BoardState, userId: string): board is ActiveBoard {
  return board.status === 'active' && board.memberIds.includes(userId);
}
