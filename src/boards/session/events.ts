import { eventParser, type SchemaVersions } from '../domainEvent.js';
import { unreachable } from '../unreachable.js';

/** How a session of the built-in issuer began. */
export const SessionMethod = {
  /** `registerUser` hands out the new user's first session. */
  Registration: 'registration',
  /** `signIn` with a username and password. */
  Password: 'password',
} as const;
export type SessionMethod = (typeof SessionMethod)[keyof typeof SessionMethod];

/** Why a session ended before it expired. */
export const SessionEndReason = {
  /** `signOut`: the session ended itself. */
  SignedOut: 'signedOut',
  /** `revokeSession`: ended from another session of its user. */
  Revoked: 'revoked',
} as const;
export type SessionEndReason = (typeof SessionEndReason)[keyof typeof SessionEndReason];

/**
 * Events of a session stream (`session-<sessionId>`): a bearer token of the built-in
 * issuer (only its sha256 hash is stored). A session expires `SESSION_TTL` after it was
 * last active; `SessionRefreshed` records activity (at most once per refresh interval,
 * see `sessionRefreshIntervalMs`), so the expiry slides.
 */
export type SessionEvent =
  | {
      type: 'SessionStarted';
      data: { sessionId: string; userId: string; tokenHash: string; method: SessionMethod };
    }
  | { type: 'SessionRefreshed'; data: Record<string, never> }
  | { type: 'SessionEnded'; data: { reason: SessionEndReason } };

export const sessionEventSchemaVersions: SchemaVersions<SessionEvent> = {
  SessionStarted: 1,
  SessionRefreshed: 1,
  SessionEnded: 1,
};

/** Fields of the GraphQL `Session` type. */
export type SessionField = 'startedAt' | 'lastActiveAt' | 'expiresAt' | 'endedAt';

/** The `Session` fields an event touches. */
export function sessionEventFields(event: SessionEvent): readonly SessionField[] {
  switch (event.type) {
    case 'SessionStarted':
      return ['startedAt', 'lastActiveAt', 'expiresAt'];
    case 'SessionRefreshed':
      return ['lastActiveAt', 'expiresAt'];
    case 'SessionEnded':
      return ['endedAt'];
    default:
      return unreachable(event);
  }
}

/** A stored event of a session stream as a `SessionEvent`; throws on an unknown type. */
export const parseSessionEvent = eventParser<SessionEvent>(sessionEventSchemaVersions);
