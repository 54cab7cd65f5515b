import type { Logger } from '../logger.js';
import type { ChangeLog, ChangeLogEntry, Invalidation } from '../projector/types.js';
import { AccessRevokedError, SlowConsumerError } from './errors.js';
import { DEFAULT_LIVE_LIMITS, LiveCloseCode, type LiveLimits } from './limits.js';

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
}

/** Where the hub gets live entries from: the process's `ChangeLogFollower`. */
export interface ChangeLogEntrySource {
  onEntry(listener: (entry: ChangeLogEntry) => void): () => void;
}

export interface BoardChangeHubOptions {
  /** Read for replays (`after`) and resyncs. */
  changeLog: Pick<ChangeLog, 'read' | 'head'>;
  /** Live entries, in cursor order, each once. */
  follower: ChangeLogEntrySource;
  logger: Logger;
  /** @default DEFAULT_LIVE_LIMITS */
  limits?: Pick<LiveLimits, 'maxQueuedMessages' | 'maxBufferedBytes' | 'replayPageSize'>;
  /** Clock for resync messages. @default () => new Date() */
  now?: () => Date;
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
   * Whether the subscriber may still see the board. Asked again before delivering
   * any change to the board's members; false ends the subscription with
   * `AccessRevokedError` before that change is delivered.
   */
  authorize: () => Promise<boolean>;
  /** Aborting it ends the subscription (the client went away). */
  signal?: AbortSignal;
  /** The websocket the messages leave through, watched for slow consumption. */
  connection?: LiveConnection | undefined;
}

/** What the hub holds now, and what it did so far; for operators and tests. */
export interface BoardChangeHubStats {
  /** Boards with at least one subscriber. */
  boards: number;
  subscribers: number;
  /** Live entries held for subscribers, all queues together. */
  queued: number;
  /** The longest any one queue has been since the hub started. */
  peakQueued: number;
  /** Subscriptions ended as slow consumers. */
  slowConsumers: number;
  /** Subscriptions ended because a members change revoked access. */
  revoked: number;
}

const changesMembersOf = (entry: ChangeLogEntry, boardId: string) =>
  entry.invalidated.some(
    (i) => i.typename === 'Board' && i.id === boardId && i.fields.includes('members'),
  );

/** Subscribers handed a change per turn of the event loop. @default 64 */
export const FAN_OUT_SLICE = 64;

/**
 * Fans the change log out to board subscriptions, in memory. One per app: it
 * listens to the process's one `ChangeLogFollower` (never a change log tail per
 * subscriber) and hands each entry to the subscriptions of every board the entry's
 * `scopes` name. Every instance of the app runs its own hub on its own follower, and
 * all followers tail the one shared change log, so every instance delivers every
 * change to its own clients.
 */
export class BoardChangeHub {
  readonly #boards = new Map<string, Set<BoardSubscription>>();
  /** Entries being handed out, oldest first; see `#fanOut`. */
  readonly #pending: { entry: ChangeLogEntry; targets: BoardSubscription[]; next: number }[] = [];
  readonly #limits: NonNullable<BoardChangeHubOptions['limits']>;
  readonly #now: () => Date;
  #unsubscribe: (() => void) | undefined;
  /** Counters behind `stats()`; subscriptions update them. */
  readonly counters = { peakQueued: 0, slowConsumers: 0, revoked: 0 };

  constructor(private readonly options: BoardChangeHubOptions) {
    this.#limits = options.limits ?? DEFAULT_LIVE_LIMITS;
    this.#now = options.now ?? (() => new Date());
  }

  /** Starts taking entries from the follower. Idempotent. */
  start(): void {
    this.#unsubscribe ??= this.options.follower.onEntry((entry) => this.#dispatch(entry));
  }

  /** Stops taking entries and completes every subscription (its client sees it end). */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const subscriptions of [...this.#boards.values()]) {
      for (const subscription of [...subscriptions]) void subscription.return();
    }
  }

  /**
   * A subscription to one board's changes, registered at once: every entry the
   * follower delivers from now on is queued for it (bounded, see `LiveLimits`).
   *
   * With `after`, iterating it first replays every entry after that cursor from the
   * change log, page by page as the client takes them, then goes on with the queued
   * live entries, skipping those the replay already covered: no gap (the listener
   * was registered before the first read) and no duplicate (cursors only grow). An
   * `after` older than the change log's retention, or newer than its head, yields one
   * `resyncRequired` message carrying the head as its cursor, then goes on from there.
   *
   * The iterator's `return()` (or `signal`) ends it at once, even while a `next()`
   * waits. It ends with `SlowConsumerError` when its queue or its websocket's buffer
   * passes its bound (the websocket is then closed with `LiveCloseCode.SlowConsumer`),
   * and with `AccessRevokedError` when a members change leaves it without access.
   */
  subscribe(options: BoardSubscriptionOptions): AsyncIterableIterator<BoardChangeMessage> {
    const subscription = new BoardSubscription(this, options);
    if (!subscription.closed) {
      let subscriptions = this.#boards.get(options.boardId);
      if (!subscriptions) this.#boards.set(options.boardId, (subscriptions = new Set()));
      subscriptions.add(subscription);
    }
    return subscription;
  }

  stats(): BoardChangeHubStats {
    let subscribers = 0;
    let queued = 0;
    for (const subscriptions of this.#boards.values()) {
      subscribers += subscriptions.size;
      for (const s of subscriptions) queued += s.queued;
    }
    return { boards: this.#boards.size, subscribers, queued, ...this.counters };
  }

  /** @internal */
  get changeLog() {
    return this.options.changeLog;
  }

  /** @internal */
  get limits() {
    return this.#limits;
  }

  /** @internal */
  now(): Date {
    return this.#now();
  }

  /** @internal Forgets a subscription that ended. */
  remove(subscription: BoardSubscription): void {
    const subscriptions = this.#boards.get(subscription.boardId);
    if (!subscriptions?.delete(subscription)) return;
    if (subscriptions.size === 0) this.#boards.delete(subscription.boardId);
  }

  /** @internal */
  logSlowConsumer(boardId: string, error: SlowConsumerError): void {
    this.options.logger.warn({ boardId, bound: error.bound }, 'slow consumer disconnected');
  }

  #dispatch(entry: ChangeLogEntry): void {
    const targets = entry.scopes.flatMap((scope) => [...(this.#boards.get(scope) ?? [])]);
    if (targets.length === 0) return;
    this.#pending.push({ entry, targets, next: 0 });
    if (this.#pending.length === 1) this.#fanOut();
  }

  /**
   * Hands pending entries to their subscribers, FAN_OUT_SLICE at a time, yielding to the
   * event loop between slices. Each push wakes a subscriber whose delivery (execution,
   * socket write) runs as microtasks; handing one change to thousands at once would run
   * all of that before any I/O, stalling every HTTP response (the writer's included)
   * behind the fan-out. Entries are finished in order, so each subscriber still gets
   * every change in cursor order.
   */
  #fanOut(): void {
    const job = this.#pending[0];
    if (!job) return;
    const end = Math.min(job.next + FAN_OUT_SLICE, job.targets.length);
    for (let i = job.next; i < end; i++) job.targets[i]!.push(job.entry);
    job.next = end;
    if (end === job.targets.length) this.#pending.shift();
    if (this.#pending.length > 0) setImmediate(() => this.#fanOut());
  }
}

const done = (): IteratorReturnResult<undefined> => ({ done: true, value: undefined });

/** One subscriber's view of one board's feed. See `BoardChangeHub.subscribe`. */
class BoardSubscription implements AsyncIterableIterator<BoardChangeMessage> {
  readonly boardId: string;
  /** Live entries the follower delivered, not yet taken by the client. */
  #queue: ChangeLogEntry[] = [];
  /** Entries of this board read from the change log, not yet taken by the client. */
  #replay: ChangeLogEntry[] = [];
  /** Every entry with a cursor up to here has been considered (delivered or not ours). */
  #position: number;
  #replaying: boolean;
  #checkedHead = false;
  /** Highest cursor of a live entry dropped while replaying; the replay must pass it. */
  #droppedThrough = 0;
  #closed = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  readonly #onAbort = () => void this.return();

  constructor(
    private readonly hub: BoardChangeHub,
    private readonly options: BoardSubscriptionOptions,
  ) {
    this.boardId = options.boardId;
    this.#position = options.after ?? 0;
    this.#replaying = options.after != null;
    if (options.signal?.aborted) this.#closed = true;
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get queued(): number {
    return this.#queue.length;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Takes one live entry of this board from the hub (in cursor order). */
  push(entry: ChangeLogEntry): void {
    if (this.#closed) return;
    const { maxQueuedMessages, maxBufferedBytes } = this.hub.limits;
    if ((this.options.connection?.bufferedAmount ?? 0) > maxBufferedBytes) {
      this.#slowConsumer(new SlowConsumerError('socket'));
      return;
    }
    if (this.#queue.length >= maxQueuedMessages) {
      // While replaying, the change log still holds what the queue cannot: read it again.
      if (this.#replaying) this.#droppedThrough = entry.cursor;
      else this.#slowConsumer(new SlowConsumerError('queue'));
      return;
    }
    this.#queue.push(entry);
    this.hub.counters.peakQueued = Math.max(this.hub.counters.peakQueued, this.#queue.length);
    this.#wake?.();
  }

  async next(): Promise<IteratorResult<BoardChangeMessage, undefined>> {
    for (;;) {
      if (this.#closed) return this.#end();
      const replayed = this.#replay.shift();
      if (replayed) return this.#deliver(replayed);
      if (this.#replaying) {
        const resync = await this.#readBacklog();
        if (resync && !this.#closed) return { done: false, value: resync };
        continue;
      }
      const entry = this.#queue.shift();
      if (!entry) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = null;
        continue;
      }
      if (entry.cursor <= this.#position) continue;
      this.#position = entry.cursor;
      return this.#deliver(entry);
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
    const { changeLog, limits } = this.hub;
    const signal = this.options.signal;
    if (!this.#checkedHead) {
      this.#checkedHead = true;
      // A cursor from the future (another deployment, a wiped store) cannot be trusted.
      const head = await changeLog.head();
      if (this.#position > head) return this.#resync(head);
    }
    const page = await changeLog.read(this.#position, {
      limit: limits.replayPageSize,
      ...(signal ? { signal } : {}),
    });
    if (page.kind === 'expired') return this.#resync(page.head);
    if (page.entries.length === 0 && this.#droppedThrough > this.#position) {
      // The follower only delivers recorded entries, so the log must hold what was dropped.
      throw new Error(
        `change log behind its follower: dropped ${this.#droppedThrough}, read to ${this.#position}`,
      );
    }
    for (const entry of page.entries) {
      this.#position = entry.cursor;
      if (entry.scopes.includes(this.boardId)) this.#replay.push(entry);
    }
    // A short page reached the head as of this read; queued live entries carry on
    // from there, unless some were dropped past it.
    if (page.entries.length < limits.replayPageSize && this.#droppedThrough <= this.#position) {
      this.#replaying = false;
    }
    return null;
  }

  #resync(head: number): BoardChangeMessage {
    this.#position = head;
    this.#replay = [];
    // Keep replaying from the head: live entries dropped meanwhile may lie beyond it.
    return {
      cursor: head,
      boardId: this.boardId,
      operation: RESYNC_OPERATION,
      actor: null,
      at: this.hub.now(),
      invalidated: [],
      resyncRequired: true,
    };
  }

  async #deliver(entry: ChangeLogEntry): Promise<IteratorResult<BoardChangeMessage, undefined>> {
    if (changesMembersOf(entry, this.boardId)) {
      let allowed: boolean;
      try {
        allowed = await this.options.authorize();
      } catch (error) {
        this.#close();
        throw error;
      }
      if (this.#closed) return this.#end();
      if (!allowed) {
        this.hub.counters.revoked++;
        this.#fail(new AccessRevokedError(this.boardId));
        return this.#end();
      }
    }
    return {
      done: false,
      value: {
        cursor: entry.cursor,
        boardId: this.boardId,
        operation: entry.operation ?? 'unknown',
        actor: entry.actor,
        at: entry.at,
        invalidated: entry.invalidated,
        resyncRequired: false,
      },
    };
  }

  #slowConsumer(error: SlowConsumerError): void {
    this.hub.counters.slowConsumers++;
    this.hub.logSlowConsumer(this.boardId, error);
    this.#fail(error);
    this.options.connection?.disconnect(LiveCloseCode.SlowConsumer, 'slow consumer');
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

  #close(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#queue = [];
      this.#replay = [];
      this.options.signal?.removeEventListener('abort', this.#onAbort);
    }
    this.hub.remove(this);
    this.#wake?.();
  }
}
