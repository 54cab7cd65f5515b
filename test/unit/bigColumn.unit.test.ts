import { generateNKeysBetween } from 'fractional-indexing';
import { describe, expect, it } from 'vitest';
import type { CardState } from '../../src/boards/card/state.js';
import {
  ARCHIVE_DONE_CARDS_PER_COMMIT,
  archiveDoneCardsCommits,
  decideColumn,
  placeCardInColumn,
} from '../../src/boards/column/decide.js';
import type { ColumnEvent } from '../../src/boards/column/events.js';
import {
  evolveColumn,
  type ActiveColumn,
  type ColumnState,
} from '../../src/boards/column/state.js';
import { RankedList } from '../../src/boards/rankedList.js';
import { RANK_REBALANCE_MAX_RADIUS, RANK_REBALANCE_THRESHOLD } from '../../src/boards/ranks.js';
import { appendLimits } from '../../src/eventstore/validation.js';
import { boardEvents, contextWithIds, given, member } from './deciderTestKit.js';
import { splitIntoCommits } from '../../src/boards/decision.js';

const created: ColumnEvent = {
  type: 'ColumnCreated',
  data: { columnId: 'c1', boardId: 'b1', name: 'Backlog', wipLimit: null },
};

/** A column of `count` cards `k0`, `k1`, ... in that order. */
function bigColumn(count: number): ActiveColumn {
  const ranks = generateNKeysBetween(null, null, count);
  const events: ColumnEvent[] = [created];
  ranks.forEach((rank, i) => events.push({ type: 'CardEntered', data: { cardId: `k${i}`, rank } }));
  return given.column(...events) as ActiveColumn;
}

function evolveAll(column: ActiveColumn, events: readonly ColumnEvent[]): ActiveColumn {
  return events.reduce<ColumnState>(
    (state, event) => evolveColumn(state, event),
    column,
  ) as ActiveColumn;
}

function expectStrictOrder(column: ActiveColumn): void {
  const cards = column.cards.toArray();
  for (let i = 1; i < cards.length; i += 1) {
    expect(cards[i - 1]!.rank < cards[i]!.rank).toBe(true);
  }
}

const eventBytes = (event: ColumnEvent) => Buffer.byteLength(JSON.stringify(event.data));

describe('RankedList', () => {
  it('keeps items in rank order and finds neighbours by id', () => {
    const list = RankedList.from([
      { id: 'b', rank: 'a1' },
      { id: 'a', rank: 'a0' },
      { id: 'c', rank: 'a2' },
    ]);
    expect(list.toArray().map((i) => i.id)).toEqual(['a', 'b', 'c']);
    expect(list.after('a')).toEqual({ id: 'b', rank: 'a1' });
    expect(list.before('a')).toBeUndefined();
    expect(list.first()?.id).toBe('a');
    expect(list.last()?.id).toBe('c');
    expect([...list.descending('b')].map((i) => i.id)).toEqual(['b', 'a']);
    expect([...list.ascending('b')].map((i) => i.id)).toEqual(['b', 'c']);
  });

  it('never changes a list it derived another from', () => {
    const before = RankedList.from([
      { id: 'a', rank: 'a0' },
      { id: 'b', rank: 'a1' },
    ]);
    const moved = before.with('a', 'a2');
    const removed = moved.without(['b']);
    const rebalanced = removed.withRanks({ a: 'a5', x: 'a3' });
    expect(before.toArray()).toEqual([
      { id: 'a', rank: 'a0' },
      { id: 'b', rank: 'a1' },
    ]);
    expect(moved.toArray().map((i) => i.id)).toEqual(['b', 'a']);
    expect(removed.toArray()).toEqual([{ id: 'a', rank: 'a2' }]);
    // Ids not in the list are ignored by withRanks.
    expect(rebalanced.toArray()).toEqual([{ id: 'a', rank: 'a5' }]);
  });
});

describe('evolveColumn on big columns', () => {
  it('folds 50,000 card entries in time proportional to n log n (a sort per event took minutes)', () => {
    const started = performance.now();
    const column = bigColumn(50_000);
    const seconds = (performance.now() - started) / 1_000;
    expect(column.cards.size).toBe(50_000);
    expect(column.cards.first()?.id).toBe('k0');
    expect(column.cards.last()?.id).toBe('k49999');
    // Generous: well under a second on a quiet machine.
    expect(seconds).toBeLessThan(10);
  });
});

describe('placeCardInColumn on big columns', () => {
  it('keeps inserting right after the head of a 10,000-card column: bounded rebalances, every event under the size limit', () => {
    let column = bigColumn(10_000);
    let rebalances = 0;
    for (let i = 0; i < 500; i += 1) {
      const { rank, events } = placeCardInColumn(column, `n${i}`, { afterId: 'k0' }, 'enter');
      for (const event of events) {
        expect(eventBytes(event)).toBeLessThanOrEqual(appendLimits.maxEventBytes);
        if (event.type === 'CardsRebalanced') {
          rebalances += 1;
          expect(Object.keys(event.data.ranks).length).toBeLessThanOrEqual(
            2 * RANK_REBALANCE_MAX_RADIUS,
          );
        }
      }
      expect(events.length).toBeLessThan(appendLimits.maxEventsPerCommit);
      expect(rank.length).toBeLessThanOrEqual(RANK_REBALANCE_THRESHOLD);
      column = evolveAll(column, events);
    }
    expect(rebalances).toBeGreaterThan(0);
    expect(column.cards.size).toBe(10_500);
    expectStrictOrder(column);
    const ids = column.cards.toArray().map((c) => c.id);
    // Each insert went right after k0: the newest comes second, the oldest right before k1.
    expect(ids.slice(0, 2)).toEqual(['k0', 'n499']);
    expect(ids.indexOf('n0') + 1).toBe(ids.indexOf('k1'));
  });

  it('keeps inserting before the first card of a 10,000-card column', () => {
    let column = bigColumn(10_000);
    for (let i = 0; i < 500; i += 1) {
      const first = column.cards.first()!.id;
      const { events } = placeCardInColumn(column, `h${i}`, { beforeId: first }, 'enter');
      column = evolveAll(column, events);
    }
    expect(column.cards.first()?.id).toBe('h499');
    expect(column.cards.size).toBe(10_500);
    expectStrictOrder(column);
  });

  it('splits a rebalance over several events when its neighbourhood is large, each under the limit', () => {
    // 10,000 cards crowded into one tiny gap: ranks long enough to need a wide rebalance.
    const ranks = generateNKeysBetween('a0' + 'V'.repeat(50), 'a0' + 'V'.repeat(49) + 'W', 10_000);
    const events: ColumnEvent[] = [created];
    ranks.forEach((rank, i) =>
      events.push({ type: 'CardEntered', data: { cardId: `k${i}`, rank } }),
    );
    let column = given.column(...events) as ActiveColumn;
    const { rank, events: placed } = placeCardInColumn(
      column,
      'new',
      { afterId: 'k5000' },
      'enter',
    );
    const rebalanced = placed.filter((e) => e.type === 'CardsRebalanced');
    expect(rebalanced.length).toBeGreaterThan(1);
    for (const event of placed) {
      expect(eventBytes(event)).toBeLessThanOrEqual(appendLimits.maxEventBytes);
    }
    column = evolveAll(column, placed);
    expectStrictOrder(column);
    expect(column.cards.rankOf('new')).toBe(rank);
    expect(column.cards.before('new')?.id).toBe('k5000');
    expect(column.cards.after('new')?.id).toBe('k5001');
  });

  it('moves a card within its column without counting it as its own neighbour', () => {
    const column = bigColumn(3);
    const { events } = placeCardInColumn(column, 'k0', { afterId: 'k2' }, 'reposition');
    const after = evolveAll(column, events);
    expect(after.cards.toArray().map((c) => c.id)).toEqual(['k1', 'k2', 'k0']);
  });
});

describe('archiveDoneCardsCommits', () => {
  it('splits 10,000 done cards into commits under the store limits, in column order', () => {
    const column = bigColumn(10_001);
    const cards = new Map<string, CardState>();
    for (const { id } of column.cards) {
      cards.set(id, { status: 'live', done: id !== 'k7' } as CardState);
    }
    const commits = archiveDoneCardsCommits(column, cards);
    expect(commits).toHaveLength(Math.ceil(10_000 / ARCHIVE_DONE_CARDS_PER_COMMIT));
    const archived: string[] = [];
    for (const commit of commits) {
      const events = commit.flatMap((change) => [...change.events]);
      expect(events.length).toBeLessThanOrEqual(appendLimits.maxEventsPerCommit);
      const [columnChange, ...cardChanges] = commit;
      expect(columnChange?.aggregate).toBe('column');
      const event = columnChange!.events[0]!;
      expect(Buffer.byteLength(JSON.stringify(event.data))).toBeLessThanOrEqual(
        appendLimits.maxEventBytes,
      );
      const ids = (event.data as { cardIds: string[] }).cardIds;
      expect(cardChanges.map((c) => c.id)).toEqual(ids);
      archived.push(...ids);
    }
    expect(archived).toHaveLength(10_000);
    // The decider's one decision splits back into the same commits.
    const decision = decideColumn(
      { type: 'ArchiveDoneCards', data: { actorId: member, columnId: 'c1' } },
      { column, ...given.access(boardEvents(['c1', 'a0'])), cards },
      contextWithIds(),
    );
    expect(splitIntoCommits(decision)).toEqual(commits);
    // A decision naming each stream once stays one commit.
    expect(splitIntoCommits(commits[0]!)).toEqual([commits[0]]);
    expect(archived).not.toContain('k7');
    expect(archived).toEqual(
      column.cards
        .toArray()
        .map((c) => c.id)
        .filter((id) => id !== 'k7'),
    );
  });
});
