import { useApolloClient } from '@apollo/client/react';
import { AddMemberDocument } from '@corkboard/client';
import { useState, type FormEvent } from 'react';
import type { Board, Failure, Report } from './boardTypes.js';

/** The board's members, and a form to add one by username. */
export function Members({
  board,
  onReport,
  onFailure,
}: {
  board: Board;
  onReport: Report;
  onFailure: Failure;
}) {
  const apollo = useApolloClient();
  const [username, setUsername] = useState('');
  const add = async (event: FormEvent) => {
    event.preventDefault();
    let added;
    try {
      added = await apollo.mutate({
        mutation: AddMemberDocument,
        variables: { input: { boardId: board.id, username, expectedVersion: board.version } },
      });
    } catch (error) {
      onFailure(error);
      return;
    }
    const result = added.data?.addMember;
    if (result && !onReport(result)) setUsername('');
  };
  return (
    <section className="members" aria-label="Members">
      <h2>Members</h2>
      <ul data-testid="members">
        {board.members.map((member) => (
          <li key={member.id}>
            {member.displayName} <span className="muted">@{member.username}</span>
          </li>
        ))}
      </ul>
      <form className="inline" onSubmit={(event) => void add(event)}>
        <input
          aria-label="Username to add"
          placeholder="username"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <button type="submit">Add member</button>
      </form>
    </section>
  );
}
