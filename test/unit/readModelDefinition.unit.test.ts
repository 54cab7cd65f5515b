import { describe, expect, it } from 'vitest';
import { boardReadModel, cardReadModel, columnReadModel } from '../../src/boards/readModel.js';
import { BoardReads } from '../../src/boards/reads.js';
import { applyCommit, CommitApplier } from '../../src/projector/applyCommit.js';
import type { Commit } from '../../src/eventstore/types.js';
import { defineReadModel, docType, projectionsOf } from '../../src/projector/readModel.js';
import type { ReadDoc, ReadView } from '../../src/projector/types.js';
import { WriteBehindView } from '../../src/projector/WriteBehindView.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { given } from './projectionTestKit.js';
import { readCountingView } from './readCountingView.js';

interface CountDoc extends ReadDoc {
  events: number;
}

/** Counts each board's card events: one document per board, written by every card's stream. */
const perBoard = defineReadModel({
  name: 'cardEventsPerBoard',
  collection: 'cardEventsPerBoard',
  doc: docType<CountDoc>(),
  projection: {
    handles: ['CardCreated', 'CardEdited'],
    after: ['cards'],
    async apply({ commit, updateForCommit, scopes }) {
      const events = commit.events.filter((e) => e.stream.startsWith('card-')).length;
      for (const boardId of scopes) {
        await updateForCommit<CountDoc>('cardEventsPerBoard', boardId, (doc) => ({
          _id: boardId,
          events: (doc?.events ?? 0) + events,
        }));
      }
    },
  },
});

const created = (cardId: string) => ({
  stream: `card-${cardId}`,
  type: 'CardCreated',
  data: { cardId, boardId: 'b1', columnId: 'col1', title: cardId, description: '', rank: 'a0' },
});

/**
 * Counts each card's events in a document of its own, keeping what every `update` resolved
 * with and how many times its change ran.
 */
function echoModel() {
  const resolved: CountDoc[] = [];
  let changes = 0;
  const model = defineReadModel({
    name: 'echo',
    collection: 'echo',
    doc: docType<CountDoc>(),
    projection: {
      handles: ['CardCreated', 'CardEdited'],
      async apply({ commit, update }) {
        for (const event of commit.events) {
          const doc = await update<CountDoc>('echo', event.stream, event, (current) => {
            changes += 1;
            return { _id: event.stream, events: (current?.events ?? 0) + 1 };
          });
          resolved.push(doc);
        }
      },
    },
  });
  return { model, resolved, changes: () => changes };
}

describe('read models', () => {
  it.each([
    ['the store', (view: ReadView) => view],
    ['a write-behind view (catch-up, rebuild)', (view: ReadView) => new WriteBehindView(view)],
  ])(
    'resolves update with the document as it now stands, in %s, and on a replay with the one that applied the event, without changing it',
    async (_, viewOf) => {
      const echo = echoModel();
      const { when } = await given([], [echo.model]);
      await when(created('c1'));
      const then = await when({ stream: 'card-c1', type: 'CardEdited', data: { changes: {} } });
      const view = viewOf(then.view);
      const stored = await echo.model.documents(then.view).get('card-c1');
      expect(echo.resolved.at(-1)).toEqual(stored);
      expect(stored).toMatchObject({ events: 2, _applied: { 'card-c1': 2 } });
      // The replay's update resolves with the stored document; its change does not run.
      await applyCommit(then.commit, view, [echo.model.projection]);
      expect(echo.changes()).toBe(2);
      expect(echo.resolved.at(-1)).toEqual(stored);
    },
  );

  it('refuses a projection listed before one it reads (after), naming both', () => {
    expect(() => projectionsOf([perBoard, cardReadModel])).toThrow(
      'projection cardEventsPerBoard reads cards, which must be applied before it',
    );
    expect(projectionsOf([cardReadModel, perBoard]).map((p) => p.name)).toEqual([
      'cards',
      'cardEventsPerBoard',
    ]);
  });

  it('refuses two read models of one name or one collection', () => {
    expect(() => projectionsOf([cardReadModel, cardReadModel])).toThrow('declared twice');
    const sameCollection = defineReadModel({
      ...perBoard,
      doc: docType(),
      name: 'x',
      collection: 'boards',
    });
    expect(() => projectionsOf([boardReadModel, sameCollection])).toThrow(
      'collection boards has two read models',
    );
  });

  it('gives a projection the scopes of the projections before it, and applies a many-stream document once per commit with one idempotency key', async () => {
    const { when } = await given([], [cardReadModel, perBoard]);
    await when(created('c1'), created('c2'));
    const then = await when(created('c3'), {
      stream: 'card-c1',
      type: 'CardEdited',
      data: { changes: { title: 'new' } },
    });
    expect(then.scopes).toEqual(['b1']);
    expect(await then.doc(perBoard, 'b1')).toEqual({ _id: 'b1', events: 4 });
    // A replay after a crash changes nothing.
    await then.replay();
    expect(await then.doc(perBoard, 'b1')).toEqual({ _id: 'b1', events: 4 });
    // Three streams wrote it; it keeps one key, the last commit's position.
    const stored = await perBoard.documents(then.view).get('b1');
    expect(stored?._applied).toEqual({ '#commit': then.commit.position });
  });

  it("runs a read model's named query through a request's reads", async () => {
    const { when } = await given([]);
    const then = await when(created('c2'), created('c1'));
    const reads = new BoardReads(then.view, new AbortController().signal);
    const cards = await reads.query(cardReadModel, cardReadModel.queries.liveOfBoard, 'b1');
    expect(cards.map((c) => c._id).sort()).toEqual(['c1', 'c2']);
  });

  it('names every card and column document its projections update, so a batch reads them all at once', async () => {
    const { when } = await given([]);
    const commits: Commit[] = [];
    const record = async (...events: Parameters<typeof when>) =>
      commits.push((await when(...events)).commit);
    const column = (type: string, data: object) => ({ stream: 'column-col1', type, data });
    await record(
      column('ColumnCreated', { columnId: 'col1', boardId: 'b1', name: 'To do', wipLimit: null }),
    );
    await record(created('c1'), column('CardEntered', { cardId: 'c1', rank: 'a0' }));
    await record(created('c2'), column('CardEntered', { cardId: 'c2', rank: 'a1' }));
    await record(
      { stream: 'card-c1', type: 'CardEdited', data: { changes: { title: 'new' } } },
      { stream: 'card-c2', type: 'CardArchived', data: { rank: 'a1' } },
      column('CardsArchived', { cardIds: ['c2'] }),
    );
    await record(column('CardsRebalanced', { ranks: { c1: 'a5' } }));
    // The same commits again on a new generation, through a write-behind view that counts reads.
    const storage = createMemoryProjectorStorage();
    const view = await storage.readModels.active();
    const reads: [string, string[]][] = [];
    const counted = readCountingView(view, (collection, ids) => reads.push([collection, ids]));
    const applier = new CommitApplier(new WriteBehindView(counted), [
      columnReadModel.projection,
      cardReadModel.projection,
    ]);
    await applier.prefetch(commits);
    for (const commit of commits) await applier.apply(commit);
    expect(reads).toEqual([
      ['columns', ['col1']],
      ['cards', ['c1', 'c2']],
    ]);
  });
});
