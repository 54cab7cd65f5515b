import { useApolloClient } from '@apollo/client/react';
import { ArchiveBoardDocument, RestoreBoardDocument } from '@corkboard/client';
import type { Access } from './access.js';
import type { Board, Failure, Report } from './boardTypes.js';

/**
 * The board's own control: archive it (read-only for everyone, out of the boards list)
 * or restore it, for those who may.
 */
export function BoardActions({
  board,
  access,
  onReport,
  onFailure,
}: {
  board: Board;
  access: Access;
  onReport: Report;
  onFailure: Failure;
}) {
  const apollo = useApolloClient();

  const setArchived = async (archived: boolean) => {
    const input = { boardId: board.id, expectedVersion: board.version };
    try {
      if (archived) {
        const done = await apollo.mutate({ mutation: ArchiveBoardDocument, variables: { input } });
        const result = done.data?.archiveBoard;
        if (result) onReport(result);
      } else {
        const done = await apollo.mutate({ mutation: RestoreBoardDocument, variables: { input } });
        const result = done.data?.restoreBoard;
        if (result) onReport(result);
      }
    } catch (error) {
      onFailure(error);
    }
  };

  if (!access.canManageBoard) return null;
  return (
    <button
      type="button"
      className="board-archive"
      onClick={() => void setArchived(!board.archived)}
    >
      {board.archived ? 'Restore board' : 'Archive board'}
    </button>
  );
}
