import type { Logger } from '../logger.js';
import type { ChangeLog, ChangeLogEntry } from '../projector/types.js';
import {
  boardChangeOf,
  type BoardChange,
  type BoardChangeStream,
  type BoardSubscriptionOptions,
  type LiveConnection,
  type SubscriptionHost,
} from './boardChanges.js';
import { BoardSubscription } from './BoardSubscription.js';
import { ReplayLimitError } from './errors.js';
import { DEFAULT_LIVE_LIMITS, type LiveLimits } from './limits.js';
import { SubscriptionGroups } from './SubscriptionGroups.js';
import { PushTraces, type PushTrace } from './liveTraces.js';

export {
  RESYNC_OPERATION,
  type BoardChangeMessage,
  type BoardChangeStream,
  type DirectDelivery,
  type BoardSubscriptionOptions,
  type LiveConnection,
} from './boardChanges.js';

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
  limits?: Pick<
    LiveLimits,
    | 'maxQueuedMessages'
    | 'maxBufferedBytes'
    | 'replayPageSize'
    | 'maxConcurrentReplays'
    | 'maxReplaysPerConnection'
  >;
  /** Clock for resync messages. @default () => new Date() */
  now?: () => Date;
}

/** What the hub holds now, and what it did so far; for operators, metrics and tests. */
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
  /** Changes handed to at least one subscriber. */
  fanOuts: number;
  /**
   * Time from a change reaching the hub until the last of its subscribers had it
   * queued, summed over `fanOuts` (seconds), and for the latest change (ms).
   */
  fanOutSeconds: number;
  lastFanOutMs: number;
  /** Groups of subscriptions that share one execution per change (see `SubscriptionGroups`). */
  groups: number;
  /** Executions of a subscription's selection, one per group per change. */
  executions: number;
}

/**
 * A string of its own: not a slice of a longer one (which a slice keeps alive whole),
 * not a concatenation (which keeps its parts).
 */
const ownCopy = (text: string): string => JSON.parse(JSON.stringify(text)) as string;

/** Subscribers handed a change per turn of the event loop. @default 64 */
export const FAN_OUT_SLICE = 64;

/**
 * Fans the change log out to board subscriptions, in memory. One per app: it
 * listens to the process's one `ChangeLogFollower` (never a change log tail per
 * subscriber) and hands each entry to the subscriptions of every board the entry's
 * `scopes` name. Every instance of the app runs its own hub on its own follower, and
 * all followers tail the one shared change log, so every instance delivers every
 * change to its own clients.
 *
 * It also holds the `groups` through which identical subscriptions of a board share
 * one execution and one serialisation per change.
 */
export class BoardChangeHub {
  readonly #boards = new Map<string, Set<BoardSubscription>>();
  /** Entries being handed out, oldest first; see `#fanOut`. */
  readonly #pending: {
    entry: ChangeLogEntry;
    /** The entry as each board's subscribers see it: one per board it names. */
    changes: BoardChange[];
    targets: BoardSubscription[];
    next: number;
    since: number;
    /** The change's push span, when traced. */
    trace: PushTrace | undefined;
  }[] = [];
  readonly #counters = {
    peakQueued: 0,
    slowConsumers: 0,
    revoked: 0,
    fanOuts: 0,
    fanOutSeconds: 0,
    lastFanOutMs: 0,
  };
  /** What every subscription of this hub may reach of it. */
  readonly #host: SubscriptionHost;
  #unsubscribe: (() => void) | undefined;
  /** Subscriptions of a board that may share one execution per change. */
  readonly groups = new SubscriptionGroups();
  /** Direct deliveries whose result is not written yet. */
  #delivering = 0;
  readonly #traces = new PushTraces(this.groups);
  /** Subscriptions replaying now, on the server and per connection. */
  #replays = 0;
  readonly #replaysOf = new WeakMap<LiveConnection, number>();

  constructor(private readonly options: BoardChangeHubOptions) {
    const counters = this.#counters;
    const boards = this.#boards;
    const now = options.now ?? (() => new Date());
    this.#host = {
      changeLog: options.changeLog,
      limits: options.limits ?? DEFAULT_LIVE_LIMITS,
      now,
      ended(subscription) {
        const subscriptions = boards.get(subscription.boardId);
        if (!subscriptions?.delete(subscription)) return;
        if (subscriptions.size === 0) boards.delete(subscription.boardId);
      },
      queued(length) {
        if (length > counters.peakQueued) counters.peakQueued = length;
      },
      slowConsumer(boardId, error) {
        counters.slowConsumers++;
        options.logger.warn({ boardId, bound: error.bound }, 'slow consumer disconnected');
      },
      revoked() {
        counters.revoked++;
      },
      delivering: (change) => {
        this.#delivering += change;
      },
      replayEnded: (connection) => {
        this.#replays -= 1;
        if (!connection) return;
        const left = (this.#replaysOf.get(connection) ?? 1) - 1;
        if (left > 0) this.#replaysOf.set(connection, left);
        else this.#replaysOf.delete(connection);
      },
    };
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
  subscribe(options: BoardSubscriptionOptions): BoardChangeStream {
    if (options.after != null) this.#reserveReplay(options.connection);
    let subscriptions = this.#boards.get(options.boardId);
    // The board's subscriptions share one copy of its id (the caller's is often a slice
    // of a decoded global id, which would keep the whole decoded string alive).
    const boardId = subscriptions?.values().next().value?.boardId ?? ownCopy(options.boardId);
    const subscription = new BoardSubscription(this.#host, options, boardId);
    if (!subscription.closed) {
      if (!subscriptions) this.#boards.set(boardId, (subscriptions = new Set()));
      subscriptions.add(subscription);
    }
    return subscription;
  }

  /**
   * Resolves true once every entry the follower delivered so far has been handed to its
   * subscribers, written to the websockets that deliver directly, and taken from every
   * queue; false at `timeoutMs` if it has not. A shutdown waits for it, so subscribers
   * get the changes of every commit acknowledged before their connections close.
   */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    // Queues empty at their clients' pace: wait for them while they keep shrinking (a
    // client that stopped reading would hold the shutdown to its deadline for nothing).
    let queued = this.stats().queued;
    let progressAt = Date.now();
    while (this.#pending.length > 0 || this.#delivering > 0 || queued > 0) {
      if (Date.now() >= deadline) return false;
      if (this.#pending.length === 0 && this.#delivering === 0 && Date.now() - progressAt > 250) {
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
      const now = this.stats().queued;
      if (now < queued) progressAt = Date.now();
      queued = now;
    }
    return true;
  }

  /**
   * Takes a replay slot of the server and of `connection`, or throws `ReplayLimitError`:
   * replays read the change log at the client's pace, so their number is bounded.
   */
  #reserveReplay(connection: LiveConnection | undefined): void {
    const { maxConcurrentReplays, maxReplaysPerConnection } =
      this.options.limits ?? DEFAULT_LIVE_LIMITS;
    if (this.#replays >= maxConcurrentReplays) {
      throw new ReplayLimitError('server', maxConcurrentReplays);
    }
    const ofConnection = connection ? (this.#replaysOf.get(connection) ?? 0) : 0;
    if (ofConnection >= maxReplaysPerConnection) {
      throw new ReplayLimitError('connection', maxReplaysPerConnection);
    }
    this.#replays += 1;
    if (connection) this.#replaysOf.set(connection, ofConnection + 1);
  }

  stats(): BoardChangeHubStats {
    let subscribers = 0;
    let queued = 0;
    for (const subscriptions of this.#boards.values()) {
      subscribers += subscriptions.size;
      for (const s of subscriptions) queued += s.queued;
    }
    const { groups, executions } = this.groups.stats();
    return {
      boards: this.#boards.size,
      subscribers,
      queued,
      ...this.#counters,
      groups,
      executions,
    };
  }

  #dispatch(entry: ChangeLogEntry): void {
    const targets: BoardSubscription[] = [];
    const changes: BoardChange[] = [];
    for (const scope of entry.scopes) {
      const subscriptions = this.#boards.get(scope);
      if (!subscriptions) continue;
      changes.push(boardChangeOf(entry, scope));
      for (const subscription of subscriptions) targets.push(subscription);
    }
    if (targets.length === 0) return;
    const trace = this.#traces.begin(entry, targets.length, changes.length);
    this.#pending.push({ entry, changes, targets, next: 0, since: performance.now(), trace });
    if (this.#pending.length === 1) this.#fanOut();
  }

  /**
   * Hands pending entries to their subscribers, FAN_OUT_SLICE at a time, yielding to the
   * event loop between slices. Each push wakes a subscriber whose delivery (a shared
   * execution, a socket write) runs as microtasks; handing one change to thousands at
   * once would run all of that before any I/O, stalling every HTTP response (the
   * writer's included) behind the fan-out. Entries are finished in order, so each
   * subscriber still gets every change in cursor order.
   */
  #fanOut(): void {
    const job = this.#pending[0];
    if (!job) return;
    const end = Math.min(job.next + FAN_OUT_SLICE, job.targets.length);
    const handOut = () => {
      for (let i = job.next; i < end; i++) {
        const target = job.targets[i]!;
        // Nearly always one board per entry: the first change is the one.
        let change = job.changes[0]!;
        if (change.message.boardId !== target.boardId) {
          change = job.changes.find((c) => c.message.boardId === target.boardId) ?? change;
        }
        target.push(job.entry, change);
      }
    };
    if (job.trace) {
      const dropped = this.#counters.slowConsumers;
      job.trace.run(handOut);
      job.trace.dropped += this.#counters.slowConsumers - dropped;
    } else {
      handOut();
    }
    job.next = end;
    if (end === job.targets.length) {
      this.#pending.shift();
      job.trace?.finish(job.targets.length);
      const ms = performance.now() - job.since;
      this.#counters.fanOuts++;
      this.#counters.fanOutSeconds += ms / 1_000;
      this.#counters.lastFanOutMs = ms;
    }
    if (this.#pending.length > 0) setImmediate(() => this.#fanOut());
  }
}
