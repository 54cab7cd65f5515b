import { describe, expect, it } from 'vitest';
import { updateBoardList, type CachedBoard } from '../../src/sdk/boardLists.js';

const entry = (id: string, createdAt: string | undefined): CachedBoard<string> => ({
  ref: `ref:${id}`,
  id,
  createdAt,
});
const list = [entry('c', '2026-03-01'), entry('a', '2026-01-01')];
const board = (id: string, archived: boolean, createdAt: string | undefined) => ({
  id,
  archived,
  createdAt,
  make: () => `ref:${id}`,
});

describe('keeping a cached boards list in step with archive and restore', () => {
  it('takes an archived board out of a list that leaves archived boards out', () => {
    expect(updateBoardList(list, {}, board('a', true, '2026-01-01'))).toEqual({
      kind: 'updated',
      refs: ['ref:c'],
    });
    expect(
      updateBoardList(list, { includeArchived: false }, board('c', true, '2026-03-01')),
    ).toEqual({ kind: 'updated', refs: ['ref:a'] });
  });

  it('puts a restored board back in its place, newest first', () => {
    expect(updateBoardList(list, {}, board('b', false, '2026-02-01'))).toEqual({
      kind: 'updated',
      refs: ['ref:c', 'ref:b', 'ref:a'],
    });
    expect(updateBoardList(list, {}, board('d', false, '2026-04-01')).kind).toBe('updated');
    expect(updateBoardList(list, {}, board('z', false, '2025-01-01'))).toEqual({
      kind: 'updated',
      refs: ['ref:c', 'ref:a', 'ref:z'],
    });
  });

  it('leaves a list alone that already says what the board is, or that holds archived boards too', () => {
    expect(updateBoardList(list, {}, board('c', false, '2026-03-01'))).toEqual({
      kind: 'unchanged',
    });
    expect(updateBoardList(list, {}, board('b', true, '2026-02-01'))).toEqual({
      kind: 'unchanged',
    });
    expect(
      updateBoardList(list, { includeArchived: true }, board('c', true, '2026-03-01')),
    ).toEqual({ kind: 'unchanged' });
  });

  it('asks for a refetch when it cannot tell where a restored board goes', () => {
    expect(updateBoardList(list, {}, board('b', false, undefined))).toEqual({ kind: 'refetch' });
    expect(updateBoardList([entry('c', undefined)], {}, board('b', false, '2026-02-01'))).toEqual({
      kind: 'refetch',
    });
  });
});
