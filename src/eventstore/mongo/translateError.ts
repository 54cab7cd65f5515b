/**
 * Classifies what the MongoDB driver threw during an append, so that no raw driver
 * error escapes the adapter: each one becomes a retry, a typed event store error,
 * or `EventStoreUnavailable`. Pure: it only looks at the error.
 */
import { MongoError, MongoErrorLabel, MongoNetworkError, MongoServerSelectionError } from 'mongodb';
import { EventStoreUnavailable } from '../errors.js';
import { CollectionName, IndexName } from './documents.js';

/** Server error codes the adapter acts on (from the server's error_codes.yml). */
export const MongoErrorCode = {
  /** E11000: a unique index already holds the key. */
  DuplicateKey: 11000,
  /** Legacy duplicate key code some older servers still report on updates. */
  DuplicateKeyLegacy: 11001,
  /** Another operation changed a document this one writes; in a transaction, labelled transient. */
  WriteConflict: 112,
  /** A change stream's resume point is no longer in the oplog. */
  ChangeStreamHistoryLost: 286,
  /** A change stream cannot go on, e.g. its resume token was not found (after a restore). */
  ChangeStreamFatalError: 280,
  /** The resume token is not one this server can resume from. */
  InvalidResumeToken: 260,
} as const;

/** Codes with which a server refuses to resume a change stream from a given token. */
const RESUME_TOKEN_REFUSED: ReadonlySet<number> = new Set([
  MongoErrorCode.ChangeStreamHistoryLost,
  MongoErrorCode.ChangeStreamFatalError,
  MongoErrorCode.InvalidResumeToken,
]);

/** What `append` does with an error its transaction raised. */
export const AppendErrorAction = {
  /** Transient: run the whole transaction again (bounded, with backoff). */
  Retry: 'retry',
  /** The idempotency key was committed by a racing append: read and return its first result. */
  DuplicateIdempotencyKey: 'duplicate-idempotency-key',
  /** A stream head or event version was taken by a racing append: re-read heads, raise VersionConflict. */
  VersionConflict: 'version-conflict',
  /** A driver error that retrying will not fix: raise EventStoreUnavailable with it as cause. */
  Unavailable: 'unavailable',
  /** Not a driver error (ours, an abort, a bug): rethrow it untouched. */
  Rethrow: 'rethrow',
} as const;
export type AppendErrorAction = (typeof AppendErrorAction)[keyof typeof AppendErrorAction];

export interface TranslateErrorContext {
  /**
   * Whether the append carries an idempotency key. Only then may a commit whose outcome
   * is unknown be retried: the retry finds the first result instead of writing twice.
   */
  idempotent: boolean;
}

/**
 * Decides how `append` handles an error raised by its transaction.
 *
 * - Not a `MongoError` (our `VersionConflict`, an `AbortSignal` reason, a bug): `rethrow`.
 * - `MongoServerSelectionError`: `unavailable`. The driver already waited
 *   `serverSelectionTimeoutMS` (30 s by default) for a primary; retrying would multiply that.
 * - Duplicate key (11000) on `idempotency`: `duplicate-idempotency-key`; on `streams` or
 *   on the former `events` `{stream, version}` index: `version-conflict`; anywhere else (`commits`,
 *   `counters`, an event id, or a message we cannot place): `retry`, since nothing was
 *   written and a fresh attempt re-reads every head and key in a new snapshot.
 * - `UnknownTransactionCommitResult` label (the commit may or may not have applied; the driver
 *   already retried the commit itself): `retry` when idempotent, else `unavailable`, because
 *   re-running a commit that did apply would append twice.
 * - WriteConflict (112), `TransientTransactionError` or `RetryableWriteError` label, or a
 *   network error: `retry`.
 * - Any other driver error: `unavailable`.
 */
export function translateError(error: unknown, context: TranslateErrorContext): AppendErrorAction {
  if (!(error instanceof MongoError)) return AppendErrorAction.Rethrow;
  if (error instanceof MongoServerSelectionError) return AppendErrorAction.Unavailable;
  if (isDuplicateKey(error)) return duplicateKeyAction(error);
  // Checked before the transient labels: an unknown outcome must never be retried blindly.
  if (error.hasErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult)) {
    return context.idempotent ? AppendErrorAction.Retry : AppendErrorAction.Unavailable;
  }
  if (
    error.code === MongoErrorCode.WriteConflict ||
    error.hasErrorLabel(MongoErrorLabel.TransientTransactionError) ||
    error.hasErrorLabel(MongoErrorLabel.RetryableWriteError) ||
    error instanceof MongoNetworkError
  ) {
    return AppendErrorAction.Retry;
  }
  return AppendErrorAction.Unavailable;
}

/**
 * Whether a change stream opened or resumed from a token failed because of that token: its
 * history left the oplog (286), the token was not found, e.g. after a restore (280), or it
 * is invalid (260). Opening again without the token is the way out; with it, the same
 * error comes back forever.
 */
export function isResumeTokenRefused(error: unknown): boolean {
  return (
    error instanceof MongoError &&
    typeof error.code === 'number' &&
    RESUME_TOKEN_REFUSED.has(error.code)
  );
}

/** Whether a driver error is a duplicate key (E11000) on a unique index. */
export function isDuplicateKey(error: unknown): boolean {
  // A MongoBulkWriteError (insertMany, bulkWrite) carries its first write error's code and message.
  return (
    error instanceof MongoError &&
    (error.code === MongoErrorCode.DuplicateKey || error.code === MongoErrorCode.DuplicateKeyLegacy)
  );
}

function duplicateKeyAction(error: MongoError): AppendErrorAction {
  if (hasStreamVersionKeyPattern(error)) return AppendErrorAction.VersionConflict;
  // The server's message names the namespace and index, e.g.
  // "E11000 duplicate key error collection: corkboard.idempotency index: _id_ dup key: { _id: "k" }".
  // Database names cannot contain '.', so the collection is everything after the first dot.
  // Some builds omit the namespace; then we retry, which is still correct: the next attempt
  // reads the committed key or head in a fresh snapshot and returns or raises accordingly.
  const match = /collection: [^.\s]+\.(?<collection>\S+)(?: index: (?<index>\S+))?/.exec(
    error.message,
  );
  const collection = match?.groups?.collection;
  if (match?.groups?.index === IndexName.EventsStreamVersion)
    return AppendErrorAction.VersionConflict;
  if (collection === CollectionName.Idempotency) return AppendErrorAction.DuplicateIdempotencyKey;
  if (collection === CollectionName.Streams) return AppendErrorAction.VersionConflict;
  return AppendErrorAction.Retry;
}

/**
 * Servers since 4.2 attach `keyPattern` and `keyValue` to duplicate key errors (SERVER-14801);
 * use it when present, as it does not depend on the wording of the message.
 */
function hasStreamVersionKeyPattern(error: MongoError): boolean {
  const keyPattern = (error as MongoError & { keyPattern?: unknown }).keyPattern;
  return (
    typeof keyPattern === 'object' &&
    keyPattern !== null &&
    'stream' in keyPattern &&
    'version' in keyPattern
  );
}

/** Driver errors become `EventStoreUnavailable`; anything else passes through. */
export function unavailableIfDriverError(error: unknown, what: string): unknown {
  return error instanceof MongoError
    ? new EventStoreUnavailable(`${what} failed: ${error.message}`, { cause: error })
    : error;
}

/** The message of an error, or the thrown value as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
