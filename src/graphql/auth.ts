import { timingSafeEqual } from 'node:crypto';
import { GraphQLError } from 'graphql';
import type { BoardCommands } from '../boards/commands.js';
import { normalizeUsername } from '../boards/streams.js';
import type { SessionDoc, UserDoc } from '../boards/readModel.js';
import type { BoardReads } from '../boards/reads.js';
import { hashToken } from '../boards/user/token.js';
import type { OidcConfig } from '../config.js';
import { provisionedName, userIdOfSubject } from '../identity/claims.js';
import type { Credential } from '../identity/credentialWatch.js';
import {
  IdentityProviderUnavailableError,
  InvalidTokenError,
  type OidcVerifier,
  type VerifiedToken,
} from '../identity/oidcVerifier.js';
import type { Logger } from '../logger.js';
import { ProjectionTimeout, type ChangeLogFollower } from '../projector/ChangeLogFollower.js';

/** `Bearer <token>`; the scheme is case-insensitive (RFC 7235, section 2.1). */
const BEARER = /^Bearer\s+([A-Za-z0-9_-]{20,128})$/i;

/** `Bearer <JWT>`: three base64url parts, at most 16 KiB. */
const BEARER_JWT = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/i;
const MAX_JWT_LENGTH = 16 * 1024;

/** How callers are identified. */
export const AuthMode = {
  /** Tokens from `registerUser` (the embedded default). */
  BuiltIn: 'builtIn',
  /** JWTs of an OpenID Connect provider (`AUTH_ISSUER`). */
  Oidc: 'oidc',
} as const;
export type AuthMode = (typeof AuthMode)[keyof typeof AuthMode];

/** A caller the credentials identified. */
export interface Authenticated {
  user: UserDoc;
  credential: Credential;
}

/** Turns an `Authorization` header into a caller. */
export interface Authenticator {
  readonly mode: AuthMode;
  /** The identity provider's issuer (OIDC mode); null for the built-in issuer. */
  readonly issuer: string | null;
  /**
   * The caller; null when no credentials were sent (anonymous). Throws an
   * `UNAUTHENTICATED` GraphQL error when credentials were sent but identify no one:
   * never treated as anonymous, so a client with a stale token finds out at once.
   */
  authenticate(
    authorization: string | null | undefined,
    reads: BoardReads,
    signal: AbortSignal,
  ): Promise<Authenticated | null>;
}

/** `UNAUTHENTICATED` (HTTP 401), with why in `extensions.reason` when there is one. */
function unauthenticated(message: string, reason?: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: 'UNAUTHENTICATED',
      ...(reason !== undefined && { reason }),
      http: { status: 401 },
    },
  });
}

/** What the built-in issuer's authenticator works with. */
export interface BuiltInAuthenticatorOptions {
  /** `SESSION_TTL`: a session expires this long after its last recorded use. */
  sessionTtlMs: number;
  /** Records a session's use (`refreshSession`), so its expiry slides. */
  commands: Pick<BoardCommands, 'refreshSession'>;
  /**
   * The session of a token hash as the newest read model has it, for subscriptions that
   * outlive the request that authenticated them: at the expiry they were opened with,
   * a session used since has a later one.
   */
  currentSession: (tokenHash: string) => Promise<SessionDoc | null>;
  logger: Logger;
  /** @default () => Date.now() */
  now?: () => number;
}

/**
 * How often a session's use is recorded: a thirtieth of its lifetime (a day for 30
 * days), so an active session never expires and a busy one costs a commit a day.
 */
export const sessionRefreshIntervalMs = (sessionTtlMs: number): number =>
  Math.max(1_000, Math.floor(sessionTtlMs / 30));

/**
 * The built-in issuer: bearer tokens of sessions (`registerUser`, `signIn`). Tokens are
 * stored only as sha256 hashes; the lookup is by hash and the final comparison is
 * constant-time. A session is accepted until it ends (signed out, revoked) or expires
 * (`sessionTtlMs` after its last recorded use); a use more than
 * {@link sessionRefreshIntervalMs} after the last recorded one is recorded, in the
 * background.
 */
export function builtInAuthenticator(options: BuiltInAuthenticatorOptions): Authenticator {
  const { sessionTtlMs, commands, currentSession, logger } = options;
  const now = options.now ?? Date.now;
  const refreshAfterMs = sessionRefreshIntervalMs(sessionTtlMs);
  const refreshing = new Set<string>();
  const invalidToken = (reason?: string) =>
    unauthenticated(
      reason === 'expired'
        ? 'The session has expired or ended; sign in again (signIn) for a new token.'
        : 'The bearer token is malformed or unknown; send `Authorization: Bearer <token>` from registerUser or signIn, or no header.',
      reason,
    );
  const refresh = (sessionId: string) => {
    if (refreshing.has(sessionId)) return;
    refreshing.add(sessionId);
    commands
      .refreshSession(null, { sessionId })
      .catch((error: unknown) => logger.warn({ err: error, sessionId }, 'session refresh failed'))
      .finally(() => refreshing.delete(sessionId));
  };
  return {
    mode: AuthMode.BuiltIn,
    issuer: null,
    async authenticate(authorization, reads) {
      const sent = authorization?.trim();
      if (!sent) return null;
      const token = BEARER.exec(sent)?.[1];
      if (!token) throw invalidToken();
      const hash = hashToken(token);
      const session = await reads.sessionByTokenHash(hash);
      if (!session) throw invalidToken();
      const a = Buffer.from(hash);
      const b = Buffer.from(session.tokenHash);
      if (a.length !== b.length || !timingSafeEqual(a, b)) throw invalidToken();
      const lastActive = session.lastActiveAt.getTime();
      const at = now();
      if (session.endedAt !== null || lastActive + sessionTtlMs <= at) {
        throw invalidToken('expired');
      }
      const user = await reads.users.load(session.userId);
      if (!user) throw invalidToken();
      if (at - lastActive >= refreshAfterMs) refresh(session._id);
      const renew = async () => {
        const current = await currentSession(hash);
        if (current?._id !== session._id || current.endedAt !== null) return null;
        return new Date(current.lastActiveAt.getTime() + sessionTtlMs);
      };
      return {
        user,
        credential: {
          expiresAt: new Date(lastActive + sessionTtlMs),
          sessionId: session._id,
          renew,
        },
      };
    },
  };
}

/** What the OpenID Connect authenticator works with. */
export interface OidcAuthenticatorOptions {
  config: Pick<OidcConfig, 'issuer' | 'usernameClaims' | 'clockSkewSeconds'>;
  verifier: OidcVerifier;
  /** Where a new subject's user is provisioned (`provisionUser`). */
  commands: Pick<BoardCommands, 'provisionUser'>;
  /** Waited on after provisioning, so the new user's first request reads itself. */
  follower: Pick<ChangeLogFollower, 'waitFor'>;
  readYourWritesTimeoutMs: number;
  logger: Logger;
}

/**
 * An OpenID Connect provider's JWTs (verified by `verifier`); a subject seen for the
 * first time gets its Corkboard user at once (`provisionUser`: one user per subject
 * even when its first requests race; concurrent first requests in this process share
 * one provisioning).
 */
export function oidcAuthenticator(options: OidcAuthenticatorOptions): Authenticator {
  const { config, verifier, commands, follower, logger } = options;
  const provisioning = new Map<string, Promise<UserDoc>>();

  async function provision(userId: string, token: VerifiedToken): Promise<UserDoc> {
    const name = provisionedName(config.issuer, token.claims, config.usernameClaims);
    const result = await commands.provisionUser(null, { userId, ...name });
    if (!result.ok) {
      logger.warn(
        { userId, error: result.error.message },
        'a new subject could not be provisioned',
      );
      throw unauthenticated(
        `No Corkboard user could be created for this subject: ${result.error.message}`,
        'PROVISIONING_FAILED',
      );
    }
    const { username, displayName, version, position } = result.value;
    if (position !== null) {
      logger.info({ userId, username }, 'user provisioned for a new subject');
      try {
        await follower.waitFor(position, { timeoutMs: options.readYourWritesTimeoutMs });
      } catch (error) {
        if (!(error instanceof ProjectionTimeout)) throw error;
      }
    }
    return {
      _id: userId,
      username,
      usernameKey: normalizeUsername(username),
      displayName,
      version,
      createdAt: new Date(),
    };
  }

  return {
    mode: AuthMode.Oidc,
    issuer: config.issuer,
    async authenticate(authorization, reads) {
      const sent = authorization?.trim();
      if (!sent) return null;
      const jwt = sent.length <= MAX_JWT_LENGTH ? BEARER_JWT.exec(sent)?.[1] : undefined;
      if (!jwt) {
        throw unauthenticated(
          'Send `Authorization: Bearer <JWT>` with a token of the identity provider, or no header.',
          'malformed',
        );
      }
      let token: VerifiedToken;
      try {
        token = await verifier.verify(jwt);
      } catch (error) {
        if (error instanceof InvalidTokenError) throw unauthenticated(error.message, error.reason);
        if (error instanceof IdentityProviderUnavailableError) {
          logger.warn({ err: error }, 'identity provider unavailable');
          throw new GraphQLError('The identity provider cannot be reached; try again shortly.', {
            extensions: { code: 'IDENTITY_PROVIDER_UNAVAILABLE', http: { status: 503 } },
          });
        }
        throw error;
      }
      const userId = userIdOfSubject(config.issuer, token.subject);
      let user = await reads.users.load(userId);
      if (!user) {
        let pending = provisioning.get(userId);
        if (!pending) {
          pending = provision(userId, token).finally(() => provisioning.delete(userId));
          provisioning.set(userId, pending);
        }
        user = await pending;
      }
      const expiresAt = new Date(token.expiresAt.getTime() + config.clockSkewSeconds * 1000);
      return { user, credential: { expiresAt, sessionId: null } };
    },
  };
}

/**
 * Whether `authorization` is `Bearer <adminToken>`, compared in constant time (on
 * sha256 hashes, so the lengths always match).
 */
export function isAdminAuthorization(
  adminToken: string,
  authorization: string | null | undefined,
): boolean {
  const token = authorization ? BEARER.exec(authorization.trim())?.[1] : undefined;
  if (!token) return false;
  return timingSafeEqual(Buffer.from(hashToken(token)), Buffer.from(hashToken(adminToken)));
}
