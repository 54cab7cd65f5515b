import { createHash } from 'node:crypto';
import type { AppendRequest } from './types.js';

/** How long an idempotency key is remembered after its commit. @default 24 h */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * JSON with object keys sorted at every level, so two equal values give the same text
 * whatever order their keys were built in. `undefined` members are left out, as
 * `JSON.stringify` does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}

/** sha256 (base64url) of `value`'s canonical JSON. */
export function digestOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url');
}

/**
 * The fingerprint an idempotency key is bound to: the given one, else the request's digest
 * (its trace context left out: a retry of the same request carries another one).
 */
export function fingerprintOf(request: AppendRequest): string {
  if (request.requestFingerprint !== undefined) return request.requestFingerprint;
  const { traceContext: _traced, ...metadata } = request.metadata ?? {};
  return digestOf({ streams: request.streams, metadata });
}
