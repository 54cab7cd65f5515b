import type { DecideContext, Decision } from '../decision.js';
import { unreachable } from '../unreachable.js';
import { UsernameTakenError } from '../errors.js';
import { normalizeUsername } from '../streams.js';
import type { UsernameClaimState } from './state.js';

/** Commands that create or change users. Inputs are already validated. */
export type UserCommand = {
  type: 'RegisterUser';
  data: {
    /** As the user typed it (after NFKC); uniqueness is decided on its normalized form. */
    username: string;
    displayName: string;
    /** `hashToken` of the bearer token handed to the caller. */
    tokenHash: string;
  };
};

/** What user commands are decided on. */
export interface UserDecisionState {
  /** The claim stream of the requested username. */
  claim: UsernameClaimState;
}

/**
 * Decides a user command.
 *
 * `RegisterUser` -> `[user: UserRegistered, username: UsernameClaimed]` with a new
 * user id. Throws `UsernameTakenError` when the name is claimed; the command layer
 * appends the claim with `NO_STREAM`, so a claim that races in is caught by the store.
 */
export function decideUser(
  command: UserCommand,
  state: UserDecisionState,
  context: DecideContext,
): Decision {
  switch (command.type) {
    case 'RegisterUser': {
      const { username, displayName, tokenHash } = command.data;
      if (state.claim.status === 'claimed') throw new UsernameTakenError(username);
      const userId = context.newId();
      return [
        {
          aggregate: 'user',
          id: userId,
          events: [{ type: 'UserRegistered', data: { userId, username, displayName, tokenHash } }],
        },
        {
          aggregate: 'username',
          id: normalizeUsername(username),
          events: [{ type: 'UsernameClaimed', data: { userId } }],
        },
      ];
    }
    default:
      return unreachable(command.type);
  }
}
