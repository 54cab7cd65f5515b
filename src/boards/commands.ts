import { randomBytes } from 'node:crypto';
import type { SnapshotStore } from '../eventstore/snapshots/SnapshotStore.js';
import { StreamStateCache } from '../eventstore/StreamStateCache.js';
import type { EventStore } from '../eventstore/types.js';
import { KeyedQueue } from '../keyedQueue.js';
import { addColumn, addMember, createBoard, moveColumn, renameBoard } from './board/commands.js';
import { archiveCard, editCard, moveCard } from './card/commands.js';
import { addCard, archiveDoneCards, setWipLimit } from './column/commands.js';
import type { InputOf, ResultOf } from './commandHandling/defineCommand.js';
import { handleCommand, type RetryOptions } from './commandHandling/handleCommand.js';
import { failed, type CommandOptions } from './commandHandling/results.js';
import { ExternalIdentityError, TooManyAttemptsError } from './errors.js';
import { provisionUser, registerUser } from './user/commands.js';
import { refreshSession, revokeSession, setPassword, signIn } from './session/commands.js';
import { normalizeUsername } from './streams.js';
import { RateLimited, RateLimiter, type RateLimit } from '../rateLimiter.js';

/**
 * Every mutation of the public contract, by name. Each spec (in its aggregate's
 * `commands.ts`) is the one place its input, errors, loading, decision and result
 * are declared; the GraphQL fields and {@link BoardCommands} are built from these.
 */
export const commandSpecs = {
  registerUser,
  setPassword,
  signIn,
  revokeSession,
  createBoard,
  renameBoard,
  addMember,
  addColumn,
  moveColumn,
  setWipLimit,
  addCard,
  editCard,
  moveCard,
  archiveCard,
  archiveDoneCards,
} as const;
export type CommandSpecs = typeof commandSpecs;
export type CommandName = keyof CommandSpecs;

/** Commands the server runs itself, not mutations: identity provisioning. */
export const internalCommandSpecs = { provisionUser, refreshSession } as const;
type AllCommandSpecs = CommandSpecs & typeof internalCommandSpecs;

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

/**
 * The board API's write side, one method per mutation: `(actorId, input, options)`
 * with the caller's user id (null when anonymous) and the input as the contract
 * declares it (raw ids, not global IDs). Resolves to `{ ok: true, value }` or
 * `{ ok: false, error }` with one of the errors the spec lists; unexpected failures
 * reject. See each spec for what the command does.
 */
export type BoardCommands = {
  [K in keyof AllCommandSpecs]: (
    actorId: string | null,
    input: InputOf<AllCommandSpecs[K]>,
    options?: CommandOptions,
  ) => Promise<ResultOf<AllCommandSpecs[K]>>;
};

const defaultRetry: Required<RetryOptions> = {
  maxAttempts: 10,
  backoffMs: (attempt) => Math.random() * Math.min(100, 2 ** attempt),
};

/**
 * Builds the board API's command handlers on an event store.
 *
 * @example
 * const commands = createBoardCommands({ store, now: () => new Date(), newId: randomUUID });
 * const result = await commands.addCard(userId, { columnId, title: 'Ship it' });
 * if (result.ok) await projector.waitFor(result.value.position);
 */
export function createBoardCommands(deps: BoardCommandsDependencies): BoardCommands {
  const runtime = {
    store: deps.store,
    now: deps.now,
    newId: deps.newId,
    retry: { ...defaultRetry, ...deps.retry },
    infrastructure: {
      cache: new StreamStateCache(deps.store, {
        ...(deps.snapshots && { snapshots: deps.snapshots }),
        ...(deps.onSnapshotError && { onSnapshotError: deps.onSnapshotError }),
      }),
      writers: new KeyedQueue({ maxPending: deps.maxQueuedCommandsPerStream ?? Infinity }),
    },
    tokenSecret: deps.tokenSecret ?? randomBytes(32),
  };
  const specs = [...Object.values(commandSpecs), ...Object.values(internalCommandSpecs)];
  const entries = specs.map((spec) => [
    spec.name,
    (actorId: string | null, input: unknown, options?: CommandOptions) =>
      handleCommand(runtime, spec, actorId, input, options),
  ]);
  const commands = Object.fromEntries(entries) as BoardCommands;
  const issuer = deps.externalIssuer;
  if (issuer !== undefined) {
    // Accounts, passwords and sessions are the identity provider's.
    const external = () => Promise.resolve(failed(new ExternalIdentityError(issuer)));
    return {
      ...commands,
      registerUser: external,
      setPassword: external,
      signIn: external,
      revokeSession: external,
    };
  }
  const limits = new RateLimiter({ signIn: deps.signInRateLimit ?? DEFAULT_SIGN_IN_RATE_LIMIT });
  return {
    ...commands,
    signIn: async (actorId, input, options) => {
      const username = typeof input.username === 'string' ? input.username : '';
      try {
        await limits.consume('signIn', normalizeUsername(username));
      } catch (error) {
        if (!(error instanceof RateLimited)) throw error;
        return failed(new TooManyAttemptsError(error.retryAfterSeconds));
      }
      return commands.signIn(actorId, input, options);
    },
  };
}
