import { describe, expect, it } from 'vitest';
import { jsonBytesAtMost, withinBudget } from '../../src/projector/applyCommit.js';
import { CARRIED_DOCS_MAX_BYTES, type CarriedDoc } from '../../src/projector/types.js';

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? '');

/** The budget rule measured exactly: the first documents whose JSON, summed, fits. */
function exactlyWithinBudget(docs: CarriedDoc[]): CarriedDoc[] {
  let bytes = 0;
  return docs.filter((carried) => (bytes += jsonBytes(carried.doc)) <= CARRIED_DOCS_MAX_BYTES);
}

const card = (id: string, description: string): CarriedDoc => ({
  collection: 'cards',
  doc: {
    _id: id,
    title: `Card ${id}`,
    description,
    labels: ['bug'],
    updatedAt: new Date(0),
  } as never,
});

describe('carried documents budget', () => {
  it('bounds the JSON size of any document from above without serialising it', () => {
    const values: unknown[] = [
      'plain',
      'quote " backslash \\ newline \n tab \t nul \u0000 bell \u0007',
      'é😀\ud800 lone surrogate',
      '\u2028\u2029',
      -1.2345678901234567e-308,
      Number.MIN_VALUE,
      -Number.MAX_VALUE,
      NaN,
      true,
      null,
      new Date(8.64e15),
      new Date(-8.64e15),
      new Date(NaN),
      [1, 'two', [null, { three: 3 }], undefined],
      { a: undefined, b: () => 1, 'ké y"': { nested: ['x', new Date(0)] } },
      Object.assign(Object.create(null) as object, { bare: 'object' }),
      { _id: 'card-1', labels: [], done: false, assigneeId: null, rank: 'a0V', version: 12 },
    ];
    for (const value of values) {
      expect(jsonBytesAtMost(value), JSON.stringify(value)).toBeGreaterThanOrEqual(
        jsonBytes(value),
      );
    }
    expect(jsonBytesAtMost({ toJSON: () => 'x' })).toBe(Infinity);
    expect(jsonBytesAtMost({ big: 1n })).toBe(Infinity);
  });

  it('keeps small sets whole and measures large ones exactly, keeping what fits as the exact rule does', () => {
    const small = [card('1', 'short'), card('2', 'also short')];
    expect(withinBudget(small)).toEqual(small);

    // ASCII text: its bound (6 bytes a character) is over the budget, its JSON is not.
    const wordy = [card('1', 'a'.repeat(CARRIED_DOCS_MAX_BYTES / 2)), card('2', 'b'.repeat(1_000))];
    expect(withinBudget(wordy)).toEqual(wordy);

    const third = CARRIED_DOCS_MAX_BYTES / 3;
    const big = [
      card('1', 'x'.repeat(third)),
      card('2', 'y'.repeat(third)),
      card('3', 'z'.repeat(third)),
      card('4', 'tiny'),
    ];
    expect(withinBudget(big).map((c) => c.doc._id)).toEqual(['1', '2']);
    expect(withinBudget(big)).toEqual(exactlyWithinBudget(big));
    const multibyte = [card('1', 'é'.repeat(third)), card('2', '😀'.repeat(third / 4))];
    expect(withinBudget(multibyte)).toEqual(exactlyWithinBudget(multibyte));
  });
});
