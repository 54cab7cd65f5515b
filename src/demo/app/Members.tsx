import { useApolloClient } from '@apollo/client/react';
import {
  AddMemberDocument,
  RemoveMemberDocument,
  SetMemberRoleDocument,
  type BoardRole,
} from '@corkboard/client';
import { useState, type FormEvent } from 'react';
import type { Access } from './access.js';
import type { Board, Failure, Report } from './boardTypes.js';
import { ROLES, roleName } from './roles.js';
import { mutateOr } from './mutate.js';

/** One member as the panel shows it. */
export interface Membership {
  role: BoardRole;
  user: { id: string; username: string; displayName: string };
}

/**
 * The board's members with their roles. An owner changes a member's role, removes a
 * member, and adds one by username with a role; anyone may leave (the server refuses
 * the last owner: `LastOwnerError`).
 */
export function Members({
  board,
  memberships,
  viewerId,
  access,
  onReport,
  onFailure,
  onLeft,
}: {
  board: Board;
  memberships: readonly Membership[];
  viewerId: string;
  access: Access;
  onReport: Report;
  onFailure: Failure;
  /** The viewer left the board. */
  onLeft: () => void;
}) {
  const apollo = useApolloClient();
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<BoardRole>('EDITOR');

  const add = async (event: FormEvent) => {
    event.preventDefault();
    const added = await mutateOr(
      apollo,
      {
        mutation: AddMemberDocument,
        variables: {
          input: { boardId: board.id, username, role, expectedVersion: board.version },
        },
      },
      onFailure,
    );
    const result = added?.addMember;
    if (result && !onReport(result)) setUsername('');
  };

  const setMemberRole = async (userId: string, next: BoardRole) => {
    const set = await mutateOr(
      apollo,
      {
        mutation: SetMemberRoleDocument,
        variables: {
          input: { boardId: board.id, userId, role: next, expectedVersion: board.version },
        },
      },
      onFailure,
    );
    const result = set?.setMemberRole;
    if (result) onReport(result);
  };

  const remove = async (userId: string) => {
    const removed = await mutateOr(
      apollo,
      {
        mutation: RemoveMemberDocument,
        variables: { input: { boardId: board.id, userId, expectedVersion: board.version } },
      },
      onFailure,
    );
    const result = removed?.removeMember;
    if (result && !onReport(result) && userId === viewerId) onLeft();
  };

  return (
    <section className="members" aria-label="Members">
      <h2>Members</h2>
      <ul data-testid="members">
        {memberships.map(({ user, role: memberRole }) => (
          <li
            key={user.id}
            data-testid="member"
            data-username={user.username}
            data-role={memberRole}
          >
            <span>
              {user.displayName} <span className="muted">@{user.username}</span>
              {user.id === viewerId && <span className="muted"> (you)</span>}
            </span>
            {access.canManageMembers && user.id !== viewerId ? (
              <span className="member-controls">
                <select
                  aria-label={`Role of ${user.username}`}
                  value={memberRole}
                  onChange={(e) => void setMemberRole(user.id, e.target.value as BoardRole)}
                >
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {roleName(r)}
                    </option>
                  ))}
                </select>
                <button
                  type="button"
                  aria-label={`Remove ${user.username}`}
                  onClick={() => void remove(user.id)}
                >
                  Remove
                </button>
              </span>
            ) : (
              <span className={`role ${memberRole.toLowerCase()}`}>{roleName(memberRole)}</span>
            )}
          </li>
        ))}
      </ul>
      {access.canManageMembers && (
        <form className="inline" onSubmit={(event) => void add(event)}>
          <input
            aria-label="Username to add"
            placeholder="username"
            required
            value={username}
            onChange={(e) => setUsername(e.target.value)}
          />
          <select
            aria-label="Role to add with"
            value={role}
            onChange={(e) => setRole(e.target.value as BoardRole)}
          >
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {roleName(r)}
              </option>
            ))}
          </select>
          <button type="submit">Add member</button>
        </form>
      )}
      <button type="button" className="leave" onClick={() => void remove(viewerId)}>
        Leave board
      </button>
    </section>
  );
}
