import { describe, expect, it } from 'vitest';
import { assignRank, compareRanks, sortByRank, type Ranked } from '../../src/boards/ranks.js';
import { validationField } from '../support/validationField.js';

const fields = {
  afterField: 'input.afterCardId',
  beforeField: 'input.beforeCardId',
  siblingDescription: 'another live card of the target column',
};
const siblings: Ranked[] = [
  { id: 'a', rank: 'a0' },
  { id: 'b', rank: 'a1' },
  { id: 'c', rank: 'a2' },
];

describe('assignRank', () => {
  it('places an item after the last sibling when no neighbour is named', () => {
    const { rank, rebalanced } = assignRank(siblings, {}, fields);
    expect(rank > 'a2').toBe(true);
    expect(rebalanced).toBeNull();
  });

  it('places an item first in an empty list', () => {
    expect(assignRank([], {}, fields)).toEqual({ rank: 'a0', rebalanced: null });
  });

  it('places an item right after the named sibling', () => {
    const { rank } = assignRank(siblings, { afterId: 'a' }, fields);
    expect(rank > 'a0' && rank < 'a1').toBe(true);
  });

  it('places an item right before the named sibling, first when it is the first', () => {
    const { rank } = assignRank(siblings, { beforeId: 'a' }, fields);
    expect(rank < 'a0').toBe(true);
  });

  it('places an item between two named siblings', () => {
    const { rank } = assignRank(siblings, { afterId: 'b', beforeId: 'c' }, fields);
    expect(rank > 'a1' && rank < 'a2').toBe(true);
  });

  it('rejects a neighbour that is not a sibling, naming its input field', () => {
    expect(validationField(() => assignRank(siblings, { afterId: 'x' }, fields))).toBe(
      'input.afterCardId',
    );
    expect(validationField(() => assignRank(siblings, { beforeId: 'x' }, fields))).toBe(
      'input.beforeCardId',
    );
  });

  it('rejects a before-neighbour that does not come after the after-neighbour', () => {
    expect(
      validationField(() => assignRank(siblings, { afterId: 'c', beforeId: 'a' }, fields)),
    ).toBe('input.beforeCardId');
  });

  it('keeps keys short by rebalancing the neighbourhood when repeated inserts grow them past the threshold', () => {
    let list: Ranked[] = [
      { id: 'first', rank: 'a0' },
      { id: 'last', rank: 'a1' },
    ];
    let rebalances = 0;
    for (let i = 0; i < 1_000; i += 1) {
      const { rank, rebalanced } = assignRank(list, { afterId: 'first' }, fields);
      if (rebalanced) {
        rebalances += 1;
        list = list.map((item) => ({ id: item.id, rank: rebalanced[item.id] ?? item.rank }));
      }
      list = sortByRank([...list, { id: `n${i}`, rank }]);
      expect(rank.length).toBeLessThanOrEqual(50);
    }
    expect(rebalances).toBeGreaterThan(0);
    const ranks = list.map((item) => item.rank);
    expect(new Set(ranks).size).toBe(ranks.length);
    expect(list[0]!.id).toBe('first');
    expect(list.at(-1)!.id).toBe('last');
    // Every insert went right after `first`, so the newest comes second.
    expect(list[1]!.id).toBe('n999');
  });
});

describe('compareRanks', () => {
  it('compares by code unit, not by locale', () => {
    expect(compareRanks('Z', 'a')).toBeLessThan(0);
    expect(['a0', 'Zz', 'a0V'].sort(compareRanks)).toEqual(['Zz', 'a0', 'a0V']);
  });
});
