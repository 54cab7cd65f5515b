import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY, type EventStore, type NewEvent } from '../../src/eventstore/types.js';
import { UpcasterRegistry } from '../../src/eventstore/upcasters.js';
import { historySpecs } from '../../src/boards/history/changes.js';
import { lookbackLimit, readHistory } from '../../src/boards/history/readHistory.js';
import { cardStream } from '../../src/boards/streams.js';

/** The store, counting the reads history makes and the events they hand back. */
function counting(inner: EventStore) {
  const cost = { reads: 0, events: 0 };
  const store: EventStore = {
    ...Object.fromEntries(
      (
        [
          'append',
          'readStream',
          'streamVersion',
          'readAll',
          'headPosition',
          'idempotentResult',
          'subscribe',
          'close',
        ] as const
      ).map((m) => [
        m,
        (...args: unknown[]) => (inner[m] as (...a: unknown[]) => unknown)(...args),
      ]),
    ),
    readStream: async (stream, options) => {
      const events = await inner.readStream(stream, options);
      cost.reads += 1;
      cost.events += events.length;
      return events;
    },
    readStreamBackward: async (stream, options) => {
      const events = await inner.readStreamBackward(stream, options);
      cost.reads += 1;
      cost.events += events.length;
      return events;
    },
  } as EventStore;
  return { store, cost };
}

const created: NewEvent = {
  type: 'CardCreated',
  data: { cardId: 'k', boardId: 'b', columnId: 'c1', title: 't0', description: '', rank: 'm' },
};

/** Edit `i` of a card that keeps being worked on: each field comes back within five edits. */
function edit(i: number): NewEvent {
  switch (i % 5) {
    case 0:
      return { type: 'CardEdited', data: { changes: { title: `t${i}` } } };
    case 1:
      return { type: 'CardEdited', data: { changes: { done: i % 2 === 0 } } };
    case 2:
      return { type: 'CardEdited', data: { changes: { labels: [`l${i}`] } } };
    case 3:
      return { type: 'CardEdited', data: { changes: { assigneeId: `u${i}` } } };
    default:
      return {
        type: 'CardMoved',
        data: { fromColumnId: `c${i - 5}`, toColumnId: `c${i}`, rank: `r${i}` },
      };
  }
}

async function cardWithEdits(store: EventStore, edits: number, editOf = edit) {
  await store.append({ streams: [{ stream: cardStream('k'), expected: ANY, events: [created] }] });
  for (let i = 1; i <= edits; i += 500) {
    const events = Array.from({ length: Math.min(500, edits - i + 1) }, (_, j) => editOf(i + j));
    await store.append({
      streams: [{ stream: cardStream('k'), expected: ANY, events }],
      metadata: { actor: 'alice' },
    });
  }
}

describe('card history paging', () => {
  it('costs the same store reads and events per page at the head, the middle and the start of 10,000 edits', async () => {
    const { store, cost } = counting(new MemoryEventStore());
    await cardWithEdits(store, 10_000);
    const first = 50;
    const costs: { reads: number; events: number }[] = [];
    const seen: number[] = [];
    let before: number | undefined;
    for (;;) {
      cost.reads = 0;
      cost.events = 0;
      const page = await readHistory(store, historySpecs.Card, {
        id: 'k',
        first,
        beforeVersion: before,
      });
      costs.push({ ...cost });
      seen.push(...page.entries.map((e) => e.version));
      if (!page.hasNextPage) break;
      before = page.entries.at(-1)!.version;
    }
    // Every version once, newest first.
    expect(seen).toEqual(Array.from({ length: 10_001 }, (_, i) => 10_001 - i));
    expect(costs).toHaveLength(Math.ceil(10_001 / first));
    // The page, plus one look-back read for the fields the page's oldest changes need.
    for (const c of costs) {
      expect(c.reads).toBeLessThanOrEqual(2);
      expect(c.events).toBeLessThanOrEqual(first + lookbackLimit(0));
    }
  });

  it("gives each change the value the field had before, from the page's older events or a look-back", async () => {
    const store = new MemoryEventStore();
    await cardWithEdits(store, 12);
    // Versions 13..10 are edits 12 (labels), 11 (done), 10 (title) and 9 (a move).
    const { entries, hasNextPage } = await readHistory(store, historySpecs.Card, {
      id: 'k',
      first: 4,
    });
    expect(hasNextPage).toBe(true);
    expect(entries.map((e) => [e.version, e.operation, e.actor])).toEqual([
      [13, 'CardEdited', 'alice'],
      [12, 'CardEdited', 'alice'],
      [11, 'CardEdited', 'alice'],
      [10, 'CardMoved', 'alice'],
    ]);
    expect(entries[0]!.changes).toEqual([{ field: 'labels', from: ['l7'], to: ['l12'] }]);
    expect(entries[1]!.changes).toEqual([{ field: 'done', from: true, to: false }]);
    expect(entries[2]!.changes).toEqual([{ field: 'title', from: 't5', to: 't10' }]);
    expect(entries[3]!.changes).toEqual([
      { field: 'column', from: { ref: 'Column', id: 'c4' }, to: { ref: 'Column', id: 'c9' } },
      { field: 'rank', from: 'r4', to: 'r9' },
    ]);
    // The oldest page: creation, every field from null.
    const last = await readHistory(store, historySpecs.Card, {
      id: 'k',
      first: 4,
      beforeVersion: 2,
    });
    expect(last.hasNextPage).toBe(false);
    expect(last.entries.map((e) => e.operation)).toEqual(['CardCreated']);
    expect(last.entries[0]!.changes.every((c) => c.from === null)).toBe(true);
  });

  it("reads old event shapes through the store's upcasters, and shows a system change with no actor", async () => {
    // A former CardEdited shape kept the new title at the top level.
    const upcasters = new UpcasterRegistry().register('CardEdited', 1, (data) => ({
      changes: { title: data.newTitle },
    }));
    const store = new MemoryEventStore({ upcasters });
    await store.append({
      streams: [{ stream: cardStream('k'), expected: ANY, events: [created] }],
      metadata: { actor: 'alice' },
    });
    await store.append({
      streams: [
        {
          stream: cardStream('k'),
          expected: ANY,
          events: [{ type: 'CardEdited', data: { newTitle: 'lifted' } }],
        },
      ],
    });
    const { entries } = await readHistory(store, historySpecs.Card, { id: 'k', first: 10 });
    expect(entries[0]).toMatchObject({ version: 2, actor: null, operation: 'CardEdited' });
    expect(entries[0]!.changes).toEqual([{ field: 'title', from: 't0', to: 'lifted' }]);
    expect(entries[1]!.actor).toBe('alice');
  });

  it('looks back past a whole chunk for a field untouched since the card was created', async () => {
    const { store, cost } = counting(new MemoryEventStore());
    // 300 title edits, then the first description edit.
    await cardWithEdits(store, 301, (i) => ({
      type: 'CardEdited',
      data: { changes: i === 301 ? { description: 'now' } : { title: `t${i}` } },
    }));
    const { entries } = await readHistory(store, historySpecs.Card, { id: 'k', first: 1 });
    expect(entries[0]!.changes).toEqual([{ field: 'description', from: '', to: 'now' }]);
    // The page, then the look-back down to the creation event (300 events back).
    let steps = 0;
    for (let read = 0; read < 301; steps += 1) read += lookbackLimit(steps);
    expect(steps).toBeGreaterThan(1);
    expect(cost.reads).toBe(1 + steps);
    expect(cost.events).toBe(1 + 301);
  });
});
