import { createHash } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { inputLimits, text, USERNAME_PATTERN } from '../boards/validation.js';

/** Hex digits of the subject's hash in a fallback username. @default 8 */
export const SUBJECT_SUFFIX_LENGTH = 8;

/**
 * The Corkboard user id of a provider's subject: sha256 of the issuer and `sub`,
 * base64url. One subject is one user id, so the user stream itself (appended with
 * `NO_STREAM`) makes two first requests of one subject create one user.
 */
export function userIdOfSubject(issuer: string, subject: string): string {
  return createHash('sha256').update(`${issuer}\n${subject}`).digest('base64url');
}

/** The first {@link SUBJECT_SUFFIX_LENGTH} hex digits of sha256(issuer, subject). */
export function subjectSuffix(issuer: string, subject: string): string {
  return createHash('sha256')
    .update(`${issuer}\n${subject}`)
    .digest('hex')
    .slice(0, SUBJECT_SUFFIX_LENGTH);
}

/**
 * What a claim value becomes as a username: NFKC, every run of characters a username
 * may not hold replaced by `_`, cut to the maximum length. Null when too short.
 */
export function usernameFromClaim(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const cleaned = value
    .normalize('NFKC')
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, inputLimits.usernameMax);
  return cleaned.length >= inputLimits.usernameMin && USERNAME_PATTERN.test(cleaned)
    ? cleaned
    : null;
}

const displayNameRule = text(inputLimits.displayNameMax);

/** What a new user is provisioned with, from a verified token's claims. */
export interface ProvisionedName {
  /** The username asked for first. */
  username: string;
  /**
   * Taken when `username` is held by another user: `<username cut>-<8 hex of
   * sha256(issuer, sub)>`, the same for a subject every time.
   */
  fallbackUsername: string;
  displayName: string;
}

/**
 * The username and display name of a subject's new user: the first of
 * `usernameClaims` that makes a username (see {@link usernameFromClaim}), else
 * `user-<suffix>`; the display name from `name` (cut to its limit), else the username
 * when `name` is missing or breaks the text rules.
 */
export function provisionedName(
  issuer: string,
  claims: JWTPayload,
  usernameClaims: readonly string[],
): ProvisionedName {
  const suffix = subjectSuffix(issuer, claims.sub ?? '');
  let username: string | null = null;
  for (const claim of usernameClaims) {
    username = usernameFromClaim(claims[claim]);
    if (username) break;
  }
  username ??= `user-${suffix}`;
  const room = inputLimits.usernameMax - SUBJECT_SUFFIX_LENGTH - 1;
  const fallbackUsername = `${username.slice(0, room)}-${suffix}`;
  const name = typeof claims['name'] === 'string' ? claims['name'].trim() : '';
  const cut = Array.from(name).slice(0, inputLimits.displayNameMax).join('');
  const checked = displayNameRule.safeParse(cut);
  const displayName = checked.success ? checked.data : username;
  return { username, fallbackUsername, displayName };
}
