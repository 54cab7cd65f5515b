import { describe, expect, it } from 'vitest';
import {
  cardReadModel,
  Collections,
  readModelIndexes,
  type CardDoc,
} from '../../src/boards/readModel.js';
import { runQuery } from '../../src/projector/readModel.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import {
  FencedOut,
  StaleWrite,
  type Fence,
  type ReadDoc,
  type ReadFilter,
  type ReadView,
} from '../../src/projector/types.js';

interface Doc extends ReadDoc {
  boardId?: string | null;
  archived: boolean;
  rank: string;
  members: string[];
  createdAt: Date;
  tags: { name: string }[];
}

async function viewOf(indexed: boolean): Promise<ReadView> {
  const storage = createMemoryProjectorStorage(
    indexed
      ? {
          readModelIndexes: {
            ...readModelIndexes,
            things: [
              { key: { boardId: 1, archived: 1, rank: 1, _id: 1 } },
              { key: { members: 1 } },
            ],
          },
        }
      : {},
  );
  return storage.readModels.active();
}

/** A small deterministic generator, so a failure replays. */
function random(seed: number) {
  let state = seed;
  return (n: number) => {
    // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
}

describe('memory read model', () => {
  it('answers every filter from its indexes exactly as a scan of every document does', async () => {
    const [indexed, scanned] = await Promise.all([viewOf(true), viewOf(false)]);
    const next = random(7);
    const boards = ['b1', 'b2', 'b3', null, undefined];
    const users = ['u1', 'u2', 'u3', 'u4'];
    // Writes that move documents between index buckets, overwrite and delete them.
    for (let i = 0; i < 600; i += 1) {
      const id = `d${next(80)}`;
      if (next(10) === 0) {
        await indexed.collection<Doc>('things').delete(id);
        await scanned.collection<Doc>('things').delete(id);
        continue;
      }
      const doc: Doc = {
        _id: id,
        archived: next(3) === 0,
        rank: String.fromCharCode(97 + next(5)),
        members: Array.from({ length: next(3) }, () => users[next(users.length)]!),
        createdAt: new Date(1_700_000_000_000 + next(5) * 1000),
        tags: [],
      };
      const boardId = boards[next(boards.length)];
      if (boardId !== undefined) doc.boardId = boardId;
      await indexed.collection<Doc>('things').putMany([doc]);
      await scanned.collection<Doc>('things').putMany([doc]);
    }
    const filters: ReadFilter[] = [
      {},
      ...boards.map((b) => ({ boardId: b ?? null })),
      ...boards.map((b) => ({ boardId: b ?? null, archived: false })),
      ...users.map((u) => ({ members: u })),
      { members: 'nobody' },
      { boardId: 'b1', members: 'u2' },
      { boardId: 'b2', rank: { gt: 'b' } },
    ];
    for (const filter of filters) {
      for (const sort of [
        ['rank', 1],
        ['createdAt', -1],
        ['_id', 1],
      ] as const) {
        const query = (v: ReadView) => v.collection<Doc>('things').find(filter, { sort });
        const [a, b] = await Promise.all([query(indexed), query(scanned)]);
        expect(a, JSON.stringify({ filter, sort })).toEqual(b);
        // Ties are broken by _id, so the order is total and the same on both.
        expect(a.map((d) => d._id)).toEqual(b.map((d) => d._id));
      }
      const count = (v: ReadView) => v.collection<Doc>('things').count(filter);
      expect(await count(indexed)).toBe(await count(scanned));
    }
    expect(
      (await indexed.collection<Doc>('things').find({ boardId: 'b1' })).length,
    ).toBeGreaterThan(0);
  });

  it('hands out documents no reader can change, and keeps none of a writer’s objects', async () => {
    const view = await viewOf(true);
    const cards = view.collection<Doc>(Collections.Cards);
    const written: Doc = {
      _id: 'c1',
      boardId: 'b1',
      archived: false,
      rank: 'a',
      members: ['u1'],
      createdAt: new Date(1_700_000_000_000),
      tags: [{ name: 'bug' }],
    };
    await cards.put(written);
    // The writer changes its own object afterwards: the store kept a copy.
    written.rank = 'z';
    written.members.push('u9');
    written.createdAt.setTime(0);
    written.tags[0]!.name = 'changed';

    const [got] = await cards.find({ boardId: 'b1' });
    const byId = await cards.get('c1');
    const [many] = await cards.getMany(['c1']);
    for (const doc of [got!, byId!, many!]) {
      expect(() => {
        doc.rank = 'y';
      }).toThrow(TypeError);
      expect(() => doc.members.push('u8')).toThrow(TypeError);
      expect(() => doc.createdAt.setTime(1)).toThrow(TypeError);
      expect(() => doc.createdAt.setFullYear(1999)).toThrow(TypeError);
      expect(() => {
        doc.tags[0]!.name = 'x';
      }).toThrow(TypeError);
      expect(() => {
        delete (doc as Partial<Doc>).boardId;
      }).toThrow(TypeError);
    }
    const stored = (await cards.get('c1'))!;
    expect(stored).toEqual({
      _id: 'c1',
      boardId: 'b1',
      archived: false,
      rank: 'a',
      members: ['u1'],
      createdAt: new Date(1_700_000_000_000),
      tags: [{ name: 'bug' }],
    });
    expect(stored.createdAt).toBeInstanceOf(Date);
    expect(stored.createdAt.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    // Still found under its indexed value, and only there.
    expect(await cards.find({ boardId: 'b1' })).toHaveLength(1);
    expect(await cards.find({ boardId: 'b2' })).toHaveLength(0);
    // A reader's copy to change is an ordinary object again.
    const copy = structuredClone(stored);
    copy.createdAt.setTime(0);
    copy.members.push('u2');
    expect(copy.members).toEqual(['u1', 'u2']);
    expect((await cards.get('c1'))!.members).toEqual(['u1']);
  });
});

describe('memory read model putEach', () => {
  const fence = (epoch: number): Fence => ({ lease: 'projector', owner: `p${epoch}`, epoch });

  it('writes each document as put would, then throws FencedOut before StaleWrite for the refused ones', async () => {
    const storage = createMemoryProjectorStorage();
    const { generation } = await storage.readModels.active();
    const newer = storage.readModels.view(generation, { fence: fence(2) });
    const older = storage.readModels.view(generation, { fence: fence(1) });
    type Counter = ReadDoc & { n: number };
    await newer.collection<Counter>('c').put({ _id: 'a', n: 1, _applied: { s: 5 } });
    await older.collection<Counter>('c').put({ _id: 'b', n: 1, _applied: { s: 5 } });
    const each = (docs: Counter[]) => older.collection<Counter>('c').putEach(docs);
    await expect(
      each([
        { _id: 'b', n: 9, _applied: { s: 4 } },
        { _id: 'a', n: 9, _applied: { s: 9 } },
        { _id: 'c', n: 3, _applied: { s: 1 } },
      ]),
    ).rejects.toThrow(FencedOut);
    await expect(
      each([
        { _id: 'b', n: 9, _applied: { s: 4 } },
        { _id: 'd', n: 4, _applied: { s: 1 } },
      ]),
    ).rejects.toThrow(StaleWrite);
    await each([
      { _id: 'b', n: 6, _applied: { s: 6 } },
      { _id: 'b', n: 7, _applied: { s: 7 } },
    ]);
    const docs = await newer.collection<Counter>('c').getMany(['a', 'b', 'c', 'd']);
    expect(docs.map((d) => d?.n)).toEqual([1, 7, 3, 4]);
  });
});

describe('memory read model indexes', () => {
  it("reads a board's live cards by looking at that board's cards only, however many other boards hold", async () => {
    const view = await createMemoryProjectorStorage({ readModelIndexes }).readModels.active();
    const cards = cardReadModel.documents(view);
    const card = (boardId: string, i: number, archived = false) =>
      ({
        _id: `${boardId}-${i}`,
        boardId,
        archived,
        rank: `r${String(i).padStart(6, '0')}`,
      }) as CardDoc;
    const examined = () => (cards as unknown as { examined: number }).examined;
    await cards.putMany(Array.from({ length: 200 }, (_, i) => card('mine', i, i % 10 === 0)));
    const before = examined();
    const alone = await runQuery(view, cardReadModel, cardReadModel.queries.liveOfBoard, 'mine');
    const lookedAt = examined() - before;
    await cards.putMany(Array.from({ length: 20_000 }, (_, i) => card('big', i)));
    const after = examined();
    const beside = await runQuery(view, cardReadModel, cardReadModel.queries.liveOfBoard, 'mine');
    expect(beside).toEqual(alone);
    expect(alone).toHaveLength(180);
    // The board's 200 cards (its archived ones too: the index's first key is boardId).
    expect(lookedAt).toBe(200);
    expect(examined() - after).toBe(lookedAt);
  });
});
