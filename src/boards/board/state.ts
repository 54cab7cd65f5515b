import { unreachable } from '../unreachable.js';
import { sortByRank, type Ranked } from '../ranks.js';
import { BoardRole } from './access.js';
import type { BoardEvent } from './events.js';

/** A board as its stream tells it. */
export type BoardState = { status: 'absent' } | ActiveBoard;

export interface ActiveBoard {
  status: 'active';
  boardId: string;
  name: string;
  /** Who created the board (its first owner). */
  ownerId: string;
  /** Members in the order they joined, the creator first, each with their role. */
  members: readonly BoardMember[];
  /** The board's live columns (`id` = column id), sorted by rank. */
  columns: readonly Ranked[];
  /** Archived boards are read-only and left out of `boards` (unless asked for). */
  archived: boolean;
}

/** A member of a board and what they may do there. */
export interface BoardMember {
  userId: string;
  role: BoardRole;
}

export const initialBoardState: BoardState = { status: 'absent' };

/** The board after one more event of its stream. */
export function evolveBoard(state: BoardState, event: BoardEvent): BoardState {
  if (event.type === 'BoardCreated') {
    const { boardId, name, ownerId } = event.data;
    const members = [{ userId: ownerId, role: BoardRole.Owner }];
    return { status: 'active', boardId, name, ownerId, members, columns: [], archived: false };
  }
  if (state.status === 'absent') return state;
  switch (event.type) {
    case 'BoardRenamed':
      return { ...state, name: event.data.name };
    case 'MemberAdded': {
      const { userId, role } = event.data;
      return memberOf(state, userId)
        ? state
        : { ...state, members: [...state.members, { userId, role }] };
    }
    case 'MemberRoleChanged': {
      const { userId, role } = event.data;
      const members = state.members.map((m) => (m.userId === userId ? { userId, role } : m));
      return { ...state, members };
    }
    case 'MemberRemoved':
      return { ...state, members: state.members.filter((m) => m.userId !== event.data.userId) };
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

/** `userId`'s membership of the board, if they are a member. */
export function memberOf(board: BoardState, userId: string): BoardMember | undefined {
  return board.status === 'active' ? board.members.find((m) => m.userId === userId) : undefined;
}

/** How many owners the board has. */
export function ownerCount(board: ActiveBoard): number {
  return board.members.filter((m) => m.role === BoardRole.Owner).length;
}
