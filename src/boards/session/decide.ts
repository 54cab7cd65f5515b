import type { DecideContext, Decision } from '../decision.js';
import { NotFoundError } from '../errors.js';
import { unreachable } from '../unreachable.js';
import type { SessionEndReason, SessionMethod } from './events.js';
import type { SessionState } from './state.js';

/** Commands on sessions of the built-in issuer. Inputs are already validated. */
export type SessionCommand =
  | { type: 'StartSession'; data: { userId: string; tokenHash: string; method: SessionMethod } }
  | { type: 'RefreshSession'; data: { sessionId: string } }
  | { type: 'EndSession'; data: { sessionId: string; actorId: string; reason: SessionEndReason } };

/**
 * Decides a session command.
 *
 * `StartSession` -> `SessionStarted` on a new session id. `RefreshSession` ->
 * `SessionRefreshed` while the session is active, else nothing. `EndSession` ->
 * `SessionEnded` when the session is the actor's and active; nothing when it already
 * ended (ending is idempotent); `NotFoundError` when it is not the actor's (another
 * user's sessions do not exist for the caller).
 */
export function decideSession(
  command: SessionCommand,
  state: SessionState,
  context: DecideContext,
): Decision {
  switch (command.type) {
    case 'StartSession': {
      const sessionId = context.newId();
      return [
        {
          aggregate: 'session',
          id: sessionId,
          events: [{ type: 'SessionStarted', data: { sessionId, ...command.data } }],
        },
      ];
    }
    case 'RefreshSession':
      if (state.status !== 'active') return [];
      return [
        {
          aggregate: 'session',
          id: command.data.sessionId,
          events: [{ type: 'SessionRefreshed', data: {} }],
        },
      ];
    case 'EndSession': {
      const { sessionId, actorId, reason } = command.data;
      if (state.status === 'none' || state.userId !== actorId) {
        throw new NotFoundError(sessionId, 'Session');
      }
      if (state.status === 'ended') return [];
      return [
        {
          aggregate: 'session',
          id: sessionId,
          events: [{ type: 'SessionEnded', data: { reason } }],
        },
      ];
    }
    default:
      return unreachable(command);
  }
}
