/**
 * Names of read model generations and of their collections. Pure.
 */
import { randomBytes } from 'node:crypto';
import { READ_MODEL_PREFIX } from './documents.js';

/** What a generation id looks like: lowercase letters and digits only. */
const GENERATION_ID = /^[a-z0-9]+$/;

/**
 * A new generation id: `g`, the time in base 36 (so ids sort by creation, which helps an
 * operator reading `listCollections`), then 8 random hex digits so two instances creating
 * a generation in the same millisecond still differ. Never contains `_`, so the prefix
 * `rm_<generation>_` of one generation is never a prefix of another's collections.
 */
export function newGenerationId(now: number = Date.now()): string {
  return `g${now.toString(36)}${randomBytes(4).toString('hex')}`;
}

/** @throws RangeError when `generation` is not an id `newGenerationId` could produce. */
export function assertGenerationId(generation: string): void {
  if (!GENERATION_ID.test(generation)) {
    throw new RangeError(`${JSON.stringify(generation)} is not a read model generation id`);
  }
}

/** The prefix shared by every collection of `generation`, and by no other generation's. */
export function generationCollectionPrefix(generation: string): string {
  assertGenerationId(generation);
  return `${READ_MODEL_PREFIX}${generation}_`;
}

/**
 * The collection holding read collection `name` of `generation`: `rm_<generation>_<name>`.
 * Collection names may not be empty, contain `$` or the null character (manual, "Naming
 * Restrictions"); the whole namespace must stay under 255 bytes, which leaves `name` over
 * 200 bytes with a typical database name.
 *
 * @throws RangeError for a name MongoDB would refuse.
 */
export function readModelCollectionName(generation: string, name: string): string {
  if (name === '' || name.includes('$') || name.includes('\0')) {
    throw new RangeError(`${JSON.stringify(name)} cannot name a read collection`);
  }
  return `${generationCollectionPrefix(generation)}${name}`;
}
