import type { Board } from './boardTypes.js';

/** What the viewer may do on a board, as the page shows it (the server decides each write). */
export interface Access {
  /** Cards and columns can be changed: off for an archived board. */
  canEdit: boolean;
  /** Archive and restore the board. */
  canManageBoard: boolean;
  /** Why the board is read-only for the viewer, when it is. */
  readOnlyReason: string | null;
}

/** The viewer's access to `board`, from the board as read. */
export function accessOf(board: Board): Access {
  if (board.archived) {
    return {
      canEdit: false,
      canManageBoard: true,
      readOnlyReason: 'This board is archived: it is read-only until an owner restores it.',
    };
  }
  return { canEdit: true, canManageBoard: true, readOnlyReason: null };
}
