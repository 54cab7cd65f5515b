import type { ColumnEvent } from '../column/events.js';
import type { DecideContext, Decision } from '../decision.js';
import { unreachable } from '../unreachable.js';
import {
  BoardArchivedError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  type ResourceType,
} from '../errors.js';
import { assignRank, type Placement } from '../ranks.js';
import type { BoardEvent } from './events.js';
import { isMember, type ActiveBoard, type BoardState } from './state.js';

/** Commands whose target is a board. Inputs are already validated (trimmed, in range). */
export type BoardCommand =
  | { type: 'CreateBoard'; data: { actorId: string; name: string } }
  | { type: 'RenameBoard'; data: { actorId: string; boardId: string; name: string } }
  | {
      type: 'AddMember';
      data: {
        actorId: string;
        boardId: string;
        /** As the caller gave it, for error messages. */
        username: string;
        /** The user holding `username`, resolved from its claim stream; null when nobody does. */
        userId: string | null;
      };
    }
  | {
      type: 'AddColumn';
      data: {
        actorId: string;
        boardId: string;
        name: string;
        wipLimit: number | null;
        afterColumnId?: string | undefined;
        beforeColumnId?: string | undefined;
      };
    }
  | {
      type: 'MoveColumn';
      data: {
        actorId: string;
        columnId: string;
        afterColumnId?: string | undefined;
        beforeColumnId?: string | undefined;
      };
    }
  | { type: 'ArchiveBoard'; data: { actorId: string; boardId: string } }
  | { type: 'RestoreBoard'; data: { actorId: string; boardId: string } };

/**
 * The board if `actorId` is one of its members. Otherwise `NotFoundError` naming
 * what the caller asked for: a non-member must not learn that it exists.
 */
export function requireVisibleBoard(
  board: BoardState,
  actorId: string,
  asked: { id: string; type: ResourceType },
): ActiveBoard {
  if (!isMember(board, actorId)) throw new NotFoundError(asked.id, asked.type);
  return board;
}

/**
 * The board if `actorId` is one of its members and it may be written: `NotFoundError`
 * for a non-member (naming what the caller asked for), then `BoardArchivedError` when
 * the board is archived (read-only). Every write on a board, its columns and its cards
 * decides through this.
 */
export function requireMember(
  board: BoardState,
  actorId: string,
  asked: { id: string; type: ResourceType },
): ActiveBoard {
  const visible = requireVisibleBoard(board, actorId, asked);
  if (visible.archived) throw new BoardArchivedError(visible.boardId);
  return visible;
}

/** Throws `ForbiddenError` unless `actorId` owns the board. */
export function requireOwner(board: ActiveBoard, actorId: string): void {
  if (board.ownerId !== actorId) throw new ForbiddenError();
}

const columnPlacementFields = {
  afterField: 'input.afterColumnId',
  beforeField: 'input.beforeColumnId',
  siblingDescription: 'another column of the board',
};

/** Board events placing `columnId` among the board's other columns. */
function placeColumn(board: ActiveBoard, columnId: string, placement: Placement): BoardEvent[] {
  const siblings = board.columns.filter((c) => c.id !== columnId);
  const { rank, rebalanced } = assignRank(siblings, placement, columnPlacementFields);
  const placed: BoardEvent = { type: 'ColumnPlaced', data: { columnId, rank } };
  return rebalanced
    ? [{ type: 'ColumnsRebalanced', data: { ranks: rebalanced } }, placed]
    : [placed];
}

/**
 * Decides a board command against the board's current state.
 *
 * - `CreateBoard` -> `[board: BoardCreated]` with a new board id; the actor owns it.
 * - `RenameBoard` (owner only) -> `[board: BoardRenamed]`.
 * - `AddMember` (owner only) -> `[board: MemberAdded]`; `ValidationError` on
 *   `input.username` when no user has that name or they are already a member.
 * - `AddColumn` -> `[board: (ColumnsRebalanced,) ColumnPlaced, column: ColumnCreated]`
 *   with a new column id, placed after `afterColumnId` / before `beforeColumnId`
 *   (both omitted: at the end).
 * - `MoveColumn` -> `[board: (ColumnsRebalanced,) ColumnPlaced]`; both omitted: to the end.
 * - `ArchiveBoard` (owner only) -> `[board: BoardArchived]`.
 * - `RestoreBoard` (owner only) -> `[board: BoardRestored]`; `ValidationError` on
 *   `input.boardId` when the board is not archived.
 *
 * An archived board answers `BoardArchivedError` to every command but `RestoreBoard`.
 * Non-members get `NotFoundError` for the board (for `MoveColumn`, the column);
 * members who are not the owner get `ForbiddenError` where the owner is required.
 */
export function decideBoard(
  command: BoardCommand,
  board: BoardState,
  context: DecideContext,
): Decision {
  switch (command.type) {
    case 'CreateBoard': {
      const boardId = context.newId();
      const { actorId, name } = command.data;
      return [
        {
          aggregate: 'board',
          id: boardId,
          events: [{ type: 'BoardCreated', data: { boardId, name, ownerId: actorId } }],
        },
      ];
    }
    case 'RenameBoard': {
      const { actorId, boardId, name } = command.data;
      const active = requireMember(board, actorId, { id: boardId, type: 'Board' });
      requireOwner(active, actorId);
      return [
        { aggregate: 'board', id: boardId, events: [{ type: 'BoardRenamed', data: { name } }] },
      ];
    }
    case 'AddMember': {
      const { actorId, boardId, username, userId } = command.data;
      const active = requireMember(board, actorId, { id: boardId, type: 'Board' });
      requireOwner(active, actorId);
      if (userId === null) {
        throw new ValidationError('input.username', `no user is called ${username}`);
      }
      if (active.memberIds.includes(userId)) {
        throw new ValidationError('input.username', `${username} is already a member`);
      }
      return [
        { aggregate: 'board', id: boardId, events: [{ type: 'MemberAdded', data: { userId } }] },
      ];
    }
    case 'AddColumn': {
      const { actorId, boardId, name, wipLimit, afterColumnId, beforeColumnId } = command.data;
      const active = requireMember(board, actorId, { id: boardId, type: 'Board' });
      const columnId = context.newId();
      const placed = placeColumn(active, columnId, {
        afterId: afterColumnId,
        beforeId: beforeColumnId,
      });
      const created: ColumnEvent = {
        type: 'ColumnCreated',
        data: { columnId, boardId, name, wipLimit },
      };
      return [
        { aggregate: 'board', id: boardId, events: placed },
        { aggregate: 'column', id: columnId, events: [created] },
      ];
    }
    case 'MoveColumn': {
      const { actorId, columnId, afterColumnId, beforeColumnId } = command.data;
      const active = requireMember(board, actorId, { id: columnId, type: 'Column' });
      if (!active.columns.some((c) => c.id === columnId)) {
        throw new NotFoundError(columnId, 'Column');
      }
      const placed = placeColumn(active, columnId, {
        afterId: afterColumnId,
        beforeId: beforeColumnId,
      });
      return [{ aggregate: 'board', id: active.boardId, events: placed }];
    }
    case 'ArchiveBoard': {
      const { actorId, boardId } = command.data;
      const active = requireMember(board, actorId, { id: boardId, type: 'Board' });
      requireOwner(active, actorId);
      const archived: BoardEvent = { type: 'BoardArchived', data: { boardId } };
      return [{ aggregate: 'board', id: boardId, events: [archived] }];
    }
    case 'RestoreBoard': {
      const { actorId, boardId } = command.data;
      const visible = requireVisibleBoard(board, actorId, { id: boardId, type: 'Board' });
      requireOwner(visible, actorId);
      if (!visible.archived) {
        throw new ValidationError('input.boardId', 'the board is not archived');
      }
      const restored: BoardEvent = { type: 'BoardRestored', data: { boardId } };
      return [{ aggregate: 'board', id: boardId, events: [restored] }];
    }
    default:
      return unreachable(command);
  }
}
