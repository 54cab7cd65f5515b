import { describe, expect, it } from 'vitest';
import { readModelIndexes, readModels } from '../../src/boards/readModel.js';
import type { ReadQuery } from '../../src/projector/readModel.js';
import {
  translateReadFilter,
  translateSort,
} from '../../src/projector/mongo/translateReadFilter.js';
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

/** Every sorted query a read model declares, with a sample argument. */
const sortedQueries = readModels.flatMap((model) =>
  Object.entries(model.queries as Record<string, ReadQuery<string>>)
    .filter(([, query]) => query.sort !== undefined)
    .map(([name, query]) => ({ model, name, query })),
);

describe('read model indexes', () => {
  it('are declared for every sorted query of every read model', () => {
    // The queries of src/boards/reads.ts, counted so that dropping one from a model fails here.
    expect(sortedQueries.map(({ model, name }) => `${model.name}.${name}`)).toEqual([
      'boards.ofMember',
      'cards.liveOfBoard',
      'cards.archivedOfColumn',
      'sessions.openOf',
      'boardPlacements.due',
    ]);
  });

  it.each(sortedQueries.map((q) => [`${q.model.name}.${q.name}`, q] as const))(
    '%s: an index serves the sort, _id tie-breaker included',
    (_name, { model, query }) => {
      const indexes = readModelIndexes[model.collection] ?? [];
      expect(indexes).toEqual(model.indexes);
      const filter = query.filter('x');
      expect(
        indexes.some((i) => servesSortedQuery(i.key as Record<string, number>, filter, query.sort)),
      ).toBe(true);
    },
  );

  it('every unsorted query filters on the first key of an index (the memory store hashes on it)', () => {
    for (const model of readModels) {
      for (const query of Object.values(model.queries as Record<string, ReadQuery<string>>)) {
        if (query.sort) continue;
        const fields = Object.keys(query.filter('x'));
        const firstKeys = model.indexes.map((i) => Object.keys(i.key)[0]);
        expect(fields.some((f) => firstKeys.includes(f))).toBe(true);
      }
    }
  });
});
