import type { CarriedDoc, ChangeLog, ChangeLogEntry, Invalidation } from '../projector/types.js';
import { AccessRevokedError, SlowConsumerError } from './errors.js';
import { LiveCloseCode, type LiveLimits } from './limits.js';
import { endTracedReplay, tracedReplayPage, tracedResync } from './liveTraces.js';

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

const NOTHING_CARRIED: readonly CarriedDoc[] = Object.freeze([]);

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

const changesMembersOf = (entry: ChangeLogEntry, boardId: string) =>
  entry.invalidated.some(
    (i) => i.typename === 'Board' && i.id === boardId && i.fields.includes('members'),
  );

const done = (): IteratorReturnResult<undefined> => ({ done: true, value: undefined });

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

/** One subscriber's view of one board's feed. See `BoardChangeHub.subscribe`. */
export class BoardSubscription implements BoardChangeStream {
  readonly boardId: string;
  /**
   * Live entries the follower delivered, not yet taken by the client. Made when first
   * needed: a subscription that waits, caught up, holds no queue at all.
   */
  #queue: ChangeLogEntry[] | null = null;
  /** What the queue holds, in `queuedBytesOf` bytes. */
  #queuedBytes = 0;
  /** Entries of this board read from the change log, not yet taken by the client. */
  #replay: ChangeLogEntry[] | null = null;
  /** Every entry with a cursor up to here has been considered (delivered or not ours). */
  #position: number;
  #replaying: boolean;
  /** Whether it still holds a replay slot of the hub (and of its connection). */
  #replayCounted: boolean;
  #checkedHead = false;
  /** Highest cursor of a live entry dropped while replaying; the replay must pass it. */
  #droppedThrough = 0;
  #closed = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  /** Settles the promise a parked `next()` returned (see `next`). */
  #resume: ((next: Promise<IteratorResult<BoardChangeMessage, undefined>>) => void) | null = null;
  #direct: DirectDelivery | null = null;
  /** `next()` waits while pushes deliver directly. */
  #parked = false;
  /** The last direct delivery: what the iterator waits for before it goes on. */
  #lastDirect: Promise<unknown> | null = null;

  // What it needs of its options, not the options object (nor the caller's board id:
  // `boardId` is the hub's copy, shared by the board's subscriptions).
  readonly #authorize: BoardSubscriptionOptions['authorize'];
  readonly #viewerId: string | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #connection: LiveConnection | undefined;
  readonly #clientError: BoardSubscriptionOptions['clientError'];

  constructor(
    private readonly host: SubscriptionHost,
    options: BoardSubscriptionOptions,
    boardId = options.boardId,
  ) {
    this.boardId = boardId;
    this.#authorize = options.authorize;
    this.#viewerId = options.viewerId;
    this.#signal = options.signal;
    this.#connection = options.connection;
    this.#clientError = options.clientError;
    this.#position = options.after ?? 0;
    this.#replaying = options.after != null;
    this.#replayCounted = this.#replaying;
    if (options.signal?.aborted) {
      this.#closed = true;
      this.#releaseReplay();
    }
    // The subscription is its own listener (`handleEvent`): no closure per subscription.
    options.signal?.addEventListener('abort', this, { once: true });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get queued(): number {
    return this.#queue?.length ?? 0;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The abort signal fired: the client went away. */
  handleEvent(): void {
    void this.return();
  }

  deliverDirectly<R>(delivery: DirectDelivery<R>): void {
    this.#direct = delivery;
  }

  /**
   * Takes one live entry of this board from the hub (in cursor order); `change` is
   * the entry as the board's subscribers see it (`boardChangeOf`), shared by them.
   */
  push(entry: ChangeLogEntry, change: BoardChange = boardChangeOf(entry, this.boardId)): void {
    if (this.#closed) return;
    const { maxQueuedMessages, maxBufferedBytes } = this.host.limits;
    const buffered = this.#connection?.bufferedAmount ?? 0;
    if (buffered > maxBufferedBytes) {
      this.#slowConsumer(new SlowConsumerError('socket'));
      return;
    }
    if (
      (this.#queue?.length ?? 0) >= maxQueuedMessages ||
      // What waits here is bounded like what waits in the socket, and with it (over SSE
      // it is nearly all of it: the response takes a message only when it has drained).
      // A queue holds one entry whatever its size (a parked subscription holds none).
      (this.#queuedBytes > 0 &&
        buffered + this.#queuedBytes + queuedBytesOf(entry) > maxBufferedBytes)
    ) {
      // While replaying, the change log still holds what the queue cannot: read it again.
      if (this.#replaying) this.#droppedThrough = entry.cursor;
      else this.#slowConsumer(new SlowConsumerError('queue'));
      return;
    }
    if (this.#parked) {
      if (!change.membersChanged) {
        this.#deliverDirectly(change.message);
        return;
      }
      // Access is checked per subscriber: through the iterator, after what went before.
      this.#parked = false;
    }
    const queue = (this.#queue ??= []);
    queue.push(entry);
    this.#queuedBytes += queuedBytesOf(entry);
    this.host.queued(queue.length);
    this.#wakeUp();
  }

  /** Whatever waits for the next entry (or the end) goes on. */
  #wakeUp(): void {
    const resume = this.#resume;
    if (resume) {
      this.#resume = null;
      resume(this.#unpark().then(() => this.#next()));
    } else {
      this.#wake?.();
    }
  }

  #deliverDirectly(message: BoardChangeMessage): void {
    if (message.cursor <= this.#position) return;
    this.#position = message.cursor;
    const direct = this.#direct!;
    const result = direct.resultFor(message);
    this.#lastDirect = result;
    const host = this.host;
    host.delivering(1);
    result.then(
      (value) => {
        host.delivering(-1);
        // Checked again when written: a change pushed to every subscription of a socket
        // at once passes the check above for each, before any of them is written.
        if (!this.#closed && !direct.send(value))
          this.#slowConsumer(new SlowConsumerError('socket'));
      },
      (error: unknown) => {
        host.delivering(-1);
        this.#fail(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  next(): Promise<IteratorResult<BoardChangeMessage, undefined>> {
    if (
      this.#direct &&
      !this.#closed &&
      !this.#replaying &&
      !this.#replay?.length &&
      !this.#queue?.length
    ) {
      // Caught up: park without an async frame or a promise chain (thousands of
      // subscriptions wait here): one promise, settled by `#wakeUp` with what follows.
      this.#parked = true;
      return new Promise((resolve) => (this.#resume = resolve));
    }
    return this.#next();
  }

  /** After a wake-up: whatever was delivered directly is written before what comes next. */
  async #unpark(): Promise<void> {
    this.#wake = null;
    this.#parked = false;
    const lastDirect = this.#lastDirect;
    this.#lastDirect = null;
    if (lastDirect) await lastDirect.catch(() => undefined);
  }

  async #next(): Promise<IteratorResult<BoardChangeMessage, undefined>> {
    try {
      for (;;) {
        if (this.#closed) return this.#end();
        const replayed = this.#replay?.shift();
        if (replayed) return await this.#deliver(replayed);
        if (this.#replaying) {
          const resync = await this.#readBacklog();
          if (resync && !this.#closed) return { done: false, value: resync };
          continue;
        }
        const entry = this.#queue?.shift();
        if (entry) this.#queuedBytes -= queuedBytesOf(entry);
        if (!entry) {
          // Caught up: pushes deliver directly until a change needs the iterator again.
          if (this.#direct) this.#parked = true;
          await new Promise<void>((resolve) => (this.#wake = resolve));
          await this.#unpark();
          continue;
        }
        if (entry.cursor <= this.#position) continue;
        this.#position = entry.cursor;
        return await this.#deliver(entry);
      }
    } catch (error) {
      this.#close();
      throw this.#clientError ? this.#clientError(error, this.boardId) : error;
    }
  }

  async return(): Promise<IteratorReturnResult<undefined>> {
    this.#close();
    return done();
  }

  async throw(error?: unknown): Promise<IteratorReturnResult<undefined>> {
    this.#close();
    throw error;
  }

  /** One page of the backlog; a resync message when the cursor cannot be replayed from. */
  async #readBacklog(): Promise<BoardChangeMessage | null> {
    const { changeLog, limits } = this.host;
    const signal = this.#signal;
    if (!this.#checkedHead) {
      this.#checkedHead = true;
      // A cursor from the future (another deployment, a wiped store) cannot be trusted.
      const head = await changeLog.head();
      if (this.#position > head) return this.#resync(head);
    }
    // This board's entries only, through the change log's index: a replay costs what
    // the board changed since the cursor, however much the rest of the log holds.
    const after = this.#position;
    const page = await changeLog.read(after, {
      limit: limits.replayPageSize,
      scope: this.boardId,
      ...(signal ? { signal } : {}),
    });
    if (page.kind === 'expired') return this.#resync(page.head);
    const replayed = this.#replay?.length ?? 0;
    if (page.entries.length === 0 && this.#droppedThrough > this.#position) {
      // The follower only delivers recorded entries, so the log must hold what was dropped.
      throw new Error(
        `change log behind its follower: dropped ${this.#droppedThrough}, read to ${this.#position}`,
      );
    }
    for (const entry of page.entries) {
      this.#position = entry.cursor;
      (this.#replay ??= []).push(entry);
    }
    tracedReplayPage(this, after, (this.#replay?.length ?? 0) - replayed);
    // A short page reached the head as of this read; queued live entries carry on
    // from there, unless some were dropped past it.
    if (page.entries.length < limits.replayPageSize && this.#droppedThrough <= this.#position) {
      this.#replaying = false;
      endTracedReplay(this);
      this.#releaseReplay();
    }
    return null;
  }

  #resync(head: number): BoardChangeMessage {
    tracedResync(this, this.#position, head);
    this.#position = head;
    this.#replay = null;
    // Keep replaying from the head: live entries dropped meanwhile may lie beyond it.
    return {
      cursor: head,
      boardId: this.boardId,
      operation: RESYNC_OPERATION,
      actor: null,
      at: this.host.now(),
      invalidated: [],
      changed: NOTHING_CARRIED,
      resyncRequired: true,
    };
  }

  async #deliver(entry: ChangeLogEntry): Promise<IteratorResult<BoardChangeMessage, undefined>> {
    if (changesMembersOf(entry, this.boardId)) {
      let allowed: boolean;
      try {
        allowed = await this.#authorize(this.boardId, this.#viewerId, this.#signal);
      } catch (error) {
        this.#close();
        throw error;
      }
      if (this.#closed) return this.#end();
      if (!allowed) {
        this.host.revoked(this.boardId);
        this.#fail(new AccessRevokedError(this.boardId));
        return this.#end();
      }
    }
    return { done: false, value: boardChangeOf(entry, this.boardId).message };
  }

  #slowConsumer(error: SlowConsumerError): void {
    this.host.slowConsumer(this.boardId, error);
    this.#fail(error);
    this.#connection?.disconnect(LiveCloseCode.SlowConsumer, 'slow consumer');
  }

  /** The failure once (so the client learns why), then the end. */
  #end(): IteratorReturnResult<undefined> {
    const failure = this.#failure;
    this.#failure = null;
    if (failure) throw failure;
    return done();
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#failure = error;
    this.#close();
  }

  #releaseReplay(): void {
    if (!this.#replayCounted) return;
    this.#replayCounted = false;
    this.host.replayEnded(this.#connection);
  }

  #close(): void {
    this.#releaseReplay();
    if (!this.#closed) {
      this.#closed = true;
      this.#queue = null;
      this.#queuedBytes = 0;
      this.#replay = null;
      this.#signal?.removeEventListener('abort', this);
      endTracedReplay(this);
    }
    this.host.ended(this);
    this.#wakeUp();
  }
}
