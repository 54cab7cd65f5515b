/**
 * Catching up with the store: far behind it, commits read a page at a time and applied as
 * batches; then the feed, batched while the store already holds what follows.
 */
import type { EventStore, FeedItem, FeedPosition } from '../eventstore/types.js';

/** Feed items applied as one batch at most, when the projector is far behind the store. */
export const CATCH_UP_BATCH = 500;

/**
 * Far behind the store's head (after downtime, a burst), commits are applied in batches
 * (see `LiveApply.applyBatch`) of at most `batchSize` items: read from the store a page at
 * a time (`pages`), as a rebuild reads them, while at least a batch behind; then, following
 * the feed, a feed item and the ones already in the store after it (`batchFrom`). The head
 * is looked up at most once a second while caught up, so a quiet projector does not pay a
 * store call per commit.
 */
export class CatchUp {
  readonly #store: EventStore;
  readonly #batchSize: number;
  /** The store's head as last seen, and when. */
  #head = 0;
  #headSeenAt = -Infinity;
  #batching = false;

  constructor(store: EventStore, batchSize = CATCH_UP_BATCH) {
    this.#store = store;
    this.#batchSize = batchSize;
  }

  /**
   * While the store's head is at least a batch past `position()`, the next commits after
   * it as feed items, a page per batch: `readAll` pages (settled commits only, at the
   * store's read guarantees) with the positions they skip as gaps, which is what `readAll`
   * promises they are. Ends at the first page that does not reach a batch of positions further (the rest
   * is the feed's, holes and all), or when nothing is settled after `position()` yet.
   */
  async *pages(position: () => number, signal: AbortSignal): AsyncGenerator<FeedItem[]> {
    this.#head = await this.#store.headPosition();
    this.#headSeenAt = performance.now();
    for (let full = this.farBehind(position()); full;) {
      const after = position();
      const commits = await this.#store.readAll({ after, limit: this.#batchSize, signal });
      if (commits.length === 0) return;
      const batch: FeedItem[] = [];
      let previous = after;
      for (const commit of commits) {
        for (let gap = previous + 1; gap < commit.position; gap += 1)
          batch.push({ kind: 'gap', position: gap, checkpoint: { position: gap } });
        batch.push({ kind: 'commit', commit, checkpoint: { position: commit.position } });
        previous = commit.position;
      }
      // Full: the page reached a batch of positions further (a store may count the gaps
      // it skips against the limit).
      full = previous - after >= this.#batchSize;
      yield batch;
    }
  }

  /** Whether the head last seen is at least a batch past `position`: time to read pages. */
  farBehind(position: number): boolean {
    return this.#head - position >= this.#batchSize;
  }

  /** `item` and, when far behind, the items after it that the store already holds. */
  async batchFrom(item: FeedItem, items: AsyncIterator<FeedItem>): Promise<FeedItem[]> {
    const batch: FeedItem[] = [item];
    if (item.kind === 'heartbeat') return batch;
    const position = item.checkpoint.position;
    if (
      position >= this.#head &&
      (this.#batching || performance.now() - this.#headSeenAt >= 1_000)
    ) {
      this.#head = await this.#store.headPosition();
      this.#headSeenAt = performance.now();
    }
    while (batch.length < this.#batchSize && batch.at(-1)!.checkpoint.position < this.#head) {
      const more = await items.next();
      if (more.done) break;
      batch.push(more.value);
      if (more.value.kind === 'heartbeat') break;
    }
    this.#batching = batch.length > 1;
    return batch;
  }
}

/**
 * A quiet feed yields a heartbeat per empty batch (about once a second) with a fresher
 * resume token; saving each would write forever on an idle system. They are saved at most
 * this often: a resume from a slightly older token costs the server a little more, nothing else.
 */
const HEARTBEAT_SAVE_INTERVAL_MS = 60_000;

/** What {@link followStore} needs of the projector runtime. */
export interface FollowStoreOptions {
  store: EventStore;
  /** The saved checkpoint to start after. */
  from: FeedPosition;
  /** @default CATCH_UP_BATCH */
  batchSize?: number;
  /** The position applied so far (moved by `apply`). */
  position: () => number;
  /** Whether to go on: false once the lease may have lapsed or the loop is stopping. */
  leased: () => boolean;
  /** Aborts when the loop stops: ends the pages and closes the feed. */
  signal: AbortSignal;
  /** Applies items and saves the checkpoint after them. */
  apply: (batch: readonly FeedItem[]) => Promise<void>;
  /** Called after each batch applied. */
  applied: () => void;
  /** Called for each heartbeat passed over (the loop is alive). */
  alive: () => void;
  /** Given a function that closes the feed being followed (undefined once it is closed). */
  following: (close: (() => void) | undefined) => void;
}

/**
 * Projects from `from` while `leased()`: a batch or more behind the store's head, by pages
 * read from the store (`CatchUp.pages`); then from the feed, from where the pages ended
 * (by position alone: a resume token saved before them is older than the checkpoint),
 * until it falls a batch behind again. Returns when not `leased()` or the feed ends.
 */
export async function followStore(options: FollowStoreOptions): Promise<void> {
  const { store, position, leased, signal, apply } = options;
  const catchUp = new CatchUp(store, options.batchSize);
  let from = options.from;
  for (;;) {
    for await (const batch of catchUp.pages(position, signal)) {
      if (!leased()) return;
      await apply(batch);
      from = { position: position() };
      options.applied();
    }
    if (!leased() || !(await follow(from, catchUp, options))) return;
    from = { position: position() };
  }
}

/** Follows the feed from `from`; returns true when it fell a batch behind. */
async function follow(
  from: FeedPosition,
  catchUp: CatchUp,
  options: FollowStoreOptions,
): Promise<boolean> {
  const { position, leased, signal } = options;
  const feed = options.store.subscribe({ from });
  const close = () => void feed.close();
  options.following(close);
  signal.addEventListener('abort', close);
  if (signal.aborted) close();
  let lastSaved = performance.now();
  const items = feed[Symbol.asyncIterator]();
  try {
    for (let next = await items.next(); !next.done; next = await items.next()) {
      const item = next.value;
      if (!leased()) return false;
      if (
        item.kind === 'heartbeat' &&
        item.checkpoint.position === position() &&
        performance.now() - lastSaved < HEARTBEAT_SAVE_INTERVAL_MS
      ) {
        options.alive();
        continue;
      }
      lastSaved = performance.now();
      await options.apply(await catchUp.batchFrom(item, items));
      options.applied();
      if (catchUp.farBehind(position())) return true;
    }
    return false;
  } finally {
    options.following(undefined);
    signal.removeEventListener('abort', close);
    await feed.close();
  }
}
