import { describe, expect, it } from 'vitest';
import { decideCard } from '../../src/boards/card/decide.js';
import type { CardEvent } from '../../src/boards/card/events.js';
import { decideColumn } from '../../src/boards/column/decide.js';
import type { ColumnEvent } from '../../src/boards/column/events.js';
import type { ColumnState } from '../../src/boards/column/state.js';
import { historySpecs } from '../../src/boards/history/changes.js';
import {
  ColumnNotEmptyError,
  ValidationError,
  WipLimitReachedError,
} from '../../src/boards/errors.js';
import {
  boardEvents,
  cardCreated,
  columnEvents,
  contextWithIds,
  eventsOf,
  given,
  member,
  thrown,
} from './deciderTestKit.js';

const access = given.access(boardEvents(['c1', 'a0'], ['c2', 'a1']));
const archivedAt = (rank: string): CardEvent => ({ type: 'CardArchived', data: { rank } });
const columnArchived: ColumnEvent = { type: 'ColumnArchived', data: { columnId: 'c1' } };

function restore(columns: Record<string, ColumnState>, toColumnId?: string) {
  const card = given.card(cardCreated('k1', 'c1', 'a0'), archivedAt('a0'));
  return decideCard(
    { type: 'RestoreCard', data: { actorId: member, cardId: 'k1', toColumnId } },
    { card, ...access, columns: new Map(Object.entries(columns)) },
    contextWithIds(),
  );
}

describe('renaming and archiving a column', () => {
  it('renames a column', () => {
    const decision = decideColumn(
      { type: 'RenameColumn', data: { actorId: member, columnId: 'c1', name: 'Doing' } },
      { column: given.column(...columnEvents('c1', null)), ...access },
      contextWithIds(),
    );
    expect(eventsOf(decision, 'column')).toEqual([
      { type: 'ColumnRenamed', data: { name: 'Doing' } },
    ]);
  });

  it('archives an empty column and takes it out of the board in the same decision', () => {
    const decision = decideColumn(
      { type: 'ArchiveColumn', data: { actorId: member, columnId: 'c1' } },
      { column: given.column(...columnEvents('c1', null)), ...access },
      contextWithIds(),
    );
    expect(decision).toEqual([
      { aggregate: 'column', id: 'c1', events: [columnArchived] },
      {
        aggregate: 'board',
        id: 'b1',
        events: [{ type: 'ColumnRemoved', data: { columnId: 'c1' } }],
      },
    ]);
    const after = given.board(
      ...boardEvents(['c1', 'a0'], ['c2', 'a1']),
      ...eventsOf(decision, 'board'),
    );
    expect(after).toMatchObject({ columns: [{ id: 'c2' }] });
  });

  it('refuses to archive a column holding live cards, saying how many', () => {
    const error = thrown(() =>
      decideColumn(
        { type: 'ArchiveColumn', data: { actorId: member, columnId: 'c1' } },
        {
          column: given.column(...columnEvents('c1', null, ['k1', 'a0'], ['k2', 'a1'])),
          ...access,
        },
        contextWithIds(),
      ),
    );
    expect(error).toBeInstanceOf(ColumnNotEmptyError);
    expect(error).toMatchObject({ columnId: 'c1', cardCount: 2 });
  });

  it('refuses every write on an archived column', () => {
    const column = given.column(...columnEvents('c1', null), columnArchived);
    for (const command of [
      { type: 'RenameColumn', data: { actorId: member, columnId: 'c1', name: 'x' } },
      { type: 'AddCard', data: { actorId: member, columnId: 'c1', title: 't', description: '' } },
      { type: 'ArchiveColumn', data: { actorId: member, columnId: 'c1' } },
    ] as const) {
      const error = thrown(() =>
        decideColumn(command, { column, ...access }, contextWithIds('k9')),
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ field: 'input.columnId' });
    }
  });
});

describe('restoring a card', () => {
  it('puts it back at its old rank when that rank is free', () => {
    const decision = restore({ c1: given.column(...columnEvents('c1', null, ['k2', 'a1'])) });
    expect(decision).toEqual([
      {
        aggregate: 'card',
        id: 'k1',
        events: [{ type: 'CardRestored', data: { columnId: 'c1', rank: 'a0' } }],
      },
      {
        aggregate: 'column',
        id: 'c1',
        events: [
          { type: 'CardEntered', data: { cardId: 'k1', rank: 'a0' } },
          // It leaves the column's archived cards: the change names `archivedCards`.
          { type: 'ArchivedCardRestored', data: { cardId: 'k1', toColumnId: 'c1' } },
        ],
      },
    ]);
    expect(
      given.card(cardCreated('k1', 'c1', 'a0'), archivedAt('a0'), ...eventsOf(decision, 'card')),
    ).toMatchObject({ status: 'live', columnId: 'c1', rank: 'a0' });
  });

  it('puts it at the end when a live card holds its old rank now', () => {
    const decision = restore({
      c1: given.column(...columnEvents('c1', null, ['k2', 'a0'], ['k3', 'a1'])),
    });
    const [entered] = eventsOf(decision, 'column');
    expect(entered).toMatchObject({ type: 'CardEntered', data: { cardId: 'k1' } });
    const rank = (entered as Extract<ColumnEvent, { type: 'CardEntered' }>).data.rank;
    expect(rank > 'a1').toBe(true);
  });

  it('refuses to restore into a full column, at its old rank or not', () => {
    const full = given.column(...columnEvents('c1', 1, ['k2', 'a1']));
    expect(thrown(() => restore({ c1: full }))).toBeInstanceOf(WipLimitReachedError);
    const fullAtRank = given.column(...columnEvents('c1', 1, ['k2', 'a0']));
    expect(thrown(() => restore({ c1: fullAtRank }))).toBeInstanceOf(WipLimitReachedError);
  });

  it('needs another column when its own is archived, and restores into it', () => {
    const gone = given.column(...columnEvents('c1', null), columnArchived);
    const error = thrown(() => restore({ c1: gone }));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'input.toColumnId' });
    const decision = restore({ c1: gone, c2: given.column(...columnEvents('c2', null)) }, 'c2');
    // The target first (the success names it); the archived column it came from loses it
    // from its archived cards in the same commit.
    expect(decision).toEqual([
      {
        aggregate: 'card',
        id: 'k1',
        events: [{ type: 'CardRestored', data: { columnId: 'c2', rank: 'a0' } }],
      },
      {
        aggregate: 'column',
        id: 'c2',
        events: [{ type: 'CardEntered', data: { cardId: 'k1', rank: 'a0' } }],
      },
      {
        aggregate: 'column',
        id: 'c1',
        events: [{ type: 'ArchivedCardRestored', data: { cardId: 'k1', toColumnId: 'c2' } }],
      },
    ]);
    const after = given.column(
      ...columnEvents('c1', null),
      columnArchived,
      ...eventsOf(decision, 'column', 'c1'),
    );
    expect(after).toEqual(given.column(...columnEvents('c1', null), columnArchived));
    // The column's history says which card left its archived cards, and where it went.
    expect(eventsOf(decision, 'column', 'c1').map((e) => historySpecs.Column.render(e))).toEqual([
      {
        operation: 'ArchivedCardRestored',
        changes: [
          { field: 'archivedCard', from: { ref: 'Card', id: 'k1' }, to: null },
          { field: 'restoredTo', from: null, to: { ref: 'Column', id: 'c2' } },
        ],
      },
    ]);
  });

  it('refuses to restore a live card', () => {
    const card = given.card(cardCreated('k1', 'c1', 'a0'));
    const error = thrown(() =>
      decideCard(
        { type: 'RestoreCard', data: { actorId: member, cardId: 'k1' } },
        { card, ...access, columns: new Map([['c1', given.column(...columnEvents('c1', null))]]) },
        contextWithIds(),
      ),
    );
    expect(error).toMatchObject({ field: 'input.cardId' });
  });
});
