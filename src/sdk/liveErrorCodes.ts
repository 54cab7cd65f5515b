/**
 * What a live subscription's GraphQL errors carry in `extensions`, beside the domain's
 * `UNAUTHENTICATED` and `NOT_FOUND` codes: declared once, here, for the server that
 * answers with them and the SDK that recognises them. This module imports nothing, so
 * the server can import it from the client's source.
 */

/**
 * `extensions.code` of the GraphQL errors a live subscription can end with, besides
 * the domain's `UNAUTHENTICATED` and `NOT_FOUND`.
 */
export const LiveErrorCode = {
  /** The connection already carries `maxSubscriptionsPerConnection` subscriptions. */
  TooManySubscriptions: 'TOO_MANY_SUBSCRIPTIONS',
  /** The subscription's queue passed its bound (SSE; a websocket is closed with 4008). */
  SlowConsumer: 'SLOW_CONSUMER',
  /**
   * A subscribe with `after` while `maxReplaysPerConnection` replays run on its
   * connection or `maxConcurrentReplays` on the server: retry shortly (with backoff).
   */
  TooManyReplays: 'TOO_MANY_REPLAYS',
} as const;
export type LiveErrorCode = (typeof LiveErrorCode)[keyof typeof LiveErrorCode];

/**
 * Why the viewer can no longer see a board: `extensions.reason` beside `NOT_FOUND` when
 * the server says why.
 */
export const AccessEndReason = {
  /** An owner removed the viewer from the board. */
  Removed: 'REMOVED',
  /** The viewer left the board (removed themself). */
  Left: 'LEFT',
  /**
   * The server said only that the board is not found for the viewer: it never existed,
   * the viewer was never a member, or the server did not say why access ended.
   */
  NotFound: 'NOT_FOUND',
} as const;
export type AccessEndReason = (typeof AccessEndReason)[keyof typeof AccessEndReason];
