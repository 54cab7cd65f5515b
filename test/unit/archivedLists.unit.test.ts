import { describe, expect, it } from 'vitest';
import { updateArchivedList, type CarriedCard } from '../../src/sdk/archivedLists.js';

const list = (...ids: string[]) => ids.map((id) => ({ ref: `ref:${id}`, id }));
const card = (id: string, archived: boolean | undefined, columnId: string | undefined) =>
  ({ id, archived, columnId, make: () => `ref:${id}` }) satisfies CarriedCard<string>;

describe('a cached Column.archivedCards list after a change', () => {
  it('drops a card restored into any column, when the list held every archived card', () => {
    const entries = list('k3', 'k2', 'k1');
    for (const columnId of ['c1', 'c2']) {
      expect(updateArchivedList(entries, {}, 'c1', [card('k2', false, columnId)])).toEqual({
        kind: 'updated',
        refs: ['ref:k3', 'ref:k1'],
      });
    }
  });

  it('reads a full list again when a card leaves it: an older one may take its place', () => {
    const entries = list('k3', 'k2');
    expect(updateArchivedList(entries, { first: 2 }, 'c1', [card('k2', false, 'c1')])).toEqual({
      kind: 'refetch',
    });
  });

  it('puts a card archived in the column first, keeping `first` of them', () => {
    const entries = list('k2', 'k1');
    expect(updateArchivedList(entries, { first: 2 }, 'c1', [card('k3', true, 'c1')])).toEqual({
      kind: 'updated',
      refs: ['ref:k3', 'ref:k2'],
    });
    expect(updateArchivedList(entries, {}, 'c1', [card('k3', true, 'c1')])).toEqual({
      kind: 'updated',
      refs: ['ref:k3', 'ref:k2', 'ref:k1'],
    });
  });

  it('reads the list again for cards archived together, or whose state is not cached', () => {
    const entries = list('k1');
    const two = [card('k2', true, 'c1'), card('k3', true, 'c1')];
    expect(updateArchivedList(entries, {}, 'c1', two)).toEqual({ kind: 'refetch' });
    expect(updateArchivedList(entries, {}, 'c1', [card('k1', undefined, 'c1')])).toEqual({
      kind: 'refetch',
    });
  });

  it('leaves the list alone for cards of other columns and cards it already shows right', () => {
    const entries = list('k1');
    const cards = [card('k1', true, 'c1'), card('k5', true, 'c2'), card('k6', false, 'c1')];
    expect(updateArchivedList(entries, {}, 'c1', cards)).toEqual({ kind: 'unchanged' });
  });
});
