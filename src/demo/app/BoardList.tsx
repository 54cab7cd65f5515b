import { useApolloClient, useQuery } from '@apollo/client/react';
import {
  AddColumnDocument,
  BoardsDocument,
  CreateBoardDocument,
  type AddColumnMutation,
} from '@corkboard/client';
import { useState, type FormEvent } from 'react';
import { describeError, failureText, isApiError } from './errors.js';

/** The columns a board made here starts with. */
const STARTER_COLUMNS = ['To do', 'Doing', 'Done'] as const;

/** The viewer's boards, and a form for a new one. */
export function BoardList({ onOpen }: { onOpen: (boardId: string) => void }) {
  const apollo = useApolloClient();
  const [includeArchived, setIncludeArchived] = useState(false);
  const { data, loading, error } = useQuery(BoardsDocument, {
    variables: { includeArchived },
    fetchPolicy: 'cache-and-network',
  });
  const [name, setName] = useState('');
  const [failure, setFailure] = useState<string | null>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setFailure(null);
    let created;
    try {
      created = await apollo.mutate({
        mutation: CreateBoardDocument,
        variables: { input: { name } },
      });
    } catch (error) {
      setFailure(failureText(error));
      return;
    }
    const result = created.data?.createBoard;
    if (!result || result.__typename !== 'CreateBoardSuccess') {
      setFailure(
        result && isApiError(result) ? describeError(result) : 'Could not create the board.',
      );
      return;
    }
    let version = result.board.version;
    let afterColumnId: string | null = null;
    for (const columnName of STARTER_COLUMNS) {
      const added: { data?: AddColumnMutation | null } = await apollo.mutate({
        mutation: AddColumnDocument,
        variables: {
          input: {
            boardId: result.board.id,
            name: columnName,
            expectedVersion: version,
            afterColumnId,
          },
        },
      });
      const column = added.data?.addColumn;
      if (column?.__typename !== 'AddColumnSuccess') break;
      version = column.board.version;
      afterColumnId = column.column.id;
    }
    setName('');
    onOpen(result.board.id);
  };

  return (
    <main className="boards">
      <h1>Your boards</h1>
      {loading && !data && <p className="muted">Loading…</p>}
      {error && <p role="alert">{error.message}</p>}
      <ul data-testid="boards">
        {data?.boards.map((board) => (
          <li key={board.id}>
            <a href={`#/board/${encodeURIComponent(board.id)}`}>{board.name}</a>{' '}
            {board.archived && <span className="tag">archived</span>}{' '}
            <span className="muted">
              {board.columns.length} columns, {board.members.length} members
            </span>
          </li>
        ))}
        {data && data.boards.length === 0 && <li className="muted">No boards yet.</li>}
      </ul>
      <label className="muted">
        <input
          type="checkbox"
          checked={includeArchived}
          onChange={(e) => setIncludeArchived(e.target.checked)}
        />{' '}
        Show archived boards
      </label>
      <form onSubmit={(event) => void create(event)} className="inline">
        <label>
          New board{' '}
          <input name="boardName" required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <button type="submit">Create board</button>
      </form>
      {failure && (
        <p role="alert" className="error">
          {failure}
        </p>
      )}
    </main>
  );
}
