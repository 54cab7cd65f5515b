import { describe, expect, it } from 'vitest';
import { ReadCollection } from '../../src/boards/readModel.js';
import {
  translateReadFilter,
  translateSort,
} from '../../src/projector/mongo/translateReadFilter.js';
import { boardReadModelIndexes } from '../../src/mongoStorage.js';
import type { FindOptions, ReadFilter } from '../../src/projector/types.js';

/**
 * Whether an index answers a query with an equality filter and a sort without an in-memory
 * sort: its keys are the equality fields (any order), then exactly the sort's keys in
 * order, each in the sort's direction (or all reversed).
 */
function servesSortedQuery(
  index: Record<string, number>,
  filter: ReadFilter,
  sort: FindOptions['sort'],
) {
  const keys = Object.entries(index);
  const equality = Object.keys(translateReadFilter(filter));
  const prefix = keys.slice(0, equality.length).map(([k]) => k);
  if ([...prefix].sort().join() !== [...equality].sort().join()) return false;
  const sortKeys = Object.entries(translateSort(sort!) as Record<string, number>);
  const rest = keys.slice(equality.length);
  if (rest.length !== sortKeys.length) return false;
  const same = rest.every(([k, d], i) => k === sortKeys[i]![0] && d === sortKeys[i]![1]);
  const reversed = rest.every(([k, d], i) => k === sortKeys[i]![0] && d === -sortKeys[i]![1]);
  return same || reversed;
}

describe('board read model indexes', () => {
  // The sorted queries of src/boards/reads.ts.
  it.each([
    [ReadCollection.Cards, { boardId: 'b', archived: false }, ['rank', 1] as const],
    [ReadCollection.Boards, { members: 'u' }, ['createdAt', -1] as const],
  ])('%s: an index serves the sort, _id tie-breaker included', (collection, filter, sort) => {
    const indexes = boardReadModelIndexes[collection] ?? [];
    expect(
      indexes.some((i) => servesSortedQuery(i.key as Record<string, number>, filter, sort)),
    ).toBe(true);
  });
});
