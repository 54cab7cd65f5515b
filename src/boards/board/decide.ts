import { appendLimits } from '../../eventstore/validation.js';
import type { ColumnEvent } from '../column/events.js';
import type { DecideContext, Decision, StreamChange } from '../decision.js';
import { unreachable } from '../unreachable.js';
import { LastOwnerError, NotFoundError, ValidationError } from '../errors.js';
import { assignRank, type Placement } from '../ranks.js';
import { authorize, BoardAction, BoardRole, membershipId, type BoardAccess } from './access.js';
import type { BoardEvent } from './events.js';
import { memberOf, ownerCount, type ActiveBoard } from './state.js';

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
        role: BoardRole;
      };
    }
  | {
      type: 'SetMemberRole';
      data: { actorId: string; boardId: string; userId: string; role: BoardRole };
    }
  | { type: 'RemoveMember'; data: { actorId: string; boardId: string; userId: string } }
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

/** What board commands are decided on: the board and the actor's access to it. */
export type BoardDecisionState = BoardAccess;

/**
 * Most members a board has at once. `archiveBoard` writes the board and every member's
 * membership stream in one commit (one event each), which must stay within the store's
 * cap on events per commit: so the cap less the board's own event.
 */
export const MAX_BOARD_MEMBERS = appendLimits.maxEventsPerCommit - 1;

/**
 * One `event` on the membership stream of each member, appended at any version: every other
 * change of a membership stream goes with a board event, and the commit these go in
 * asserts the board's version read.
 */
function toEveryMember(
  board: ActiveBoard,
  type: 'BoardArchivedForMember' | 'BoardRestoredForMember',
): StreamChange[] {
  const { boardId } = board;
  return board.members.map(({ userId }) => ({
    aggregate: 'membership',
    id: membershipId(boardId, userId),
    events: [{ type, data: { boardId, userId } }],
    atAnyVersion: true,
  }));
}

/** `ValidationError` for a board with more members than one commit can write to. */
function requireWithinMemberLimit(board: ActiveBoard): void {
  if (board.members.length > MAX_BOARD_MEMBERS) {
    throw new ValidationError(
      'input.boardId',
      `the board has ${board.members.length} members, more than the ${MAX_BOARD_MEMBERS} one commit can write to: remove some first`,
    );
  }
}

/** A board event about one member: whoever holds a membership stream of the board. */
type MemberEvent = Extract<
  BoardEvent,
  { type: 'MemberAdded' | 'MemberRoleChanged' | 'MemberRemoved' }
>;

/** A member event of the board, with the change of the member's membership stream it makes. */
function memberChange(boardId: string, event: MemberEvent): Decision {
  const role = event.type === 'MemberRemoved' ? null : event.data.role;
  return [
    { aggregate: 'board', id: boardId, events: [event] },
    membershipChange(boardId, event.data.userId, role),
  ];
}

/** The membership stream change that goes with a member event of the board. */
function membershipChange(boardId: string, userId: string, role: BoardRole | null): StreamChange {
  return {
    aggregate: 'membership',
    id: membershipId(boardId, userId),
    events: [
      role === null
        ? { type: 'MembershipEnded', data: { boardId, userId } }
        : { type: 'MembershipGranted', data: { boardId, userId, role } },
    ],
  };
}

/** `userId` as a member of the board; `ValidationError` on `input.userId` otherwise. */
function requireTarget(board: ActiveBoard, userId: string) {
  const member = memberOf(board, userId);
  if (!member) throw new ValidationError('input.userId', 'the user is not a member of the board');
  return member;
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
 * Decides a board command against the board's current state and the actor's access to it
 * (the access policy, `authorize`: a non-member gets `NotFoundError`, a member whose role
 * does not allow the command `ForbiddenError`).
 *
 * - `CreateBoard` -> `[board: BoardCreated, membership: MembershipGranted OWNER]` with a
 *   new board id; the actor owns it.
 * - `RenameBoard` (owners) -> `[board: BoardRenamed]`.
 * - `AddMember` (owners) -> `[board: MemberAdded, membership: MembershipGranted]`;
 *   `ValidationError` on `input.username` when no user has that name or they are already a
 *   member, on `input.boardId` when the board has {@link MAX_BOARD_MEMBERS} members.
 * - `SetMemberRole` (owners) -> `[board: MemberRoleChanged, membership: MembershipGranted]`;
 *   `ValidationError` on `input.userId` for a non-member, on `input.role` when it is their
 *   role already; `LastOwnerError` when it would demote the last owner.
 * - `RemoveMember` (owners; any member for themselves: leaving) -> `[board: MemberRemoved,
 *   membership: MembershipEnded]`; `ValidationError` on `input.userId` for a non-member;
 *   `LastOwnerError` for the last owner.
 * - `AddColumn` -> `[board: (ColumnsRebalanced,) ColumnPlaced, column: ColumnCreated]`
 *   with a new column id, placed after `afterColumnId` / before `beforeColumnId`
 *   (both omitted: at the end).
 * - `MoveColumn` -> `[board: (ColumnsRebalanced,) ColumnPlaced]`; both omitted: to the end.
 * - `ArchiveBoard` (owner only) -> `[board: BoardArchived, membership:
 *   BoardArchivedForMember]` with one membership change per member, in one commit: every
 *   member's write decided on the live board asserts its author's membership stream (or
 *   the board stream), so it cannot commit after the archive; its retry is refused, and
 *   so is a write that reads the membership stream after the archive (whatever board
 *   state it read). `ValidationError` on `input.boardId` when the board has more than
 *   {@link MAX_BOARD_MEMBERS} members (only boards older than that limit can).
 * - `RestoreBoard` (owner only) -> `[board: BoardRestored, membership:
 *   BoardRestoredForMember]`, one per member, clearing what the archive wrote there;
 *   `ValidationError` on `input.boardId` when the board is not archived, or has more than
 *   {@link MAX_BOARD_MEMBERS} members.
 *
 * An archived board answers `BoardArchivedError` to every command but `RestoreBoard`.
 * Non-members get `NotFoundError` for the board (for `MoveColumn`, the column).
 */
export function decideBoard(
  command: BoardCommand,
  state: BoardDecisionState,
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
        membershipChange(boardId, actorId, BoardRole.Owner),
      ];
    }
    case 'RenameBoard': {
      const { actorId, boardId, name } = command.data;
      authorize(state, actorId, BoardAction.Manage, { id: boardId, type: 'Board' });
      return [
        { aggregate: 'board', id: boardId, events: [{ type: 'BoardRenamed', data: { name } }] },
      ];
    }
    case 'AddMember': {
      const { actorId, boardId, username, userId, role } = command.data;
      const { board } = authorize(state, actorId, BoardAction.Manage, {
        id: boardId,
        type: 'Board',
      });
      if (userId === null) {
        throw new ValidationError('input.username', `no user is called ${username}`);
      }
      if (memberOf(board, userId)) {
        throw new ValidationError('input.username', `${username} is already a member`);
      }
      if (board.members.length >= MAX_BOARD_MEMBERS) {
        throw new ValidationError(
          'input.boardId',
          `the board has ${board.members.length} members, its limit of ${MAX_BOARD_MEMBERS}`,
        );
      }
      return memberChange(boardId, { type: 'MemberAdded', data: { userId, role } });
    }
    case 'SetMemberRole': {
      const { actorId, boardId, userId, role } = command.data;
      const { board } = authorize(state, actorId, BoardAction.Manage, {
        id: boardId,
        type: 'Board',
      });
      const member = requireTarget(board, userId);
      if (member.role === role) {
        throw new ValidationError('input.role', `the member is ${role} already`);
      }
      if (member.role === BoardRole.Owner && ownerCount(board) === 1) {
        throw new LastOwnerError(boardId);
      }
      return memberChange(boardId, { type: 'MemberRoleChanged', data: { userId, role } });
    }
    case 'RemoveMember': {
      const { actorId, boardId, userId } = command.data;
      const action = userId === actorId ? BoardAction.Leave : BoardAction.Manage;
      const { board } = authorize(state, actorId, action, { id: boardId, type: 'Board' });
      const member = requireTarget(board, userId);
      if (member.role === BoardRole.Owner && ownerCount(board) === 1) {
        throw new LastOwnerError(boardId);
      }
      return memberChange(boardId, { type: 'MemberRemoved', data: { userId } });
    }
    case 'AddColumn': {
      const { actorId, boardId, name, wipLimit, afterColumnId, beforeColumnId } = command.data;
      const { board: active } = authorize(state, actorId, BoardAction.Edit, {
        id: boardId,
        type: 'Board',
      });
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
      const { board: active } = authorize(state, actorId, BoardAction.Edit, {
        id: columnId,
        type: 'Column',
      });
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
      const { board } = authorize(state, actorId, BoardAction.Manage, {
        id: boardId,
        type: 'Board',
      });
      requireWithinMemberLimit(board);
      const archived: BoardEvent = { type: 'BoardArchived', data: { boardId } };
      return [
        { aggregate: 'board', id: boardId, events: [archived] },
        ...toEveryMember(board, 'BoardArchivedForMember'),
      ];
    }
    case 'RestoreBoard': {
      const { actorId, boardId } = command.data;
      const { board: visible } = authorize(state, actorId, BoardAction.Restore, {
        id: boardId,
        type: 'Board',
      });
      if (!visible.archived) {
        throw new ValidationError('input.boardId', 'the board is not archived');
      }
      requireWithinMemberLimit(visible);
      const restored: BoardEvent = { type: 'BoardRestored', data: { boardId } };
      return [
        { aggregate: 'board', id: boardId, events: [restored] },
        ...toEveryMember(visible, 'BoardRestoredForMember'),
      ];
    }
    default:
      return unreachable(command);
  }
}
