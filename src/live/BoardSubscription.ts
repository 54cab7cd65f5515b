import type { ChangeLogEntry } from '../projector/types.js';
import {
  boardChangeOf,
  changesMembersOf,
  NOTHING_CARRIED,
  queuedBytesOf,
  RESYNC_OPERATION,
  type BoardChange,
  type BoardChangeMessage,
  type BoardChangeStream,
  type BoardSubscriptionOptions,
  type DirectDelivery,
  type LiveConnection,
  type SubscriptionHost,
} from './boardChanges.js';
import { AccessEndReason } from '../sdk/liveErrorCodes.js';
import { AccessRevokedError, SlowConsumerError } from './errors.js';
import { LiveCloseCode } from './limits.js';
import { endTracedReplay, tracedReplayPage, tracedResync } from './liveTraces.js';

const done = (): IteratorReturnResult<undefined> => ({ done: true, value: undefined });

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
        // The members change that cut the subscriber off was their own: they left.
        const reason =
          entry.actor !== null && entry.actor === this.#viewerId
            ? AccessEndReason.Left
            : AccessEndReason.Removed;
        this.#fail(new AccessRevokedError(this.boardId, reason));
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
