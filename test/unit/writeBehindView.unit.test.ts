import { describe, expect, it } from 'vitest';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import type { ReadDoc } from '../../src/projector/types.js';
import { WriteBehindView } from '../../src/projector/WriteBehindView.js';

interface Doc extends ReadDoc {
  n: number;
}

describe('WriteBehindView', () => {
  it('keeps writes in memory until flush, then writes each changed document once', async () => {
    const storage = createMemoryProjectorStorage();
    const view = await storage.readModels.active();
    await view.collection<Doc>('docs').put({ _id: 'a', n: 1 });
    const calls: number[] = [];
    const spied = {
      generation: view.generation,
      collection: <T extends ReadDoc>(name: string) => {
        const c = view.collection<T>(name);
        return {
          ...c,
          get: c.get.bind(c),
          getMany: c.getMany.bind(c),
          find: c.find.bind(c),
          count: c.count.bind(c),
          put: c.put.bind(c),
          delete: c.delete.bind(c),
          putMany: async (docs: readonly T[]) =>
            void (calls.push(docs.length), await c.putMany(docs)),
        };
      },
    };
    const buffered = new WriteBehindView(spied);
    const docs = buffered.collection<Doc>('docs');
    for (let i = 0; i < 5; i++) {
      const a = await docs.get('a');
      await docs.put({ _id: 'a', n: a!.n + 1 });
    }
    await docs.put({ _id: 'b', n: 10 });
    expect(await docs.get('a')).toEqual({ _id: 'a', n: 6 });
    expect(await view.collection<Doc>('docs').get('a')).toEqual({ _id: 'a', n: 1 });

    await buffered.flush();
    expect(calls).toEqual([2]);
    expect(await view.collection<Doc>('docs').find({}, { sort: ['_id', 1] })).toEqual([
      { _id: 'a', n: 6 },
      { _id: 'b', n: 10 },
    ]);
  });

  it('flushes before a query so the query sees every write', async () => {
    const storage = createMemoryProjectorStorage();
    const buffered = new WriteBehindView(await storage.readModels.active());
    const docs = buffered.collection<Doc>('docs');
    await docs.put({ _id: 'x', n: 1 });
    expect(await docs.count({ n: 1 })).toBe(1);
  });
  it('counts changed documents until flushed, and keeps a document written while it was being loaded', async () => {
    const storage = createMemoryProjectorStorage();
    const view = await storage.readModels.active();
    await view.collection<Doc>('docs').put({ _id: 'a', n: 1 });
    const buffered = new WriteBehindView(view);
    const docs = buffered.collection<Doc>('docs');
    const loading = docs.get('a');
    await docs.put({ _id: 'a', n: 2 });
    expect(await loading).toEqual({ _id: 'a', n: 2 });
    expect(await docs.get('a')).toEqual({ _id: 'a', n: 2 });
    await docs.put({ _id: 'a', n: 3 });
    await docs.putMany([{ _id: 'b', n: 1 }]);
    expect(buffered.pending).toBe(2);

    await buffered.flush();
    expect(buffered.pending).toBe(0);
    expect(await view.collection<Doc>('docs').find({}, { sort: ['_id', 1] })).toEqual([
      { _id: 'a', n: 3 },
      { _id: 'b', n: 1 },
    ]);
  });
});
