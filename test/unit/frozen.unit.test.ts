import { describe, expect, it } from 'vitest';
import {
  frozenCopy,
  frozenDoc,
  frozenRecord,
  frozenWith,
  frozenWithout,
} from '../../src/projector/frozen.js';

/** Whether nothing reachable from `value` can be changed. */
function deeplyFrozen(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (value instanceof Date) {
    try {
      value.setTime(0);
      return false;
    } catch {
      return true;
    }
  }
  return Object.isFrozen(value) && Object.values(value).every(deeplyFrozen);
}

describe('frozenCopy', () => {
  it('copies what is not deeply frozen, and shares what is', () => {
    const stored = frozenCopy({ title: 'a', labels: ['x'], at: new Date(5), nested: { n: 1 } });
    expect(deeplyFrozen(stored)).toBe(true);
    // Already deeply frozen: the same object, not another copy.
    expect(frozenCopy(stored)).toBe(stored);

    // A document made from the stored one: copied at its top level, the rest shared.
    const next = frozenCopy({ ...stored, title: 'b' });
    expect(next).not.toBe(stored);
    expect(next.labels).toBe(stored.labels);
    expect(next.nested).toBe(stored.nested);
    expect(next.at).toBe(stored.at);
  });

  it('copies a frozen object that holds something that can still change', () => {
    const labels = ['x'];
    const at = new Date(5);
    const shallow = Object.freeze({ labels, at, inner: Object.freeze({ list: [1] }) });
    const copy = frozenCopy(shallow);
    expect(copy).not.toBe(shallow);
    expect(deeplyFrozen(copy)).toBe(true);
    labels.push('y');
    at.setTime(0);
    shallow.inner.list.push(2);
    expect(copy).toEqual({ labels: ['x'], at: new Date(5), inner: { list: [1] } });
  });

  it('copies a frozen array holding a mutable item, keeping the items that are frozen', () => {
    const kept = Object.freeze({ a: 1 });
    const mutable = { b: 2 };
    const items = Object.freeze([kept, mutable]);
    const copy = frozenCopy(items);
    expect(copy).not.toBe(items);
    expect(copy[0]).toBe(kept);
    mutable.b = 3;
    expect(copy[1]).toEqual({ b: 2 });
  });

  it('keeps a field named __proto__ as a field and a null prototype as it is', () => {
    const source = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<
      string,
      unknown
    >;
    const copy = frozenCopy(source);
    expect(copy instanceof Object).toBe(true);
    expect(Object.keys(copy)).toEqual(['__proto__', 'a']);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();

    const bare = Object.assign(Object.create(null) as Record<string, number>, { s: 1 });
    const bareCopy = frozenCopy(bare);
    expect(Object.getPrototypeOf(bareCopy)).toBeNull();
    expect({ ...bareCopy }).toEqual({ s: 1 });
  });
});

describe('frozenWith and frozenWithout', () => {
  it('are frozen spreads: fields replaced in place, added at the end, or left out', () => {
    const source = { _id: 'old', title: 'a', labels: ['x'] };
    // The fields set are deeply frozen already (frozenWith's contract): set as they are.
    const applied = Object.freeze({ s: 1 });
    const written = frozenWith(source, { _id: 'c1', _applied: applied });
    expect(written._applied).toBe(applied);
    expect(Object.entries(written)).toEqual(
      Object.entries({ ...source, _id: 'c1', _applied: { s: 1 } }),
    );
    expect(deeplyFrozen(written)).toBe(true);
    // Reads, spreads and serialises as a plain object.
    expect({ ...written }).toEqual({ _id: 'c1', title: 'a', labels: ['x'], _applied: { s: 1 } });
    expect(JSON.parse(JSON.stringify(written))).toEqual(structuredClone(written));
    source.labels.push('y');
    expect(written.labels).toEqual(['x']);

    const without = frozenWithout(written, '_applied');
    expect(without).toEqual({ _id: 'c1', title: 'a', labels: ['x'] });
    expect(deeplyFrozen(without)).toBe(true);
    expect(without.labels).toBe(written.labels);
  });
});

describe('frozenDoc', () => {
  it('is frozenWith of the id and applied versions, for plain objects, records made here and odd ones alike', () => {
    const applied = Object.freeze({ s: 1 });
    const proto = { _id: 'x', ['__proto__']: 'a field' };
    const odd = Object.defineProperty({ _id: 'x' }, '__proto__', {
      value: 'a field',
      enumerable: true,
    });
    const sources = [
      { title: 'a', labels: ['x'], at: new Date(0) },
      frozenWith({ title: 'a', labels: ['x'] }, {}),
      odd,
      Object.assign(Object.create(null) as object, { title: 'a' }),
      proto,
    ];
    for (const source of sources) {
      const doc = frozenDoc(source, 'c1', applied);
      const expected = frozenWith(source, { _id: 'c1', _applied: applied });
      expect(Object.entries(doc)).toEqual(Object.entries(expected));
      expect(Object.getPrototypeOf(doc)).toBe(Object.getPrototypeOf(expected));
      expect(deeplyFrozen(doc)).toBe(true);
      expect(doc._applied).toBe(applied);
      // Kept as it is by the stores: nothing left to copy.
      expect(frozenCopy(doc)).toBe(doc);
    }
    const mutable = { labels: ['x'] };
    const doc = frozenDoc(mutable, 'c1', applied);
    mutable.labels.push('y');
    expect(doc.labels).toEqual(['x']);
  });
});

describe('frozenRecord', () => {
  it('is kept as it is by frozenCopy, and reads as a plain object', () => {
    const doc = frozenCopy({ title: 'a', labels: ['x'] });
    const record = frozenRecord({ collection: 'cards', doc, tags: Object.freeze(['t']) });
    expect(Object.isFrozen(record)).toBe(true);
    expect(deeplyFrozen(record)).toBe(true);
    expect(frozenCopy(record)).toBe(record);
    expect({ ...record }).toEqual({
      collection: 'cards',
      doc: { title: 'a', labels: ['x'] },
      tags: ['t'],
    });
    // A copy made from it shares its fields without a walk.
    expect(frozenWithout(record, 'tags').doc).toBe(doc);
  });
});
