import type { z } from 'zod';
import type { StreamHead } from '../../eventstore/types.js';
import type { AggregateStates } from '../aggregates.js';
import type { DecideContext, Decision } from '../decision.js';
import {
  type DomainError,
  type ErrorCode,
  UnauthenticatedError,
  ValidationError,
  VersionConflictError,
} from '../errors.js';
import { parseStreamName, type StreamKind } from '../streams.js';
import type { LoadSession, LoadedStream } from './loadSession.js';
import type { CommandResult, CommitRef, WrittenResource } from './results.js';

/** A class of expected failure that a command may return. */
export type ErrorClass = abstract new (...args: never[]) => DomainError;

/** The errors of a list of error classes. */
export type ErrorOf<Errors extends readonly ErrorClass[]> = InstanceType<Errors[number]>;

/** The caller's id: never null for a command that lists `UnauthenticatedError`. */
export type ActorOf<Errors extends readonly ErrorClass[]> = [
  Extract<ErrorOf<Errors>, UnauthenticatedError>,
] extends [never]
  ? string | null
  : string;

/** One run of a command, as its spec's functions see it. */
export interface CommandCall<Input, Actor, Prepared> {
  /** The input, checked and normalized by the spec's schema. */
  input: Input;
  actorId: Actor;
  /** The caller's idempotency key, scoped to them and the command; undefined without one. */
  idempotencyKey: string | undefined;
  /**
   * What the idempotency key stands for: a digest of the command, the actor and the whole
   * input. The store replays the key only for this same fingerprint; undefined without a key.
   */
  requestFingerprint: string | undefined;
  /** What `prepare` made for this run (undefined without `prepare`). */
  prepared: Prepared;
}

/** What the runner hands `prepare`: secrets that are not the command's to hold. */
export interface PrepareContext {
  tokenSecret: string | Uint8Array;
}

/** A commit a command made, or the earlier one its idempotency key pointed to. */
export interface CommittedChange {
  commitId: string;
  position: number;
  /** Head of every stream of the commit, in the commit's order. */
  heads: readonly StreamHead[];
  /** True when the write went ahead over changes the client had not seen. */
  merged: boolean;
  /** True when this is the result of an earlier commit with the same idempotency key. */
  replayed: boolean;
  /**
   * Set when the decision spanned several commits (`splitIntoCommits`) and a later one
   * could not be made: the expected failure that stopped the rest. The commits made
   * stand, `heads` names what they wrote, and `commitId`/`position` are the last of
   * them. A spec whose decision can span commits says so in its answer.
   */
  stoppedBy?: ErrorCode;
}

/** Reads a stream's current state after the commit (for a replay that needs the first data). */
export type ReadState = <K extends StreamKind>(kind: K, id: string) => Promise<AggregateStates[K]>;

/**
 * A mutation, declared once: everything the runner ({@link handleCommand}), the
 * GraphQL field and the result types are derived from.
 */
export interface CommandSpec<
  Name extends string,
  Schema extends z.ZodType,
  Errors extends readonly ErrorClass[],
  Loaded,
  Success,
  Prepared = undefined,
> {
  /** The mutation's name; recorded as each commit's `operation`. */
  name: Name;
  /** Checks and normalizes the input; its input type is the command's, its output `call.input`. */
  input: Schema;
  /**
   * The expected failures, the single list that the GraphQL result union, the
   * TypeScript result type and the retry policy derive from. Listing
   * `UnauthenticatedError` means the command needs a signed-in caller; listing
   * `VersionConflictError` means losing every bounded retry is reported as one.
   */
  errors: Errors;
  /**
   * The command acts for no one: it runs as anonymous whatever credentials come with
   * it, so its idempotency key, request fingerprint and recorded actor are the same
   * with or without them (a registration retried once its token is sent replays).
   */
  anonymous?: boolean;
  /** Joins the idempotency key's scope besides the caller and the command. */
  idempotencyScope?: (input: z.output<Schema>) => string;
  /** Made once per run, before any attempt (e.g. a token, a password hash). */
  prepare?: (
    call: Omit<CommandCall<z.output<Schema>, ActorOf<Errors>, undefined>, 'prepared'>,
    context: PrepareContext,
  ) => Prepared | Promise<Prepared>;
  /** Loads the streams the command needs (each through `session`, the one place that reads). */
  load: (
    session: LoadSession,
    call: CommandCall<z.output<Schema>, ActorOf<Errors>, Prepared>,
  ) => Promise<Loaded>;
  /** The pure decision; rejects by throwing one of `errors` (the runner makes it a value). */
  decide: (
    call: CommandCall<z.output<Schema>, ActorOf<Errors>, Prepared>,
    loaded: Loaded,
    context: DecideContext,
  ) => Decision;
  /**
   * The resource the client's `input.expectedVersion` is about, and the fields the
   * command sets: a stale version still goes ahead (merged) when no change since
   * touched one of them. Omitted: the command takes no expected version.
   */
  expectedVersion?: {
    of: (loaded: Loaded) => LoadedStream | null;
    sets: readonly string[] | ((input: z.output<Schema>) => readonly string[]);
  };
  /** The result when the decision is empty. Omitted: an empty decision is a bug. */
  nothingToWrite?: (
    call: CommandCall<z.output<Schema>, ActorOf<Errors>, Prepared>,
    loaded: Loaded,
  ) => Success;
  /** The success value for a commit (its own, or the one its idempotency key made first). */
  succeed: (
    commit: CommittedChange,
    call: CommandCall<z.output<Schema>, ActorOf<Errors>, Prepared>,
    readState: ReadState,
  ) => Success | Promise<Success>;
}

/** Any command spec; what generic code takes. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCommandSpec = CommandSpec<string, z.ZodType, readonly ErrorClass[], any, any, any>;

/** The input a command takes (before normalization). */
export type InputOf<S extends AnyCommandSpec> = z.input<S['input']>;
/** A command's success value. */
export type SuccessOf<S extends AnyCommandSpec> = Awaited<ReturnType<S['succeed']>>;
/** A command's expected failures. */
export type ErrorsOf<S extends AnyCommandSpec> = ErrorOf<S['errors']>;
/** What running a command returns. */
export type ResultOf<S extends AnyCommandSpec> = CommandResult<SuccessOf<S>, ErrorsOf<S>>;

/** Whether `spec` lists `error`'s class among its expected failures. */
export function isExpectedError<S extends AnyCommandSpec>(
  spec: S,
  error: unknown,
): error is ErrorsOf<S> {
  return spec.errors.some((cls) => error instanceof cls);
}

/** Whether the command needs a signed-in caller (it lists `UnauthenticatedError`). */
export const requiresCaller = (spec: AnyCommandSpec): boolean =>
  spec.errors.includes(UnauthenticatedError);

/** Whether exhausted retries are reported as `VersionConflictError` (it lists one). */
export const reportsConflicts = (spec: AnyCommandSpec): boolean =>
  spec.errors.includes(VersionConflictError);

/**
 * Declares a command. Checks what its error list implies: every command can get
 * invalid input (`ValidationError`), one that takes an expected version can
 * conflict (`VersionConflictError`), and an anonymous one cannot need a caller.
 */
export function defineCommand<
  Name extends string,
  Schema extends z.ZodType,
  const Errors extends readonly ErrorClass[],
  Loaded,
  Success,
  Prepared = undefined,
>(
  spec: CommandSpec<Name, Schema, Errors, Loaded, Success, Prepared>,
): CommandSpec<Name, Schema, Errors, Loaded, Success, Prepared> {
  if (!spec.errors.includes(ValidationError)) {
    throw new Error(`${spec.name}: every command must list ValidationError`);
  }
  if (spec.expectedVersion && !reportsConflicts(spec)) {
    throw new Error(
      `${spec.name}: a command with an expected version must list VersionConflictError`,
    );
  }
  if (spec.anonymous === true && requiresCaller(spec)) {
    throw new Error(`${spec.name}: an anonymous command cannot need a signed-in caller`);
  }
  return spec;
}

/** What every commit's success value starts with. */
export function commitRef(commit: CommittedChange): CommitRef {
  return { commitId: commit.commitId, position: commit.position, replayed: commit.replayed };
}

/** A `succeed` made by {@link written}: it also says which kind of stream each key holds. */
export type WrittenSucceed<R extends Record<string, StreamKind>> = ((
  commit: CommittedChange,
) => CommitRef & { merged: boolean } & { [K in keyof R]: WrittenResource }) & {
  readonly writes: R;
};

/**
 * A `succeed` for commands whose result is the resources they wrote: the commit,
 * `merged`, and for each key the first written stream of the kind named. The mutation's
 * payload shows each key as that resource (see {@link writesOf}).
 *
 * @example succeed: written({ card: 'card', column: 'column' })
 */
export function written<const R extends Record<string, StreamKind>>(
  resources: R,
): WrittenSucceed<R> {
  const succeed = (commit: CommittedChange) => {
    const heads = Object.entries(resources).map(([key, kind]) => [
      key,
      headOfKind(commit.heads, kind),
    ]);
    return {
      ...commitRef(commit),
      merged: commit.merged,
      ...(Object.fromEntries(heads) as { [K in keyof R]: WrittenResource }),
    };
  };
  return Object.assign(succeed, { writes: resources });
}

/** The kind of stream each key of the success value holds, when `succeed` is {@link written}'s. */
export function writesOf(spec: AnyCommandSpec): Readonly<Record<string, StreamKind>> | undefined {
  return (spec.succeed as Partial<WrittenSucceed<Record<string, StreamKind>>>).writes;
}

/** `{ id, version }` of each head of `kind`, in commit order. */
export function headsOfKind(heads: readonly StreamHead[], kind: StreamKind): WrittenResource[] {
  return heads.flatMap((head) => {
    const parsed = parseStreamName(head.stream);
    return parsed?.kind === kind ? [{ id: parsed.id, version: head.version }] : [];
  });
}

/** The first head of `kind`; a commit without one is a bug. */
export function headOfKind(heads: readonly StreamHead[], kind: StreamKind): WrittenResource {
  const head = headsOfKind(heads, kind)[0];
  if (!head) throw new Error(`commit has no ${kind} stream`);
  return head;
}
