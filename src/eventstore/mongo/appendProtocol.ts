/**
 * The append protocol: one transaction per attempt, bounded retries of attempts and of
 * commits whose outcome is unknown, a deadline for the whole append, and settling every
 * reserved position an attempt did not commit. What one attempt writes is `CommitWriter`'s.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BSON,
  MongoError,
  MongoErrorLabel,
  WriteConcern,
  type MongoClient,
  type ClientSession,
  type TransactionOptions,
} from 'mongodb';
import { MutexQueueFull, Semaphore } from '../../mutex.js';
import {
  CommitOutcomeUnknown,
  EventStoreBusy,
  EventStoreUnavailable,
  EventStoreValidationError,
} from '../errors.js';
import { fingerprintOf } from '../idempotency.js';
import type { AppendRequest, AppendResult } from '../types.js';
import { validateAppendRequest } from '../validation.js';
import { ExpectationFailed, type CommitWriter, type Draft } from './commitWrite.js';
import { WRITE_BSON_OPTIONS, toAppendResult, type CommitDoc } from './documents.js';
import type { MongoPositions } from './positions.js';
import {
  AppendErrorAction,
  messageOf,
  translateError,
  unavailableIfDriverError,
} from './translateError.js';

/**
 * Every append transaction reads at snapshot isolation and commits with majority write
 * concern: per the manual ("Read Concern "snapshot"", "Transactions and Read Concern"),
 * snapshot reads are only guaranteed to have read majority-committed data when the
 * transaction commits with w: "majority", and transactions must read from the primary.
 * The commit waits at most `commitWaitMs` for the majority (`wtimeout`, and `maxTimeMS` on
 * commitTransaction via `maxCommitTimeMS`); running out labels the error
 * UnknownTransactionCommitResult, which `#commit` answers with a bounded retry.
 */
function transactionOptions(commitWaitMs: number): TransactionOptions {
  return {
    readConcern: { level: 'snapshot' },
    writeConcern: new WriteConcern('majority', commitWaitMs),
    readPreference: 'primary',
    maxCommitTimeMS: commitWaitMs,
  };
}

/**
 * The largest commit document: MongoDB's 16 MiB document limit (`maxBsonObjectSize`), less
 * room for the fields and per-stream heads that vary between this check and the write.
 */
const MAX_COMMIT_BSON_BYTES = 16 * 1024 * 1024 - 16 * 1024;

/** The append protocol's bounds (`MongoEventStoreOptions` documents each). */
export interface AppendLimits {
  maxAttempts: number;
  maxCommitAttempts: number;
  commitWaitMs: number;
  appendTimeoutMs: number;
  maxConcurrentAppends: number;
  maxQueuedAppends: number;
}

/** Runs appends on a MongoDB replica set (see `MongoEventStore` for the design). */
export class MongoAppender {
  readonly #client: MongoClient;
  readonly #writer: CommitWriter;
  readonly #positions: MongoPositions;
  readonly #maxAttempts: number;
  readonly #maxCommitAttempts: number;
  readonly #commitWaitMs: number;
  readonly #appendTimeoutMs: number;
  /**
   * Bounds this instance's appends in flight, so a burst waits for pooled connections
   * here, in arrival order and with a bounded queue (`EventStoreBusy` beyond it), rather
   * than in the driver's pool. Not a mutex: appends run concurrently up to the bound.
   */
  readonly #appends: Semaphore;

  constructor(
    client: MongoClient,
    writer: CommitWriter,
    positions: MongoPositions,
    limits: AppendLimits,
  ) {
    this.#client = client;
    this.#writer = writer;
    this.#positions = positions;
    this.#maxAttempts = limits.maxAttempts;
    this.#maxCommitAttempts = limits.maxCommitAttempts;
    this.#commitWaitMs = limits.commitWaitMs;
    this.#appendTimeoutMs = limits.appendTimeoutMs;
    this.#appends = new Semaphore({
      permits: limits.maxConcurrentAppends,
      maxQueued: limits.maxQueuedAppends,
    });
  }

  /**
   * Appends in one transaction. Bounded in three ways: at most `maxAttempts` transaction
   * attempts, at most `maxCommitAttempts` commit calls per attempt, and `appendTimeoutMs`
   * for all of it (queueing included); `signal` is honoured while queued, between
   * attempts and between commit retries. A command already sent is not interrupted:
   * aborting mid-commit would leave the outcome unknown.
   *
   * Throws `VersionConflict`, `EventStoreValidationError`, `EventStoreBusy` (too many appends
   * queued on this instance), `CommitOutcomeUnknown` (the commit was sent and whether it
   * applied could not be learned), `EventStoreUnavailable` (retries or time exhausted, or
   * a driver error retrying cannot fix; the cause is attached), or the signal's reason.
   * Never a raw driver error, and never an error for an append that committed.
   */
  async append(
    request: AppendRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<AppendResult> {
    validateAppendRequest(request);
    this.#checkBsonSize(request);
    const deadline = performance.now() + this.#appendTimeoutMs;
    try {
      return await this.#append(request, options.signal, deadline);
    } catch (error) {
      if (error instanceof MutexQueueFull) {
        throw new EventStoreBusy(`append refused: ${error.message} on this instance`);
      }
      throw unavailableIfDriverError(error, 'append');
    }
  }

  async #append(
    request: AppendRequest,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<AppendResult> {
    // A request aborted while it waits leaves the queue at once, having sent nothing; the
    // transaction checks the signal and the deadline again when it starts.
    return this.#appends.run(() => this.#transact(request, signal, deadline), { signal });
  }

  /**
   * Drives the transaction itself rather than through `withTransaction`, whose commit
   * retries on `UnknownTransactionCommitResult` run for up to 120 s regardless of any
   * budget of ours (driver `ClientSession.withTransaction`; `timeoutMS` does not bound
   * them either). Per the transactions spec ("Retrying commitTransaction"), a commit whose
   * outcome is unknown may be sent again, and the server answers it with the outcome of
   * the one transaction: it never applies twice. A `TransientTransactionError` (on a
   * write or on the commit) means the transaction was aborted: the whole attempt runs
   * again on a fresh snapshot, with a new position. Every position an attempt reserved
   * and did not commit is closed before the next attempt.
   */
  async #transact(
    request: AppendRequest,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<AppendResult> {
    const key = request.idempotencyKey;
    let lastError: unknown;
    const session = this.#client.startSession();
    try {
      for (let attempt = 1; ; attempt += 1) {
        signal?.throwIfAborted();
        this.#checkDeadline(deadline, attempt - 1, lastError);
        const commitWaitMs = Math.max(
          1,
          Math.min(this.#commitWaitMs, deadline - performance.now()),
        );
        session.startTransaction(transactionOptions(commitWaitMs));
        const draft: Draft = {};
        try {
          await this.#writer.write(session, request, draft);
        } catch (error) {
          // Abort explicitly so the server frees the transaction now, not at its timeout.
          await session.abortTransaction().catch(() => undefined);
          if (draft.commit) await this.#positions.close(draft.commit.position);
          const action =
            error instanceof ExpectationFailed
              ? AppendErrorAction.VersionConflict
              : translateError(error, { idempotent: key !== undefined });
          const settled = await this.#settleFailedAttempt(action, error, request);
          if (settled) return settled;
          lastError = error;
          if (attempt >= this.#maxAttempts) throw this.#exhausted(attempt, lastError);
          await pause(backoffMs(attempt), signal);
          continue;
        }
        const commit = draft.commit!;
        const committed = await this.#commit(session, commit, signal, deadline);
        if (committed.kind === 'committed') return toAppendResult(commit, draft.heads!);
        // The transaction did not apply (aborted, or closed out after an unknown outcome):
        // nothing was written, and the position is closed.
        lastError = committed.error;
        if (attempt >= this.#maxAttempts) throw this.#exhausted(attempt, lastError);
        await pause(backoffMs(attempt), signal);
      }
    } finally {
      // endSession aborts a transaction left open and never throws (it squashes errors).
      await session.endSession();
    }
  }

  /**
   * Commits, retrying a commit whose outcome is unknown at most `maxCommitAttempts` times
   * in all and within the deadline. When the outcome stays unknown, closing the commit's
   * position settles it: the tombstone is refused if the commit holds the position
   * (committed), and once it is in, the transaction can never commit (aborted, safe to run
   * again). Only when even that cannot be learned is the error `CommitOutcomeUnknown`.
   */
  async #commit(
    session: ClientSession,
    commit: CommitDoc,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<{ kind: 'committed' } | { kind: 'aborted'; error: unknown }> {
    for (let call = 1; ; call += 1) {
      try {
        await session.commitTransaction();
        return { kind: 'committed' };
      } catch (error) {
        if (!(error instanceof MongoError)) throw error;
        const unknown = error.hasErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult);
        if (!unknown) {
          // Even without UnknownTransactionCommitResult the commit may have been applied
          // (its reply lost with a closed connection, and the driver's one retry failing
          // otherwise), so the tombstone settles it: a committed write is never reported
          // as failed, and only a position proven closed is safe to run again.
          const outcome = await this.#positions.close(commit.position, commit._id);
          if (outcome === 'committed') return { kind: 'committed' };
          if (outcome === 'unknown') {
            throw new CommitOutcomeUnknown(`append commit outcome unknown: ${error.message}`, {
              cause: error,
            });
          }
          if (error.hasErrorLabel(MongoErrorLabel.TransientTransactionError)) {
            return { kind: 'aborted', error };
          }
          // Neither label: the server refused the commit, and the transaction is over.
          throw new EventStoreUnavailable(`append commit failed: ${error.message}`, {
            cause: error,
          });
        }
        const outOfTime = performance.now() >= deadline;
        if (call >= this.#maxCommitAttempts || outOfTime || signal?.aborted) {
          // Ends the transaction on the server if it is still open (a commit that never
          // arrived), so the tombstone below need not wait for it: it then either finds
          // the commit or proves it can never happen.
          await this.#positions.killSessions(session.id ? [session.id] : []);
          const outcome = await this.#positions.close(commit.position, commit._id);
          if (outcome === 'committed') return { kind: 'committed' };
          if (outcome === 'closed') {
            // It can never commit now: nothing was written.
            signal?.throwIfAborted();
            if (!outOfTime) return { kind: 'aborted', error };
            throw new EventStoreUnavailable(
              `append did not commit within its time: ${error.message}`,
              { cause: error },
            );
          }
          throw new CommitOutcomeUnknown(
            `append commit outcome unknown after ${call} commit attempts: ${error.message}`,
            { cause: error },
          );
        }
        await sleep(backoffMs(call));
      }
    }
  }

  /**
   * What a failed attempt means: a result to return (the key's first result), an error to
   * throw, or undefined to try again.
   */
  async #settleFailedAttempt(
    action: AppendErrorAction,
    error: unknown,
    request: AppendRequest,
  ): Promise<AppendResult | undefined> {
    switch (action) {
      case AppendErrorAction.Rethrow:
        throw error;
      case AppendErrorAction.Unavailable:
        throw new EventStoreUnavailable(`append failed: ${messageOf(error)}`, { cause: error });
      case AppendErrorAction.DuplicateIdempotencyKey: {
        const key = request.idempotencyKey;
        return key === undefined
          ? undefined
          : this.#writer.firstResult(key, fingerprintOf(request));
      }
      case AppendErrorAction.VersionConflict: {
        // A replay of a committed append fails its expectations (its first commit moved
        // the heads): the key's first result is the answer, not a conflict.
        const key = request.idempotencyKey;
        const first =
          key === undefined
            ? undefined
            : await this.#writer.firstResult(key, fingerprintOf(request));
        if (first) return first;
        const { conflict } = await this.#writer.readHeads(request);
        if (conflict) throw conflict;
        // The racing commit left every expectation satisfied (e.g. ANY): go again.
        return undefined;
      }
      case AppendErrorAction.Retry:
        return undefined;
    }
  }

  /**
   * Refuses a commit whose document would be over MongoDB's 16 MiB BSON limit, before any
   * round trip. The port's limits are on JSON, and BSON can be several times larger (each
   * array element carries its index as a key: a 4 MiB request of number arrays makes a
   * commit of over 20 MB), which the server would refuse mid-transaction. Measured on the
   * commit document this append would write, with the widest position and fixed-size ids;
   * each event document and the idempotency record are smaller.
   */
  #checkBsonSize(request: AppendRequest): void {
    const draft = this.#writer.newCommit(request, Number.MAX_SAFE_INTEGER, new Map());
    const bytes = BSON.calculateObjectSize(draft, WRITE_BSON_OPTIONS);
    if (bytes > MAX_COMMIT_BSON_BYTES) {
      throw new EventStoreValidationError(
        'streams',
        `the commit would be ${bytes} bytes of BSON, over MongoDB's limit of ${MAX_COMMIT_BSON_BYTES}`,
      );
    }
  }

  #checkDeadline(deadline: number, attempts: number, lastError: unknown): void {
    if (performance.now() < deadline) return;
    throw new EventStoreUnavailable(
      `append timed out after ${this.#appendTimeoutMs} ms and ${attempts} transaction attempts` +
        (lastError === undefined ? '' : `: ${messageOf(lastError)}`),
      { cause: lastError },
    );
  }

  #exhausted(attempts: number, lastError: unknown): EventStoreUnavailable {
    return new EventStoreUnavailable(
      `append gave up after ${attempts} transaction attempts: ${messageOf(lastError)}`,
      { cause: lastError },
    );
  }
}

/** Jittered exponential backoff between our own rounds: up to 10, 20, 40... capped at 250 ms. */
function backoffMs(round: number): number {
  return Math.random() * Math.min(250, 5 * 2 ** round);
}

/** Sleeps, rejecting with the signal's reason (as `throwIfAborted` does) when it aborts. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    signal?.throwIfAborted();
    throw error;
  }
}
