/**
 * The event store contract, archive part: commits moved off the hot store by
 * `archiveStreams` are read, replayed and fed as before, and `restoreStreams` brings them
 * back. Runs on memory and on the mongo adapter (simulator or MONGODB_URI).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VersionConflict } from '../../src/eventstore/errors.js';
import { fingerprintOf } from '../../src/eventstore/idempotency.js';
import {
  NO_STREAM,
  type AppendRequest,
  type Commit,
  type EventStore,
  type FeedItem,
} from '../../src/eventstore/types.js';
import { storeAdapters } from '../support/storeAdapters.js';

const event = (type: string, data: Record<string, unknown> = {}) => ({ type, data });

/** Every item a feed from the start yields up to `head`, then closes it. */
async function feedUpTo(store: EventStore, head: number): Promise<FeedItem[]> {
  const feed = store.subscribe({ from: { position: 0 } });
  const items: FeedItem[] = [];
  for await (const item of feed) {
    if (item.kind !== 'heartbeat') items.push(item);
    if (item.checkpoint.position >= head) break;
  }
  await feed.close();
  return items;
}

/** Every commit, read in pages of `limit`. */
async function readAllPaged(store: EventStore, limit: number): Promise<Commit[]> {
  const all: Commit[] = [];
  for (;;) {
    const page = await store.readAll({ after: all.at(-1)?.position ?? 0, limit });
    if (page.length === 0) return all;
    all.push(...page);
  }
}

describe.each(storeAdapters())('event store contract, archive ($name)', (adapter) => {
  const opened: EventStore[] = [];
  const open = async () => {
    const store = await adapter.createEventStore();
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  /**
   * Streams `old` (positions 1, 3, 5, 7: the last one also writes `shared`), `live`
   * (2, 4, 6) and `shared` (7, 8), so the archived commits are interleaved with live ones
   * and one commit holds streams of both kinds.
   */
  async function seed(store: EventStore): Promise<void> {
    const append = (request: AppendRequest) => store.append(request);
    await append({ streams: [{ stream: 'old', expected: NO_STREAM, events: [event('O1')] }] });
    await append({ streams: [{ stream: 'live', expected: NO_STREAM, events: [event('L1')] }] });
    await append({
      streams: [{ stream: 'old', expected: 1, events: [event('O2'), event('O3')] }],
      metadata: { actor: 'u1', operation: 'two' },
    });
    await append({ streams: [{ stream: 'live', expected: 1, events: [event('L2')] }] });
    await append({ streams: [{ stream: 'old', expected: 3, events: [event('O4', { n: 4 })] }] });
    await append({ streams: [{ stream: 'live', expected: 2, events: [event('L3')] }] });
    await append({
      streams: [
        { stream: 'old', expected: 4, events: [event('O5')] },
        { stream: 'shared', expected: NO_STREAM, events: [event('S1')] },
      ],
    });
    await append({ streams: [{ stream: 'shared', expected: 1, events: [event('S2')] }] });
  }

  it('moves the commits of the given streams to the archive; every read answers as before', async () => {
    const store = await open();
    await seed(store);
    const before = {
      old: await store.readStream('old'),
      oldFrom3: await store.readStream('old', { fromVersion: 3 }),
      shared: await store.readStream('shared'),
      live: await store.readStream('live'),
      all: await store.readAll(),
      head: await store.headPosition(),
    };

    expect(await store.archiveStreams(['old'])).toEqual({ commits: 4 });
    expect(await adapter.placement(store)).toEqual({ hot: [2, 4, 6, 8], archived: [1, 3, 5, 7] });

    expect(await store.readStream('old')).toEqual(before.old);
    expect(await store.readStream('old', { fromVersion: 3 })).toEqual(before.oldFrom3);
    expect(await store.readStream('shared')).toEqual(before.shared);
    expect(await store.readStream('live')).toEqual(before.live);
    expect(await store.streamVersion('old')).toBe(5);
    expect(await store.readAll()).toEqual(before.all);
    expect(await store.headPosition()).toBe(before.head);

    // Already moved: nothing more to do.
    expect(await store.archiveStreams(['old'])).toEqual({ commits: 0 });
  });

  it('reads the whole log across both places in position order, page by page (what a rebuild replays)', async () => {
    const store = await open();
    await seed(store);
    const before = await store.readAll();
    await store.archiveStreams(['old', 'shared']);
    expect((await adapter.placement(store)).hot).toEqual([2, 4, 6]);
    for (const limit of [1, 2, 3, 1_000]) {
      expect(await readAllPaged(store, limit)).toEqual(before);
    }
    expect(await store.readAll({ after: 4, limit: 2 })).toEqual(before.slice(4, 6));
    // The newest commit archived: the head still counts it.
    expect(await store.headPosition()).toBe(8);
  });

  it('feeds every commit from the start across both places, none taken for a gap', async () => {
    const store = await open();
    await seed(store);
    const before = await store.readAll();
    await store.archiveStreams(['old']);
    const items = await feedUpTo(store, 8);
    expect(items.map((i) => i.kind)).toEqual(Array(8).fill('commit'));
    expect(items.map((i) => (i.kind === 'commit' ? i.commit : undefined))).toEqual(before);
    // Nothing was written in the meantime: the positions still belong to their commits.
    expect(await store.readAll()).toEqual(before);
  });

  it('does not show a move to a live feed, which goes on with the next commit', async () => {
    const store = await open();
    await seed(store);
    const feed = store.subscribe({ from: { position: 8 } });
    const iterator = feed[Symbol.asyncIterator]();
    const nextCommit = async () => {
      for (;;) {
        const { value, done } = await iterator.next();
        if (done) throw new Error('the feed ended');
        if (value.kind !== 'heartbeat') return value;
      }
    };
    try {
      await store.archiveStreams(['old']);
      await store.restoreStreams(['old']);
      await store.archiveStreams(['old']);
      await store.append({
        streams: [{ stream: 'live', expected: 3, events: [event('L4')] }],
      });
      const item = await nextCommit();
      expect(item.kind).toBe('commit');
      expect(item.kind === 'commit' && item.commit.position).toBe(9);
      expect(item.kind === 'commit' && item.commit.events.map((e) => e.type)).toEqual(['L4']);
    } finally {
      await feed.close();
    }
  });

  it('restores the commits of the given streams to the hot store', async () => {
    const store = await open();
    await seed(store);
    const before = { old: await store.readStream('old'), all: await store.readAll() };
    await store.archiveStreams(['old', 'live']);
    expect((await adapter.placement(store)).hot).toEqual([8]);

    expect(await store.restoreStreams(['old'])).toEqual({ commits: 4 });
    expect(await adapter.placement(store)).toEqual({ hot: [1, 3, 5, 7, 8], archived: [2, 4, 6] });
    expect(await store.readStream('old')).toEqual(before.old);
    expect(await store.readAll()).toEqual(before.all);
    expect(await store.restoreStreams(['old'])).toEqual({ commits: 0 });
    expect(await store.restoreStreams(['live'])).toEqual({ commits: 3 });
    expect(await adapter.placement(store)).toEqual({
      hot: [1, 2, 3, 4, 5, 6, 7, 8],
      archived: [],
    });
    expect(await store.readAll()).toEqual(before.all);
    expect(await feedUpTo(store, 8)).toHaveLength(8);
  });

  it('keeps an archived stream writable at its version: a write lands hot, reads join both places', async () => {
    const store = await open();
    await seed(store);
    await store.archiveStreams(['old']);
    // Its head did not move: a writer that thinks the stream is new is refused.
    await expect(
      store.append({ streams: [{ stream: 'old', expected: NO_STREAM, events: [event('X')] }] }),
    ).rejects.toBeInstanceOf(VersionConflict);
    await expect(
      store.append({ streams: [{ stream: 'old', expected: 2, events: [event('X')] }] }),
    ).rejects.toBeInstanceOf(VersionConflict);
    const restored = await store.append({
      streams: [{ stream: 'old', expected: 5, events: [event('O6')] }],
    });
    expect(restored.streams).toEqual([{ stream: 'old', version: 6 }]);
    expect(restored.position).toBe(9);
    expect((await adapter.placement(store)).hot).toEqual([2, 4, 6, 8, 9]);
    expect((await store.readStream('old')).map((e) => [e.type, e.version, e.position])).toEqual([
      ['O1', 1, 1],
      ['O2', 2, 3],
      ['O3', 3, 3],
      ['O4', 4, 5],
      ['O5', 5, 7],
      ['O6', 6, 9],
    ]);
    expect((await store.readStream('old', { fromVersion: 5 })).map((e) => e.version)).toEqual([
      5, 6,
    ]);
    // History pages, newest first, across both places.
    const page = async (before: number | undefined, limit: number) =>
      (await store.readStreamBackward('old', { before, limit })).map((e) => e.version);
    expect(await page(undefined, 3)).toEqual([6, 5, 4]);
    expect(await page(4, 10)).toEqual([3, 2, 1]);
    expect(await page(3, 1)).toEqual([2]);
    // Restoring brings back what was archived; the hot one stays.
    expect(await store.restoreStreams(['old'])).toEqual({ commits: 4 });
    expect((await adapter.placement(store)).archived).toEqual([]);
    expect((await store.readStream('old')).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('replays an idempotency key whose commit was archived', async () => {
    const store = await open();
    const request: AppendRequest = {
      streams: [{ stream: 'old', expected: NO_STREAM, events: [event('O1')] }],
      idempotencyKey: 'k1',
    };
    const first = await store.append(request);
    await store.archiveStreams(['old']);
    expect(await store.idempotentResult('k1', fingerprintOf(request))).toEqual(first);
    expect(await store.append(request)).toEqual(first);
    const [commit] = await store.readAll({ after: first.position - 1, limit: 1 });
    expect(commit).toMatchObject({ commitId: first.commitId, idempotencyKey: 'k1' });
    expect(await store.headPosition()).toBe(1);
  });

  it('moves nothing for streams it does not hold', async () => {
    const store = await open();
    await seed(store);
    expect(await store.archiveStreams([])).toEqual({ commits: 0 });
    expect(await store.archiveStreams(['missing'])).toEqual({ commits: 0 });
    expect(await store.restoreStreams(['live'])).toEqual({ commits: 0 });
    expect((await adapter.placement(store)).archived).toEqual([]);
  });
});
