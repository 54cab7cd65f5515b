import { eventParser, type SchemaVersions } from '../domainEvent.js';
import { unreachable } from '../unreachable.js';

/**
 * Events of a user stream (`user-<userId>`).
 *
 * `UserRegistered` holds only the sha256 hash of the user's bearer token
 * (see `hashToken`); the token itself is never stored. A user provisioned for an
 * identity provider's subject has no token of ours (`tokenHash` absent).
 */
export type UserEvent =
  | {
      type: 'UserRegistered';
      data: { userId: string; username: string; displayName: string; tokenHash?: string };
    }
  /** `setPassword`: the scrypt hash of the user's new password (`hashPassword`). */
  | { type: 'PasswordSet'; data: { passwordHash: string } };

/**
 * Events of a username claim stream (`username-<normalized>`). The claim is appended
 * with `NO_STREAM` in the same commit as the user's `UserRegistered`, so the store
 * itself guarantees one user per normalized username.
 */
export type UsernameClaimEvent = { type: 'UsernameClaimed'; data: { userId: string } };

export const userEventSchemaVersions: SchemaVersions<UserEvent> = {
  UserRegistered: 1,
  PasswordSet: 1,
};
export const usernameClaimEventSchemaVersions: SchemaVersions<UsernameClaimEvent> = {
  UsernameClaimed: 1,
};

/** Fields of the GraphQL `User` type. */
export type UserField = 'username' | 'displayName';

/** The `User` fields an event of a user stream touches. */
export function userEventFields(event: UserEvent): readonly UserField[] {
  switch (event.type) {
    case 'UserRegistered':
      return ['username', 'displayName'];
    case 'PasswordSet':
      return [];
    default:
      return unreachable(event);
  }
}

/**
 * The resource fields a claim event touches: none, the claim stream is internal
 * (the `User`'s `username` comes from its own stream).
 */
export function usernameClaimEventFields(event: UsernameClaimEvent): readonly never[] {
  switch (event.type) {
    case 'UsernameClaimed':
      return [];
    default:
      return unreachable(event.type);
  }
}

/** A stored event of a user stream as a `UserEvent`; throws on an unknown type. */
export const parseUserEvent = eventParser<UserEvent>(userEventSchemaVersions);

/** A stored event of a claim stream as a `UsernameClaimEvent`; throws on an unknown type. */
export const parseUsernameClaimEvent = eventParser<UsernameClaimEvent>(
  usernameClaimEventSchemaVersions,
);
