import type { Context } from '@opentelemetry/api';
import type { DomainError } from '../errors.js';

/**
 * What a command returns: its success value, or one of the domain errors its spec
 * lists. Unexpected failures (store unavailable, aborted signal, exhausted retries
 * where no `VersionConflictError` fits) reject.
 */
export type CommandResult<S, E extends DomainError> =
  { ok: true; value: S } | { ok: false; error: E };

/** The success `value`. */
export const succeeded = <S>(value: S): { ok: true; value: S } => ({ ok: true, value });

/** The expected failure `error`. */
export const failed = <E extends DomainError>(error: E): { ok: false; error: E } => ({
  ok: false,
  error,
});

/** Options of every command. */
export interface CommandOptions {
  /** Aborts the command; passed to every store call. */
  signal?: AbortSignal;
  /** The trace context the command's span is a child of (its operation's); else the active one. */
  trace?: Context | undefined;
  /**
   * Wait in line on a busy stream instead of being refused (`KeyedQueueFull`, answered
   * `BUSY`): for a command of an operation that has already committed a write, whose
   * refusal would make the whole answer a failure (`data: null`, HTTP 503) although
   * that write stands. The line it may lengthen is bounded by the operation's fields.
   */
  mustNotRefuse?: boolean;
}

/** The commit a successful command made; wait for the projector to reach `position` to read it. */
export interface CommitRef {
  commitId: string;
  /** Position of the commit in the store's global log. */
  position: number;
  /**
   * True when the idempotency key had already committed and this is that first
   * commit's result (nothing new was written).
   */
  replayed: boolean;
}

/** A resource written by a command and its version after the commit. */
export interface WrittenResource {
  id: string;
  version: number;
}
