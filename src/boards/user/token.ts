import { createHash, createHmac, randomBytes } from 'node:crypto';

/** Bytes of entropy in a bearer token. @default 32 */
export const TOKEN_BYTES = 32;

/** A fresh bearer token: {@link TOKEN_BYTES} random bytes, base64url. */
export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * A bearer token derived from a server secret and a unique seed (HMAC-SHA256, 32
 * bytes, base64url). Used for registrations that carry an idempotency key, so a
 * retry with the same key can hand back the same token without it being stored.
 */
export function deriveToken(secret: string | Uint8Array, seed: string): string {
  return createHmac('sha256', secret).update(seed).digest('base64url');
}

/**
 * What is stored of a token and what to look a bearer token up by: its sha256,
 * base64url. Tokens carry 256 bits of entropy, so a plain hash is enough.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
