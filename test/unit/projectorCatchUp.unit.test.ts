import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY, type EventStore, type FeedItem } from '../../src/eventstore/types.js';
import { LiveApply } from '../../src/projector/liveApply.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import { ProjectorHealth } from '../../src/projector/projectorStatus.js';
import type {
  Fence,
  Projection,
  ProjectorStorage,
  ReadCollection,
  ReadDoc,
  ReadView,
} from '../../src/projector/types.js';
import { until } from '../support/until.js';
import { readCountingView } from './readCountingView.js';

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

/** Batches of `projection` applied to `view`, recorded in `storage`'s change log. */
const liveApplyOf = (storage: ProjectorStorage, projection: Projection, view: ReadView) =>
  new LiveApply({
    changeLog: storage.changeLog,
    projections: [projection],
    health: new ProjectorHealth([projection], logger, Date.now),
    now: Date.now,
    view: () => view,
    position: () => 0,
  });

describe('LiveApply reading a batch', () => {
  /** A batch of one deposit into each of `accounts` new accounts, applied by `projection`; the reads it made. */
  async function readsOfBatch(projection: Projection, accounts: number): Promise<string[][]> {
    const store = new MemoryEventStore();
    const storage = createMemoryProjectorStorage();
    const view = await storage.readModels.active();
    const reads: string[][] = [];
    const counted = readCountingView(view, (_, ids) => reads.push(ids));
    const live = liveApplyOf(storage, projection, counted);
    for (let i = 0; i < accounts; i++) await deposit(store, `acc-${i}`);
    const items = (await store.readAll({ after: 0, limit: 10_000 })).map((commit): FeedItem => ({
      kind: 'commit',
      commit,
      checkpoint: { position: commit.position },
    }));
    expect(await live.applyBatch(items, async () => {})).toBe(true);
    const docs = await view.collection<Total>('totals').find({});
    expect(docs).toHaveLength(accounts);
    return reads;
  }

  it('reads the documents a batch updates in one read per collection when the projection names them, not one read each', async () => {
    const named: Projection = {
      ...totals,
      documentIds: { collection: 'totals', of: (event) => [event.stream] },
    };
    const accounts = Array.from({ length: 6 }, (_, i) => `acc-${i}`);
    expect(await readsOfBatch(named, accounts.length)).toEqual([accounts]);
    // Unnamed, each document the batch had not seen costs a read of its own.
    expect(await readsOfBatch(totals, accounts.length)).toEqual(accounts.map((a) => [a]));
  });
});

describe('LiveApply batches in a row', () => {
  const feedItems = async (store: EventStore, after: number): Promise<FeedItem[]> =>
    (await store.readAll({ after, limit: 10_000 })).map((commit) => ({
      kind: 'commit',
      commit,
      checkpoint: { position: commit.position },
    }));

  it('keeps its documents from one batch to the next, yet regresses none another writer changed meanwhile', async () => {
    const store = new MemoryEventStore();
    const storage = createMemoryProjectorStorage();
    const view = await storage.readModels.active();
    const reads: string[] = [];
    const counted = readCountingView(view, (_, ids) => reads.push(...ids));
    const live = liveApplyOf(storage, totals, counted);
    const save = async () => {};
    for (let i = 0; i < 4; i++) await deposit(store, `acc-${i % 2}`);
    expect(await live.applyBatch(await feedItems(store, 0), save)).toBe(true);
    for (let i = 0; i < 4; i++) await deposit(store, `acc-${i % 2}`);
    reads.length = 0;
    expect(await live.applyBatch(await feedItems(store, 4), save)).toBe(true);
    // The second batch found both documents where the first left them.
    expect(reads).toEqual([]);
    const totalsOf = async () =>
      (await view.collection<Total>('totals').find({}, { sort: ['_id', 1] })).map((d) => [
        d._id,
        d.count,
        d._applied,
      ]);
    expect(await totalsOf()).toEqual([
      ['acc-0', 4, { 'acc-0': 4 }],
      ['acc-1', 4, { 'acc-1': 4 }],
    ]);

    // Another writer has applied acc-0's deposits up to its 7th before this projector's next
    // batch (its 5th and 6th): the kept copy of acc-0 is stale, and writing from it must not
    // undo that.
    for (let i = 0; i < 3; i++) await deposit(store, 'acc-0');
    await view
      .collection<Total>('totals')
      .put({ _id: 'acc-0', count: 7, _applied: { 'acc-0': 7 } });
    const next = (await feedItems(store, 8)).slice(0, 2);
    expect(await live.applyBatch(next, save)).toBe(false);
    expect(await totalsOf()).toEqual([
      ['acc-0', 7, { 'acc-0': 7 }],
      ['acc-1', 4, { 'acc-1': 4 }],
    ]);
    // Refused, the batch goes commit by commit from the stored documents, which have them.
    for (const item of next) if (item.kind === 'commit') await live.applyLive(item.commit);
    expect(await totalsOf()).toEqual([
      ['acc-0', 7, { 'acc-0': 7 }],
      ['acc-1', 4, { 'acc-1': 4 }],
    ]);
  });
});
