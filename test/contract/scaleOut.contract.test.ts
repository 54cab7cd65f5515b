/**
 * Several event store instances over one store, as the instances of a service share a
 * database: writers on disjoint streams spread over every instance, and a few on one
 * shared stream. Every consumer must see every commit exactly once, in one total order
 * they all agree on, and resume from any cursor exactly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VersionConflict } from '../../src/eventstore/errors.js';
import type {
  AppendResult,
  EventStore,
  FeedItem,
  FeedPosition,
} from '../../src/eventstore/types.js';
import { MemoryEventLog, MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { storeAdapters } from '../support/storeAdapters.js';

const INSTANCES = 4;
const WRITERS_PER_INSTANCE = 16;
const SHARED_WRITERS = 4;
const APPENDS_PER_WRITER = 5;

/** One settled position as a feed yields it: `commit <id>` or `gap`. */
interface Settled {
  position: number;
  what: string;
  checkpoint: FeedPosition;
}

/** Reads a feed from `from` until it has yielded `commits` commits, then closes it. */
async function follow(store: EventStore, from: FeedPosition, commits: number): Promise<Settled[]> {
  const feed = store.subscribe({ from });
  const seen: Settled[] = [];
  let found = 0;
  for await (const item of feed as AsyncIterable<FeedItem>) {
    if (item.kind === 'heartbeat') continue;
    const position = item.checkpoint.position;
    if (item.kind === 'commit') {
      found += 1;
      seen.push({ position, what: `commit ${item.commit.commitId}`, checkpoint: item.checkpoint });
    } else {
      seen.push({ position, what: 'gap', checkpoint: item.checkpoint });
    }
    if (found === commits) break;
  }
  await feed.close();
  return seen;
}

/** Appends `count` times to `stream` at exact versions, re-reading the head on a conflict. */
async function write(
  store: EventStore,
  stream: string,
  count: number,
): Promise<{ results: AppendResult[]; conflicts: number }> {
  const results: AppendResult[] = [];
  let conflicts = 0;
  while (results.length < count) {
    const expected = await store.streamVersion(stream);
    try {
      results.push(
        await store.append({
          streams: [{ stream, expected, events: [{ type: 'Ticked', data: { expected } }] }],
        }),
      );
    } catch (error) {
      if (!(error instanceof VersionConflict)) throw error;
      conflicts += 1;
    }
  }
  return { results, conflicts };
}

describe.each(storeAdapters())('event store scale-out contract ($name)', (adapter) => {
  let instances: EventStore[] = [];
  afterEach(async () => {
    await Promise.all(instances.map((s) => s.close()));
    instances = [];
  });

  it(
    `${INSTANCES} instances x ${WRITERS_PER_INSTANCE} writers on disjoint streams and ${SHARED_WRITERS} on a shared stream: one total order, every commit once, exact resume`,
    { timeout: 120_000 },
    async () => {
      instances = await adapter.createInstances(INSTANCES);
      const total = (INSTANCES * WRITERS_PER_INSTANCE + SHARED_WRITERS) * APPENDS_PER_WRITER;
      // Consumers on every instance follow live, while the writers run.
      const live = instances.map((store) => follow(store, { position: 0 }, total));

      const writers = [
        ...instances.flatMap((store, i) =>
          Array.from({ length: WRITERS_PER_INSTANCE }, (_, w) =>
            write(store, `own-${i}-${w}`, APPENDS_PER_WRITER),
          ),
        ),
        ...Array.from({ length: SHARED_WRITERS }, (_, w) =>
          write(instances[w % INSTANCES]!, 'shared', APPENDS_PER_WRITER),
        ),
      ];
      const written = await Promise.all(writers);
      const results = written.flatMap((w) => w.results);
      expect(results).toHaveLength(total);

      const sequences = await Promise.all(live);
      // Every consumer saw the same sequence: commits and gaps, position by position.
      const reference = sequences[0]!;
      for (const other of sequences.slice(1)) {
        expect(other.map((s) => `${s.position} ${s.what}`)).toEqual(
          reference.map((s) => `${s.position} ${s.what}`),
        );
      }
      // Positions are dense: every one is a commit or an explicit gap, none skipped.
      expect(reference.map((s) => s.position)).toEqual(reference.map((_, i) => i + 1));
      // Every acknowledged commit appears exactly once, at the position it was given.
      const commits = reference.filter((s) => s.what.startsWith('commit '));
      expect(commits).toHaveLength(total);
      const byId = new Map(commits.map((s) => [s.what.slice('commit '.length), s.position]));
      expect(byId.size).toBe(total);
      for (const r of results) expect(byId.get(r.commitId)).toBe(r.position);
      // Per stream, position order is version order.
      const shared = results
        .filter((r) => r.streams[0]!.stream === 'shared')
        .sort((a, b) => a.position - b.position);
      expect(shared.map((r) => r.streams[0]!.version)).toEqual(
        Array.from({ length: SHARED_WRITERS * APPENDS_PER_WRITER }, (_, i) => i + 1),
      );

      // Resuming from any cursor, on any instance, yields exactly what followed it.
      for (const cut of [1, Math.floor(reference.length / 3), reference.length - 5]) {
        const from = reference[cut - 1]!.checkpoint;
        const rest = reference.slice(cut);
        const commitsAfter = rest.filter((s) => s.what !== 'gap').length;
        const resumed = await follow(instances[cut % INSTANCES]!, from, commitsAfter);
        expect(resumed.map((s) => `${s.position} ${s.what}`)).toEqual(
          rest.slice(0, resumed.length).map((s) => `${s.position} ${s.what}`),
        );
        expect(resumed.filter((s) => s.what !== 'gap')).toHaveLength(commitsAfter);
      }
      // readAll agrees with the feeds (gaps skipped).
      const all = [];
      for (let after = 0; ;) {
        const page = await instances[1]!.readAll({ after, limit: 97 });
        if (page.length === 0) break;
        all.push(...page);
        after = page.at(-1)!.position;
      }
      expect(all.map((c) => `${c.position} commit ${c.commitId}`)).toEqual(
        commits.map((s) => `${s.position} ${s.what}`),
      );
    },
  );
});

/**
 * Gaps on the mongo adapter come from appends that reserved a position and did not commit
 * (the wire tier makes them); the memory store makes one on request, to show what every
 * consumer of a store sees of a gap.
 */
describe('gaps (memory store)', () => {
  let instances: EventStore[] = [];
  afterEach(async () => {
    await Promise.all(instances.map((s) => s.close()));
    instances = [];
  });

  it('a gap left by an append that did not commit is yielded to every consumer, in its place', async () => {
    const log = new MemoryEventLog();
    const a = new MemoryEventStore({ log });
    const b = new MemoryEventStore({ log });
    instances = [a, b];
    await a.append({
      streams: [{ stream: 's', expected: 'NO_STREAM', events: [{ type: 'E', data: {} }] }],
    });
    expect(await a.skipPosition()).toBe(2);
    await b.append({ streams: [{ stream: 's', expected: 1, events: [{ type: 'E', data: {} }] }] });
    for (const store of instances) {
      const seen = await follow(store, { position: 0 }, 2);
      expect(seen.map((s) => `${s.position} ${s.what.split(' ')[0]}`)).toEqual([
        '1 commit',
        '2 gap',
        '3 commit',
      ]);
    }
    expect((await b.readAll()).map((c) => c.position)).toEqual([1, 3]);
    expect(await b.headPosition()).toBe(3);
  });
});
