import { MongoServerError, type Db } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { MongoLeases } from '../../src/projector/mongo/MongoLeases.js';
import { MongoReadModels } from '../../src/projector/mongo/MongoReadModels.js';
import { expiredRead, isTrimPoint } from '../../src/projector/mongo/changeLogWindow.js';
import { fromChangeLogDoc, toChangeLogDoc } from '../../src/projector/mongo/documents.js';
import { isDuplicateKey } from '../../src/projector/mongo/driverErrors.js';
import {
  generationCollectionPrefix,
  newGenerationId,
  readModelCollectionName,
} from '../../src/projector/mongo/generations.js';
import { leaseOperations } from '../../src/projector/mongo/leaseOperations.js';
import {
  translateReadFilter,
  translateSort,
} from '../../src/projector/mongo/translateReadFilter.js';
import type { ChangeLogEntry, LeaseStore, ReadDoc } from '../../src/projector/types.js';

describe('ReadFilter to MongoDB filter', () => {
  it('turns equality into $eq, which on an array field matches a contained value', () => {
    expect(translateReadFilter({ boardId: 'b1', archived: false, order: 3 })).toEqual({
      boardId: { $eq: 'b1' },
      archived: { $eq: false },
      order: { $eq: 3 },
    });
  });

  it('keeps null as an $eq on null, which matches a null or missing field', () => {
    expect(translateReadFilter({ deletedAt: null })).toEqual({ deletedAt: { $eq: null } });
  });

  it('turns { gt } into $gt', () => {
    expect(translateReadFilter({ rank: { gt: 'a0' }, version: { gt: 2 } })).toEqual({
      rank: { $gt: 'a0' },
      version: { $gt: 2 },
    });
  });

  it('matches everything for an empty filter', () => {
    expect(translateReadFilter({})).toEqual({});
  });

  it('keeps a value that looks like an operator a plain value', () => {
    expect(translateReadFilter({ label: '$where' })).toEqual({ label: { $eq: '$where' } });
  });

  it('refuses field names MongoDB would read as a path or an operator', () => {
    expect(() => translateReadFilter({ 'a.b': 1 })).toThrow(RangeError);
    expect(() => translateReadFilter({ $where: 'x' })).toThrow(RangeError);
    expect(() => translateReadFilter({ '': 1 })).toThrow(RangeError);
  });

  it('sorts with _id as the tie-breaker, and by _id alone without a duplicate key', () => {
    expect(translateSort(['rank', 1])).toEqual({ rank: 1, _id: 1 });
    expect(translateSort(['createdAt', -1])).toEqual({ createdAt: -1, _id: 1 });
    expect(translateSort(['_id', -1])).toEqual({ _id: -1 });
    expect(() => translateSort(['a.b', 1])).toThrow(RangeError);
  });
});

type Filter = Record<string, unknown>;

/**
 * MongoDB's aggregation expressions, for the subset the lease operations use: `$$NOW`
 * (the simulated server clock), field paths (a missing field is undefined, unlike null),
 * `$literal`, `$ifNull`, `$cond`, `$add`/`$subtract` on dates and numbers, and the
 * comparisons, which order values as BSON does across the types used here
 * (missing/null < numbers < dates).
 */
function evaluate(expression: unknown, doc: Record<string, unknown>, now: Date): unknown {
  if (expression === '$$NOW') return now;
  if (typeof expression === 'string' && expression.startsWith('$')) return doc[expression.slice(1)];
  if (expression === null || typeof expression !== 'object' || expression instanceof Date) {
    return expression;
  }
  const [operator, operand] = Object.entries(expression)[0]!;
  if (operator === '$literal') return operand;
  const args = (operand as unknown[]).map((a) => evaluate(a, doc, now));
  const rank = (v: unknown) => (v == null ? 0 : typeof v === 'number' ? 1 : 2);
  const order = (a: unknown, b: unknown) => {
    const byType = rank(a) - rank(b);
    if (byType !== 0 || a == null) return byType;
    const x = a instanceof Date ? a.getTime() : (a as number);
    const y = b instanceof Date ? b.getTime() : (b as number);
    return x - y;
  };
  const time = (v: unknown) => (v instanceof Date ? v.getTime() : (v as number));
  switch (operator) {
    case '$and':
      return args.every(Boolean);
    case '$or':
      return args.some(Boolean);
    case '$eq':
      return args[0] === args[1];
    case '$ne':
      return args[0] !== args[1];
    case '$lte':
      return order(args[0], args[1]) <= 0;
    case '$gt':
      return order(args[0], args[1]) > 0;
    case '$ifNull':
      return args[0] ?? args[1];
    case '$cond':
      return args[0] ? args[1] : args[2];
    case '$add':
      return args[0] instanceof Date
        ? new Date(time(args[0]) + time(args[1]))
        : time(args[0]) + time(args[1]);
    case '$subtract':
      return args[0] instanceof Date
        ? new Date(time(args[0]) - time(args[1]))
        : time(args[0]) - time(args[1]);
    default:
      throw new Error(`expression ${operator} is not simulated`);
  }
}

/** A query filter of equalities, `$ne` and `$expr`, as the lease operations send. */
function matches(doc: Record<string, unknown>, filter: Filter, now: Date): boolean {
  return Object.entries(filter).every(([key, condition]) => {
    if (key === '$expr') return Boolean(evaluate(condition, doc, now));
    const value = doc[key] ?? null;
    if (condition !== null && typeof condition === 'object' && '$ne' in condition) {
      return value !== condition.$ne;
    }
    return value === condition;
  });
}

/** One `$set` stage of an update pipeline: every expression sees the document before it. */
function applyPipeline(doc: Record<string, unknown>, pipeline: Filter[], now: Date) {
  const [{ $set }] = pipeline as [{ $set: Filter }];
  const before = { ...doc };
  for (const [field, expression] of Object.entries($set)) {
    doc[field] = evaluate(expression, before, now);
  }
  return doc;
}

/**
 * A `leases` collection as the server would treat the calls `MongoLeases` makes, with
 * `now()` as the server's clock: each write is applied to one document atomically (the
 * test runs them one at a time), an upsert whose filter refuses an existing document
 * fails with E11000, and an upsert with no document runs the pipeline on `{ _id }`.
 */
function simulatedLeasesDb(now: () => number): Db {
  const docs = new Map<string, Record<string, unknown>>();
  const idOf = (filter: Filter) => filter._id as string;
  const collection = {
    async findOne(filter: Filter) {
      const doc = docs.get(idOf(filter));
      return doc && matches(doc, filter, new Date(now())) ? { ...doc } : null;
    },
    async updateOne(filter: Filter, update: Filter[]) {
      const doc = docs.get(idOf(filter));
      const at = new Date(now());
      if (doc && matches(doc, filter, at)) applyPipeline(doc, update, at);
    },
    async findOneAndUpdate(
      filter: Filter,
      update: Filter[],
      options: { upsert?: boolean; returnDocument?: string; includeResultMetadata?: boolean },
    ) {
      expect(options).toMatchObject({
        upsert: true,
        returnDocument: 'after',
        includeResultMetadata: false,
      });
      const id = idOf(filter);
      const doc = docs.get(id);
      const at = new Date(now());
      if (doc && matches(doc, filter, at)) return { ...applyPipeline(doc, update, at) };
      if (doc) {
        throw new MongoServerError({
          message: `E11000 duplicate key error collection: test.leases index: _id_ dup key: { _id: "${id}" }`,
          code: 11000,
        });
      }
      const inserted = applyPipeline({ _id: id }, update, at);
      docs.set(id, inserted);
      return { ...inserted };
    },
  };
  return { collection: () => collection } as unknown as Db;
}

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('lease filters', () => {
  const ttl = 100;

  it('take, renew, refuse, expire and release like the memory adapter', async () => {
    let clock = 1_000;
    const leases = new MongoLeases(simulatedLeasesDb(() => clock));
    expect(await leases.acquire('p', 'a', ttl)).not.toBeNull();
    expect(await leases.acquire('p', 'b', ttl)).toBeNull();
    clock += 60;
    expect(await leases.acquire('p', 'a', ttl)).not.toBeNull(); // renewed to 1_160
    clock += 60;
    expect(await leases.holder('p')).toBe('a');
    expect(await leases.acquire('p', 'b', ttl)).toBeNull();
    clock += 40; // 1_160: expired
    expect(await leases.holder('p')).toBe(null);
    expect(await leases.acquire('p', 'b', ttl)).not.toBeNull();
    await leases.release('p', 'a'); // not the holder: no effect
    expect(await leases.holder('p')).toBe('b');
    await leases.release('p', 'b');
    expect(await leases.holder('p')).toBe(null);
    expect(await leases.acquire('p', 'a', ttl)).not.toBeNull();
  });

  it('hands the lease over: the holder gives it up at its next renewal, and only the requester may take it for one ttl', async () => {
    let clock = 0;
    const leases = new MongoLeases(simulatedLeasesDb(() => clock));
    expect(await leases.acquire('p', 'holder', ttl)).not.toBeNull();
    clock += 10;
    await leases.requestHandover('p', 'rebuilder');
    expect(await leases.holder('p')).toBe('holder');
    clock += 10;
    expect(await leases.acquire('p', 'holder', ttl)).toBeNull();
    expect(await leases.holder('p')).toBe(null);
    expect(await leases.acquire('p', 'bystander', ttl)).toBeNull();
    expect(await leases.acquire('p', 'rebuilder', ttl)).not.toBeNull();
    // The request was served: the old holder may compete again once the lease is free.
    await leases.release('p', 'rebuilder');
    expect(await leases.acquire('p', 'holder', ttl)).not.toBeNull();
  });

  it('lets the reservation of an unanswered handover request lapse after one ttl', async () => {
    let clock = 0;
    const leases = new MongoLeases(simulatedLeasesDb(() => clock));
    await leases.acquire('p', 'holder', ttl);
    await leases.requestHandover('p', 'gone');
    clock += ttl; // the request is exactly one ttl old: it no longer reserves anything
    expect(await leases.acquire('p', 'holder', ttl)).not.toBeNull();
    clock += ttl;
    expect(await leases.acquire('p', 'other', ttl)).not.toBeNull();
  });

  it('never creates a lease on a handover request', async () => {
    const leases = new MongoLeases(simulatedLeasesDb(() => 0));
    await leases.requestHandover('p', 'someone');
    expect(await leases.holder('p')).toBe(null);
    expect(await leases.acquire('p', 'other', ttl)).not.toBeNull();
  });

  it('decides every one of 5,000 random operations as the memory adapter does', async () => {
    const next = random(20_240_601);
    let clock = 10_000;
    const now = () => clock;
    const memory: LeaseStore = createMemoryProjectorStorage({ now }).leases;
    const mongo = new MongoLeases(simulatedLeasesDb(now));
    const owners = ['a', 'b', 'c'];
    const pick = () => owners[Math.floor(next() * owners.length)]!;
    for (let step = 0; step < 5_000; step++) {
      const owner = pick();
      const roll = next();
      const label = `step ${step} at ${clock}`;
      if (roll < 0.45) {
        expect(await mongo.acquire('p', owner, ttl), label).toEqual(
          await memory.acquire('p', owner, ttl),
        );
      } else if (roll < 0.6) {
        await mongo.release('p', owner);
        await memory.release('p', owner);
      } else if (roll < 0.75) {
        await mongo.requestHandover('p', owner);
        await memory.requestHandover('p', owner);
      } else {
        clock += Math.floor(next() * 1.5 * ttl);
      }
      expect(await mongo.holder('p'), label).toBe(await memory.holder('p'));
    }
  });

  it('keeps the epoch on renewals and opens a new one when the lease changes owner', async () => {
    let clock = 0;
    const leases = new MongoLeases(simulatedLeasesDb(() => clock));
    expect(await leases.acquire('p', 'a', ttl)).toEqual({ epoch: 1 });
    clock += 50;
    expect(await leases.acquire('p', 'a', ttl)).toEqual({ epoch: 1 });
    clock += 200;
    expect(await leases.acquire('p', 'a', ttl)).toEqual({ epoch: 1 }); // lapsed, taken back
    clock += 200;
    expect(await leases.acquire('p', 'b', ttl)).toEqual({ epoch: 2 });
    clock += 200;
    expect(await leases.acquire('p', 'a', ttl)).toEqual({ epoch: 3 });
  });

  it('computes every time on the server: the operations carry no client clock', () => {
    const writes = [
      leaseOperations.acquire('p', 'a', 100),
      leaseOperations.yieldToHandover('p', 'a', 100),
      leaseOperations.release('p', 'a'),
      leaseOperations.requestHandover('p', 'a'),
    ];
    const text = JSON.stringify(writes);
    expect(text).toContain('$$NOW');
    expect(text).not.toMatch(/"(expiresAt|handoverAt)":\s*\d/);
    // Caller values are literals, never field paths: an owner named like a path stays a value.
    expect(JSON.stringify(leaseOperations.acquire('p', '$evil', 100).update)).toContain(
      '{"$literal":"$evil"}',
    );
  });
});

describe('change log window', () => {
  it('expires exactly the cursors older than the newest `retention`, however far trimming lags', () => {
    expect(expiredRead(3, 25, 10)).toEqual({ kind: 'expired', oldest: 16, head: 25 });
    expect(expiredRead(14, 25, 10)).toEqual({ kind: 'expired', oldest: 16, head: 25 });
    expect(expiredRead(15, 25, 10)).toBe(null);
    expect(expiredRead(0, 10, 10)).toBe(null);
    expect(expiredRead(0, 0, 10)).toBe(null);
  });

  it('trims on a fixed stride of cursors', () => {
    expect([99, 100, 101, 200].map((c) => isTrimPoint(c, 100))).toEqual([false, true, false, true]);
  });

  it('stores an entry under its cursor and reads it back unchanged', () => {
    const entry: ChangeLogEntry = {
      cursor: 7,
      commitId: 'c7',
      scopes: ['b1'],
      operation: 'moveCard',
      actor: 'alice',
      at: new Date(0),
      invalidated: [{ typename: 'Card', id: 'k', fields: ['rank'], version: 3 }],
    };
    expect(toChangeLogDoc(entry)._id).toBe(7);
    expect(fromChangeLogDoc(toChangeLogDoc(entry))).toEqual(entry);
  });
});

describe('read model generations', () => {
  it('names generations with letters and digits only, uniquely even within one millisecond', () => {
    const ids = Array.from({ length: 100 }, () => newGenerationId(1_700_000_000_000));
    for (const id of ids) expect(id).toMatch(/^g[a-z0-9]+$/);
    expect(new Set(ids).size).toBe(100);
  });

  it("names a generation's collections under a prefix no other generation's collections share", () => {
    expect(readModelCollectionName('g1', 'cards')).toBe('rm_g1_cards');
    expect(
      readModelCollectionName('g12', 'cards').startsWith(generationCollectionPrefix('g1')),
    ).toBe(false);
  });

  it('refuses generation ids and collection names MongoDB or the prefix scheme cannot take', () => {
    expect(() => readModelCollectionName('g_1', 'cards')).toThrow(RangeError);
    expect(() => readModelCollectionName('g1', 'a$b')).toThrow(RangeError);
    expect(() => readModelCollectionName('g1', '')).toThrow(RangeError);
  });
});

describe('driver errors', () => {
  it('recognises a duplicate key error by its code only', () => {
    expect(
      isDuplicateKey(new MongoServerError({ message: 'E11000 duplicate key', code: 11000 })),
    ).toBe(true);
    expect(isDuplicateKey(new MongoServerError({ message: 'write conflict', code: 112 }))).toBe(
      false,
    );
    expect(isDuplicateKey(new Error('E11000'))).toBe(false);
  });
});

describe('read collection putMany', () => {
  /** A database whose collections only record their bulk writes. */
  function recordingDb() {
    const calls: { collection: string; operations: unknown[]; options: unknown }[] = [];
    const db = {
      collection: (collection: string) => ({
        async bulkWrite(operations: unknown[], options: unknown) {
          calls.push({ collection, operations, options });
          return {};
        },
      }),
    } as unknown as Db;
    const models = new MongoReadModels(db, { pointerCacheMs: 0, dropDelayMs: 0, indexes: {} });
    return { calls, docs: models.view('g1').collection<ReadDoc & { n: number }>('things') };
  }

  it('sends one unordered bulk write of replaceOne upserts, skipping undefined fields', async () => {
    const { calls, docs } = recordingDb();
    await docs.putMany([
      { _id: 'a', n: 1 },
      { _id: 'b', n: 2 },
    ]);
    expect(calls).toEqual([
      {
        collection: 'rm_g1_things',
        operations: [
          { replaceOne: { filter: { _id: 'a' }, replacement: { _id: 'a', n: 1 }, upsert: true } },
          { replaceOne: { filter: { _id: 'b' }, replacement: { _id: 'b', n: 2 }, upsert: true } },
        ],
        options: { ordered: false, ignoreUndefined: true, writeConcern: { w: 'majority' } },
      },
    ]);
  });

  it('keeps only the last document of an id given twice, as put in a loop would', async () => {
    const { calls, docs } = recordingDb();
    await docs.putMany([
      { _id: 'a', n: 1 },
      { _id: 'b', n: 2 },
      { _id: 'a', n: 3 },
    ]);
    expect(calls[0]!.operations).toEqual([
      { replaceOne: { filter: { _id: 'a' }, replacement: { _id: 'a', n: 3 }, upsert: true } },
      { replaceOne: { filter: { _id: 'b' }, replacement: { _id: 'b', n: 2 }, upsert: true } },
    ]);
  });

  it('sends nothing for no documents (the driver refuses an empty bulk write)', async () => {
    const { calls, docs } = recordingDb();
    await docs.putMany([]);
    expect(calls).toEqual([]);
  });
});
