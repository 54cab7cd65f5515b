import { RankedList } from '../../src/boards/rankedList.js';
import { describe, expect, it } from 'vitest';
import { decideCard, type CardDecisionState } from '../../src/boards/card/decide.js';
import { cardEventFields } from '../../src/boards/card/events.js';
import type { CardState } from '../../src/boards/card/state.js';
import type { ActiveColumn, ColumnState } from '../../src/boards/column/state.js';
import { NotFoundError, ValidationError, WipLimitReachedError } from '../../src/boards/errors.js';
import {
  boardEvents,
  cardCreated,
  columnEvents,
  contextWithIds,
  eventsOf,
  given,
  member,
  owner,
  stranger,
  thrown,
} from './deciderTestKit.js';

const { board, membership } = given.access(boardEvents(['c1', 'a0'], ['c2', 'a1']));
const todo = columnEvents('c1', null, ['k1', 'a0'], ['k2', 'a1']);

function state(card: CardState, columns: Record<string, ColumnState> = {}): CardDecisionState {
  return { card, board, membership, columns: new Map(Object.entries(columns)) };
}

describe('decideCard: EditCard', () => {
  it('records exactly the given changes', () => {
    const decision = decideCard(
      {
        type: 'EditCard',
        data: { actorId: member, cardId: 'k1', changes: { title: 'New', assigneeId: owner } },
      },
      state(given.card(cardCreated('k1', 'c1', 'a0'))),
      contextWithIds(),
    );
    expect(decision).toEqual([
      {
        aggregate: 'card',
        id: 'k1',
        events: [{ type: 'CardEdited', data: { changes: { title: 'New', assigneeId: owner } } }],
      },
    ]);
  });

  it('unassigns a card with a null assignee', () => {
    const card = given.card(cardCreated('k1', 'c1', 'a0'), {
      type: 'CardEdited',
      data: { changes: { assigneeId: member } },
    });
    const decision = decideCard(
      { type: 'EditCard', data: { actorId: member, cardId: 'k1', changes: { assigneeId: null } } },
      state(card),
      contextWithIds(),
    );
    expect(given.card(cardCreated('k1', 'c1', 'a0'), ...eventsOf(decision, 'card'))).toMatchObject({
      assigneeId: null,
    });
  });

  it('refuses an edit that changes nothing', () => {
    const error = thrown(() =>
      decideCard(
        { type: 'EditCard', data: { actorId: member, cardId: 'k1', changes: {} } },
        state(given.card(cardCreated('k1', 'c1', 'a0'))),
        contextWithIds(),
      ),
    );
    expect(error).toMatchObject({ field: 'input' });
  });

  it('refuses to assign someone who is not a member of the board', () => {
    const error = thrown(() =>
      decideCard(
        {
          type: 'EditCard',
          data: { actorId: member, cardId: 'k1', changes: { assigneeId: stranger } },
        },
        state(given.card(cardCreated('k1', 'c1', 'a0'))),
        contextWithIds(),
      ),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'input.assigneeId' });
  });

  it('refuses to edit an archived card', () => {
    const card = given.card(cardCreated('k1', 'c1', 'a0'), { type: 'CardArchived', data: {} });
    const error = thrown(() =>
      decideCard(
        { type: 'EditCard', data: { actorId: member, cardId: 'k1', changes: { title: 'x' } } },
        state(card),
        contextWithIds(),
      ),
    );
    expect(error).toMatchObject({ field: 'input.cardId' });
  });

  it('answers a non-member, and a card that does not exist, with NotFound for the card', () => {
    for (const [actorId, card] of [
      [stranger, given.card(cardCreated('k1', 'c1', 'a0'))],
      [member, given.card()],
    ] as const) {
      const error = thrown(() =>
        decideCard(
          { type: 'EditCard', data: { actorId, cardId: 'k1', changes: { title: 'x' } } },
          state(card),
          contextWithIds(),
        ),
      );
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error).toMatchObject({ id: 'k1', resourceType: 'Card' });
    }
  });
});

describe('decideCard: MoveCard', () => {
  it('moves a card to another column as one decision over the card and both columns', () => {
    const decision = decideCard(
      { type: 'MoveCard', data: { actorId: member, cardId: 'k1', toColumnId: 'c2' } },
      state(given.card(cardCreated('k1', 'c1', 'a0')), {
        c1: given.column(...todo),
        c2: given.column(...columnEvents('c2', null)),
      }),
      contextWithIds(),
    );
    expect(decision).toEqual([
      {
        aggregate: 'card',
        id: 'k1',
        events: [{ type: 'CardMoved', data: { fromColumnId: 'c1', toColumnId: 'c2', rank: 'a0' } }],
      },
      { aggregate: 'column', id: 'c1', events: [{ type: 'CardLeft', data: { cardId: 'k1' } }] },
      {
        aggregate: 'column',
        id: 'c2',
        events: [{ type: 'CardEntered', data: { cardId: 'k1', rank: 'a0' } }],
      },
    ]);
  });

  it('refuses a move into a column that holds its WIP limit', () => {
    const error = thrown(() =>
      decideCard(
        { type: 'MoveCard', data: { actorId: member, cardId: 'k1', toColumnId: 'c2' } },
        state(given.card(cardCreated('k1', 'c1', 'a0')), {
          c1: given.column(...todo),
          c2: given.column(...columnEvents('c2', 1, ['k9', 'a0'])),
        }),
        contextWithIds(),
      ),
    );
    expect(error).toBeInstanceOf(WipLimitReachedError);
  });

  it('moves a card within a full column, since its count does not change', () => {
    const full = columnEvents('c1', 2, ['k1', 'a0'], ['k2', 'a1']);
    const decision = decideCard(
      {
        type: 'MoveCard',
        data: { actorId: member, cardId: 'k1', toColumnId: 'c1', afterCardId: 'k2' },
      },
      state(given.card(cardCreated('k1', 'c1', 'a0')), { c1: given.column(...full) }),
      contextWithIds(),
    );
    expect(decision.map((c) => c.aggregate)).toEqual(['card', 'column']);
    expect(eventsOf(decision, 'column').map((e) => e.type)).toEqual(['CardRepositioned']);
    const column = given.column(...full, ...eventsOf(decision, 'column')) as ActiveColumn;
    expect(column.cards.toArray().map((c) => c.id)).toEqual(['k2', 'k1']);
  });

  it('decides nothing for a move to the place the card holds, however the place is named', () => {
    const three = columnEvents('c1', null, ['k1', 'a0'], ['k2', 'a1'], ['k3', 'a2']);
    const stays: { cardId: string; afterCardId?: string; beforeCardId?: string }[] = [
      { cardId: 'k2', afterCardId: 'k1' },
      { cardId: 'k2', beforeCardId: 'k3' },
      { cardId: 'k2', afterCardId: 'k1', beforeCardId: 'k3' },
      { cardId: 'k1', beforeCardId: 'k2' },
      { cardId: 'k3', afterCardId: 'k2' },
      // Neither: at the end, where k3 is.
      { cardId: 'k3' },
    ];
    const ranks: Record<string, string> = { k1: 'a0', k2: 'a1', k3: 'a2' };
    for (const move of stays) {
      const decision = decideCard(
        { type: 'MoveCard', data: { actorId: member, toColumnId: 'c1', ...move } },
        state(given.card(cardCreated(move.cardId, 'c1', ranks[move.cardId]!)), {
          c1: given.column(...three),
        }),
        contextWithIds(),
      );
      expect(decision, JSON.stringify(move)).toEqual([]);
    }
    // One step away is a move; naming a card of another column is still refused.
    const moved = decideCard(
      {
        type: 'MoveCard',
        data: { actorId: member, cardId: 'k2', toColumnId: 'c1', afterCardId: 'k3' },
      },
      state(given.card(cardCreated('k2', 'c1', 'a1')), { c1: given.column(...three) }),
      contextWithIds(),
    );
    expect(eventsOf(moved, 'column').map((e) => e.type)).toEqual(['CardRepositioned']);
    const error = thrown(() =>
      decideCard(
        {
          type: 'MoveCard',
          data: { actorId: member, cardId: 'k2', toColumnId: 'c1', afterCardId: 'k9' },
        },
        state(given.card(cardCreated('k2', 'c1', 'a1')), { c1: given.column(...three) }),
        contextWithIds(),
      ),
    );
    expect(error).toMatchObject({ field: 'input.afterCardId' });
  });

  it('does not let a card be placed relative to itself', () => {
    const error = thrown(() =>
      decideCard(
        {
          type: 'MoveCard',
          data: { actorId: member, cardId: 'k1', toColumnId: 'c1', afterCardId: 'k1' },
        },
        state(given.card(cardCreated('k1', 'c1', 'a0')), { c1: given.column(...todo) }),
        contextWithIds(),
      ),
    );
    expect(error).toMatchObject({ field: 'input.afterCardId' });
  });

  it('does not find a target column that is missing or on another board', () => {
    const elsewhere: ColumnState = {
      status: 'active',
      columnId: 'x1',
      boardId: 'b-other',
      name: 'x',
      wipLimit: null,
      cards: RankedList.empty,
      archived: false,
    };
    const cases: Record<string, ColumnState>[] = [
      { c1: given.column(...todo) },
      { c1: given.column(...todo), x1: elsewhere },
    ];
    for (const columns of cases) {
      const error = thrown(() =>
        decideCard(
          { type: 'MoveCard', data: { actorId: member, cardId: 'k1', toColumnId: 'x1' } },
          state(given.card(cardCreated('k1', 'c1', 'a0')), columns),
          contextWithIds(),
        ),
      );
      expect(error).toMatchObject({ id: 'x1', resourceType: 'Column' });
    }
  });
});

describe('decideCard: ArchiveCard', () => {
  it('archives a card and takes it out of its column in the same decision', () => {
    const decision = decideCard(
      { type: 'ArchiveCard', data: { actorId: member, cardId: 'k1' } },
      state(given.card(cardCreated('k1', 'c1', 'a0')), { c1: given.column(...todo) }),
      contextWithIds(),
    );
    expect(decision).toEqual([
      { aggregate: 'card', id: 'k1', events: [{ type: 'CardArchived', data: { rank: 'a0' } }] },
      {
        aggregate: 'column',
        id: 'c1',
        events: [{ type: 'CardsArchived', data: { cardIds: ['k1'] } }],
      },
    ]);
  });
});

describe('card event fields', () => {
  it('names the Card fields an edit sets, assigneeId as assignee', () => {
    expect(
      cardEventFields({ type: 'CardEdited', data: { changes: { title: 't', assigneeId: null } } }),
    ).toEqual(['title', 'assignee']);
  });

  it('says a move across columns touches column and rank, a move within only rank', () => {
    expect(
      cardEventFields({
        type: 'CardMoved',
        data: { fromColumnId: 'a', toColumnId: 'b', rank: 'a0' },
      }),
    ).toEqual(['column', 'rank']);
    expect(
      cardEventFields({
        type: 'CardMoved',
        data: { fromColumnId: 'a', toColumnId: 'a', rank: 'a0' },
      }),
    ).toEqual(['rank']);
    expect(cardEventFields({ type: 'CardArchived', data: {} })).toEqual(['archived']);
  });
});
