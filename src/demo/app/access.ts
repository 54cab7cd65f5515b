import type { BoardRole } from '@corkboard/client';
import type { Board } from './boardTypes.js';

/** What the viewer may do on a board, as the page shows it (the server decides each write). */
export interface Access {
  /** The viewer's role; null until read. */
  role: BoardRole | null;
  /** Cards and columns can be changed: editors and owners, on a board not archived. */
  canEdit: boolean;
  /** Archive and restore the board: owners. */
  canManageBoard: boolean;
  /** Add members, change their roles, remove them: owners, on a board not archived. */
  canManageMembers: boolean;
  /** Why the board is read-only for the viewer, when it is. */
  readOnlyReason: string | null;
}

/**
 * The viewer's access to `board` with `role`, as the API's roles define it: OWNER does
 * everything, EDITOR changes columns and cards, VIEWER reads and follows; an archived
 * board takes no write until an owner restores it.
 */
export function accessOf(board: Board, role: BoardRole | null): Access {
  const owner = role === 'OWNER';
  if (board.archived) {
    return {
      role,
      canEdit: false,
      canManageBoard: owner,
      canManageMembers: false,
      readOnlyReason: 'This board is archived: it is read-only until an owner restores it.',
    };
  }
  switch (role) {
    case 'OWNER':
    case 'EDITOR':
      return {
        role,
        canEdit: true,
        canManageBoard: owner,
        canManageMembers: owner,
        readOnlyReason: null,
      };
    case 'VIEWER':
      return {
        role,
        canEdit: false,
        canManageBoard: false,
        canManageMembers: false,
        readOnlyReason:
          'You are a viewer of this board: you can read it and follow its changes, not change it. An owner can make you an editor.',
      };
    case null:
      return {
        role,
        canEdit: false,
        canManageBoard: false,
        canManageMembers: false,
        readOnlyReason: null,
      };
    default: {
      const unexpected: never = role;
      return unexpected;
    }
  }
}
