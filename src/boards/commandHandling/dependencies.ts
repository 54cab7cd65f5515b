import type { SnapshotStore } from '../../eventstore/snapshots/SnapshotStore.js';
import type { EventStore } from '../../eventstore/types.js';
import type { RateLimit } from '../../rateLimiter.js';
import type { RetryOptions } from './handleCommand.js';

/** What the board commands are built from. */
export interface BoardCommandsDependencies {
  /** The book of record; commands read and append streams here and nowhere else. */
  store: EventStore;
  /** The clock, passed to deciders. */
  now: () => Date;
  /** Fresh unique ids for new users, boards, columns and cards. */
  newId: () => string;
  /**
   * Secret that tokens of registrations carrying an idempotency key are derived from
   * (HMAC), so that a retry with the same key can return the same token although
   * only its hash is stored. Give the same value to every instance and keep it
   * across restarts. @default a random secret per instance: a retry served by
   * another instance, or after a restart, then fails with an unexpected error
   * instead of returning a token that does not work.
   */
  tokenSecret?: string | Uint8Array;
  /** How commands retry races on streams the client did not see. */
  retry?: RetryOptions;
  /**
   * Where big streams' folded states (columns) are snapshotted, so that a process
   * that has not folded a column yet reads only the events after its snapshot.
   * @default none: a cold load folds the whole stream
   */
  snapshots?: SnapshotStore;
  /** Told when loading or saving a snapshot failed (the command goes on without it). */
  onSnapshotError?: (error: unknown, stream: string) => void;
  /**
   * Set when accounts belong to an identity provider (`AUTH_ISSUER`): `registerUser`
   * then answers `ExternalIdentityError` naming this issuer and writes nothing.
   * @default unset: registration is open
   */
  externalIssuer?: string;
  /**
   * `signIn` attempts allowed per username per window; past it, `TooManyAttemptsError`
   * without checking the password. @default 10 a minute
   */
  signInRateLimit?: RateLimit;
  /**
   * Commands allowed to wait behind the running one on one stream, in this process; one
   * more is refused at once with `KeyedQueueFull` (nothing read, nothing written), so a
   * wave of writes on one column cannot queue without bound. @default Infinity
   */
  maxQueuedCommandsPerStream?: number;
}

/** `signIn` attempts per username when `signInRateLimit` is not given. */
export const DEFAULT_SIGN_IN_RATE_LIMIT: RateLimit = { points: 10, windowMs: 60_000 };
