import { afterEach, describe, expect, it } from 'vitest';
import { committedDoc } from '../../src/boards/committedDocs.js';
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
    expect(await committedDoc(store, 'Card', 'k', undefined, 2)).toMatchObject({
      title: 'second',
      version: 2,
    });
    // Without a bound (a commit not projected yet): everything committed.
    expect(await committedDoc(store, 'Card', 'k')).toMatchObject({ title: 'third', version: 3 });
    expect(await committedDoc(store, 'Card', 'missing', undefined, 2)).toBeNull();
  });
});
