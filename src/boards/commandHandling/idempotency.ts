import { createHash } from 'node:crypto';
import { IdempotencyKeyReused } from '../../eventstore/errors.js';
import type { EventStore } from '../../eventstore/types.js';
import { ValidationError } from '../errors.js';

/**
 * An idempotency key private to one actor and one mutation (and `scope`, e.g. the
 * username being registered), so users cannot collide or read each other's
 * results. Hashed, so any client key fits the store's key length.
 */
export function scopeIdempotencyKey(
  operation: string,
  actorId: string | null,
  key: string | undefined,
  scope: string | null = null,
): string | undefined {
  if (key === undefined) return undefined;
  const digest = createHash('sha256')
    .update(JSON.stringify([operation, actorId, scope, key]))
    .digest('base64url');
  return `${operation}:${digest}`;
}

/**
 * The first result of an idempotency key (undefined when the key is new or expired), or the
 * `ValidationError` on `input.idempotencyKey` when the key stands for another request.
 */
export async function firstResultOf(
  store: EventStore,
  key: string,
  requestFingerprint: string,
  signal: AbortSignal | undefined,
): Promise<{ position: number } | undefined | ValidationError> {
  try {
    return await store.idempotentResult(key, requestFingerprint, { signal });
  } catch (error) {
    if (!(error instanceof IdempotencyKeyReused)) throw error;
    return idempotencyKeyReusedError();
  }
}

/** The answer to an idempotency key reused for another request: a `ValidationError` on the key. */
export function idempotencyKeyReusedError(): ValidationError {
  return new ValidationError(
    'input.idempotencyKey',
    'This idempotency key was already used for a different request; send a new key with a new request.',
  );
}
