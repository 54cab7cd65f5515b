import type { BoardRole } from '../board/access.js';
import { unreachable } from '../unreachable.js';
import type { MembershipEvent } from './events.js';

/**
 * One user's access to one board as their membership stream tells it. `absent`: the
 * stream holds no role (a board made before membership streams existed keeps its members'
 * roles on the board stream alone until their first change; see `roleOf`).
 *
 * `boardArchived`: the board was archived (and not restored since) as this stream tells
 * it. A member's write decides on it together with the board's own flag: the stream is
 * the one the write's commit asserts, so what it says about the archive is what the
 * commit is checked against, even when the board stream was read before the archive
 * committed and this stream after it.
 */
export type MembershipState = (
  { status: 'absent' } | { status: 'member'; role: BoardRole } | { status: 'ended' }
) & { boardArchived?: true };

export const initialMembershipState: MembershipState = { status: 'absent' };

/** `state`'s archive flag, to carry over to the state after a change of access. */
const archivedFlag = (state: MembershipState) =>
  state.boardArchived === true ? { boardArchived: true as const } : {};

/** The membership after one more event of its stream. */
export function evolveMembership(state: MembershipState, event: MembershipEvent): MembershipState {
  switch (event.type) {
    case 'MembershipGranted':
      return { status: 'member', role: event.data.role, ...archivedFlag(state) };
    case 'MembershipEnded':
      return { status: 'ended', ...archivedFlag(state) };
    case 'BoardArchivedForMember':
      return { ...state, boardArchived: true };
    case 'BoardRestoredForMember': {
      const { boardArchived: _archived, ...restored } = state;
      return restored;
    }
    default:
      return unreachable(event);
  }
}
