import type { DecideContext, Decision } from '../decision.js';
import { unreachable } from '../unreachable.js';
import { InvalidCredentialsError, UnauthenticatedError, UsernameTakenError } from '../errors.js';
import { normalizeUsername } from '../streams.js';
import type { UserState, UsernameClaimState } from './state.js';

/** Commands that create or change users. Inputs are already validated. */
export type UserCommand =
  | {
      type: 'RegisterUser';
      data: {
        /** As the user typed it (after NFKC); uniqueness is decided on its normalized form. */
        username: string;
        displayName: string;
      };
    }
  | { type: 'SetPassword'; data: { userId: string; passwordHash: string } }
  | {
      type: 'ProvisionUser';
      data: {
        /** Derived from the provider's issuer and subject (`userIdOfSubject`). */
        userId: string;
        username: string;
        /** Taken when `username` is held by another user. */
        fallbackUsername: string;
        displayName: string;
      };
    };

/** What user commands are decided on. */
export interface UserDecisionState {
  /** The claim stream of the requested username. */
  claim: UsernameClaimState;
  /** `ProvisionUser`: the subject's user stream and the fallback username's claim. */
  provisioning?: { user: UserState; fallbackClaim: UsernameClaimState };
  /** `SetPassword`: the user's stream, and whether the current password was given right. */
  user?: UserState;
  currentPasswordMatches?: boolean;
}

/**
 * Decides a user command.
 *
 * `RegisterUser` -> `[user: UserRegistered, username: UsernameClaimed]` with a new
 * user id. Throws `UsernameTakenError` when the name is claimed; the command layer
 * appends the claim with `NO_STREAM`, so a claim that races in is caught by the store.
 *
 * `SetPassword` -> `PasswordSet` with the new hash; `InvalidCredentialsError` when the
 * user has a password and the current one was not given right.
 *
 * `ProvisionUser` -> nothing when the subject's user exists; else the same two
 * events for the subject's own user id, with `username`, or `fallbackUsername` when
 * another user holds `username` (first come, first served), or `UsernameTakenError`
 * when both are held. The user stream is appended with `NO_STREAM` too, so two first
 * requests of one subject create one user.
 */
export function decideUser(
  command: UserCommand,
  state: UserDecisionState,
  context: DecideContext,
): Decision {
  switch (command.type) {
    case 'RegisterUser': {
      const { username, displayName } = command.data;
      if (state.claim.status === 'claimed') throw new UsernameTakenError(username);
      const userId = context.newId();
      return [
        {
          aggregate: 'user',
          id: userId,
          events: [{ type: 'UserRegistered', data: { userId, username, displayName } }],
        },
        {
          aggregate: 'username',
          id: normalizeUsername(username),
          events: [{ type: 'UsernameClaimed', data: { userId } }],
        },
      ];
    }
    case 'SetPassword': {
      const { userId, passwordHash } = command.data;
      if (state.user?.status !== 'registered') throw new UnauthenticatedError();
      if (state.currentPasswordMatches !== true) throw new InvalidCredentialsError();
      return [
        {
          aggregate: 'user',
          id: userId,
          events: [{ type: 'PasswordSet', data: { passwordHash } }],
        },
      ];
    }
    case 'ProvisionUser': {
      const { userId, username, fallbackUsername, displayName } = command.data;
      const { provisioning } = state;
      if (!provisioning) throw new Error('ProvisionUser needs the subject user stream');
      if (provisioning.user.status === 'registered') return [];
      const chosen =
        state.claim.status === 'unclaimed'
          ? username
          : provisioning.fallbackClaim.status === 'unclaimed'
            ? fallbackUsername
            : null;
      if (chosen === null) throw new UsernameTakenError(fallbackUsername);
      return [
        {
          aggregate: 'user',
          id: userId,
          events: [{ type: 'UserRegistered', data: { userId, username: chosen, displayName } }],
        },
        {
          aggregate: 'username',
          id: normalizeUsername(chosen),
          events: [{ type: 'UsernameClaimed', data: { userId } }],
        },
      ];
    }
    default:
      return unreachable(command);
  }
}
