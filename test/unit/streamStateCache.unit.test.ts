import { describe, expect, it } from 'vitest';
import { streamFold } from '../../src/boards/aggregates.js';
import type { ActiveColumn } from '../../src/boards/column/state.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
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
    await store.append({
      streams: [
        {
          stream: 'column-c1',
          expected: 'NO_STREAM',
          events: [
            {
              type: 'ColumnCreated',
              data: { columnId: 'c1', boardId: 'b1', name: 'Backlog', wipLimit: null },
            },
          ],
        },
      ],
    });
    for (let batch = 0; batch < 20; batch += 1) {
      await store.append({
        streams: [
          {
            stream: 'column-c1',
            expected: 1 + batch * 500,
            events: Array.from({ length: 500 }, (_, i) => ({
              type: 'CardEntered',
              data: {
                cardId: `k${batch * 500 + i}`,
                rank: `a${String(batch * 500 + i).padStart(6, '0')}`,
              },
            })),
          },
        ],
      });
    }
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
