import type { Cache } from '@urql/exchange-graphcache';
import { describe, expect, it } from 'vitest';
import type { BoardChange } from '../../src/sdk/boardChanges.js';
import { PushedVersions } from '../../src/sdk/urqlPushedVersions.js';

/** The part of Graphcache's `Cache` that `PushedVersions` uses, over a map of versions. */
function fakeCache(versions: Map<string, number>) {
  const invalidated: string[] = [];
  const cache = {
    keyOfEntity: (e: { __typename: string; id: string }) => `${e.__typename}:${e.id}`,
    resolve: (key: string, field: string) => (field === 'version' ? versions.get(key) : undefined),
    invalidate: (key: string) => void invalidated.push(key),
  } as unknown as Cache;
  return { cache, invalidated };
}

const push = (typename: string, id: string, version: number) =>
  ({ invalidated: [{ typename, id, version, fields: [] }], changed: [] }) as unknown as BoardChange;

const column = (id: string, version: number) => ({ __typename: 'Column', id, version });

describe('PushedVersions (urql): results that set back what a push wrote', () => {
  it('invalidates an entity a result left below the pushed version, nested anywhere in it', () => {
    const versions = new Map([
      ['Column:c1', 4],
      ['Card:k1', 2],
    ]);
    const { cache, invalidated } = fakeCache(versions);
    const pushed = new PushedVersions();
    pushed.note(cache, push('Column', 'c1', 5));
    pushed.note(cache, push('Card', 'k1', 2));
    pushed.repair(cache, {
      __typename: 'MoveCardSuccess',
      card: { __typename: 'Card', id: 'k1', version: 2, column: column('c1', 4) },
      columns: [column('c1', 4)],
    });
    // The column once (it appears twice), the card not (it holds the pushed version).
    expect(invalidated).toEqual(['Column:c1']);
  });

  it('leaves entities at or above the pushed version, and those no push named', () => {
    const { cache, invalidated } = fakeCache(
      new Map([
        ['Column:c1', 5],
        ['Column:c2', 1],
      ]),
    );
    const pushed = new PushedVersions();
    pushed.note(cache, push('Column', 'c1', 5));
    pushed.repair(cache, [column('c1', 5), column('c2', 1)]);
    expect(invalidated).toEqual([]);
  });

  it('repairs one entity at most 3 times per pushed version, and again after a newer push', () => {
    const { cache, invalidated } = fakeCache(new Map([['Column:c1', 4]]));
    const pushed = new PushedVersions();
    pushed.note(cache, push('Column', 'c1', 5));
    for (let i = 0; i < 5; i++) pushed.repair(cache, column('c1', 4));
    expect(invalidated).toHaveLength(3);
    // The same version pushed again (a resubscribe's replay), or an older one: no reset.
    pushed.note(cache, push('Column', 'c1', 5));
    pushed.repair(cache, column('c1', 4));
    pushed.note(cache, push('Column', 'c1', 3));
    pushed.repair(cache, column('c1', 4));
    expect(invalidated).toHaveLength(3);
    pushed.note(cache, push('Column', 'c1', 6));
    pushed.repair(cache, column('c1', 4));
    expect(invalidated).toHaveLength(4);
  });

  it('takes versions from the resources a change carries too, for boards, columns and cards only', () => {
    const { cache, invalidated } = fakeCache(
      new Map([
        ['Board:b1', 1],
        ['User:u1', 1],
      ]),
    );
    const pushed = new PushedVersions();
    pushed.note(cache, {
      invalidated: [],
      changed: [
        { __typename: 'Board', id: 'b1', version: 3 },
        { __typename: 'User', id: 'u1', version: 3 },
      ],
    } as unknown as BoardChange);
    pushed.repair(cache, [
      { __typename: 'Board', id: 'b1' },
      { __typename: 'User', id: 'u1' },
    ]);
    expect(invalidated).toEqual(['Board:b1']);
  });
});
