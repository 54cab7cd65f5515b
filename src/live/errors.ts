import type { AccessEndReason } from '../sdk/liveErrorCodes.js';

/** Why a board subscription ended before its client asked it to. */

/** The subscription's client did not keep up with its messages (see `LiveLimits`). */
export class SlowConsumerError extends Error {
  override readonly name = 'SlowConsumerError';
  constructor(
    /** What passed its bound. */
    readonly bound: 'queue' | 'socket',
  ) {
    super(
      bound === 'queue'
        ? 'Too many undelivered changes: the client is not reading fast enough'
        : 'Too many unsent bytes on the connection: the client is not reading fast enough',
    );
  }
}

/**
 * How a subscriber lost access, as the client is told it (`extensions.reason` beside
 * `NOT_FOUND`): an owner removed them, or they removed themself.
 */
export type AccessRevokedReason = typeof AccessEndReason.Removed | typeof AccessEndReason.Left;

/** A change to the board's members left the subscriber without access to it. */
export class AccessRevokedError extends Error {
  override readonly name = 'AccessRevokedError';
  constructor(
    readonly boardId: string,
    readonly reason: AccessRevokedReason,
  ) {
    super(`No access to board ${boardId} any more`);
  }
}

/** A replay was asked for while too many run already (see `LiveLimits`). */
export class ReplayLimitError extends Error {
  override readonly name = 'ReplayLimitError';
  constructor(
    /** Which bound: the server's `maxConcurrentReplays` or the connection's. */
    readonly bound: 'server' | 'connection',
    limit: number,
  ) {
    super(
      bound === 'server'
        ? `At most ${limit} replays run at once on this server: retry shortly`
        : `At most ${limit} replays run at once per connection: retry shortly`,
    );
  }
}
