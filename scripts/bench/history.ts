/**
 * History paging: what one page of `Card.history` costs on a short stream and on a long one.
 *
 *   npm run bench:history
 *   (BENCH_EDITS=100,10000, BENCH_PAGES=400, BENCH_PAGE_SIZE=50)
 *
 * One process, the memory event store, one card per size with that many edits (the edit
 * mix of `test/unit/historyPaging.unit.test.ts`: each field changes again within five
 * edits). BENCH_PAGES full pages are read through `readHistory`, each at a random depth of a
 * card picked in turn (interleaved, so load changes hit every size alike); per size it
 * prints the median and p99 ms per page and the store reads and events per page, then
 * the ratio of the longest stream's median to the shortest one's, and the load average.
 */
import { loadavg } from 'node:os';
import { historySpecs } from '../../src/boards/history/changes.js';
import { readHistory } from '../../src/boards/history/readHistory.js';
import { cardStream } from '../../src/boards/streams.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY, type EventStore, type NewEvent } from '../../src/eventstore/types.js';
import { median, percentile, printTable } from './report.js';

const SIZES = (process.env.BENCH_EDITS ?? '100,10000').split(',').map(Number);
const PAGES = Number(process.env.BENCH_PAGES ?? 400);
const PAGE_SIZE = Number(process.env.BENCH_PAGE_SIZE ?? 50);

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
      return { type: 'CardMoved', data: { fromColumnId: 'a', toColumnId: 'b', rank: `r${i}` } };
  }
}

async function seed(store: EventStore, cardId: string, edits: number): Promise<void> {
  const created: NewEvent = {
    type: 'CardCreated',
    data: { cardId, boardId: 'b', columnId: 'a', title: 't', description: '', rank: 'm' },
  };
  const events = [created, ...Array.from({ length: edits }, (_, i) => edit(i + 1))];
  for (let i = 0; i < events.length; i += 500) {
    await store.append({
      streams: [{ stream: cardStream(cardId), expected: ANY, events: events.slice(i, i + 500) }],
    });
  }
}

const inner = new MemoryEventStore();
const cost = { reads: 0, events: 0 };
const store: EventStore = Object.assign(Object.create(inner) as EventStore, {
  readStreamBackward: async (...args: Parameters<EventStore['readStreamBackward']>) => {
    const events = await inner.readStreamBackward(...args);
    cost.reads += 1;
    cost.events += events.length;
    return events;
  },
  streamVersion: (...args: Parameters<EventStore['streamVersion']>) => inner.streamVersion(...args),
});
for (const edits of SIZES) await seed(inner, `card${edits}`, edits);

const before = loadavg()[0]!.toFixed(1);
const samples = new Map(SIZES.map((n) => [n, { ms: [] as number[], reads: 0, events: 0 }]));
for (let i = 0; i < PAGES * SIZES.length; i += 1) {
  const edits = SIZES[i % SIZES.length]!;
  // A full page, at any depth.
  const beforeVersion = PAGE_SIZE + 2 + Math.floor(Math.random() * (edits - PAGE_SIZE));
  cost.reads = 0;
  cost.events = 0;
  const started = process.hrtime.bigint();
  await readHistory(store, historySpecs.Card, {
    id: `card${edits}`,
    first: PAGE_SIZE,
    beforeVersion,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const sample = samples.get(edits)!;
  sample.ms.push(ms);
  sample.reads += cost.reads;
  sample.events += cost.events;
}
const rows = SIZES.map((edits) => {
  const s = samples.get(edits)!;
  const sorted = [...s.ms].sort((a, b) => a - b);
  return [
    String(edits),
    median(s.ms).toFixed(3),
    percentile(sorted, 0.99).toFixed(3),
    (s.reads / PAGES).toFixed(2),
    (s.events / PAGES).toFixed(1),
  ];
});
printTable(['edits', 'p50 ms/page', 'p99 ms/page', 'reads/page', 'events/page'], rows, 1);
const first = median(samples.get(SIZES[0]!)!.ms);
const last = median(samples.get(SIZES.at(-1)!)!.ms);
console.log(
  `history page p50 at ${SIZES.at(-1)} edits / at ${SIZES[0]} edits: ${(last / first).toFixed(2)}`,
);
console.log(`load average (1 min): ${before} before, ${loadavg()[0]!.toFixed(1)} after`);
