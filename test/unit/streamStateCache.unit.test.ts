import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { foldEvents, streamFold } from '../../src/boards/aggregates.js';
import { createBoardCommands } from '../../src/boards/commands.js';
import type { ActiveColumn } from '../../src/boards/column/state.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { MemorySnapshotStore } from '../../src/eventstore/snapshots/MemorySnapshotStore.js';
import type { SnapshotStore } from '../../src/eventstore/snapshots/SnapshotStore.js';
import { StreamStateCache, type StreamFold } from '../../src/eventstore/StreamStateCache.js';
import type { EventStore, ReadStreamOptions, RecordedEvent } from '../../src/eventstore/types.js';

/** Sums the `n` of every event; counts how many events it folded. */
function counter(): StreamFold<number> & { folded: number } {
  const fold = {
    folded: 0,
    initial: 0,
    evolve: (state: number, event: RecordedEvent) => {
      fold.folded += 1;
      return state + (event.data.n as number);
    },
  };
  return fold;
}

/** The store, remembering the `fromVersion` of every readStream. */
function spying(store: EventStore): { store: EventStore; reads: number[] } {
  const reads: number[] = [];
  const spy = Object.create(store) as EventStore;
  spy.readStream = (stream: string, options?: ReadStreamOptions) => {
    reads.push(options?.fromVersion ?? 1);
    return store.readStream(stream, options);
  };
  return { store: spy, reads };
}

async function appendN(store: EventStore, stream: string, values: number[]) {
  const version = await store.streamVersion(stream);
  await store.append({
    streams: [
      {
        stream,
        expected: version === 0 ? 'NO_STREAM' : version,
        events: values.map((n) => ({ type: 'Added', data: { n } })),
      },
    ],
  });
}

/** Creates `column-c1` and enters card `k<i>` at `ranks[i]` for each rank, 1,000 a commit. */
async function seedColumn(store: EventStore, ranks: readonly string[]): Promise<void> {
  const created = {
    type: 'ColumnCreated',
    data: { columnId: 'c1', boardId: 'b1', name: 'Backlog', wipLimit: null },
  };
  await store.append({
    streams: [{ stream: 'column-c1', expected: 'NO_STREAM', events: [created] }],
  });
  for (let start = 0; start < ranks.length; start += 1_000) {
    const events = ranks
      .slice(start, start + 1_000)
      .map((rank, i) => ({ type: 'CardEntered', data: { cardId: `k${start + i}`, rank } }));
    await store.append({ streams: [{ stream: 'column-c1', expected: 1 + start, events }] });
  }
}

describe('StreamStateCache', () => {
  it('reads only the events after the cached version and folds only those', async () => {
    const memory = new MemoryEventStore();
    const { store, reads } = spying(memory);
    const cache = new StreamStateCache(store);
    const fold = counter();
    await appendN(memory, 's', [1, 2, 3]);
    expect(await cache.load('s', fold)).toMatchObject({ state: 6, version: 3 });
    await appendN(memory, 's', [10]);
    const caught = await cache.load('s', fold);
    expect(caught).toMatchObject({ state: 16, version: 4 });
    expect(caught.read.map((e) => e.version)).toEqual([4]);
    expect(reads).toEqual([1, 4]);
    expect(fold.folded).toBe(4);
  });

  it('sees every event after a restart: a new cache on the same store folds from the start', async () => {
    const store = new MemoryEventStore();
    const fold = counter();
    await new StreamStateCache(store).load('s', fold);
    await appendN(store, 's', [1, 2]);
    const before = new StreamStateCache(store);
    expect((await before.load('s', fold)).state).toBe(3);
    await appendN(store, 's', [4]);
    // A crash loses the cache; the store keeps everything.
    const restarted = new StreamStateCache(store);
    expect(await restarted.load('s', fold)).toMatchObject({ state: 7, version: 3 });
  });

  it('catches up with events another instance appended to the same stream', async () => {
    const store = new MemoryEventStore();
    const fold = counter();
    const one = new StreamStateCache(store);
    const two = new StreamStateCache(store);
    await appendN(store, 's', [1]);
    expect((await one.load('s', fold)).version).toBe(1);
    expect((await two.load('s', fold)).version).toBe(1);
    // Instance two appends at the version it loaded; instance one's cache is now behind.
    await store.append({
      streams: [{ stream: 's', expected: 1, events: [{ type: 'Added', data: { n: 5 } }] }],
    });
    // Instance one appending at its cached version is refused by the store...
    await expect(
      store.append({
        streams: [{ stream: 's', expected: 1, events: [{ type: 'Added', data: { n: 9 } }] }],
      }),
    ).rejects.toMatchObject({ name: 'VersionConflict' });
    // ...and its next load sees instance two's event.
    expect(await one.load('s', fold)).toMatchObject({ state: 6, version: 2 });
  });

  it('never goes back to an older state when loads race', async () => {
    const store = new MemoryEventStore();
    const cache = new StreamStateCache(store);
    const fold = counter();
    await appendN(store, 's', [1]);
    const older = cache.load('s', fold);
    await appendN(store, 's', [2]);
    const newer = await cache.load('s', fold);
    await older;
    expect(newer.version).toBe(2);
    expect(cache.cachedVersion('s')).toBe(2);
  });

  it('keeps at most maxEvents folded events, least recently used out first', async () => {
    const store = new MemoryEventStore();
    const cache = new StreamStateCache(store, { maxEvents: 5 });
    const fold = counter();
    await appendN(store, 'a', [1, 1, 1]);
    await appendN(store, 'b', [1, 1]);
    await appendN(store, 'c', [1, 1]);
    await cache.load('a', fold);
    await cache.load('b', fold);
    await cache.load('c', fold);
    expect(cache.cachedVersion('a')).toBeUndefined();
    expect(cache.cachedVersion('b')).toBe(2);
    expect(cache.cachedVersion('c')).toBe(2);
  });

  it('keeps a 10,000-card column and catches it up by one event per new card', async () => {
    const store = new MemoryEventStore();
    const { store: spied, reads } = spying(store);
    const cache = new StreamStateCache(spied);
    const fold = streamFold('column');
    await seedColumn(
      store,
      Array.from({ length: 10_000 }, (_, i) => `a${String(i).padStart(6, '0')}`),
    );
    const cold = await cache.load('column-c1', fold);
    expect((cold.state as ActiveColumn).cards.size).toBe(10_000);
    await store.append({
      streams: [
        {
          stream: 'column-c1',
          expected: 10_001,
          events: [{ type: 'CardEntered', data: { cardId: 'new', rank: 'b0' } }],
        },
      ],
    });
    const warm = await cache.load('column-c1', fold);
    expect(warm.read).toHaveLength(1);
    expect((warm.state as ActiveColumn).cards.last()?.id).toBe('new');
    expect(reads).toEqual([1, 10_002]);
  });
});

/** {@link counter} with a snapshot codec. */
function snapshotted(name = 'sum/1'): StreamFold<number> & { folded: number } {
  const fold = counter();
  return Object.assign(fold, {
    snapshot: { name, encode: (state: number) => String(state), decode: Number },
  });
}

describe('StreamStateCache with snapshots', () => {
  it('starts a cold load from the snapshot and reads only from its version on', async () => {
    const memory = new MemoryEventStore();
    const snapshots = new MemorySnapshotStore();
    await appendN(memory, 's', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const first = new StreamStateCache(memory, { snapshots, snapshotEvery: 5 });
    expect((await first.load('s', snapshotted())).state).toBe(55);
    await first.snapshotsSaved();
    expect(await snapshots.load('s')).toMatchObject({ version: 10, state: '55' });

    await appendN(memory, 's', [100, 200]);
    // A new process: nothing cached, the snapshot and the events after it.
    const { store, reads } = spying(memory);
    const fold = snapshotted();
    const cold = await new StreamStateCache(store, { snapshots, snapshotEvery: 5 }).load('s', fold);
    expect(cold).toMatchObject({ state: 355, version: 12 });
    expect(cold.read.map((e) => e.version)).toEqual([11, 12]);
    // One read, from the snapshot's own event (checked) on; only the new events folded.
    expect(reads).toEqual([10]);
    expect(fold.folded).toBe(2);
  });

  it('saves a new snapshot once snapshotEvery events were folded since the last', async () => {
    const store = new MemoryEventStore();
    const snapshots = new MemorySnapshotStore();
    const cache = new StreamStateCache(store, { snapshots, snapshotEvery: 3 });
    const fold = snapshotted();
    await appendN(store, 's', [1, 1]);
    await cache.load('s', fold);
    await cache.snapshotsSaved();
    expect(await snapshots.load('s')).toBeUndefined();
    await appendN(store, 's', [1]);
    await cache.load('s', fold);
    await cache.snapshotsSaved();
    expect(await snapshots.load('s')).toMatchObject({ version: 3, state: '3' });
    await appendN(store, 's', [1, 1]);
    await cache.load('s', fold);
    await cache.snapshotsSaved();
    expect((await snapshots.load('s'))?.version).toBe(3);
    await appendN(store, 's', [1]);
    await cache.load('s', fold);
    await cache.snapshotsSaved();
    expect(await snapshots.load('s')).toMatchObject({ version: 6, state: '6' });
  });

  it('never uses a snapshot the stream does not hold: another history, or newer than the stream', async () => {
    const snapshots = new MemorySnapshotStore();
    const old = new MemoryEventStore();
    await appendN(old, 's', [1, 1, 1, 1, 1, 1, 1, 1]);
    const first = new StreamStateCache(old, { snapshots, snapshotEvery: 2 });
    await first.load('s', snapshotted());
    await first.snapshotsSaved();
    expect(await snapshots.load('s')).toMatchObject({ version: 8, state: '8' });

    // The same stream name with another history, as long as the snapshot's: other event ids.
    const other = new MemoryEventStore();
    await appendN(other, 's', [5, 5, 5, 5, 5, 5, 5, 5, 5]);
    const onOther = new StreamStateCache(other, { snapshots, snapshotEvery: 100 });
    expect(await onOther.load('s', snapshotted())).toMatchObject({ state: 45, version: 9 });

    // A stream shorter than the snapshot: its state, and an append at its version works.
    const shorter = new MemoryEventStore();
    await appendN(shorter, 's', [7, 7]);
    const onShorter = new StreamStateCache(shorter, { snapshots, snapshotEvery: 100 });
    expect(await onShorter.load('s', snapshotted())).toMatchObject({ state: 14, version: 2 });
    await shorter.append({
      streams: [{ stream: 's', expected: 2, events: [{ type: 'Added', data: { n: 1 } }] }],
    });
    expect(await onShorter.load('s', snapshotted())).toMatchObject({ state: 15, version: 3 });
  });

  it('ignores a snapshot of another codec', async () => {
    const store = new MemoryEventStore();
    const snapshots = new MemorySnapshotStore();
    await appendN(store, 's', [1, 2, 3]);
    await snapshots.save({
      stream: 's',
      version: 3,
      eventId: (await store.readStream('s'))[2]!.eventId,
      codec: 'sum/0',
      state: '999',
    });
    const fold = snapshotted('sum/1');
    expect(await new StreamStateCache(store, { snapshots }).load('s', fold)).toMatchObject({
      state: 6,
      version: 3,
    });
    expect(fold.folded).toBe(3);
  });

  it('folds from the first event when the snapshot store fails, and says so', async () => {
    const store = new MemoryEventStore();
    await appendN(store, 's', [1, 2, 3]);
    const broken = new Error('snapshot store down');
    const failing: SnapshotStore = {
      load: () => Promise.reject(broken),
      save: () => Promise.reject(broken),
    };
    const reported: unknown[] = [];
    const cache = new StreamStateCache(store, {
      snapshots: failing,
      snapshotEvery: 1,
      onSnapshotError: (error) => reported.push(error),
    });
    expect(await cache.load('s', snapshotted())).toMatchObject({ state: 6, version: 3 });
    await cache.snapshotsSaved();
    expect(reported).toEqual([broken, broken]);
  });

  it('restores a 10,000-card column from its snapshot exactly as the fold of its events', async () => {
    const store = new MemoryEventStore();
    const snapshots = new MemorySnapshotStore();
    // Entered in an order that is not rank order.
    await seedColumn(
      store,
      Array.from({ length: 10_000 }, (_, i) => `a${String((i * 7919) % 10_000).padStart(5, '0')}`),
    );
    const warm = new StreamStateCache(store, { snapshots });
    const folded = (await warm.load('column-c1', streamFold('column'))).state as ActiveColumn;
    await warm.snapshotsSaved();
    expect((await snapshots.load('column-c1'))?.version).toBe(10_001);
    const { store: spied, reads } = spying(store);
    const cold = new StreamStateCache(spied, { snapshots });
    const restored = (await cold.load('column-c1', streamFold('column'))).state as ActiveColumn;
    expect(reads).toEqual([10_001]);
    expect(restored.cards.size).toBe(10_000);
    expect(restored.cards.toArray()).toEqual(folded.cards.toArray());
    const { cards: _restoredCards, ...restoredRest } = restored;
    const { cards: _foldedCards, ...foldedRest } = folded;
    expect(restoredRest).toEqual(foldedRest);
    expect(restored.cards.rankOf('k3005')).toBe(folded.cards.rankOf('k3005'));
  });
});

describe('commands of two instances on one store', () => {
  it('detects the other instance’s append by the expected version, and the retry reads only what it appended', async () => {
    const store = new MemoryEventStore();
    /** Instance one's view of the store: records its column reads, and can let another append first. */
    const columnReads: number[] = [];
    let before: (() => Promise<void>) | null = null;
    const spied = Object.create(store) as EventStore;
    spied.readStream = (stream, options) => {
      if (stream.startsWith('column-')) columnReads.push(options?.fromVersion ?? 1);
      return store.readStream(stream, options);
    };
    spied.append = async (request, options) => {
      const first = before;
      before = null;
      await first?.();
      return store.append(request, options);
    };
    const instance = (on: EventStore) =>
      createBoardCommands({ store: on, now: () => new Date(), newId: randomUUID });
    const one = instance(spied);
    const two = instance(store);

    const user = await one.registerUser(null, { username: 'twoinstances', displayName: 'Two' });
    if (!user.ok) throw new Error('registration failed');
    const actor = user.value.user.id;
    const board = await one.createBoard(actor, { name: 'Shared' });
    if (!board.ok) throw new Error('board not created');
    const column = await one.addColumn(actor, {
      boardId: board.value.board.id,
      name: 'Backlog',
      expectedVersion: board.value.board.version,
    });
    if (!column.ok) throw new Error('column not created');
    const columnId = column.value.column.id;
    const stream = `column-${columnId}`;
    expect((await one.addCard(actor, { columnId, title: 'first' })).ok).toBe(true);
    const version = await store.streamVersion(stream);

    // Instance two appends between instance one's load and its append.
    let theirs: string | undefined;
    before = async () => {
      const added = await two.addCard(actor, { columnId, title: 'theirs' });
      if (added.ok) theirs = added.value.card.id;
    };
    columnReads.length = 0;
    const mine = await one.addCard(actor, { columnId, title: 'mine' });
    expect(mine.ok).toBe(true);
    expect(theirs).toBeDefined();
    // The first attempt caught its cache up with its own last append (the cache holds
    // what was read, not what was written), lost the race to instance two, and the retry
    // read only instance two's event: never the column from its start.
    expect(columnReads).toEqual([version, version + 1]);
    const state = foldEvents('column', await store.readStream(stream));
    if (state.status !== 'active') throw new Error('column not active');
    expect(state.cards.toArray().map((c) => c.id)).toEqual([
      expect.any(String),
      theirs,
      mine.ok ? mine.value.card.id : undefined,
    ]);
  });
});
