import { describe, expect, it } from 'vitest';
import type { CardState } from '../../src/boards/card/state.js';
import { decideColumn } from '../../src/boards/column/decide.js';
import { columnEventFields } from '../../src/boards/column/events.js';
import type { ActiveColumn } from '../../src/boards/column/state.js';
import { NotFoundError, ValidationError, WipLimitReachedError } from '../../src/boards/errors.js';
import {
  boardEvents,
  cardCreated,
  columnEvents,
  contextWithIds,
  crowdedRanks,
  eventsOf,
  given,
  member,
  stranger,
  thrown,
} from './deciderTestKit.js';

const { board, membership } = given.access(boardEvents(['c1', 'a0']));

describe('decideColumn', () => {
  it('sets a WIP limit', () => {
    const decision = decideColumn(
      { type: 'SetWipLimit', data: { actorId: member, columnId: 'c1', wipLimit: 2 } },
      { column: given.column(...columnEvents('c1', null)), board, membership },
      contextWithIds(),
    );
    expect(decision).toEqual([
      { aggregate: 'column', id: 'c1', events: [{ type: 'WipLimitSet', data: { wipLimit: 2 } }] },
    ]);
  });

  it('refuses a WIP limit below the live cards the column holds, and takes one equal to them', () => {
    const column = given.column(...columnEvents('c1', null, ['k1', 'a0'], ['k2', 'a1']));
    const setTo = (wipLimit: number) => () =>
      decideColumn(
        { type: 'SetWipLimit', data: { actorId: member, columnId: 'c1', wipLimit } },
        { column, board, membership },
        contextWithIds(),
      );
    const error = thrown(setTo(1));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'input.wipLimit' });
    expect((error as ValidationError).message).toContain('at least 2');
    expect(setTo(2)()).toEqual([
      { aggregate: 'column', id: 'c1', events: [{ type: 'WipLimitSet', data: { wipLimit: 2 } }] },
    ]);
  });

  it('adds a card at the end of its column, creating the card stream first', () => {
    const column = given.column(...columnEvents('c1', null, ['k1', 'a0']));
    const decision = decideColumn(
      {
        type: 'AddCard',
        data: { actorId: member, columnId: 'c1', title: 'Write tests', description: '' },
      },
      { column, board, membership },
      contextWithIds('k2'),
    );
    expect(decision).toEqual([
      {
        aggregate: 'card',
        id: 'k2',
        events: [
          {
            type: 'CardCreated',
            data: {
              cardId: 'k2',
              boardId: 'b1',
              columnId: 'c1',
              title: 'Write tests',
              description: '',
              rank: 'a1',
            },
          },
        ],
      },
      {
        aggregate: 'column',
        id: 'c1',
        events: [{ type: 'CardEntered', data: { cardId: 'k2', rank: 'a1' } }],
      },
    ]);
  });

  it('adds a card right before the named card', () => {
    const before = columnEvents('c1', null, ['k1', 'a0'], ['k2', 'a1']);
    const decision = decideColumn(
      {
        type: 'AddCard',
        data: { actorId: member, columnId: 'c1', title: 't', description: '', beforeCardId: 'k2' },
      },
      { column: given.column(...before), board, membership },
      contextWithIds('k3'),
    );
    const column = given.column(...before, ...eventsOf(decision, 'column')) as ActiveColumn;
    expect(column.cards.toArray().map((c) => c.id)).toEqual(['k1', 'k3', 'k2']);
  });

  it('refuses a card entering a column that holds its WIP limit', () => {
    const column = given.column(...columnEvents('c1', 2, ['k1', 'a0'], ['k2', 'a1']));
    const error = thrown(() =>
      decideColumn(
        { type: 'AddCard', data: { actorId: member, columnId: 'c1', title: 't', description: '' } },
        { column, board, membership },
        contextWithIds('k3'),
      ),
    );
    expect(error).toBeInstanceOf(WipLimitReachedError);
    expect(error).toMatchObject({ columnId: 'c1', wipLimit: 2 });
    expect((error as WipLimitReachedError).message).toBe(
      'Column c1 already holds its limit of 2 cards',
    );
    expect(new WipLimitReachedError('c1', 1).message).toBe(
      'Column c1 already holds its limit of 1 card',
    );
  });

  it('refuses every card when the WIP limit is zero', () => {
    const error = thrown(() =>
      decideColumn(
        { type: 'AddCard', data: { actorId: member, columnId: 'c1', title: 't', description: '' } },
        { column: given.column(...columnEvents('c1', 0)), board, membership },
        contextWithIds('k1'),
      ),
    );
    expect(error).toBeInstanceOf(WipLimitReachedError);
  });

  it('rejects a neighbour that is not a live card of the column', () => {
    const column = given.column(...columnEvents('c1', null, ['k1', 'a0']));
    const error = thrown(() =>
      decideColumn(
        {
          type: 'AddCard',
          data: { actorId: member, columnId: 'c1', title: 't', description: '', afterCardId: 'k9' },
        },
        { column, board, membership },
        contextWithIds('k2'),
      ),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'input.afterCardId' });
  });

  it('rebalances the column when the new rank would grow past 50 characters', () => {
    const { low, high } = crowdedRanks();
    const before = columnEvents('c1', null, ['k1', low], ['k2', high]);
    const decision = decideColumn(
      {
        type: 'AddCard',
        data: { actorId: member, columnId: 'c1', title: 't', description: '', afterCardId: 'k1' },
      },
      { column: given.column(...before), board, membership },
      contextWithIds('k3'),
    );
    const events = eventsOf(decision, 'column');
    expect(events.map((e) => e.type)).toEqual(['CardsRebalanced', 'CardEntered']);
    const column = given.column(...before, ...events) as ActiveColumn;
    expect(column.cards.toArray().map((c) => c.id)).toEqual(['k1', 'k3', 'k2']);
    const created = eventsOf(decision, 'card')[0];
    expect(created?.type === 'CardCreated' && created.data.rank).toBe(
      column.cards.toArray()[1]!.rank,
    );
  });

  it('answers a non-member as if the column did not exist', () => {
    const error = thrown(() =>
      decideColumn(
        { type: 'SetWipLimit', data: { actorId: stranger, columnId: 'c1', wipLimit: 1 } },
        { column: given.column(...columnEvents('c1', null)), board, membership },
        contextWithIds(),
      ),
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ id: 'c1', resourceType: 'Column' });
  });

  it('archives every done card of the column in one decision, in column order', () => {
    const column = given.column(
      ...columnEvents('c1', null, ['k1', 'a0'], ['k2', 'a1'], ['k3', 'a2']),
    );
    const done = (id: string, rank: string): CardState =>
      given.card(cardCreated(id, 'c1', rank), {
        type: 'CardEdited',
        data: { changes: { done: true } },
      });
    const cards = new Map<string, CardState>([
      ['k1', done('k1', 'a0')],
      ['k2', given.card(cardCreated('k2', 'c1', 'a1'))],
      ['k3', done('k3', 'a2')],
    ]);
    const decision = decideColumn(
      { type: 'ArchiveDoneCards', data: { actorId: member, columnId: 'c1' } },
      { column, board, membership, cards },
      contextWithIds(),
    );
    expect(decision).toEqual([
      {
        aggregate: 'column',
        id: 'c1',
        events: [{ type: 'CardsArchived', data: { cardIds: ['k1', 'k3'] } }],
      },
      { aggregate: 'card', id: 'k1', events: [{ type: 'CardArchived', data: { rank: 'a0' } }] },
      { aggregate: 'card', id: 'k3', events: [{ type: 'CardArchived', data: { rank: 'a2' } }] },
    ]);
  });

  it('decides nothing when no card of the column is done', () => {
    const column = given.column(...columnEvents('c1', null, ['k1', 'a0']));
    const cards = new Map([['k1', given.card(cardCreated('k1', 'c1', 'a0'))]]);
    const decision = decideColumn(
      { type: 'ArchiveDoneCards', data: { actorId: member, columnId: 'c1' } },
      { column, board, membership, cards },
      contextWithIds(),
    );
    expect(decision).toEqual([]);
  });
});

describe('column state and fields', () => {
  it('keeps live cards in rank order through entries, moves, archives and rebalances', () => {
    const column = given.column(
      ...columnEvents('c1', null, ['k1', 'a1'], ['k2', 'a0'], ['k3', 'a2']),
      { type: 'CardRepositioned', data: { cardId: 'k3', rank: 'Zz' } },
      { type: 'CardLeft', data: { cardId: 'k2' } },
      { type: 'CardsRebalanced', data: { ranks: { k3: 'a0', k1: 'a1' } } },
      { type: 'CardEntered', data: { cardId: 'k4', rank: 'a2' } },
      { type: 'CardsArchived', data: { cardIds: ['k1'] } },
    ) as ActiveColumn;
    expect(column.cards.toArray()).toEqual([
      { id: 'k3', rank: 'a0' },
      { id: 'k4', rank: 'a2' },
    ]);
  });

  it('says a card entering touches the column cards and cardCount, a reposition only its cards', () => {
    expect(columnEventFields({ type: 'CardEntered', data: { cardId: 'k', rank: 'a0' } })).toEqual([
      'cards',
      'cardCount',
    ]);
    expect(
      columnEventFields({ type: 'CardRepositioned', data: { cardId: 'k', rank: 'a0' } }),
    ).toEqual(['cards']);
    expect(columnEventFields({ type: 'WipLimitSet', data: { wipLimit: null } })).toEqual([
      'wipLimit',
    ]);
  });
});
