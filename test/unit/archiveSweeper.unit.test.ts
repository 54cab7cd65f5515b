import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  ARCHIVE_SWEEPER_LOOP,
  ArchiveSweeper,
  type ArchivePlan,
  type StreamGroup,
} from '../../src/eventstore/archiveSweeper.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY } from '../../src/eventstore/types.js';
import { until } from '../support/until.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = new Date('2026-06-01T00:00:00Z');

/** A logger whose records are kept, to see what an operator would read. */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, destination), lines };
}

/** Boards archived at given times; `restored` lists the ones in use again. */
function plan(archivedAt: Record<string, Date>, restored: string[] = []): ArchivePlan {
  const group = (id: string): StreamGroup => ({ id, streams: [`board-${id}`, `card-${id}`] });
  return {
    archivedBefore: async (cutoff) =>
      Object.entries(archivedAt)
        .filter(([, at]) => at <= cutoff)
        .map(([id]) => group(id)),
    restored: async () => restored.map(group),
  };
}

async function storeWithBoards(ids: string[]): Promise<MemoryEventStore> {
  const store = new MemoryEventStore();
  for (const id of ids) {
    for (const stream of [`board-${id}`, `card-${id}`]) {
      await store.append({
        streams: [{ stream, expected: ANY, events: [{ type: 'E', data: {} }] }],
      });
    }
  }
  return store;
}

describe('archive sweeper', () => {
  it('moves the streams of boards archived longer than the delay, and no others, once', async () => {
    const store = await storeWithBoards(['old', 'recent', 'live']);
    const { logger, lines } = recordingLogger();
    const sweeper = new ArchiveSweeper({
      store,
      plan: plan({
        old: new Date(NOW.getTime() - 31 * DAY_MS),
        recent: new Date(NOW.getTime() - 29 * DAY_MS),
      }),
      archiveAfterMs: 30 * DAY_MS,
      logger,
      now: () => NOW,
    });
    expect(await sweeper.sweep()).toEqual({
      at: NOW,
      archivedGroups: 1,
      restoredGroups: 0,
      commits: 2,
    });
    expect(store.hotPositions()).toEqual([3, 4, 5, 6]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        group: 'old',
        commits: 2,
        msg: 'archive: commits moved to the archive',
      }),
    );
    // Already moved: the next sweep moves nothing and says nothing.
    const logged = lines.length;
    expect(await sweeper.sweep()).toMatchObject({ archivedGroups: 0, commits: 0 });
    expect(lines).toHaveLength(logged);
    expect(sweeper.lastSweep()).toMatchObject({ commits: 0 });
  });

  it('brings back the streams of restored boards', async () => {
    const store = await storeWithBoards(['a', 'b']);
    await store.archiveStreams(['board-a', 'card-a', 'board-b', 'card-b']);
    const { logger, lines } = recordingLogger();
    const sweeper = new ArchiveSweeper({
      store,
      plan: plan({ b: new Date(0) }, ['a']),
      archiveAfterMs: DAY_MS,
      logger,
      now: () => NOW,
    });
    expect(await sweeper.sweep()).toMatchObject({
      restoredGroups: 1,
      archivedGroups: 0,
      commits: 2,
    });
    expect(store.hotPositions()).toEqual([1, 2]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        group: 'a',
        msg: 'archive: commits brought back to the hot store',
      }),
    );
  });

  it('sweeps in the background as a supervised loop operators see, and retries a failed sweep', async () => {
    const store = await storeWithBoards(['old']);
    let failures = 1;
    const failingOnce: ArchivePlan = {
      ...plan({ old: new Date(0) }),
      restored: async () => {
        if (failures-- > 0) throw new Error('read model unavailable');
        return [];
      },
    };
    const sweeper = new ArchiveSweeper({
      store,
      plan: failingOnce,
      archiveAfterMs: DAY_MS,
      intervalMs: 60_000,
      logger: pino({ level: 'silent' }),
    });
    sweeper.start();
    try {
      await until(() => sweeper.lastSweep() !== undefined, 20_000, 'the first sweep to end');
      expect(store.hotPositions()).toEqual([]);
      expect(sweeper.status()).toMatchObject({
        name: ARCHIVE_SWEEPER_LOOP,
        state: 'running',
        restarts: 1,
        lastError: { message: 'read model unavailable' },
      });
    } finally {
      await sweeper.stop();
    }
    expect(sweeper.status().state).toBe('stopped');
  });
});
