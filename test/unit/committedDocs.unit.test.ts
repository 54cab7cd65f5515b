import { afterEach, describe, expect, it } from 'vitest';
import { committedDoc, committedDocPosition } from '../../src/boards/committedDocs.js';
import { cardStream } from '../../src/boards/streams.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY, type NewEvent } from '../../src/eventstore/types.js';

const stores: MemoryEventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const created: NewEvent = {
  type: 'CardCreated',
  data: { cardId: 'k', boardId: 'b', columnId: 'c1', title: 'first', description: '', rank: 'm' },
};
const retitled = (title: string): NewEvent => ({
  type: 'CardEdited',
  data: { changes: { title } },
});

describe('committedDoc', () => {
  it('builds a written resource as of the version its write made, nothing newer, when asked to', async () => {
    const store = new MemoryEventStore();
    stores.push(store);
    for (const events of [[created], [retitled('second')], [retitled('third')]]) {
      await store.append({
        streams: [{ stream: cardStream('k'), expected: ANY, events }],
        metadata: { actor: 'alice' },
      });
    }
    // A payload for the write that made version 2 shows version 2 (the author may have
    // lost access since: a later change must not reach them through it).
    expect(await committedDoc(store, 'Card', 'k', undefined, { version: 2 })).toMatchObject({
      title: 'second',
      version: 2,
    });
    // Without a bound (a commit not projected yet): everything committed.
    expect(await committedDoc(store, 'Card', 'k')).toMatchObject({ title: 'third', version: 3 });
    expect(await committedDoc(store, 'Card', 'missing', undefined, { version: 2 })).toBeNull();
  });

  it('builds a resource as of a commit position, and says which position a document it built shows', async () => {
    const store = new MemoryEventStore();
    stores.push(store);
    const positions: number[] = [];
    for (const events of [[created], [retitled('second')], [retitled('third')]]) {
      const commit = await store.append({
        streams: [{ stream: cardStream('k'), expected: ANY, events }],
        metadata: { actor: 'alice' },
      });
      positions.push(commit.position);
    }
    // The holder of a payload's document, as of that document's commit: nothing newer.
    const asOfSecond = await committedDoc(store, 'Card', 'k', undefined, {
      position: positions[1]!,
    });
    expect(asOfSecond).toMatchObject({ title: 'second', version: 2 });
    expect(committedDocPosition(asOfSecond!)).toBe(positions[1]);
    const latest = await committedDoc(store, 'Card', 'k');
    expect(committedDocPosition(latest!)).toBe(positions[2]);
    // A document read from the read model has none.
    expect(committedDocPosition({ ...latest! })).toBeUndefined();
  });
});
