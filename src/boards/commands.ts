import { randomBytes } from 'node:crypto';
import { StreamStateCache } from '../eventstore/StreamStateCache.js';
import { KeyedQueue } from '../keyedQueue.js';
import {
  DEFAULT_SIGN_IN_RATE_LIMIT,
  type BoardCommandsDependencies,
} from './commandHandling/dependencies.js';
import { commandSpecs, internalCommandSpecs, type AllCommandSpecs } from './commandSpecs.js';
import type { InputOf, ResultOf } from './commandHandling/defineCommand.js';
import { handleCommand, type RetryOptions } from './commandHandling/handleCommand.js';
import { failed, type CommandOptions } from './commandHandling/results.js';
import { ExternalIdentityError, TooManyAttemptsError } from './errors.js';
import { normalizeUsername } from './streams.js';
import { RateLimited, RateLimiter } from '../rateLimiter.js';

export { commandSpecs, type CommandName, type CommandSpecs } from './commandSpecs.js';
export type { BoardCommandsDependencies } from './commandHandling/dependencies.js';

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

/** How a command retries when its streams moved under it (README: "command attempts"). */
export const defaultRetry: Required<RetryOptions> = {
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
