import { timingSafeEqual } from 'node:crypto';
import type { UserDoc } from '../boards/readModel.js';
import type { BoardReads } from '../boards/reads.js';
import { hashToken } from '../boards/user/token.js';

const BEARER = /^Bearer\s+([A-Za-z0-9_-]{20,128})$/;

/**
 * The user a bearer token belongs to, or null (no header, malformed, unknown).
 * Tokens are stored only as sha256 hashes; the lookup is by hash and the final
 * comparison is constant-time.
 */
export async function authenticate(
  reads: BoardReads,
  authorization: string | null | undefined,
): Promise<UserDoc | null> {
  const token = authorization ? BEARER.exec(authorization.trim())?.[1] : undefined;
  if (!token) return null;
  const hash = hashToken(token);
  const user = await reads.userByTokenHash(hash);
  if (!user) return null;
  const a = Buffer.from(hash);
  const b = Buffer.from(user.tokenHash);
  return a.length === b.length && timingSafeEqual(a, b) ? user : null;
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
