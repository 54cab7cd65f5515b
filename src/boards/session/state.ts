import { unreachable } from '../unreachable.js';
import type { SessionEvent } from './events.js';

/** A session as its stream tells it. */
export type SessionState =
  | { status: 'none' }
  | { status: 'active'; sessionId: string; userId: string; tokenHash: string }
  | { status: 'ended'; sessionId: string; userId: string; tokenHash: string };

export const initialSessionState: SessionState = { status: 'none' };

/** The session after one more event of its stream. */
export function evolveSession(state: SessionState, event: SessionEvent): SessionState {
  switch (event.type) {
    case 'SessionStarted': {
      const { sessionId, userId, tokenHash } = event.data;
      return { status: 'active', sessionId, userId, tokenHash };
    }
    case 'SessionRefreshed':
      return state;
    case 'SessionEnded':
      return state.status === 'active' ? { ...state, status: 'ended' } : state;
    default:
      return unreachable(event);
  }
}
