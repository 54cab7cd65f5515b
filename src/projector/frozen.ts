/**
 * Deeply frozen values: what the memory adapters keep and hand out, and what projections
 * write, so that one copy of a read document can be shared by the store, the projector's
 * write-behind cache and the change log without any of them being able to change it.
 */

/** Thrown by every setter of a stored date. */
function immutableDate(): never {
  throw new TypeError('read documents handed out by the store are immutable: copy before changing');
}

/** A `Date` whose setters throw: the dates inside deeply frozen values. */
class StoredDate extends Date {}
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  if (name.startsWith('set')) {
    Object.defineProperty(StoredDate.prototype, name, { value: immutableDate });
  }
}

/**
 * The last two stored dates made: the documents one commit writes share its time, and a
 * document also holds the time it was created (`createdAt`, then `updatedAt`).
 */
let lastStoredDate: StoredDate = Object.freeze(new StoredDate(0));
let otherStoredDate: StoredDate = lastStoredDate;

/** A stored date of `date`'s time (dates of equal times are interchangeable once frozen). */
function storedDate(date: Date): StoredDate {
  const time = date.getTime();
  // NaN never equals itself: an invalid date gets a copy of its own, as any date would.
  if (lastStoredDate.getTime() === time) return lastStoredDate;
  const stored =
    otherStoredDate.getTime() === time ? otherStoredDate : Object.freeze(new StoredDate(time));
  otherStoredDate = lastStoredDate;
  lastStoredDate = stored;
  return stored;
}

/**
 * The prototype of the plain objects this module copies: `Object.prototype`'s, one step
 * removed, so that a copy is known deeply frozen at a glance, without walking it again (a
 * store handed a document made here keeps it as it is). It adds nothing: such an object
 * reads, spreads, serialises and compares as a plain one (a spread of it is a plain one).
 */
const FROZEN_RECORD: object = Object.freeze(Object.create(Object.prototype) as object);

/**
 * `value` deeply frozen: nothing reachable from the result can change (writes throw in
 * strict code), and no later change to `value` can reach it. What is already so (a frozen
 * plain object or array holding only such values, a stored date, a primitive) is returned
 * as it is, not copied again: a document made from a stored one by changing a field is
 * copied at its top level only, sharing the rest. Anything else is copied: plain objects
 * and arrays field by field, dates as stored dates, other objects by `structuredClone`.
 */
export function frozenCopy<T>(value: T): T {
  if (value === null || typeof value !== 'object' || value instanceof StoredDate) return value;
  if (value instanceof Date) return storedDate(value) as T;
  if (Array.isArray(value)) {
    // Copied only once an item differs from its frozen copy (or the array is not frozen).
    let items: unknown[] | undefined = Object.isFrozen(value) ? undefined : value.slice();
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      if (item === null || typeof item !== 'object') continue;
      const frozen = frozenCopy(item);
      if (frozen !== item) (items ??= value.slice())[i] = frozen;
    }
    return items ? (Object.freeze(items) as T) : value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === FROZEN_RECORD) return value;
  if (proto !== Object.prototype && proto !== null) return Object.freeze(structuredClone(value));
  const source = value as Record<string, unknown>;
  if (Object.isFrozen(source) && fieldsFrozen(source)) return value;
  return frozenFields(source, undefined, undefined) as T;
}

/**
 * A frozen record of `fields`, which must be deeply frozen already (primitives, frozen
 * arrays of them, values this module made): marked as made here, so `frozenCopy` and the
 * memory stores keep it as it is without walking it. For records built of parts made
 * frozen one by one (a change log entry of a commit's frozen report).
 */
export function frozenRecord<T extends object>(fields: T): Readonly<T> {
  return Object.freeze(Object.assign(Object.create(FROZEN_RECORD) as T, fields));
}

/**
 * A deeply frozen copy of plain object `source` with `fields` set, as `{ ...source,
 * ...fields }` would be: a document written with its id and applied versions. `fields` are
 * set as they are: each must be deeply frozen already (a primitive, a frozen object of
 * primitives, or a value this module made).
 */
export function frozenWith<T extends object, F extends object>(source: T, fields: F): T & F {
  return frozenFields(source, fields, undefined) as T & F;
}

/**
 * `frozenWith(source, { _id: id, _applied: applied })` without making that object of
 * fields and walking it: the document `update` writes, one per write of a catch-up or a
 * rebuild. `applied` must be deeply frozen already.
 */
export function frozenDoc<T extends object>(
  source: T,
  id: string,
  applied: Readonly<Record<string, number>>,
): T & { _id: string; _applied: Readonly<Record<string, number>> } {
  const from = source as Record<string, unknown>;
  const proto = Object.getPrototypeOf(from) as unknown;
  if ((proto !== Object.prototype && proto !== FROZEN_RECORD) || Object.hasOwn(from, '__proto__'))
    return frozenWith(source, { _id: id, _applied: applied });
  const copy = Object.assign(Object.create(FROZEN_RECORD) as Record<string, unknown>, from);
  if (proto !== FROZEN_RECORD) freezeFieldsOf(copy);
  copy._id = id;
  copy._applied = applied;
  return Object.freeze(copy) as T & { _id: string; _applied: Readonly<Record<string, number>> };
}

/** Replaces each field of `copy` (a copy this module is making) by its frozen copy. */
function freezeFieldsOf(copy: Record<string, unknown>): void {
  for (const key in copy) {
    const value = copy[key];
    if (value === null || typeof value !== 'object') continue;
    const frozen = frozenCopy(value);
    if (frozen !== value) copy[key] = frozen;
  }
}

/** A deeply frozen copy of plain object `source` without its field `omitted`. */
export function frozenWithout<T extends object, K extends keyof T & string>(
  source: T,
  omitted: K,
): Omit<T, K> {
  return frozenFields(source, undefined, omitted) as Omit<T, K>;
}

/** Whether every field of `source` is deeply frozen already. */
function fieldsFrozen(source: Record<string, unknown>): boolean {
  for (const key in source) {
    const field = source[key];
    if (field === null || typeof field !== 'object' || !Object.hasOwn(source, key)) continue;
    if (frozenCopy(field) !== field) return false;
  }
  return true;
}

/**
 * The frozen copy of `source`'s own fields (but `omitted`), then `fields`' as they are
 * (replacing `source`'s in place). The fields of a record this module made are deeply
 * frozen already and are shared without a look; others are replaced by their frozen copies.
 * Copied by `Object.assign`, V8's fastest copy of a plain object, unless a field named
 * `__proto__` (which it would take for the prototype) or `omitted` is in the way: then a
 * field at a time. (`Object.assign` also copies symbol-keyed fields, as they are: documents
 * have none.) Not by a spread: V8 adds fields to (and freezes) an object made by a
 * spread far more slowly, about 1 µs a document. (`for in` walks own keys without making
 * an array of them; an inherited enumerable field, were `Object.prototype` ever given one,
 * is not the document's.)
 */
function frozenFields(
  source: object,
  fields: object | undefined,
  omitted: string | undefined,
): object {
  const from = source as Record<string, unknown>;
  const set = fields as Record<string, unknown> | undefined;
  const proto = Object.getPrototypeOf(from) as unknown;
  const madeHere = proto === FROZEN_RECORD;
  // A null prototype is kept: V8 keeps such an object as a hash table (see `appliedAfter`).
  const copy = Object.create(proto === null ? null : FROZEN_RECORD) as Record<string, unknown>;
  if (omitted === undefined && !Object.hasOwn(from, '__proto__')) {
    Object.assign(copy, from);
    if (!madeHere) freezeFieldsOf(copy);
  } else {
    for (const key in from) {
      if (key === omitted || !Object.hasOwn(from, key)) continue;
      const value = from[key];
      define(
        copy,
        key,
        madeHere || value === null || typeof value !== 'object' ? value : frozenCopy(value),
      );
    }
  }
  if (set)
    for (const key in set) {
      if (Object.hasOwn(set, key)) define(copy, key, set[key]);
    }
  return Object.freeze(copy);
}

/**
 * Sets `copy[key]` to `value` as a spread would set it: a field named `__proto__` is a
 * field, not the prototype.
 */
function define(copy: Record<string, unknown>, key: string, value: unknown): void {
  if (key !== '__proto__') {
    copy[key] = value;
    return;
  }
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
}
