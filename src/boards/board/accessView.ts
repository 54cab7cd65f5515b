import { LRUCache } from 'lru-cache';
import { StreamStateCache } from '../../eventstore/StreamStateCache.js';
import type { AppendRequest, AppendResult, EventStore } from '../../eventstore/types.js';
import type { ChangeLogEntry } from '../../projector/types.js';
import { LoadSession } from '../commandHandling/loadSession.js';
import type { AccessRevokedReason } from '../../live/errors.js';
import { AccessEndReason } from '../../sdk/liveErrorCodes.js';
import { parseStreamName, StreamKind, toStreamName } from '../streams.js';
import { boardOfMembership, membershipId, roleOf, type BoardRole } from './access.js';

/** A value at once, or a promise of it when it had to be read first. */
type MaybePromise<T> = T | Promise<T>;

/** One board's cached roles, by user id: a role, null (no access), or a read in flight. */
type RolesOfBoard = Map<string, BoardRole | null | Promise<BoardRole | null>>;

export interface BoardAccessViewOptions {
  /**
   * Most (board, user) answers kept, all boards together; the least recently used
   * boards are dropped beyond it (their next read goes to the event store). @default 100_000
   */
  maxEntries?: number;
}

/**
 * Who may read a board, decided on the event store (the members' membership streams; for
 * a member of a board made before membership streams, the board stream), cached per
 * (board, user) in this process. This is what every read (HTTP queries, SSE and websocket
 * subscribes, the check a subscription makes when a change touches the board's members)
 * decides access on; the read model's member lists are for display only.
 *
 * How fresh it is:
 * - A change of members committed by this process (every `append` made through
 *   {@link observe}) drops that board's cached answers once the append returns,
 *   whatever it returned, and before the command's caller is answered. A read that starts
 *   after that reads the membership from the event store. Reads already in flight may
 *   still answer from before it, and never store what they read.
 * - A change of members committed by another process drops them when this process's
 *   change log follower delivers its entry (see {@link watch}): within the projection lag.
 *
 * So on one instance, a read that starts after a removal's response returned is refused;
 * on another instance, once that instance has seen the removal in the change log.
 */
export class BoardAccessView {
  readonly #store: EventStore;
  /** Board states for members of boards made before membership streams (and strangers). */
  readonly #streams: StreamStateCache;
  readonly #boards: LRUCache<string, RolesOfBoard>;
  #storeReads = 0;

  constructor(store: EventStore, options: BoardAccessViewOptions = {}) {
    this.#store = store;
    this.#streams = new StreamStateCache(store, { maxEvents: 200_000 });
    this.#boards = new LRUCache<string, RolesOfBoard>({
      maxSize: options.maxEntries ?? 100_000,
      sizeCalculation: (roles) => Math.max(1, roles.size),
    });
  }

  /** Reads of the event store made so far (cache misses), for tests and operators. */
  get storeReads(): number {
    return this.#storeReads;
  }

  /**
   * `userId`'s role on `boardId`, null for a non-member (or a board that does not exist):
   * at once when cached, else read from the event store.
   */
  roleOf(boardId: string, userId: string, signal?: AbortSignal): MaybePromise<BoardRole | null> {
    let roles = this.#boards.get(boardId);
    const cached = roles?.get(userId);
    if (cached !== undefined) return cached;
    if (!roles) {
      roles = new Map();
      this.#boards.set(boardId, roles);
    }
    const read = this.#read(boardId, userId, signal);
    roles.set(userId, read);
    const asked = roles;
    read.then(
      (role) => {
        // Stored only while nothing dropped the board since the read started (a change of
        // its members replaces the map): what it read may predate that change.
        if (this.#boards.peek(boardId) === asked && asked.get(userId) === read) {
          asked.set(userId, role);
          // Re-set so the size is counted again.
          this.#boards.set(boardId, asked);
        }
      },
      () => {
        if (asked.get(userId) === read) asked.delete(userId);
      },
    );
    return read;
  }

  /**
   * How `userId`'s access to `boardId` ended, for a caller the board was refused to: `LEFT`
   * when the last event of their membership stream ends it and they committed it
   * themselves, `REMOVED` when someone else did; null when it does not end there (they
   * never were a member). One backward read of one event, not cached: refusals are rare.
   */
  async endedHow(
    boardId: string,
    userId: string,
    signal?: AbortSignal,
  ): Promise<AccessRevokedReason | null> {
    const stream = toStreamName(StreamKind.Membership, membershipId(boardId, userId));
    const [last] = await this.#store.readStreamBackward(stream, {
      limit: 1,
      ...(signal && { signal }),
    });
    if (last?.type !== 'MembershipEnded') return null;
    return last.actor === userId ? AccessEndReason.Left : AccessEndReason.Removed;
  }

  /** Drops every answer cached for `boardId`: a change of its members committed. */
  forgetBoard(boardId: string): void {
    this.#boards.delete(boardId);
  }

  /**
   * Drops the cached answers of every board whose members `entry` changes (its
   * invalidations name the board's `members`): for changes other processes committed.
   */
  changed(entry: ChangeLogEntry): void {
    for (const { typename, id, fields } of entry.invalidated) {
      if (typename === 'Board' && fields.includes('members')) this.forgetBoard(id);
    }
  }

  /** Listens to `follower` (see {@link changed}); returns the unsubscribe. */
  watch(follower: { onEntry(listener: (entry: ChangeLogEntry) => void): () => void }): () => void {
    return follower.onEntry((entry) => this.changed(entry));
  }

  /**
   * `store`, whose appends drop the cached answers of every board whose membership
   * streams they write, once the append has returned or failed
   * (a failed append may have committed), before its caller goes on.
   */
  observe(store: EventStore): EventStore {
    const append = async (
      request: AppendRequest,
      options?: { signal?: AbortSignal },
    ): Promise<AppendResult> => {
      try {
        return await store.append(request, options);
      } finally {
        this.#appended(request);
      }
    };
    return new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'append') return append;
        const value: unknown = Reflect.get(target, property, receiver);
        // Bound to the store itself: its methods may use its private fields.
        return typeof value === 'function'
          ? ((value as (...args: unknown[]) => unknown).bind(target) as unknown)
          : value;
      },
    });
  }

  #appended(request: AppendRequest): void {
    for (const { stream, events } of request.streams) {
      if (events.length === 0) continue;
      // Every change of a member's access writes their membership stream (also for
      // members of boards older than membership streams): only those matter here.
      const parsed = parseStreamName(stream);
      if (parsed?.kind === StreamKind.Membership) this.forgetBoard(boardOfMembership(parsed.id));
    }
  }

  async #read(boardId: string, userId: string, signal?: AbortSignal): Promise<BoardRole | null> {
    this.#storeReads += 1;
    const session = new LoadSession(this.#store, signal, { cache: this.#streams });
    const membership = await session.load('membership', membershipId(boardId, userId));
    if (membership.state.status === 'ended') return null;
    if (membership.state.status === 'member') {
      // A membership stream is only written with its board's member event or archive: the
      // board exists. Whether it is archived does not matter for reading.
      return membership.state.role;
    }
    const board = await session.load('board', boardId);
    return roleOf({ board: board.state, membership: membership.state }, userId);
  }
}
