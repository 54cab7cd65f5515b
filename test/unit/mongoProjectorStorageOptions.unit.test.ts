/**
 * `createMongoProjectorStorage` refuses a retention, stride, cache time, drop delay or poll
 * interval that is not an integer at or above its minimum, with a RangeError naming the
 * option, before it touches the database; every value at the minimum is accepted.
 */
import type { MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import {
  createMongoProjectorStorage,
  type MongoProjectorStorageOptions,
} from '../../src/projector/mongo/MongoProjectorStorage.js';

/** Thrown by the client once the options passed: the storage went on to use the database. */
class DatabaseReached extends Error {}

/** A client that refuses to be used, so a call that gets past validation fails with DatabaseReached. */
const client = {
  db: () => {
    throw new DatabaseReached('the database was reached');
  },
} as unknown as MongoClient;

const open = (options: Partial<MongoProjectorStorageOptions>) =>
  createMongoProjectorStorage({ client, dbName: 'unused', ...options });

/** Each option with its smallest allowed value. */
const MINIMUMS = {
  changeLogRetention: 1,
  changeLogTrimEvery: 1,
  pointerCacheMs: 0,
  generationDropDelayMs: 0,
  tailPollIntervalMs: 1,
} as const;

describe('mongo projector storage options', () => {
  it('uses the documented defaults, which pass validation', async () => {
    await expect(open({})).rejects.toThrow(DatabaseReached);
  });

  for (const [name, min] of Object.entries(MINIMUMS)) {
    it(`refuses ${name} below ${min} or not an integer, naming it, and accepts ${min}`, async () => {
      for (const bad of [min - 1, min + 0.5, Number.NaN]) {
        const refused = open({ [name]: bad });
        await expect(refused).rejects.toThrow(RangeError);
        await expect(refused).rejects.toThrow(new RegExp(`^${name} must be an integer >= ${min}`));
      }
      await expect(open({ [name]: min })).rejects.toThrow(DatabaseReached);
    });
  }
});
