/**
 * The read side's query mini-language (`ReadFilter`, `FindOptions.sort`) in MongoDB's
 * terms. Pure: nothing here talks to the server.
 */
import type { Document, Filter, Sort } from 'mongodb';
import type { FindOptions, ReadFilter } from '../types.js';

/** A read document as stored: its `_id` is a string, its other fields the projection's. */
export interface StoredReadDoc extends Document {
  _id: string;
}

/**
 * Translates a `ReadFilter` into a MongoDB query filter.
 *
 * - `{ field: value }` becomes `{ field: { $eq: value } }`. MongoDB's equality already has
 *   the port's meaning: on an array field it matches when an element equals the value
 *   (manual, `$eq`: "Array Element Equals a Value"), and `null` matches a field that is
 *   null or missing, as `matchesFilter` in the memory adapter does with `value ?? null`.
 *   The explicit `$eq` keeps a value from ever being read as an operator document.
 * - `{ field: { gt } }` becomes `{ field: { $gt: gt } }`. MongoDB compares within one BSON
 *   type bracket only (numbers with numbers, strings with strings, by binary UTF-8 order),
 *   like the memory adapter, which compares a string or number field with `>`. Two edges
 *   differ: on an array field `$gt` matches when any element is greater (memory: never),
 *   and strings differ in order only between characters above U+FFFF and U+E000..U+FFFF.
 *
 * Field names must be plain top-level names: a `.` would be read by MongoDB as a path into
 * a sub-document (memory: a literal key) and a leading `$` as an operator, so both are
 * rejected rather than given two meanings.
 *
 * @throws RangeError for a field name containing `.` or starting with `$`, or empty.
 */
export function translateReadFilter(filter: ReadFilter): Filter<StoredReadDoc> {
  const query: Document = {};
  for (const [field, wanted] of Object.entries(filter)) {
    assertPlainField(field);
    query[field] =
      wanted !== null && typeof wanted === 'object' ? { $gt: wanted.gt } : { $eq: wanted };
  }
  return query;
}

/**
 * Translates `FindOptions.sort` into a MongoDB sort, with `_id` as the tie-breaker: MongoDB
 * returns documents with equal sort keys in no particular order, and the manual's advice for
 * a consistent order is to include a unique field such as `_id` ("Sort Consistency"). A sort
 * on `_id` itself gets no second key (a sort pattern with duplicate fields is an error).
 * Missing fields sort as null, i.e. first in ascending order.
 */
export function translateSort(sort: NonNullable<FindOptions['sort']>): Sort {
  const [field, direction] = sort;
  assertPlainField(field);
  return field === '_id' ? { _id: direction } : { [field]: direction, _id: 1 };
}

function assertPlainField(field: string): void {
  if (field === '' || field.includes('.') || field.startsWith('$')) {
    throw new RangeError(`read filter field ${JSON.stringify(field)} is not a plain field name`);
  }
}
