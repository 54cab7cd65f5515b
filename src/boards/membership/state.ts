import type { BoardRole } from '../board/access.js';
import { unreachable } from '../unreachable.js';
import type { MembershipEvent } from './events.js';

/**
 * One user's access to one board as their membership stream tells it. `absent`: the
 * stream holds nothing (a board made before membership streams existed keeps its members'
 * roles on the board stream alone until their first change; see `roleOf`).
 */
export type MembershipState =
  { status: 'absent' } | { status: 'member'; role: BoardRole } | { status: 'ended' };

export const initialMembershipState: MembershipState = { status: 'absent' };

/** The membership after one more event of its stream. */
export function evolveMembership(state: MembershipState, event: MembershipEvent): MembershipState {
  switch (event.type) {
    case 'MembershipGranted':
      return { status: 'member', role: event.data.role };
    case 'MembershipEnded':
      return { status: 'ended' };
    case 'BoardArchivedForMember':
      // A fence for the member's writes, not a change of their access.
      return state;
    default:
      return unreachable(event);
  }
}
