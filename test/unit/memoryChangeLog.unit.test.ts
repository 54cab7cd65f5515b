import { describe, expect, it } from 'vitest';
import { MemoryChangeLog } from '../../src/projector/memory/MemoryChangeLog.js';
import type { ChangeLogEntry } from '../../src/projector/types.js';

const entry = (cursor: number): ChangeLogEntry => ({
  cursor,
  commitId: `c${cursor}`,
  scopes: cursor % 3 === 0 ? ['third'] : ['other'],
  operation: 'op',
  actor: null,
  at: new Date(cursor),
  invalidated: [],
});

const cursorsOf = async (log: MemoryChangeLog, after: number, scope?: string) => {
  const read = await log.read(after, { limit: 10_000, ...(scope ? { scope } : {}) });
  return read.kind === 'entries' ? read.entries.map((e) => e.cursor) : read;
};

describe('MemoryChangeLog', () => {
  it('keeps exactly the retained window through many trims, one record or a run at a time', async () => {
    const log = new MemoryChangeLog(100);
    for (let cursor = 1; cursor <= 2_500; cursor += 1) await log.record(entry(cursor));
    const run = Array.from({ length: 3_000 }, (_, i) => entry(2_501 + i));
    await log.recordMany(run);

    expect(await log.head()).toBe(5_500);
    expect(await cursorsOf(log, 0)).toEqual({ kind: 'expired', oldest: 5_401, head: 5_500 });
    expect(await cursorsOf(log, 5_400)).toEqual(Array.from({ length: 100 }, (_, i) => 5_401 + i));
    expect(await cursorsOf(log, 5_489)).toEqual(Array.from({ length: 11 }, (_, i) => 5_490 + i));
    expect(await cursorsOf(log, 5_400, 'third')).toEqual(
      Array.from({ length: 33 }, (_, i) => 5_403 + 3 * i),
    );
    const read = await log.read(5_499);
    expect(read).toEqual({ kind: 'entries', entries: [entry(5_500)] });
  });

  it('hands out copies: changing a recorded or a read entry changes nothing stored', async () => {
    const log = new MemoryChangeLog(10);
    const recorded = entry(1);
    await log.recordMany([recorded]);
    recorded.scopes.push('changed');
    const read = await log.read(0);
    if (read.kind !== 'entries') throw new Error('expired');
    read.entries[0]!.scopes.push('changed too');
    expect(await log.read(0)).toEqual({ kind: 'entries', entries: [entry(1)] });
  });

  it('lists an entry once in a scope it names twice, also once trimmed', async () => {
    const log = new MemoryChangeLog(2);
    await log.record({ ...entry(1), scopes: ['b', 'a', 'b'] });
    expect(await cursorsOf(log, 0, 'b')).toEqual([1]);
    expect(await cursorsOf(log, 0, 'a')).toEqual([1]);
    await log.recordMany([entry(2), { ...entry(3), scopes: ['b'] }]);
    // Entry 1 is trimmed: scope b's index drops it once, keeping entry 3.
    expect(await cursorsOf(log, 1, 'b')).toEqual([3]);
    await log.recordMany([entry(4), entry(5)]);
    expect(await cursorsOf(log, 3, 'b')).toEqual([]);
  });
});
