import type { ExpectedVersion } from './types.js';

/** Stable codes for every error the event store raises on purpose. */
export const EventStoreErrorCode = {
  VersionConflict: 'EVENT_STORE_VERSION_CONFLICT',
  Validation: 'EVENT_STORE_VALIDATION',
  Unavailable: 'EVENT_STORE_UNAVAILABLE',
  IdempotencyKeyReused: 'IDEMPOTENCY_KEY_REUSED',
} as const;
export type EventStoreErrorCode = (typeof EventStoreErrorCode)[keyof typeof EventStoreErrorCode];

/** Base of the event store's typed errors. */
export abstract class EventStoreError extends Error {
  abstract readonly code: EventStoreErrorCode;
  /** The error's class, e.g. `VersionConflict`. */
  override readonly name: string = this.constructor.name;
}

/**
 * A stream's head did not match the writer's expectation. Nothing of the commit
 * was written, to any stream.
 */
export class VersionConflict extends EventStoreError {
  readonly code = EventStoreErrorCode.VersionConflict;
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
    /** The stream's head at the time of the check; 0 when the stream does not exist. */
    readonly actual: number,
  ) {
    super(`stream ${stream}: expected version ${String(expected)}, actual ${actual}`);
  }
}

/** The append request is malformed; nothing was written. */
export class EventStoreValidationError extends EventStoreError {
  readonly code = EventStoreErrorCode.Validation;
  constructor(
    /** Path of the offending input, e.g. `streams[1].events`. */
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/**
 * The store could not complete the operation after its bounded retries (for
 * instance a transaction kept hitting transient errors). Safe to retry later with
 * the same idempotency key.
 */
export class EventStoreUnavailable extends EventStoreError {
  readonly code = EventStoreErrorCode.Unavailable;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Too many appends are already waiting on this instance: refused at once, nothing written.
 * Safe to retry later.
 */
export class EventStoreBusy extends EventStoreUnavailable {}

/**
 * The commit was sent but the store could not learn whether it applied (the server or the
 * network failed during the commit, and the bounded retries and the follow-up read did not
 * settle it). It may be in the log. Retrying with the same idempotency key is safe and
 * returns the first result if it did commit; retrying without a key may append twice.
 */
export class CommitOutcomeUnknown extends EventStoreUnavailable {}

/**
 * An append carried an idempotency key that an earlier, unexpired commit recorded for a
 * different request (another fingerprint). Nothing was written, and nothing of the
 * earlier commit's result is revealed.
 */
export class IdempotencyKeyReused extends EventStoreError {
  readonly code = EventStoreErrorCode.IdempotencyKeyReused;
  constructor(readonly idempotencyKey: string) {
    super('idempotency key already used for a different request');
  }
}
