import { z } from 'zod';
import { hashPassword, PASSWORD_LIMITS, verifyPassword } from '../../identity/passwords.js';
import { commitRef, defineCommand, headOfKind } from '../commandHandling/defineCommand.js';
import {
  ExternalIdentityError,
  InvalidCredentialsError,
  NotFoundError,
  TooManyAttemptsError,
  UnauthenticatedError,
  ValidationError,
} from '../errors.js';
import { normalizeUsername } from '../streams.js';
import { decideUser } from '../user/decide.js';
import { generateToken, hashToken } from '../user/token.js';
import { idempotencyKey, inputLimits, password, resourceId } from '../validation.js';
import { decideSession } from './decide.js';
import { SessionEndReason, SessionMethod } from './events.js';

/**
 * Sets the caller's password (scrypt, see `hashPassword`), so `signIn` can open new
 * sessions. When the user has a password already, `currentPassword` must match it
 * (`InvalidCredentialsError` otherwise): a stolen token alone cannot take the account.
 */
export const setPassword = defineCommand({
  name: 'setPassword',
  input: z.object({
    password: password.describe(
      `${PASSWORD_LIMITS.min}-${PASSWORD_LIMITS.max} characters (UTF-16 code units), kept as typed; not whitespace alone.`,
    ),
    currentPassword: z
      .string()
      .max(PASSWORD_LIMITS.max)
      .nullish()
      .transform((v) => v ?? undefined)
      .describe('Required when a password is set already.'),
    idempotencyKey: idempotencyKey.describe(
      'Retrying with the same key returns the first result and writes nothing.',
    ),
  }),
  errors: [UnauthenticatedError, InvalidCredentialsError, ValidationError, ExternalIdentityError],
  prepare: ({ input }) => hashPassword(input.password),
  load: async (session, { actorId, input }) => {
    const user = await session.load('user', actorId);
    const stored = user.state.status === 'registered' ? user.state.passwordHash : undefined;
    const currentMatches =
      stored === undefined || (await verifyPassword(input.currentPassword ?? '', stored));
    return { user, currentMatches };
  },
  decide: ({ actorId, prepared }, { user, currentMatches }, context) =>
    decideUser(
      { type: 'SetPassword', data: { userId: actorId, passwordHash: prepared } },
      { claim: { status: 'unclaimed' }, user: user.state, currentPasswordMatches: currentMatches },
      context,
    ),
  succeed: (commit, { actorId }) => ({
    ...commitRef(commit),
    user: { id: actorId, version: headOfKind(commit.heads, 'user').version },
  }),
});

/**
 * Opens a session for a username and password: a new bearer token (shown once). A
 * wrong password, an unknown username and a user without a password all answer the
 * same `InvalidCredentialsError`, after the same scrypt work (`verifyPassword` checks
 * against a decoy hash), so neither the message nor the time tells which. The GraphQL
 * field rate-limits attempts per username (`SIGN_IN_RATE_LIMIT`).
 */
export const signIn = defineCommand({
  name: 'signIn',
  input: z.object({
    username: z.string().max(inputLimits.usernameMax * 4),
    password: z.string().max(PASSWORD_LIMITS.max),
  }),
  errors: [InvalidCredentialsError, TooManyAttemptsError, ValidationError, ExternalIdentityError],
  // Signing in acts for the user it signs in, not for whatever token came with it.
  anonymous: true,
  prepare: () => generateToken(),
  load: async (session, { input }) => {
    const claim = await session.load('username', normalizeUsername(input.username));
    const user =
      claim.state.status === 'claimed' ? await session.load('user', claim.state.userId) : null;
    const stored = user?.state.status === 'registered' ? user.state.passwordHash : undefined;
    const matches = await verifyPassword(input.password, stored);
    return { userId: matches && user?.state.status === 'registered' ? user.state.userId : null };
  },
  decide: ({ prepared: token }, { userId }, context) => {
    if (userId === null) throw new InvalidCredentialsError();
    return decideSession(
      {
        type: 'StartSession',
        data: { userId, tokenHash: hashToken(token), method: SessionMethod.Password },
      },
      { status: 'none' },
      context,
    );
  },
  succeed: async (commit, { prepared: token }, readState) => {
    const head = headOfKind(commit.heads, 'session');
    const state = await readState('session', head.id);
    if (state.status === 'none') throw new Error('signIn: the session was not started');
    return { ...commitRef(commit), user: { id: state.userId, version: 0 }, session: head, token };
  },
});

/**
 * Ends one of the caller's sessions (`revokeSession`, or `signOut` for the calling
 * one): its token stops working at once, and open websockets and SSE streams opened
 * with it are closed on every instance within one commit. Ending an ended session
 * changes nothing; another user's session is `NotFoundError`.
 */
export const revokeSession = defineCommand({
  name: 'revokeSession',
  input: z.object({
    sessionId: resourceId('Session').describe('A session of the caller (see `mySessions`).'),
    idempotencyKey: idempotencyKey.describe(
      'Retrying with the same key returns the first result and writes nothing.',
    ),
  }),
  errors: [UnauthenticatedError, NotFoundError, ValidationError, ExternalIdentityError],
  load: async (session, { input }) => ({ session: await session.load('session', input.sessionId) }),
  decide: ({ actorId, input }, { session }, context) =>
    decideSession(
      {
        type: 'EndSession',
        data: { sessionId: input.sessionId, actorId, reason: SessionEndReason.Revoked },
      },
      session.state,
      context,
    ),
  nothingToWrite: ({ input }): { position: number | null; sessionId: string } => ({
    position: null,
    sessionId: input.sessionId,
  }),
  succeed: (commit, { input }) => ({ ...commitRef(commit), sessionId: input.sessionId }),
});

/**
 * Records that a session was used (the expiry slides); not a mutation, the
 * authenticator runs it at most once per refresh interval per session.
 */
export const refreshSession = defineCommand({
  name: 'refreshSession',
  input: z.object({ sessionId: z.string().min(1) }),
  errors: [ValidationError],
  load: async (session, { input }) => ({ session: await session.load('session', input.sessionId) }),
  decide: ({ input }, { session }, context) =>
    decideSession({ type: 'RefreshSession', data: input }, session.state, context),
  nothingToWrite: (): { position: number | null } => ({ position: null }),
  succeed: (commit) => ({ position: commit.position }),
});

/** The mutations of sessions and passwords, by name: each is a mutation of the public contract (see `commandSpecs`). */
export const sessionCommands = { setPassword, signIn, revokeSession } as const;
