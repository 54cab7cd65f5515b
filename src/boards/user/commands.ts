import { z } from 'zod';
import { commitRef, defineCommand, headOfKind } from '../commandHandling/defineCommand.js';
import { ExternalIdentityError, UsernameTakenError, ValidationError } from '../errors.js';
import { normalizeUsername } from '../streams.js';
import { idempotencyKey, inputLimits, text, username } from '../validation.js';
import { decideUser } from './decide.js';
import { decideSession } from '../session/decide.js';
import { SessionMethod } from '../session/events.js';
import type { UserState } from './state.js';
import { deriveToken, generateToken, hashToken } from './token.js';

/**
 * Registers a user and hands out its bearer token. The username is unique after
 * NFKC and lowercasing, enforced by the store (`username-<normalized>` appended
 * with `NO_STREAM` in the same commit). Anyone may call it.
 *
 * The token is 32 bytes, base64url; only its `hashToken` is stored, so the result
 * is the one chance to hand it out. With an idempotency key the token is derived
 * from the key (HMAC with the runtime's `tokenSecret`), so a retry returns it again.
 */
export const registerUser = defineCommand({
  name: 'registerUser',
  input: z.object({
    username: username.describe('3-32 of letters, digits, `_`, `.`, `-`; unique ignoring case.'),
    displayName: text(inputLimits.displayNameMax),
    idempotencyKey: idempotencyKey.describe(
      'Retrying with the same key returns the first result and writes nothing.',
    ),
  }),
  errors: [UsernameTakenError, ValidationError, ExternalIdentityError],
  // Whoever asks, a registration is anonymous: a retry sent with the token the first
  // answer returned replays it. Anonymous callers share one scope, so the username joins it.
  anonymous: true,
  idempotencyScope: (input) => normalizeUsername(input.username),
  // A replay may hand back a token only to the very request that minted it: the token is
  // derived from the key AND the request's fingerprint (its whole input), and the store
  // replays the key only for that same fingerprint (another one gets a ValidationError).
  prepare: ({ idempotencyKey: key, requestFingerprint }, { tokenSecret }) =>
    key === undefined
      ? generateToken()
      : deriveToken(tokenSecret, `${key}:${requestFingerprint ?? ''}`),
  load: async (session, { input }) => ({
    claim: await session.load('username', normalizeUsername(input.username)),
  }),
  decide: ({ input, prepared: token }, { claim }, context) => {
    const { username, displayName } = input;
    const user = decideUser(
      { type: 'RegisterUser', data: { username, displayName } },
      { claim: claim.state },
      context,
    );
    // The new user's first session holds the token.
    const userId = user[0]!.id;
    const tokenHash = hashToken(token);
    const method = SessionMethod.Registration;
    const session = decideSession(
      { type: 'StartSession', data: { userId, tokenHash, method } },
      { status: 'none' },
      context,
    );
    return [...user, ...session];
  },
  succeed: async (commit, { input, prepared: token }, readState) => {
    const user = headOfKind(commit.heads, 'user');
    if (!commit.replayed) {
      const { username, displayName } = input;
      return { ...commitRef(commit), user, username, displayName, token };
    }
    // The first registration's data, and its token derived again from the same key.
    const state = await readState('user', user.id);
    const session = await readState('session', headOfKind(commit.heads, 'session').id);
    if (
      state.status !== 'registered' ||
      session.status === 'none' ||
      session.tokenHash !== hashToken(token)
    ) {
      throw new Error('registerUser replay: cannot derive the token again (tokenSecret changed)');
    }
    const { username, displayName } = state;
    return { ...commitRef(commit), user, username, displayName, token };
  },
});

/**
 * Creates the user of an identity provider's subject on its first verified request
 * (just-in-time provisioning); not a GraphQL mutation, the authenticator runs it. The
 * user id is derived from the subject (`userIdOfSubject`), so concurrent first
 * requests of one subject race on one `NO_STREAM` append and create one user; the
 * others find it (nothing to write) and answer with it. A username another user holds
 * goes to `fallbackUsername` instead (see `decideUser`).
 */
export const provisionUser = defineCommand({
  name: 'provisionUser',
  input: z.object({
    userId: z.string().min(1),
    username,
    fallbackUsername: username,
    displayName: text(inputLimits.displayNameMax),
  }),
  errors: [UsernameTakenError, ValidationError],
  // The user stream first: it is the one this process's writers queue holds.
  load: async (session, { input }) => ({
    user: await session.load('user', input.userId),
    claim: await session.load('username', normalizeUsername(input.username)),
    fallbackClaim: await session.load('username', normalizeUsername(input.fallbackUsername)),
  }),
  decide: ({ input }, { user, claim, fallbackClaim }, context) =>
    decideUser(
      { type: 'ProvisionUser', data: input },
      {
        claim: claim.state,
        provisioning: { user: user.state, fallbackClaim: fallbackClaim.state },
      },
      context,
    ),
  nothingToWrite: (_call, { user }) => provisionedUserOf(user.state, user.version, null),
  succeed: async (commit, { input }, readState) => {
    const head = headOfKind(commit.heads, 'user');
    const state = await readState('user', input.userId);
    return provisionedUserOf(state, head.version, commit.position);
  },
});

/**
 * The answer of `provisionUser`: the subject's user, and the position of the commit
 * that created it (null when it existed already).
 */
function provisionedUserOf(state: UserState, version: number, position: number | null) {
  if (state.status !== 'registered') throw new Error('provisionUser: the user is not registered');
  const { userId, username, displayName } = state;
  return { userId, username, displayName, version, position };
}

/** The mutations of a user stream, by name: each is a mutation of the public contract (see `commandSpecs`). */
export const userCommands = { registerUser } as const;
