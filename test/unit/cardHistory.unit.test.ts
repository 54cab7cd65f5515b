import { describe, expect, it } from 'vitest';
import {
  cardChangeFields,
  cardEventFields,
  cardFields,
  givenChanges,
  newCardDefaults,
  type CardChanges,
  type CardEvent,
} from '../../src/boards/card/events.js';
import { evolveCard, initialCardState } from '../../src/boards/card/state.js';
import { historySpecs, PREVIOUS } from '../../src/boards/history/changes.js';

const created: CardEvent = {
  type: 'CardCreated',
  data: { cardId: 'k1', boardId: 'b1', columnId: 'c1', title: 'T', description: 'D', rank: 'a0' },
};

/** An edit of several keys of `CardChanges`, none to a default, one of them an id. */
const edit: CardChanges = {
  title: 'T2',
  description: 'D2',
  assigneeId: 'u1',
  labels: ['bug'],
  done: true,
};

const render = (event: CardEvent) => historySpecs.Card.render(event);

describe("a card's history, from the card's one list of fields", () => {
  it('shows CardCreated as every Card field the event touches, with the new card defaults', () => {
    const { changes } = render(created);
    expect(changes.map((c) => c.field)).toEqual([...cardEventFields(created)]);
    expect(changes.map((c) => c.field)).toEqual([...cardFields]);
    const state = evolveCard(initialCardState, created);
    for (const [key, { field }] of Object.entries(cardChangeFields)) {
      const change = changes.find((c) => c.field === field);
      const value = state.status === 'live' ? state[key as keyof CardChanges] : undefined;
      expect(change?.from, field).toBeNull();
      if (key in newCardDefaults) {
        expect(value, key).toEqual(newCardDefaults[key as keyof typeof newCardDefaults]);
      }
      expect(change?.to, field).toEqual(value);
    }
  });

  it('shows an edit as exactly the fields it sets, an id as a reference to its resource', () => {
    const { changes } = render({ type: 'CardEdited', data: { changes: edit } });
    expect(changes).toEqual(
      givenChanges(edit).map((key) => {
        const spec = cardChangeFields[key];
        const value = edit[key];
        const refersTo = 'refersTo' in spec ? spec.refersTo : undefined;
        return {
          field: spec.field,
          from: PREVIOUS,
          to: refersTo ? { ref: refersTo, id: value } : value,
        };
      }),
    );
    expect(render({ type: 'CardEdited', data: { changes: { assigneeId: null } } })).toEqual({
      operation: 'CardEdited',
      changes: [{ field: 'assignee', from: PREVIOUS, to: null }],
    });
  });

  it('applies an edit to the state, and leaves out what is not given', () => {
    const state = evolveCard(evolveCard(initialCardState, created), {
      type: 'CardEdited',
      data: { changes: edit },
    });
    expect(state).toMatchObject(edit);
    const untouched = evolveCard(state, {
      type: 'CardEdited',
      data: { changes: { title: undefined, done: false } },
    });
    expect(untouched).toMatchObject({ ...edit, done: false });
  });
});
