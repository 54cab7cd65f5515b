/**
 * The board's access policy: who may do what on a board. Every command's decision on a
 * board, a column or a card asks {@link authorize}; the read side asks `BoardAccessView`
 * (accessView.ts), which decides with {@link roleOf} and {@link mayTake} on the same streams.
 * Nothing else decides access.
 *
 * The truth it decides on is the actor's membership stream (`membership-<boardId>~<userId>`),
 * which every change of that member's access writes. A command loads it through
 * {@link loadBoardAccess}, which makes its commit assert the stream's version: a removal,
 * demotion or archive of the board committed concurrently (`archiveBoard` writes every
 * member's stream) fails the command's append, and its retry decides on the new role or
 * the archived board. (A member of a board made before membership streams, whose stream is still
 * empty, is checked against the board stream instead, and the commit asserts that.)
 */
import type { LoadSession, LoadedStream } from '../commandHandling/loadSession.js';
import { BoardArchivedError, ForbiddenError, NotFoundError, type ResourceType } from '../errors.js';
import type { MembershipState } from '../membership/state.js';
import type { ActiveBoard, BoardState } from './state.js';

/** What a member may do on a board. */
export const BoardRole = {
  /** Everything: also renames the board, manages its members and archives it. */
  Owner: 'OWNER',
  /** Reads, subscribes and edits columns and cards. */
  Editor: 'EDITOR',
  /** Reads and subscribes; every write answers `ForbiddenError`. */
  Viewer: 'VIEWER',
} as const;
export type BoardRole = (typeof BoardRole)[keyof typeof BoardRole];

/** Every role, most powerful first (the order of the GraphQL enum). */
export const boardRoles: readonly BoardRole[] = Object.values(BoardRole);

/** What a caller asks to do on a board. */
export const BoardAction = {
  /** See the board and everything on it; subscribe to its changes. */
  Read: 'read',
  /** Add, change, move and archive columns and cards. */
  Edit: 'edit',
  /** Rename the board, add members, change roles, remove others, archive the board. */
  Manage: 'manage',
  /** Remove oneself from the board. */
  Leave: 'leave',
  /** Restore an archived board (the one write an archived board takes). */
  Restore: 'restore',
} as const;
export type BoardAction = (typeof BoardAction)[keyof typeof BoardAction];

/** The roles that may take each action: the one table the policy and the README follow. */
export const allowedRoles: { readonly [A in BoardAction]: readonly BoardRole[] } = {
  read: [BoardRole.Owner, BoardRole.Editor, BoardRole.Viewer],
  edit: [BoardRole.Owner, BoardRole.Editor],
  manage: [BoardRole.Owner],
  leave: [BoardRole.Owner, BoardRole.Editor, BoardRole.Viewer],
  restore: [BoardRole.Owner],
};

const forbiddenMessages: { readonly [A in BoardAction]: string } = {
  read: 'You may not read this board',
  edit: 'Viewers may not change the board',
  manage: 'Only an owner of the board may do this',
  leave: 'You may not leave this board',
  restore: 'Only an owner of the board may do this',
};

/** What access to a board is decided on: the board, and the actor's membership stream. */
export interface BoardAccess {
  board: BoardState;
  /**
   * The actor's membership stream. `absent`: the member's role is the board stream's (a
   * board older than membership streams).
   */
  membership: MembershipState;
}

/** Access to a board that does not exist (or was not loaded): nobody's. */
export const noAccess: BoardAccess = {
  board: { status: 'absent' },
  membership: { status: 'absent' },
};

/** `userId`'s role on the board (whose membership `access.membership` is), or null. */
export function roleOf(access: BoardAccess, userId: string): BoardRole | null {
  const { board, membership } = access;
  if (board.status !== 'active') return null;
  if (membership.status !== 'absent') {
    return membership.status === 'member' ? membership.role : null;
  }
  return board.members.find((m) => m.userId === userId)?.role ?? null;
}

/** Whether `role` may take `action`. */
export const mayTake = (role: BoardRole, action: BoardAction): boolean =>
  allowedRoles[action].includes(role);

/**
 * The board and the actor's role if the actor may take `action` on it. A non-member (or a
 * board that does not exist) gets `NotFoundError` naming what they asked for, so they do
 * not learn that it exists; a member whose role does not allow it gets `ForbiddenError`.
 */
export function authorize(
  access: BoardAccess,
  actorId: string,
  action: BoardAction,
  asked: { id: string; type: ResourceType },
): { board: ActiveBoard; role: BoardRole } {
  const role = roleOf(access, actorId);
  if (role === null || access.board.status !== 'active') {
    throw new NotFoundError(asked.id, asked.type);
  }
  if (!mayTake(role, action)) throw new ForbiddenError(forbiddenMessages[action]);
  // An archived board is read-only: it takes no write but its restoring. Archived as the
  // board stream or as the actor's membership stream tells it: the two may be read on
  // either side of the archive's commit, and the membership stream is the one the commit
  // asserts (see `MembershipState.boardArchived`).
  const writes = action !== BoardAction.Read && action !== BoardAction.Restore;
  const archived = access.board.archived || access.membership.boardArchived === true;
  if (writes && archived) throw new BoardArchivedError(access.board.boardId);
  return { board: access.board, role };
}

/** The id of `userId`'s membership stream of `boardId`. */
export const membershipId = (boardId: string, userId: string): string => `${boardId}~${userId}`;

/** The board of a membership stream's id (see {@link membershipId}; board ids hold no `~`). */
export const boardOfMembership = (id: string): string => id.slice(0, id.indexOf('~'));

/** What {@link loadBoardAccess} read, for the decision ({@link BoardAccess}) and the spec. */
export interface LoadedBoardAccess {
  board: LoadedStream<'board'>;
  membership: LoadedStream<'membership'>;
}

/**
 * Loads the board and `actorId`'s membership of it, and makes the attempt's commit assert
 * the stream that holds that membership at the version read (the membership stream; the
 * board stream while the member's stream is still empty): a change to the actor's access
 * committed meanwhile fails the append, and the retry decides on fresh state.
 */
export async function loadBoardAccess(
  session: LoadSession,
  boardId: string,
  actorId: string | null,
): Promise<LoadedBoardAccess> {
  const [board, membership] = await Promise.all([
    session.load('board', boardId),
    session.load('membership', membershipId(boardId, actorId ?? '')),
  ]);
  await session.assertUnchanged(membership.version > 0 ? membership.stream : board.stream);
  return { board, membership };
}

/** The states of what {@link loadBoardAccess} read. */
export const accessOf = (loaded: LoadedBoardAccess): BoardAccess => ({
  board: loaded.board.state,
  membership: loaded.membership.state,
});
