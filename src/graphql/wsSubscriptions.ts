/** A websocket's subscriptions: their count, and their streams writing shared frames. */
import type { ExecutionResult, GraphQLError } from 'graphql';
import { nextFrame } from '../live/frames.js';
import { SERIALIZED_BYTES, type SharedResult } from '../live/SubscriptionGroups.js';
import type { WebSocketConnection } from './wsConnection.js';

export const isAsyncIterable = (value: unknown): value is AsyncIterable<ExecutionResult> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/**
 * A subscription's stream as graphql-ws iterates it: each result shared by a group
 * (`SharedResult`, serialised once for all its members) is written straight to the
 * socket as a graphql-ws `next` frame, this subscription's id spliced around the
 * shared JSON, without stringifying it again; graphql-ws sees only the rest (none, for
 * `boardChanges` once caught up, see `DirectDelivery`) and the end. Frames are written
 * in order, and never after graphql-ws returned the stream (the client completed it,
 * or the socket closed).
 */
export class SendingShared implements AsyncIterableIterator<ExecutionResult> {
  readonly #iterator: AsyncIterator<ExecutionResult>;
  #returned = false;

  constructor(
    private readonly connection: WebSocketConnection,
    private readonly id: string,
    stream: AsyncIterable<ExecutionResult>,
    /** Its slot in the connection's count, freed when the stream ends, whichever way. */
    private readonly slot: CountedSubscription,
  ) {
    this.#iterator = stream[Symbol.asyncIterator]();
  }

  // Not an async function: a parked one would keep its frame (a generator) alive.
  next(): Promise<IteratorResult<ExecutionResult, undefined>> {
    return this.#iterator.next().then(
      (next) => this.#take(next),
      (error: unknown) => {
        this.slot.release();
        throw error;
      },
    );
  }

  #take(
    next: IteratorResult<ExecutionResult, unknown>,
  ):
    | IteratorResult<ExecutionResult, undefined>
    | Promise<IteratorResult<ExecutionResult, undefined>> {
    if (this.#returned || next.done) {
      this.slot.release();
      return { done: true, value: undefined };
    }
    const bytes = (next.value as Partial<SharedResult>)[SERIALIZED_BYTES];
    if (bytes === undefined) return next;
    // Refused: the socket is being closed as a slow consumer, and this stream ends.
    if (!this.connection.send(nextFrame(this.id, bytes))) return this.return();
    return this.next();
  }

  async return(): Promise<IteratorResult<ExecutionResult, undefined>> {
    this.#returned = true;
    this.slot.release();
    await this.#iterator.return?.();
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<ExecutionResult, undefined>> {
    this.#returned = true;
    this.slot.release();
    await this.#iterator.return?.();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * One subscription of a socket, from its `subscribe` message until its stream has ended:
 * what `maxSubscriptionsPerConnection` counts. graphql-ws's own record of a socket's
 * operations cannot be the count: it forgets an id when the client completes it, even
 * while the operation is still being prepared, so a client that subscribes and
 * completes one id back to back would start stream after stream that no record holds.
 *
 * While the subscription is prepared it stands in graphql-ws's record for its id (an
 * async iterable with `return`, never iterated), so the client completing that id, or
 * the socket closing, cancels it: its stream is then ended as soon as it exists and
 * never delivers. Its slot is freed once, when its stream ends (or it never gets one).
 */
export class CountedSubscription implements AsyncIterable<never> {
  #cancelled = false;
  #released = false;

  constructor(private readonly connection: WebSocketConnection) {
    connection.subscriptions += 1;
  }

  /** The client completed the id, or the socket closed, before the stream existed. */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  [Symbol.asyncIterator](): AsyncIterator<never> {
    throw new Error('a subscription being prepared is not iterable');
  }

  /** graphql-ws's `complete` (or the socket's close) while the subscription is prepared. */
  return(): Promise<IteratorReturnResult<undefined>> {
    this.#cancelled = true;
    return Promise.resolve({ done: true, value: undefined });
  }

  /** Frees the slot. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.connection.subscriptions -= 1;
  }
}

/** The stream of a subscription cancelled before it started: already over. */
export const ENDED: AsyncIterableIterator<never> = Object.freeze({
  next: () => Promise.resolve({ done: true, value: undefined } as const),
  return: () => Promise.resolve({ done: true, value: undefined } as const),
  [Symbol.asyncIterator]() {
    return this;
  },
});

/**
 * What a `RefusedStream` throws: the errors of a subscription that failed before its
 * stream started (refused by its subscribe resolver: not signed in, not a member, removed;
 * or its variables did not fit), carried past graphql-ws's own wrapping to `onError`.
 */
export class RefusedBeforeStart extends Error {
  override readonly name = 'RefusedBeforeStart';
  constructor(readonly errors: readonly GraphQLError[]) {
    super(errors[0]?.message ?? 'Refused');
  }
}

/**
 * The errors of a subscribe's result that has no stream and no data (graphql-js's answer
 * when the source stream could not be made), else null.
 */
export function refusalOf(result: unknown): readonly GraphQLError[] | null {
  const { data, errors } = (result ?? {}) as ExecutionResult;
  return data == null && errors && errors.length > 0 ? errors : null;
}

/**
 * A stream that fails at once with `errors`: graphql-ws then sends one `error` message for
 * the subscription (as for a refusal in `onSubscribe`), never a `next` and a `complete`.
 */
export function refusedStream(errors: readonly GraphQLError[]): AsyncIterableIterator<never> {
  return {
    next: () => Promise.reject(new RefusedBeforeStart(errors)),
    return: () => Promise.resolve({ done: true, value: undefined } as const),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
