import { setTimeout as sleep } from 'node:timers/promises';
import { IdempotencyKeyReused, VersionConflict } from '../../eventstore/errors.js';
import { digestOf } from '../../eventstore/idempotency.js';
import type { EventStore } from '../../eventstore/types.js';
import { aggregates, foldEvents } from '../aggregates.js';
import type { DecideContext, Decision } from '../decision.js';
import {
  ErrorCode,
  RetriesExhaustedError,
  type DomainError,
  UnauthenticatedError,
  ValidationError,
  VersionConflictError,
} from '../errors.js';
import { parseStreamName, toStreamName } from '../streams.js';
import { parseInput } from '../validation.js';
import {
  isExpectedError,
  reportsConflicts,
  requiresCaller,
  type AnyCommandSpec,
  type CommandCall,
  type CommittedChange,
  type ReadState,
  type ResultOf,
} from './defineCommand.js';
import { checkExpectedVersion, describeChanges } from './expectedVersion.js';
import { firstResultOf, idempotencyKeyReusedError, scopeIdempotencyKey } from './idempotency.js';
import { appendCommits, LandedCommits, replayedCommit } from './commits.js';
import { LoadSession, type LoadInfrastructure } from './loadSession.js';
import { failed, succeeded, type CommandOptions } from './results.js';
import { Attr, CommandOutcome, inSpan, SpanName } from '../../telemetry/spans.js';

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
  /** State cache and per-stream writers queue shared by this process's commands. */
  infrastructure?: LoadInfrastructure;
  /** Secret that registration tokens of idempotent retries are derived from. */
  tokenSecret: string | Uint8Array;
}

/**
 * A run as the runner carries it. `actorId` is typed loosely here: the runner has
 * checked it against the spec (a command listing `UnauthenticatedError` never runs
 * without a caller), which is what the spec's own, narrower type says.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Call = CommandCall<unknown, any, unknown> & {
  signal: AbortSignal | undefined;
  /** Whether a full writers' line refuses this call (see `CommandOptions.mustNotRefuse`). */
  bounded: boolean;
  /** The commits made so far, over every attempt (see `LandedCommits`). */
  landed: LandedCommits;
  /** Current state from the store, for the spec's `succeed`. */
  readState: ReadState;
};

/** How one attempt ended: with the command's result, or lost to a concurrent append. */
type Attempt<S extends AnyCommandSpec> = Answered<S> | { kind: 'raced'; conflict: VersionConflict };

/** An attempt that ends the command with its answer. */
interface Answered<S extends AnyCommandSpec> {
  kind: 'result';
  result: ResultOf<S>;
  outcome: CommandOutcome;
}

/**
 * Runs the command `spec` for `callerId` (null when anonymous; ignored when the spec is
 * `anonymous`) on `rawInput`.
 *
 * Checks the caller and the input, then attempts: load on fresh state, decide,
 * check the client's expected version (merging where the fields allow), append
 * every stream at the version read, in one commit. An attempt that loses a race
 * (the store's `VersionConflict`) is redone on fresh state, at most
 * `retry.maxAttempts` times, so invariants are checked against what is current. A
 * command whose idempotency key already committed returns that commit's result.
 *
 * Expected failures are returned as values (`{ ok: false, error }`, one of
 * `spec.errors`); anything else rejects.
 */
export async function handleCommand<S extends AnyCommandSpec>(
  runtime: CommandRuntime,
  spec: S,
  callerId: string | null,
  rawInput: unknown,
  options: CommandOptions = {},
): Promise<ResultOf<S>> {
  const actorId = spec.anonymous === true ? null : callerId;
  if (actorId === null && requiresCaller(spec)) {
    return failed(new UnauthenticatedError()) as ResultOf<S>;
  }
  const parsed = parseInput(spec.input, rawInput);
  if (!parsed.ok) return parsed as ResultOf<S>;
  const input = parsed.value as { idempotencyKey?: string };
  const scope = spec.idempotencyScope?.(input) ?? null;
  const idempotencyKey = scopeIdempotencyKey(spec.name, actorId, input.idempotencyKey, scope);
  const requestFingerprint =
    idempotencyKey === undefined ? undefined : digestOf({ operation: spec.name, actorId, input });
  const base: Omit<Call, 'prepared' | 'signal' | 'bounded' | 'landed' | 'readState'> = {
    input,
    actorId,
    idempotencyKey,
    requestFingerprint,
  };
  const prepared: unknown = await spec.prepare?.(base, runtime);
  const { signal } = options;
  const readState = stateReader(runtime.store, signal);
  const bounded = options.mustNotRefuse !== true;
  const call = { ...base, prepared, signal, bounded, landed: new LandedCommits(), readState };
  return retrying(runtime, spec, call, options.trace);
}

/**
 * The retry loop: attempts until one ends with a result or the attempts run out, in one
 * span that says how many attempts it took and how the command ended.
 */
async function retrying<S extends AnyCommandSpec>(
  runtime: CommandRuntime,
  spec: S,
  call: Call,
  trace: CommandOptions['trace'],
): Promise<ResultOf<S>> {
  const { retry } = runtime;
  return inSpan(
    SpanName.Command,
    { attributes: { [Attr.CommandName]: spec.name }, parent: trace },
    async (span) => {
      for (let attempt = 1; ; attempt += 1) {
        call.signal?.throwIfAborted();
        span.setAttribute(Attr.CommandAttempts, attempt);
        const outcome = await attemptOnce(runtime, spec, call);
        if (outcome.kind === 'result') {
          span.setAttribute(Attr.CommandOutcome, outcome.outcome);
          return outcome.result;
        }
        if (attempt >= retry.maxAttempts) {
          span.setAttribute(Attr.CommandOutcome, CommandOutcome.Conflict);
          if (call.landed.any) {
            const landed = call.landed.commit(ErrorCode.VersionConflict);
            return (await succeedWith(spec, call, landed)).result;
          }
          return exhausted(runtime, spec, call, outcome.conflict);
        }
        await sleep(retry.backoffMs(attempt), undefined, { signal: call.signal });
      }
    },
  );
}

/**
 * One attempt: load, decide, check the expected version, append. The attempt's first
 * stream is held (one writer per stream in this process) until it ends.
 */
async function attemptOnce<S extends AnyCommandSpec>(
  runtime: CommandRuntime,
  spec: S,
  call: Call,
): Promise<Attempt<S>> {
  const { store } = runtime;
  const { idempotencyKey, signal } = call;
  const recorded = await resultOfKey(runtime, spec, call);
  if (recorded) return recorded;
  const session = new LoadSession(store, signal, runtime.infrastructure, {
    bounded: call.bounded,
  });
  try {
    const loaded: unknown = await spec.load(session, call);
    const decided = decideSafely(spec, call, loaded, { now: runtime.now(), newId: runtime.newId });
    // A duplicate racing the request that recorded its key found the key free, then read
    // the state that request's commit left: what it would answer (a refusal, a conflict
    // with the version both were sent, nothing to write) is that commit's doing, so it
    // answers that request's result, replayed.
    if (!decided.ok) {
      return (
        (await resultOfKey(runtime, spec, call)) ??
        stopped(spec, call, decided, CommandOutcome.Rejected)
      );
    }
    const checked = await checkVersion(spec, call, loaded);
    if (checked instanceof VersionConflictError) {
      return (
        (await resultOfKey(runtime, spec, call)) ??
        stopped(spec, call, failed(checked), CommandOutcome.Conflict)
      );
    }
    if (decided.value.length === 0) {
      // An earlier attempt's commits did what is left to do.
      if (call.landed.any) return succeedWith(spec, call, call.landed.commit());
      const replayed = await resultOfKey(runtime, spec, call);
      if (replayed) return replayed;
      if (!spec.nothingToWrite) throw new Error(`${spec.name} decided to write nothing`);
      return result(succeeded(spec.nothingToWrite(call, loaded)), CommandOutcome.NothingToWrite);
    }
    const actor = call.actorId as string | null;
    const operation = {
      name: spec.name,
      actor,
      idempotencyKey,
      requestFingerprint: call.requestFingerprint,
    };
    const appended = await appendCommits(
      operation,
      session,
      decided.value,
      checked.merged,
      call.landed,
      signal,
    );
    if (appended instanceof VersionConflict) return { kind: 'raced', conflict: appended };
    if (appended instanceof IdempotencyKeyReused) {
      const reused = failed(idempotencyKeyReusedError());
      return stopped(spec, call, reused, CommandOutcome.Rejected);
    }
    return succeedWith(spec, call, call.landed.commit());
  } finally {
    await session.release();
  }
}

/**
 * What the call's idempotency key already answers: the first result of this very request
 * (same actor, same input), replayed, or the `ValidationError` of a key that stands for
 * another request; undefined without a key, when the key is free, and once this command
 * has commits of its own (they answer it).
 */
async function resultOfKey<S extends AnyCommandSpec>(
  runtime: CommandRuntime,
  spec: S,
  call: Call,
): Promise<Answered<S> | undefined> {
  if (call.idempotencyKey === undefined || call.landed.any) return undefined;
  const { store } = runtime;
  const first = await firstResultOf(
    store,
    call.idempotencyKey,
    call.requestFingerprint as string,
    call.signal,
  );
  if (first instanceof ValidationError) return result(failed(first), CommandOutcome.Rejected);
  if (!first) return undefined;
  return succeedWith(spec, call, await replayedCommit(store, first.position, call.signal));
}

async function succeedWith<S extends AnyCommandSpec>(
  spec: S,
  call: Call,
  commit: CommittedChange,
): Promise<Answered<S>> {
  const outcome = commit.replayed
    ? CommandOutcome.Replayed
    : commit.merged
      ? CommandOutcome.Merged
      : CommandOutcome.Committed;
  return result(succeeded(await spec.succeed(commit, call, call.readState)), outcome);
}

/**
 * An attempt that ends with the expected failure `failure`: the command's answer, unless
 * earlier commits of its decision landed. Those stand, so it answers them, saying what
 * stopped the rest: a committed write is never reported as a failure.
 */
async function stopped<S extends AnyCommandSpec>(
  spec: S,
  call: Call,
  failure: { ok: false; error: unknown },
  outcome: CommandOutcome,
): Promise<Attempt<S>> {
  if (!call.landed.any) return result(failure, outcome);
  const { code } = failure.error as DomainError;
  return succeedWith(spec, call, call.landed.commit(code));
}

function result<S extends AnyCommandSpec>(
  value: { ok: true; value: unknown } | { ok: false; error: unknown },
  outcome: CommandOutcome,
): Answered<S> {
  return { kind: 'result', result: value as ResultOf<S>, outcome };
}

/**
 * The decider's events, or the expected failure it rejected with. Deciders reject
 * by throwing (they stay plain functions, tested as such); this is the one place
 * that turns that into a value. A failure the spec does not list is a bug: it rejects.
 */
function decideSafely(
  spec: AnyCommandSpec,
  call: Call,
  loaded: unknown,
  context: DecideContext,
): { ok: true; value: Decision } | { ok: false; error: unknown } {
  try {
    return succeeded(spec.decide(call, loaded, context));
  } catch (error) {
    if (isExpectedError(spec, error)) return { ok: false, error };
    throw error;
  }
}

/** The client's expected version against the stream as read: go ahead (maybe merged) or conflict. */
async function checkVersion(
  spec: AnyCommandSpec,
  call: Call,
  loaded: unknown,
): Promise<{ merged: boolean } | VersionConflictError> {
  const rule = spec.expectedVersion;
  if (!rule) return { merged: false };
  const stream = rule.of(loaded);
  const { expectedVersion } = call.input as { expectedVersion?: unknown };
  if (!stream || typeof expectedVersion !== 'number') {
    throw new Error(`${spec.name}: decided without the stream or input its version is about`);
  }
  const sets = typeof rule.sets === 'function' ? rule.sets(call.input) : rule.sets;
  return await checkExpectedVersion(stream, expectedVersion, sets);
}

function stateReader(store: EventStore, signal: AbortSignal | undefined): ReadState {
  return async (kind, id) =>
    foldEvents(kind, await store.readStream(toStreamName(kind, id), { signal }));
}

/**
 * Every attempt lost a race. Reported as `VersionConflictError` on the stream that
 * moved when the spec lists it; otherwise an unexpected `RetriesExhaustedError`.
 */
async function exhausted<S extends AnyCommandSpec>(
  runtime: CommandRuntime,
  spec: S,
  call: Call,
  conflict: VersionConflict,
): Promise<ResultOf<S>> {
  const parsed = parseStreamName(conflict.stream);
  const resourceType = parsed ? aggregates[parsed.kind].resourceType : null;
  const attempts = runtime.retry.maxAttempts;
  if (!reportsConflicts(spec) || !parsed || !resourceType) {
    throw new RetriesExhaustedError(spec.name, attempts, { cause: conflict });
  }
  const expectedVersion = typeof conflict.expected === 'number' ? conflict.expected : 0;
  const later = await runtime.store.readStream(conflict.stream, {
    fromVersion: expectedVersion + 1,
    signal: call.signal,
  });
  const error = new VersionConflictError({
    resourceType,
    resourceId: parsed.id,
    stream: conflict.stream,
    expectedVersion,
    actualVersion: later.at(-1)?.version ?? conflict.actual,
    conflicts: describeChanges(parsed.kind, later),
  });
  return failed(error) as ResultOf<S>;
}
