/**
 * A board's change feed as its subscribers see it: the messages, the connection they
 * leave through, and what a subscription needs of the hub that holds it.
 */
import type { CarriedDoc, ChangeLog, ChangeLogEntry, Invalidation } from '../projector/types.js';
import type { BoardSubscription } from './BoardSubscription.js';
import type { SlowConsumerError } from './errors.js';
import type { LiveCloseCode, LiveLimits } from './limits.js';

/** `operation` of the message that tells a client its cursor is too old to replay from. */
export const RESYNC_OPERATION = 'resync';

/** One message of a board's change feed, as a subscription yields it. */
export interface BoardChangeMessage {
  /** The commit's change log cursor; for a resync, the head of the log. */
  cursor: number;
  /** Raw id of the board subscribed to. */
  boardId: string;
  /** The mutation that caused it; `RESYNC_OPERATION` for a resync. */
  operation: string;
  /** Raw user id of the actor; null for the system and for a resync. */
  actor: string | null;
  at: Date;
  invalidated: Invalidation[];
  /** The read documents the commit changed, as it left them (`ChangeLogEntry.changed`). */
  changed: readonly CarriedDoc[];
  resyncRequired: boolean;
}

/**
 * The connection a subscription's messages leave through, when the hub can watch it
 * (a websocket). Over SSE there is none: yoga owns that stream.
 */
export interface LiveConnection {
  /** Bytes accepted for sending but not yet handed to the operating system. */
  readonly bufferedAmount: number;
  /** Closes the whole connection (every subscription on it) with `code`. */
  disconnect(code: LiveCloseCode, reason: string): void;
  /**
   * Writes one protocol message, given as a whole websocket text frame (`nextFrame`);
   * nothing when the connection is closing. False when the frame was refused because
   * the bytes buffered on the connection would pass `maxBufferedBytes` with it: the
   * connection is then being closed as a slow consumer.
   */
  send(frame: Buffer): boolean;
}

/**
 * How a caught-up subscription delivers by itself, without anyone iterating it: the
 * hub's push hands each change straight to `resultFor` (shared by the subscription's
 * group, resolving in the order asked) and its result to `send`. This is the whole
 * per-subscriber cost of a change on a websocket: no promise chain, no iterator step.
 */
export interface DirectDelivery<R = unknown> {
  /** The (shared) result for `message`; results resolve in the order they were asked. */
  resultFor(message: BoardChangeMessage): Promise<R>;
  /** Writes it to the client; false when the connection refused it (a slow consumer). */
  send(result: R): boolean;
}

/** A board subscription as the hub hands it out. */
export interface BoardChangeStream extends AsyncIterableIterator<BoardChangeMessage> {
  /**
   * From now on, whenever the subscription has caught up (no replay, nothing queued),
   * it delivers live changes through `delivery` and its `next()` waits for the end
   * (or for a change it must check access for first, which it yields as usual).
   */
  deliverDirectly<R>(delivery: DirectDelivery<R>): void;
}

export interface BoardSubscriptionOptions {
  /** Raw id of a board the subscriber may see (checked by the caller beforehand). */
  boardId: string;
  /**
   * Replay every change after this cursor first. Null or absent: only changes
   * delivered from now on.
   */
  after?: number | null;
  /**
   * Whether the subscriber (`viewerId`) may still see the board. Asked again before
   * delivering any change to the board's members; false ends the subscription with
   * `AccessRevokedError` before that change is delivered. One function can serve every
   * subscription (it is given what it needs), so a waiting subscription holds no
   * closure of its own.
   */
  authorize: (
    boardId: string,
    viewerId: string | undefined,
    signal: AbortSignal | undefined,
  ) => Promise<boolean>;
  /** Who subscribes, as `authorize` wants it. */
  viewerId?: string;
  /** Aborting it ends the subscription (the client went away). */
  signal?: AbortSignal;
  /** The websocket the messages leave through, watched for slow consumption. */
  connection?: LiveConnection | undefined;
  /**
   * What an error that ends the subscription becomes for its client (it ends the
   * subscription either way). @default the error itself
   */
  clientError?: (error: unknown, boardId: string) => unknown;
}

/**
 * What a subscription needs from the hub that holds it, and what it tells the hub.
 * The hub passes one such object to every subscription it makes; nothing else of the
 * hub is reachable from a subscription.
 */
export interface SubscriptionHost {
  /** Read for replays (`after`) and resyncs. */
  readonly changeLog: Pick<ChangeLog, 'read' | 'head'>;
  readonly limits: Pick<LiveLimits, 'maxQueuedMessages' | 'maxBufferedBytes' | 'replayPageSize'>;
  /** A replay this subscription counted (see `BoardChangeHub.subscribe`) is over. */
  replayEnded(connection: LiveConnection | undefined): void;
  /** Clock for resync messages. */
  now(): Date;
  /** The subscription ended (for whatever reason); may be told more than once. */
  ended(subscription: BoardSubscription): void;
  /** A live entry was queued; `length` is the queue's length now. */
  queued(length: number): void;
  /** The subscription was ended as a slow consumer. */
  slowConsumer(boardId: string, error: SlowConsumerError): void;
  /** The subscription was ended because a members change revoked its access. */
  revoked(boardId: string): void;
  /** A direct delivery started (+1) or was written or failed (-1). */
  delivering(change: 1 | -1): void;
}

/**
 * One entry as every subscriber of one board sees it, worked out once per board by the
 * hub: the message (the same object for all of them, so their group finds its result
 * at once) and whether it changes the board's members (then each checks access first).
 */
export interface BoardChange {
  readonly message: BoardChangeMessage;
  readonly membersChanged: boolean;
}

/** No documents carried: shared by every message that carries none. */
export const NOTHING_CARRIED: readonly CarriedDoc[] = Object.freeze([]);

/** `entry` for the subscribers of `boardId`. */
export function boardChangeOf(entry: ChangeLogEntry, boardId: string): BoardChange {
  return {
    message: {
      cursor: entry.cursor,
      boardId,
      operation: entry.operation ?? 'unknown',
      actor: entry.actor,
      at: entry.at,
      invalidated: entry.invalidated,
      changed: entry.changed ?? NOTHING_CARRIED,
      resyncRequired: false,
    },
    membersChanged: changesMembersOf(entry, boardId),
  };
}

/** Whether `entry` changes the members of `boardId` (then subscribers check access first). */
export const changesMembersOf = (entry: ChangeLogEntry, boardId: string) =>
  entry.invalidated.some(
    (i) => i.typename === 'Board' && i.id === boardId && i.fields.includes('members'),
  );

/** Per entry, worked out once for all its subscribers: see `queuedBytesOf`. */
const entryBytes = new WeakMap<ChangeLogEntry, number>();

/**
 * About the bytes of the message `entry` becomes (what its invalidations take as JSON,
 * plus the rest of a message): what a queued entry costs its connection. An estimate,
 * worked out once per entry; a selection of every field stays within a few times it.
 */
export function queuedBytesOf(entry: ChangeLogEntry): number {
  let bytes = entryBytes.get(entry);
  if (bytes === undefined) {
    bytes = 256 + JSON.stringify(entry.invalidated).length;
    entryBytes.set(entry, bytes);
  }
  return bytes;
}
