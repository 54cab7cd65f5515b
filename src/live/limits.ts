/**
 * Protocol values and bounds of the live side (graphql-ws over websocket, and SSE).
 * Every one of them is documented in the README's "Live updates" section.
 */

/**
 * Close codes Corkboard itself sends on a websocket. The graphql-ws protocol's own
 * codes (graphql-ws `CloseCode`: 4400 bad request, 4401 subscribe before
 * `connection_init`, 4403 forbidden, 4408 connection-init timeout, 4409 duplicate
 * subscription id, 4429 repeated `connection_init`, 4500 internal error) are sent
 * by graphql-ws and keep their meaning.
 */
export const LiveCloseCode = {
  /** The server is shutting down; reconnect (to another instance) and resume by cursor. */
  GoingAway: 1001,
  /**
   * The client did not read its messages fast enough: a subscription's queue or the
   * socket's send buffer passed its bound. Reconnect and resume from the last cursor.
   */
  SlowConsumer: 4008,
  /**
   * The token the connection's subscriptions were opened with expired, or its session
   * was revoked (graphql-ws `CloseCode.Forbidden`): reconnect with a fresh token and
   * resume from the last cursor.
   */
  CredentialEnded: 4403,
} as const;
export type LiveCloseCode = (typeof LiveCloseCode)[keyof typeof LiveCloseCode];

/** Bounds of the live side. Each has a default; tests and operators may lower them. */
export interface LiveLimits {
  /**
   * Messages one subscription may hold that its client has not taken yet. Past it, a
   * live subscriber is a slow consumer: its websocket is closed with
   * `LiveCloseCode.SlowConsumer` (over SSE, the subscription ends with a
   * `SLOW_CONSUMER` error). While a subscription replays its backlog, live entries
   * past the bound are dropped instead and read again from the change log, so a
   * long replay is not mistaken for a slow consumer.
   * @default 1_000
   */
  maxQueuedMessages: number;
  /**
   * Bytes a websocket may have accepted for sending but not yet handed to the
   * operating system (`ws`'s `bufferedAmount`). Past it, the socket is closed as a
   * slow consumer, whatever its queues hold.
   * @default 1_048_576 (1 MiB)
   */
  maxBufferedBytes: number;
  /**
   * Subscriptions one websocket may carry at once; one more gets a
   * `TOO_MANY_SUBSCRIPTIONS` error (the others go on).
   * @default 20
   */
  maxSubscriptionsPerConnection: number;
  /**
   * How long a new websocket may take to send `connection_init` before graphql-ws
   * closes it with 4408.
   * @default 10_000
   */
  connectionInitTimeoutMs: number;
  /**
   * After closing a slow consumer's socket, how long its close frame may wait behind
   * the unread data before the socket is destroyed (freeing its buffers).
   * @default 2_000
   */
  slowConsumerCloseGraceMs: number;
  /**
   * Largest message a client may send over the websocket (a GraphQL document and its
   * variables); `ws` rejects a larger one with close code 1009.
   * @default 1_048_576 (1 MiB)
   */
  maxIncomingMessageBytes: number;
  /** Change log entries read per page while a subscription replays. @default 500 */
  replayPageSize: number;
  /**
   * Subscriptions replaying (`after`, until caught up) at once on the server; one more
   * is refused with `TOO_MANY_REPLAYS`, so no client can keep the change log busy.
   * @default 64
   */
  maxConcurrentReplays: number;
  /** Subscriptions replaying at once on one connection; one more: `TOO_MANY_REPLAYS`. @default 4 */
  maxReplaysPerConnection: number;
}

/** The bounds used when nothing else is configured. */
export const DEFAULT_LIVE_LIMITS: Readonly<LiveLimits> = Object.freeze({
  maxQueuedMessages: 1_000,
  maxBufferedBytes: 1_048_576,
  maxSubscriptionsPerConnection: 20,
  connectionInitTimeoutMs: 10_000,
  slowConsumerCloseGraceMs: 2_000,
  maxIncomingMessageBytes: 1_048_576,
  replayPageSize: 500,
  maxConcurrentReplays: 64,
  maxReplaysPerConnection: 4,
});

/**
 * The defaults overridden by `overrides`.
 * @throws RangeError when a value is not a positive integer.
 */
export function resolveLiveLimits(overrides: Partial<LiveLimits> = {}): LiveLimits {
  const limits = { ...DEFAULT_LIVE_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`live limit ${name} must be a positive integer, got ${value}`);
    }
  }
  return limits;
}
