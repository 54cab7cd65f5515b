import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  ARCHIVE_SWEEPER_LOOP,
  ArchiveSweeper,
  type ArchivePlan,
  type MoveDirection,
  type PlannedMove,
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

interface FakeGroup {
  /** Out of use since; null: in use. */
  since: Date | null;
  placement: 'hot' | 'mixed' | 'archive';
  token: number;
}

/** A plan over groups `<id>` with streams `board-<id>` and `card-<id>`, its record kept in memory. */
function fakePlan(groups: Record<string, FakeGroup>): ArchivePlan {
  const dueOf = (g: FakeGroup): MoveDirection | null =>
    g.since
      ? g.placement === 'archive'
        ? null
        : 'archive'
      : g.placement === 'hot'
        ? null
        : 'restore';
  return {
    async due(direction, limit) {
      return Object.entries(groups)
        .filter(([, g]) => dueOf(g) === direction)
        .sort(([, a], [, b]) => (a.since?.getTime() ?? 0) - (b.since?.getTime() ?? 0))
        .slice(0, limit)
        .map(([group, g]): PlannedMove => ({ group, direction, since: g.since, token: g.token }));
    },
    async streamsOf(group) {
      return { streams: [`board-${group}`, `card-${group}`], since: groups[group]!.since };
    },
    async begin(move) {
      const g = groups[move.group]!;
      if (g.token !== move.token) return null;
      Object.assign(g, { placement: 'mixed', token: g.token + 1 });
      return { ...move, token: g.token };
    },
    async end(move) {
      const g = groups[move.group]!;
      if (g.token !== move.token) return false;
      Object.assign(g, {
        placement: move.direction === 'archive' ? 'archive' : 'hot',
        token: g.token + 1,
      });
      return true;
    },
  };
}

async function storeWithGroups(ids: string[]): Promise<MemoryEventStore> {
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

const daysAgo = (days: number) => new Date(NOW.getTime() - days * DAY_MS);
const hot = (since: Date | null): FakeGroup => ({ since, placement: 'hot', token: 0 });

describe('archive sweeper', () => {
  it('moves the streams of groups out of use longer than the delay, and no others, once; says when the next is due', async () => {
    const store = await storeWithGroups(['old', 'recent', 'live']);
    const { logger, lines } = recordingLogger();
    const sweeper = new ArchiveSweeper({
      store,
      plan: fakePlan({ old: hot(daysAgo(31)), recent: hot(daysAgo(29)), live: hot(null) }),
      archiveAfterMs: 30 * DAY_MS,
      logger,
      now: () => NOW,
    });
    expect(await sweeper.sweep()).toEqual({
      at: NOW,
      archivedGroups: 1,
      restoredGroups: 0,
      commits: 2,
      skippedGroups: 0,
      nextDueAt: new Date(NOW.getTime() + DAY_MS),
      full: false,
    });
    expect(store.hotPositions()).toEqual([3, 4, 5, 6]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        group: 'old',
        direction: 'archive',
        commits: 2,
        msg: 'archive: commits moved to the archive',
      }),
    );
    // Recorded as moved: the next sweep moves nothing and says nothing.
    const logged = lines.length;
    expect(await sweeper.sweep()).toMatchObject({ archivedGroups: 0, commits: 0 });
    expect(lines).toHaveLength(logged);
  });

  it('brings back the streams of groups in use again, and of groups left mixed by a move cut short', async () => {
    const store = await storeWithGroups(['a', 'b', 'c']);
    await store.archiveStreams(['board-a', 'card-a', 'board-b', 'card-b', 'board-c']);
    const { logger, lines } = recordingLogger();
    const sweeper = new ArchiveSweeper({
      store,
      plan: fakePlan({
        a: { since: null, placement: 'archive', token: 2 },
        b: { since: daysAgo(90), placement: 'archive', token: 2 },
        c: { since: null, placement: 'mixed', token: 1 },
      }),
      archiveAfterMs: DAY_MS,
      logger,
      now: () => NOW,
    });
    expect(await sweeper.sweep()).toMatchObject({
      restoredGroups: 2,
      archivedGroups: 0,
      commits: 3,
    });
    expect(store.hotPositions()).toEqual([1, 2, 5, 6]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        group: 'a',
        msg: 'archive: commits brought back to the hot store',
      }),
    );
  });

  it('skips a group the event log says is no longer due, and one whose record changed since it was listed', async () => {
    const store = await storeWithGroups(['restored', 'taken']);
    const groups = { restored: hot(daysAgo(40)), taken: hot(daysAgo(40)) };
    const plan = fakePlan(groups);
    const racing: ArchivePlan = {
      ...plan,
      async due(direction, limit, signal) {
        const listed = await plan.due(direction, limit, signal);
        // After listing: one group is in use again, another sweeper took the other.
        if (direction === 'archive') {
          groups.restored.since = null;
          groups.taken.token += 1;
        }
        return listed;
      },
    };
    const sweeper = new ArchiveSweeper({
      store,
      plan: racing,
      archiveAfterMs: 30 * DAY_MS,
      logger: pino({ level: 'silent' }),
      now: () => NOW,
    });
    expect(await sweeper.sweep()).toMatchObject({
      archivedGroups: 0,
      skippedGroups: 2,
      commits: 0,
    });
    expect(store.hotPositions()).toEqual([1, 2, 3, 4]);
  });

  it('sweeps in the background as a supervised loop operators see, retries a failed sweep, and sweeps again when woken or when a group becomes due', async () => {
    const store = await storeWithGroups(['old', 'soon', 'woken']);
    const started = Date.now();
    const groups = {
      old: hot(new Date(0)),
      // Due 300 ms after the sweeper starts, long before the 10-minute interval ends.
      soon: hot(new Date(started + 300 - DAY_MS)),
      woken: hot(null),
    };
    const plan = fakePlan(groups);
    let failures = 1;
    const failingOnce: ArchivePlan = {
      ...plan,
      due: async (direction, limit, signal) => {
        if (failures-- > 0) throw new Error('read model unavailable');
        return plan.due(direction, limit, signal);
      },
    };
    const sweeper = new ArchiveSweeper({
      store,
      plan: failingOnce,
      archiveAfterMs: DAY_MS,
      intervalMs: 600_000,
      logger: pino({ level: 'silent' }),
    });
    sweeper.start();
    try {
      await until(() => groups.old.placement === 'archive', 20_000, 'the first sweep');
      expect(sweeper.status()).toMatchObject({
        name: ARCHIVE_SWEEPER_LOOP,
        restarts: 1,
        lastError: { message: 'read model unavailable' },
      });
      await until(() => groups.soon.placement === 'archive', 20_000, 'the sweep when due');
      groups.woken.since = new Date(0);
      sweeper.wake();
      await until(() => groups.woken.placement === 'archive', 20_000, 'the sweep when woken');
      expect(store.hotPositions()).toEqual([]);
      expect(sweeper.status().state).toBe('running');
    } finally {
      await sweeper.stop();
    }
    expect(sweeper.status().state).toBe('stopped');
  });
});
