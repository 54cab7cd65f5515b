import { timingSafeEqual } from 'node:crypto';
import { GraphQLError } from 'graphql';
import type { UserDoc } from '../boards/readModel.js';
import type { BoardReads } from '../boards/reads.js';
import { hashToken } from '../boards/user/token.js';

/** `Bearer <token>`; the scheme is case-insensitive (RFC 7235, section 2.1). */
const BEARER = /^Bearer\s+([A-Za-z0-9_-]{20,128})$/i;

/**
 * The answer to a request that sent credentials which identify no one: never treated
 * as anonymous, so a client with a stale or mistyped token finds out at once.
 */
function invalidToken(): GraphQLError {
  return new GraphQLError(
    'The bearer token is malformed or unknown; send `Authorization: Bearer <token>` from registerUser, or no header.',
    { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } },
  );
}

/**
 * The user a bearer token belongs to; null when no credentials were sent (anonymous).
 * Throws an `UNAUTHENTICATED` GraphQL error when credentials were sent but are not a
 * bearer token of a user. Tokens are stored only as sha256 hashes; the lookup is by
 * hash and the final comparison is constant-time.
 */
export async function authenticate(
  reads: BoardReads,
  authorization: string | null | undefined,
): Promise<UserDoc | null> {
  const sent = authorization?.trim();
  if (!sent) return null;
  const token = BEARER.exec(sent)?.[1];
  if (!token) throw invalidToken();
  const hash = hashToken(token);
  const user = await reads.userByTokenHash(hash);
  if (!user) throw invalidToken();
  const a = Buffer.from(hash);
  const b = Buffer.from(user.tokenHash);
  if (a.length === b.length && timingSafeEqual(a, b)) return user;
  throw invalidToken();
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
