import { describe, expect, it } from 'vitest';
import { cardReadModel, columnReadModel } from '../../src/boards/readModel.js';
import { commitTime, given, type GivenEvent } from './projectionTestKit.js';
import { cardFields, newCardDefaults } from '../../src/boards/card/events.js';

const columnCreated = (columnId: string, wipLimit: number | null = null): GivenEvent => ({
  stream: `column-${columnId}`,
  type: 'ColumnCreated',
  data: { columnId, boardId: 'b1', name: columnId, wipLimit },
});
const entered = (columnId: string, cardId: string, rank: string): GivenEvent => ({
  stream: `column-${columnId}`,
  type: 'CardEntered',
  data: { cardId, rank },
});
const cardCreated = (cardId: string, columnId: string, rank: string): GivenEvent => ({
  stream: `card-${cardId}`,
  type: 'CardCreated',
  data: { cardId, boardId: 'b1', columnId, title: `T ${cardId}`, description: '', rank },
});

describe('card projection', () => {
  it('writes a new card with the state defaults, its stamps, and invalidates every field', async () => {
    const { when } = await given([[columnCreated('k1')]]);
    const then = await when(cardCreated('c1', 'k1', 'a0'), entered('k1', 'c1', 'a0'));
    expect(await then.doc(cardReadModel, 'c1')).toEqual({
      _id: 'c1',
      boardId: 'b1',
      columnId: 'k1',
      title: 'T c1',
      description: '',
      ...newCardDefaults,
      archived: false,
      rank: 'a0',
      version: 1,
      createdAt: commitTime(2),
      updatedAt: commitTime(2),
    });
    expect(then.scopes).toEqual(['b1']);
    expect(then.invalidated).toContainEqual({
      typename: 'Card',
      id: 'c1',
      fields: [...cardFields],
      version: 1,
    });
  });

  it('applies an edit to the given fields only, and a replay changes nothing', async () => {
    const { when } = await given([[columnCreated('k1')], [cardCreated('c1', 'k1', 'a0')]]);
    const then = await when({
      stream: 'card-c1',
      type: 'CardEdited',
      data: { changes: { title: 'New', labels: ['bug'], assigneeId: 'u1' } },
    });
    const edited = await then.doc(cardReadModel, 'c1');
    expect(edited).toMatchObject({ title: 'New', labels: ['bug'], assigneeId: 'u1', done: false });
    expect(edited).toMatchObject({
      version: 2,
      createdAt: commitTime(2),
      updatedAt: commitTime(3),
    });
    expect(then.invalidated).toEqual([
      { typename: 'Card', id: 'c1', fields: ['title', 'assignee', 'labels'], version: 2 },
    ]);
    expect(await then.replay()).toEqual({
      scopes: then.scopes,
      invalidated: then.invalidated,
      changed: then.changed,
    });
    expect(await then.doc(cardReadModel, 'c1')).toEqual(edited);
  });

  it('takes ranks from a column rebalance without moving the card version', async () => {
    const { when } = await given([
      [columnCreated('k1')],
      [cardCreated('c1', 'k1', 'a0'), entered('k1', 'c1', 'a0')],
    ]);
    const then = await when({
      stream: 'column-k1',
      type: 'CardsRebalanced',
      data: { ranks: { c1: 'a5' } },
    });
    expect(await then.doc(cardReadModel, 'c1')).toMatchObject({ rank: 'a5', version: 1 });
    expect(then.invalidated).toContainEqual({
      typename: 'Card',
      id: 'c1',
      fields: ['rank'],
      version: 1,
    });
  });
});

describe('column projection', () => {
  it('counts live cards as they enter, leave and are archived', async () => {
    const { when } = await given([
      [columnCreated('k1', 3)],
      [entered('k1', 'c1', 'a0')],
      [entered('k1', 'c2', 'a1')],
      [entered('k1', 'c3', 'a2')],
    ]);
    let then = await when({ stream: 'column-k1', type: 'CardLeft', data: { cardId: 'c1' } });
    expect(await then.doc(columnReadModel, 'k1')).toMatchObject({ cardCount: 2, version: 5 });
    then = await then.when({
      stream: 'column-k1',
      type: 'CardsArchived',
      data: { cardIds: ['c2', 'c3'] },
    });
    expect(await then.doc(columnReadModel, 'k1')).toEqual({
      _id: 'k1',
      boardId: 'b1',
      name: 'k1',
      wipLimit: 3,
      cardCount: 0,
      archived: false,
      version: 6,
      createdAt: commitTime(1),
      updatedAt: commitTime(6),
    });
    expect(then.scopes).toEqual(['b1']);
  });

  it('sets the WIP limit and carries the document in the change log entry', async () => {
    const { when } = await given([[columnCreated('k1')]]);
    const then = await when({ stream: 'column-k1', type: 'WipLimitSet', data: { wipLimit: 2 } });
    expect(then.invalidated).toEqual([
      { typename: 'Column', id: 'k1', fields: ['wipLimit'], version: 2 },
    ]);
    expect(then.changed).toEqual([
      { collection: columnReadModel.collection, doc: await then.doc(columnReadModel, 'k1') },
    ]);
    expect(then.changed[0]?.doc).toMatchObject({ wipLimit: 2 });
  });
});
