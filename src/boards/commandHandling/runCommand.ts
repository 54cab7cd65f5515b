import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdempotencyKeyReused, VersionConflict } from '../../eventstore/errors.js';
import { digestOf } from '../../eventstore/idempotency.js';
import {
  NO_STREAM,
  type AppendRequest,
  type EventStore,
  type StreamAppend,
  type StreamHead,
} from '../../eventstore/types.js';
import { aggregates } from '../aggregates.js';
import type { DecideContext, Decision, StreamChange } from '../decision.js';
import { toNewEvent, type DomainEvent, type SchemaVersions } from '../domainEvent.js';
import { RetriesExhaustedError, ValidationError, VersionConflictError } from '../errors.js';
import { parseStreamName, toStreamName, type StreamKind } from '../streams.js';
import { describeChanges } from './expectedVersion.js';
import { IdempotentReplay, LoadSession } from './loadSession.js';

/** The mutations of the public contract; recorded as each commit's `operation`. */
export const BoardOperation = {
  RegisterUser: 'registerUser',
  CreateBoard: 'createBoard',
  RenameBoard: 'renameBoard',
  AddMember: 'addMember',
  AddColumn: 'addColumn',
  MoveColumn: 'moveColumn',
  SetWipLimit: 'setWipLimit',
  AddCard: 'addCard',
  EditCard: 'editCard',
  MoveCard: 'moveCard',
  ArchiveCard: 'archiveCard',
  ArchiveDoneCards: 'archiveDoneCards',
} as const;
export type BoardOperation = (typeof BoardOperation)[keyof typeof BoardOperation];

/** How a command retries when a stream it read changed before its append. */
export interface RetryOptions {
  /** Attempts in all, the first included. @default 10 */
  maxAttempts?: number;
  /**
   * Milliseconds to wait before attempt `attempt + 1`. Jitter spreads writers that
   * lost the same race. @default random in [0, min(100, 2 ** attempt))
   */
  backoffMs?: (attempt: number) => number;
}

/** What every command needs from outside. */
export interface CommandRuntime {
  store: EventStore;
  now: () => Date;
  newId: () => string;
  retry: Required<RetryOptions>;
}

/** What one attempt decided to do. */
export type AttemptPlan<S> =
  /** Append the decision; `merged` when it went ahead over changes the client had not seen. */
  | { kind: 'append'; decision: Decision; merged: boolean }
  /** Nothing to write; this is the result. */
  | { kind: 'done'; value: S };

/** A commit a command made, or the earlier one its idempotency key pointed to. */
export interface CommittedChange {
  commitId: string;
  position: number;
  /** Head of every stream of the commit, in the commit's order. */
  heads: readonly StreamHead[];
  merged: boolean;
  /** True when this is the result of an earlier commit with the same idempotency key. */
  replayed: boolean;
}

/** One command run, described for {@link runCommand}. */
export interface CommandSpec<S> {
  operation: BoardOperation;
  actorId: string | null;
  /** The key already scoped by {@link scopeIdempotencyKey}, if the caller gave one. */
  idempotencyKey: string | undefined;
  /**
   * The mutation's input as the caller sent it. The idempotency key is bound to it (and
   * to the actor): the same key with another input is a `ValidationError`, not a replay.
   */
  input: unknown;
  signal: AbortSignal | undefined;
  /**
   * Loads what the command needs through `session`, checks the client's expected
   * version, decides. Throws domain errors.
   */
  plan: (session: LoadSession, context: DecideContext) => Promise<AttemptPlan<S>>;
  /** The success value for a commit. */
  succeed: (commit: CommittedChange) => S | Promise<S>;
  /**
   * Whether running out of attempts is reported as `VersionConflictError` (the
   * mutation's contract lists it) or thrown as `RetriesExhaustedError`.
   */
  conflictWhenExhausted: boolean;
}

/**
 * An idempotency key private to one actor and one mutation (and `scope`, e.g. the
 * username being registered), so users cannot collide or read each other's
 * results. Hashed, so any client key fits the store's key length.
 */
export function scopeIdempotencyKey(
  operation: BoardOperation,
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
 * What an idempotency key of a command stands for: a digest of the operation, the actor
 * and the whole input. A replay must match it exactly.
 */
export function requestFingerprint(
  operation: BoardOperation,
  actorId: string | null,
  input: unknown,
): string {
  return digestOf({ operation, actorId, input });
}

/** The answer to a reused or expired idempotency key, as the mutation's `ValidationError`. */
function idempotencyKeyError(reason: 'reused' | 'expired'): ValidationError {
  return new ValidationError(
    'input.idempotencyKey',
    reason === 'reused'
      ? 'This idempotency key was already used for a different request; send a new key with a new request.'
      : 'This idempotency key has expired; send the request again with a new key.',
  );
}

/** The stream a change goes to. */
export function streamOfChange(change: StreamChange): string {
  return toStreamName(change.aggregate, change.id);
}

/** `{ id, version }` of each head of `kind`, in commit order. */
export function headsOfKind(
  heads: readonly StreamHead[],
  kind: StreamKind,
): { id: string; version: number }[] {
  return heads.flatMap((head) => {
    const parsed = parseStreamName(head.stream);
    return parsed?.kind === kind ? [{ id: parsed.id, version: head.version }] : [];
  });
}

/** The first head of `kind`; a commit without one is a bug. */
export function headOfKind(
  heads: readonly StreamHead[],
  kind: StreamKind,
): { id: string; version: number } {
  const head = headsOfKind(heads, kind)[0];
  if (!head) throw new Error(`commit has no ${kind} stream`);
  return head;
}

function toAppendRequest(
  spec: CommandSpec<unknown>,
  fingerprint: string | undefined,
  session: LoadSession,
  decision: Decision,
  merged: boolean,
): AppendRequest {
  const streams = decision.map((change): StreamAppend => {
    const stream = streamOfChange(change);
    const read = session.versionRead(stream);
    const schemaVersions = aggregates[change.aggregate]
      .schemaVersions as SchemaVersions<DomainEvent>;
    return {
      stream,
      // A stream the attempt did not read is one the command creates.
      expected: read === undefined || read === 0 ? NO_STREAM : read,
      events: change.events.map((event: DomainEvent) => toNewEvent(schemaVersions, event)),
    };
  });
  return {
    streams,
    ...(spec.idempotencyKey !== undefined && {
      idempotencyKey: spec.idempotencyKey,
      requestFingerprint: fingerprint,
    }),
    metadata: { actor: spec.actorId, operation: spec.operation, ...(merged && { merged: true }) },
  };
}

/** Whether `heads` are what appending `request` would produce (else the store replayed a key). */
function isOwnCommit(request: AppendRequest, heads: readonly StreamHead[]): boolean {
  return (
    heads.length === request.streams.length &&
    request.streams.every((s, i) => {
      const base = typeof s.expected === 'number' ? s.expected : 0;
      return heads[i]?.stream === s.stream && heads[i].version === base + s.events.length;
    })
  );
}

async function replayedCommit(
  store: EventStore,
  position: number,
  signal: AbortSignal | undefined,
): Promise<CommittedChange> {
  const [commit] = await store.readAll({ after: position - 1, limit: 1, signal });
  if (!commit) throw new Error(`commit at position ${position} not found`);
  const heads = new Map<string, number>();
  for (const event of commit.events) {
    heads.set(event.stream, Math.max(heads.get(event.stream) ?? 0, event.version));
  }
  return {
    commitId: commit.commitId,
    position: commit.position,
    heads: [...heads].map(([stream, version]) => ({ stream, version })),
    merged: commit.metadata.merged === true,
    replayed: true,
  };
}

async function exhausted(
  spec: CommandSpec<unknown>,
  store: EventStore,
  conflict: VersionConflict,
  attempts: number,
): Promise<Error> {
  const parsed = parseStreamName(conflict.stream);
  const resourceType = parsed ? aggregates[parsed.kind].resourceType : null;
  if (!spec.conflictWhenExhausted || !parsed || !resourceType) {
    return new RetriesExhaustedError(spec.operation, attempts, { cause: conflict });
  }
  const expectedVersion = typeof conflict.expected === 'number' ? conflict.expected : 0;
  const later = await store.readStream(conflict.stream, {
    fromVersion: expectedVersion + 1,
    signal: spec.signal,
  });
  return new VersionConflictError({
    resourceType,
    resourceId: parsed.id,
    stream: conflict.stream,
    expectedVersion,
    actualVersion: later.at(-1)?.version ?? conflict.actual,
    conflicts: describeChanges(parsed.kind, later),
  });
}

/**
 * Runs one command: plan on freshly read state, append every stream at the version
 * read, in one commit. When the append loses a race (`VersionConflict`), the whole
 * attempt is redone on fresh state, so invariants are checked against what is
 * current and a stale client version gets the merge check again; at most
 * `retry.maxAttempts` attempts. A command whose idempotency key already committed
 * returns that commit's result without deciding again.
 *
 * Returns the success value; throws domain errors and anything unexpected.
 */
export async function runCommand<S>(runtime: CommandRuntime, spec: CommandSpec<S>): Promise<S> {
  const { store, retry } = runtime;
  const { signal, idempotencyKey } = spec;
  const fingerprint =
    idempotencyKey === undefined
      ? undefined
      : requestFingerprint(spec.operation, spec.actorId, spec.input);
  for (let attempt = 1; ; attempt += 1) {
    signal?.throwIfAborted();
    const session = new LoadSession(store, signal, spec.idempotencyKey);
    const context: DecideContext = { now: runtime.now(), newId: runtime.newId };
    try {
      const plan = await spec.plan(session, context);
      if (plan.kind === 'done') return plan.value;
      const request = toAppendRequest(spec, fingerprint, session, plan.decision, plan.merged);
      const result = await store.append(request, { signal });
      const own = isOwnCommit(request, result.streams);
      return await spec.succeed({
        commitId: result.commitId,
        position: result.position,
        heads: result.streams,
        merged: own && plan.merged,
        replayed: !own,
      });
    } catch (error) {
      if (error instanceof IdempotencyKeyReused) throw idempotencyKeyError('reused');
      if (error instanceof IdempotentReplay && idempotencyKey !== undefined) {
        // The key's events are in a stream this command read: a replay only if the key
        // still stands for this very request.
        const first = await store
          .idempotentResult(idempotencyKey, fingerprint!, { signal })
          .catch((cause: unknown) => {
            throw cause instanceof IdempotencyKeyReused ? idempotencyKeyError('reused') : cause;
          });
        if (!first) throw idempotencyKeyError('expired');
        return await spec.succeed(await replayedCommit(store, first.position, signal));
      }
      if (!(error instanceof VersionConflict)) throw error;
      if (attempt >= retry.maxAttempts) throw await exhausted(spec, store, error, attempt);
      await sleep(retry.backoffMs(attempt), undefined, { signal });
    }
  }
}
