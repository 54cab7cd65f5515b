import { unreachable } from '../unreachable.js';
import type { UserEvent, UsernameClaimEvent } from './events.js';

/** A user as its stream tells it. */
export type UserState =
  | { status: 'unregistered' }
  | {
      status: 'registered';
      userId: string;
      username: string;
      displayName: string;
      /** Absent for a user provisioned for an identity provider's subject. */
      tokenHash?: string;
      /** From `setPassword`; absent until then. */
      passwordHash?: string;
    };

export const initialUserState: UserState = { status: 'unregistered' };

/** The user after one more event of its stream. */
export function evolveUser(state: UserState, event: UserEvent): UserState {
  switch (event.type) {
    case 'UserRegistered':
      return { status: 'registered', ...event.data };
    case 'PasswordSet':
      return state.status === 'registered'
        ? { ...state, passwordHash: event.data.passwordHash }
        : state;
    default:
      return unreachable(event);
  }
}

/** Who, if anyone, holds one normalized username. */
export type UsernameClaimState = { status: 'unclaimed' } | { status: 'claimed'; userId: string };

export const initialUsernameClaimState: UsernameClaimState = { status: 'unclaimed' };

/** The claim after one more event of its stream. A claim is permanent. */
export function evolveUsernameClaim(
  state: UsernameClaimState,
  event: UsernameClaimEvent,
): UsernameClaimState {
  switch (event.type) {
    case 'UsernameClaimed':
      return state.status === 'claimed' ? state : { status: 'claimed', userId: event.data.userId };
    default:
      return unreachable(event.type);
  }
}
