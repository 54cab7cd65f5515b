import { describe, expect, it } from 'vitest';
import { lastPerId } from '../../src/projector/types.js';

describe('lastPerId', () => {
  it('keeps the last document of each id, in the order ids first appear', () => {
    const docs = [
      { _id: 'a', n: 1 },
      { _id: 'b', n: 2 },
      { _id: 'a', n: 3 },
    ];
    expect(lastPerId(docs)).toEqual([
      { _id: 'a', n: 3 },
      { _id: 'b', n: 2 },
    ]);
  });

  it('hands back the list itself when no id repeats', () => {
    const docs = [{ _id: 'a' }, { _id: 'b' }];
    expect(lastPerId(docs)).toBe(docs);
  });
});
