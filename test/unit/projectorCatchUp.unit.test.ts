import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY, type EventStore } from '../../src/eventstore/types.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import type {
  Fence,
  Projection,
  ProjectorStorage,
  ReadCollection,
  ReadDoc,
  ReadView,
} from '../../src/projector/types.js';
import { until } from '../support/until.js';

const logger = pino({ level: 'silent' });

interface Total extends ReadDoc {
  count: number;
}

/** Counts deposits per account, and names the account in the change log. */
const totals: Projection = {
  name: 'totals',
  handles: ['Deposited'],
  async apply(context) {
    for (const event of context.commit.events) {
      await context.update<Total>('totals', event.stream, event, (doc) => ({
        _id: event.stream,
        count: (doc?.count ?? 0) + 1,
      }));
      context.invalidate('bank', {
        typename: 'Total',
        id: event.stream,
        fields: ['count'],
        version: event.version,
      });
    }
  },
};

const deposit = (store: EventStore, account: string) =>
  store.append({
    streams: [{ stream: account, expected: ANY, events: [{ type: 'Deposited', data: {} }] }],
    metadata: {},
  });

/** Memory storage whose fenced views count `put`s and record the fences they carry. */
function countingStorage() {
  const storage = createMemoryProjectorStorage();
  const puts: (Fence | undefined)[] = [];
  const readModels = storage.readModels;
  const counted: ProjectorStorage = {
    ...storage,
    readModels: {
      active: (o) => readModels.active(o),
      createGeneration: () => readModels.createGeneration(),
      activate: (g, e) => readModels.activate(g, e),
      dropGeneration: (g) => readModels.dropGeneration(g),
      view: (generation, options): ReadView => {
        const view = readModels.view(generation, options);
        return {
          generation,
          collection: <T extends ReadDoc>(name: string): ReadCollection<T> => {
            const c = view.collection<T>(name);
            return {
              get: (id, o) => c.get(id, o),
              getMany: (ids, o) => c.getMany(ids, o),
              find: (f, o) => c.find(f, o),
              count: (f, o) => c.count(f, o),
              putMany: (docs) => c.putMany(docs),
              delete: (id) => c.delete(id),
              put: (doc) => (puts.push(options?.fence), c.put(doc)),
              putEach: (docs) => (docs.forEach(() => puts.push(options?.fence)), c.putEach(docs)),
            };
          },
        };
      },
    },
  };
  return { storage: counted, puts };
}

describe('ProjectorRuntime catching up', () => {
  const runtimes: ProjectorRuntime[] = [];
  afterEach(async () => {
    for (const r of runtimes.splice(0)) await r.stop();
  });

  it('far behind, writes each document once per batch, fenced, and records every commit in order', async () => {
    const store = new MemoryEventStore();
    const commits = 600;
    for (let i = 0; i < commits; i++) await deposit(store, `acc-${i % 3}`);
    const { storage, puts } = countingStorage();
    const runtime = new ProjectorRuntime({ store, storage, projections: [totals], logger });
    runtimes.push(runtime);
    runtime.start();
    await until(async () => (await runtime.lag()).checkpoint === commits);

    const view = await storage.readModels.active();
    const docs = await view.collection<Total>('totals').find({}, { sort: ['_id', 1] });
    expect(docs.map((d) => [d._id, d.count])).toEqual([
      ['acc-0', 200],
      ['acc-1', 200],
      ['acc-2', 200],
    ]);
    // 600 commits on 3 documents: a few batches of at most 3 writes, not 600 writes.
    expect(puts.length).toBeLessThanOrEqual(12);
    expect(puts.every((fence) => fence?.lease === 'projector' && fence.epoch >= 1)).toBe(true);
    const log = await storage.changeLog.read(0, { limit: 10_000 });
    if (log.kind !== 'entries') throw new Error('change log expired');
    expect(log.entries.map((e) => e.cursor)).toEqual(
      Array.from({ length: commits }, (_, i) => i + 1),
    );
    expect(log.entries[4]).toMatchObject({
      scopes: ['bank'],
      invalidated: [{ typename: 'Total', id: 'acc-1', fields: ['count'], version: 2 }],
    });
    expect((await runtime.lag()).commitsProcessed).toBe(commits);

    // Caught up, it goes one commit at a time again.
    puts.length = 0;
    await deposit(store, 'acc-0');
    await until(async () => (await runtime.lag()).checkpoint === commits + 1);
    expect(puts).toHaveLength(1);
  });
});
